package org.hybrimoe.policy.sched;

import java.util.Arrays;

/**
 * The plan of one MoE layer: what the native engine executes (issue 6) and what the simulator
 * replays. Immutable; times are predicted milliseconds from the start of the layer's MoE block.
 *
 * <p>Experts, in plan order: id (routed expert id, or {@code -1 - s} for shared expert s), device
 * ({@link #CPU} or {@link #GPU}), order (position in its device's queue, from 0), load (tokens),
 * predicted start and end. Transfers, in link order: the MoE layer they serve, the expert, the GPU
 * cache slot they fill ({@code -1}: a staging buffer, used for this layer and not kept), the expert
 * they evict from that slot ({@code -1}: none; for a global cache the victim's layer is
 * {@code evictedLayer}), kind ({@link #DEMAND} for this layer, {@link #PREFETCH} for a later one),
 * predicted start and end.
 *
 * <h2>Flat layout ({@link #writeTo}), for the JNI boundary</h2>
 *
 * <pre>
 * int[]:   [0] LAYOUT_VERSION  [1] layer  [2] nExperts  [3] nTransfers
 *          then nExperts x 4:   id, device, order, load
 *          then nTransfers x 6: targetLayer, expert, slot, evictedLayer, evicted, kind
 * float[]: [0] predicted makespan (ms)
 *          then nExperts x 2:   start, end
 *          then nTransfers x 2: start, end
 * </pre>
 */
public final class LayerPlan {
  public static final int CPU = 0;
  public static final int GPU = 1;
  public static final int DEMAND = 0;
  public static final int PREFETCH = 1;
  /** Version of the flat layout; bump on any change. */
  public static final int LAYOUT_VERSION = 1;

  private static final int HEADER = 4;
  private static final int EXPERT_INTS = 4;
  private static final int XFER_INTS = 6;

  private final int layer;
  private final int[] ids;
  private final int[] device;
  private final int[] order;
  private final int[] load;
  private final float[] start;
  private final float[] end;
  private final int[] xLayer;
  private final int[] xExpert;
  private final int[] xSlot;
  private final int[] xEvictedLayer;
  private final int[] xEvicted;
  private final int[] xKind;
  private final float[] xStart;
  private final float[] xEnd;
  private final float makespan;

  LayerPlan(int layer, int[] ids, int[] device, int[] order, int[] load, float[] start, float[] end,
      int[] xLayer, int[] xExpert, int[] xSlot, int[] xEvictedLayer, int[] xEvicted, int[] xKind,
      float[] xStart, float[] xEnd, float makespan) {
    this.layer = layer;
    this.ids = ids;
    this.device = device;
    this.order = order;
    this.load = load;
    this.start = start;
    this.end = end;
    this.xLayer = xLayer;
    this.xExpert = xExpert;
    this.xSlot = xSlot;
    this.xEvictedLayer = xEvictedLayer;
    this.xEvicted = xEvicted;
    this.xKind = xKind;
    this.xStart = xStart;
    this.xEnd = xEnd;
    this.makespan = makespan;
  }

  /**
   * The plan of a machine without an expert device: every routed expert on the CPU, lightest first
   * (as the scheduler queues CPU work), then the shared experts, no transfers.
   *
   * @param shared shared experts (ids -1 - s), each computing {@code sharedLoad} tokens
   * @param sharedScale a shared expert's time over a routed expert's with the same load
   */
  public static LayerPlan allOnCpu(int layer, int[] experts, int[] loads, int shared, int sharedLoad, double sharedScale,
      org.hybrimoe.policy.cost.CostModel cost) {
    int n = experts.length;
    Integer[] idx = new Integer[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    Arrays.sort(idx, (a, b) -> loads[a] != loads[b] ? Integer.compare(loads[a], loads[b]) : Integer.compare(experts[a], experts[b]));
    int total = n + shared;
    int[] ids = new int[total], dev = new int[total], ord = new int[total], ld = new int[total];
    float[] st = new float[total], en = new float[total];
    double t = 0;
    for (int q = 0; q < total; q++) {
      int i = q < n ? idx[q] : q;
      ids[i] = q < n ? experts[i] : -1 - (q - n);
      ld[i] = q < n ? loads[i] : sharedLoad;
      dev[i] = CPU;
      ord[i] = q;
      st[i] = (float) t;
      t += q < n ? cost.cpuMs(ld[i], q == 0) : sharedScale * cost.cpuMs(sharedLoad, q == 0);
      en[i] = (float) t;
    }
    int[] none = new int[0];
    float[] fnone = new float[0];
    return new LayerPlan(layer, ids, dev, ord, ld, st, en, none, none, none, none, none, none, fnone, fnone, (float) t);
  }

  public int layer() {
    return layer;
  }

  /** Number of expert computations (routed and shared). */
  public int size() {
    return ids.length;
  }

  public int expert(int i) {
    return ids[i];
  }

  public int device(int i) {
    return device[i];
  }

  public int order(int i) {
    return order[i];
  }

  public int load(int i) {
    return load[i];
  }

  public float start(int i) {
    return start[i];
  }

  public float end(int i) {
    return end[i];
  }

  public int transfers() {
    return xExpert.length;
  }

  public int transferLayer(int j) {
    return xLayer[j];
  }

  public int transferExpert(int j) {
    return xExpert[j];
  }

  public int transferSlot(int j) {
    return xSlot[j];
  }

  public int transferEvictedLayer(int j) {
    return xEvictedLayer[j];
  }

  public int transferEvicted(int j) {
    return xEvicted[j];
  }

  public int transferKind(int j) {
    return xKind[j];
  }

  public float transferStart(int j) {
    return xStart[j];
  }

  public float transferEnd(int j) {
    return xEnd[j];
  }

  /** Predicted time from the start of the MoE block until its last expert finishes. */
  public float makespan() {
    return makespan;
  }

  /** Busy time of a device (sum of its expert times). */
  public double busy(int dev) {
    double s = 0;
    for (int i = 0; i < ids.length; i++) {
      if (device[i] == dev) {
        s += end[i] - start[i];
      }
    }
    return s;
  }

  /** A copy with prefetch transfers appended (the prefetcher's decisions ride on the plan). */
  public LayerPlan withPrefetches(int[] layers, int[] experts, int[] slots, int[] evictedLayers, int[] evicted,
      float[] starts, float[] ends) {
    int n = xExpert.length;
    int m = experts.length;
    int[] kinds = new int[n + m];
    System.arraycopy(xKind, 0, kinds, 0, n);
    Arrays.fill(kinds, n, n + m, PREFETCH);
    return new LayerPlan(layer, ids, device, order, load, start, end, cat(xLayer, layers), cat(xExpert, experts),
        cat(xSlot, slots), cat(xEvictedLayer, evictedLayers), cat(xEvicted, evicted), kinds, cat(xStart, starts),
        cat(xEnd, ends), makespan);
  }

  private static int[] cat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  private static float[] cat(float[] a, float[] b) {
    float[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  /** Ints {@link #writeTo} needs. */
  public int intLength() {
    return HEADER + EXPERT_INTS * ids.length + XFER_INTS * xExpert.length;
  }

  /** Floats {@link #writeTo} needs. */
  public int floatLength() {
    return 1 + 2 * ids.length + 2 * xExpert.length;
  }

  /** Writes the flat layout (class comment) at the given offsets. */
  public void writeTo(int[] ints, int io, float[] floats, int fo) {
    if (floats.length - fo < floatLength()) {
      throw new IllegalArgumentException("float array too short for the plan: need " + floatLength() + " floats");
    }
    writeIntsTo(ints, io);
    floats[fo++] = makespan;
    for (int i = 0; i < ids.length; i++) {
      floats[fo++] = start[i];
      floats[fo++] = end[i];
    }
    for (int j = 0; j < xExpert.length; j++) {
      floats[fo++] = xStart[j];
      floats[fo++] = xEnd[j];
    }
  }

  /** Writes the int part of the flat layout only: all the native executor reads. */
  public void writeIntsTo(int[] ints, int io) {
    if (ints.length - io < intLength()) {
      throw new IllegalArgumentException("int array too short for the plan: need " + intLength() + " ints");
    }
    ints[io++] = LAYOUT_VERSION;
    ints[io++] = layer;
    ints[io++] = ids.length;
    ints[io++] = xExpert.length;
    for (int i = 0; i < ids.length; i++) {
      ints[io++] = ids[i];
      ints[io++] = device[i];
      ints[io++] = order[i];
      ints[io++] = load[i];
    }
    for (int j = 0; j < xExpert.length; j++) {
      ints[io++] = xLayer[j];
      ints[io++] = xExpert[j];
      ints[io++] = xSlot[j];
      ints[io++] = xEvictedLayer[j];
      ints[io++] = xEvicted[j];
      ints[io++] = xKind[j];
    }
  }

  /** Reads a plan back from the flat layout (the inverse of {@link #writeTo}). */
  public static LayerPlan readFrom(int[] ints, int io, float[] floats, int fo) {
    if (ints[io] != LAYOUT_VERSION) {
      throw new IllegalArgumentException("plan layout version " + ints[io] + ", expected " + LAYOUT_VERSION);
    }
    int layer = ints[io + 1];
    int n = ints[io + 2];
    int m = ints[io + 3];
    io += HEADER;
    float makespan = floats[fo++];
    int[] ids = new int[n], dev = new int[n], ord = new int[n], ld = new int[n];
    float[] st = new float[n], en = new float[n];
    for (int i = 0; i < n; i++) {
      ids[i] = ints[io++];
      dev[i] = ints[io++];
      ord[i] = ints[io++];
      ld[i] = ints[io++];
      st[i] = floats[fo++];
      en[i] = floats[fo++];
    }
    int[] xl = new int[m], xe = new int[m], xs = new int[m], xel = new int[m], xv = new int[m], xk = new int[m];
    float[] xst = new float[m], xen = new float[m];
    for (int j = 0; j < m; j++) {
      xl[j] = ints[io++];
      xe[j] = ints[io++];
      xs[j] = ints[io++];
      xel[j] = ints[io++];
      xv[j] = ints[io++];
      xk[j] = ints[io++];
      xst[j] = floats[fo++];
      xen[j] = floats[fo++];
    }
    return new LayerPlan(layer, ids, dev, ord, ld, st, en, xl, xe, xs, xel, xv, xk, xst, xen, makespan);
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof LayerPlan p)) {
      return false;
    }
    return layer == p.layer && makespan == p.makespan && Arrays.equals(ids, p.ids) && Arrays.equals(device, p.device)
        && Arrays.equals(order, p.order) && Arrays.equals(load, p.load) && Arrays.equals(start, p.start)
        && Arrays.equals(end, p.end) && Arrays.equals(xLayer, p.xLayer) && Arrays.equals(xExpert, p.xExpert)
        && Arrays.equals(xSlot, p.xSlot) && Arrays.equals(xEvictedLayer, p.xEvictedLayer)
        && Arrays.equals(xEvicted, p.xEvicted) && Arrays.equals(xKind, p.xKind) && Arrays.equals(xStart, p.xStart)
        && Arrays.equals(xEnd, p.xEnd);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(ids) * 31 + Float.hashCode(makespan) + layer;
  }

  @Override
  public String toString() {
    return String.format("LayerPlan[layer %d, %d experts (%d on GPU), %d transfers, makespan %.3f ms]", layer,
        ids.length, (int) Arrays.stream(device).filter(d -> d == GPU).count(), xExpert.length, makespan);
  }
}
