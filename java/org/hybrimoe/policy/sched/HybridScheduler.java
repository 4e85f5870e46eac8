package org.hybrimoe.policy.sched;

import java.util.Arrays;
import org.hybrimoe.policy.cost.CostModel;

/**
 * The intra-layer hybrid scheduler (ALGORITHMS.md section 2) and the baselines' splits, producing
 * a {@link LayerPlan}.
 *
 * <p>HYBRID first runs the paper's queue rules: resident experts queue for the GPU heaviest first,
 * misses queue for the CPU lightest first, and whenever the link is free before the CPU the
 * heaviest miss (the CPU queue's tail) is transferred if the simulated GPU finish of it, after
 * waiting for the link and the GPU's queue, beats its CPU finish at the queue's end; the first time
 * it does not, the link stops (later tails are lighter and the CPU queue only shortens). Light
 * residents then move to the CPU while that helps (the GPU can be the bottleneck at high hit
 * rates), and the split is compared under the same cost model with all-on-CPU, the static split
 * and all-on-GPU with on-demand transfers, the best kept. That plan is then improved by local
 * search on the same timeline (one expert to the other device, or a swap of two), a change kept
 * only if the makespan drops, so the result is never worse than the queue rules' plan nor than any
 * of the three splits (the section 2 invariant holds by construction). The transfer order is
 * heaviest first, which is optimal for any set of transfers in this timeline (see SplitSearch), so
 * the search moves experts, not positions in the link. ORACLE prices every split instead, up to
 * {@link #EXHAUSTIVE_LIMIT} activated experts.
 *
 * <p>Decisions price candidate splits on per-thread scratch ({@link SplitSearch}) without building
 * timelines; the full {@link #timeline} is built once, for the plan returned. Stateless apart from
 * the cost model and that scratch; one instance may serve many threads.
 */
public final class HybridScheduler {
  private final CostModel cost;
  // One search state per thread: decisions allocate nothing per candidate split.
  private final ThreadLocal<SplitSearch> search;

  public HybridScheduler(CostModel cost) {
    this.cost = cost;
    this.search = ThreadLocal.withInitial(() -> new SplitSearch(cost));
  }

  public CostModel cost() {
    return cost;
  }

  /** A layer's first-expert term on the GPU, as the cost model's expert times carry it. */
  static double firstGpuMs(CostModel c) {
    return c.gpuMs(1, true) - c.gpuMs(1, false);
  }

  /** A layer's first-expert term on the CPU. */
  static double firstCpuMs(CostModel c) {
    return c.cpuMs(1, true) - c.cpuMs(1, false);
  }

  /** A split: misses to transfer in link order, and resident experts moved to the CPU. */
  record Split(int[] xfers, boolean[] toCpu) {}

  /** Plans one layer; the allocator gives each transfer its slot and victim, in link order. */
  public LayerPlan plan(LayerRequest r, SchedulingMode mode, SlotAllocator allocator) {
    Split split = decide(r, mode);
    int[] xfers = split.xfers();
    Timeline tl = timeline(r, split);
    int n = r.experts().length;
    int s = r.sharedExperts();
    int total = n + s;
    int[] ids = new int[total];
    int[] dev = new int[total];
    int[] ord = new int[total];
    int[] load = new int[total];
    float[] st = new float[total];
    float[] en = new float[total];
    for (int i = 0; i < total; i++) {
      ids[i] = i < n ? r.experts()[i] : -1 - (i - n);
      dev[i] = tl.onGpu[i] ? LayerPlan.GPU : LayerPlan.CPU;
      ord[i] = tl.order[i];
      load[i] = i < n ? r.loads()[i] : r.sharedLoad();
      st[i] = (float) tl.start[i];
      en[i] = (float) tl.end[i];
    }
    int m = xfers.length;
    int[] xl = new int[m], xe = new int[m], xs = new int[m], xel = new int[m], xv = new int[m], xk = new int[m];
    float[] xst = new float[m], xen = new float[m];
    for (int j = 0; j < m; j++) {
      int i = xfers[j];
      SlotAllocator.Slot slot = allocator.allocate(r.layer(), r.experts()[i], r.experts());
      xl[j] = r.layer();
      xe[j] = r.experts()[i];
      xs[j] = slot.slot();
      xel[j] = slot.evictedLayer();
      xv[j] = slot.evicted();
      xk[j] = LayerPlan.DEMAND;
      xst[j] = (float) tl.xferStart[j];
      xen[j] = (float) tl.xferEnd[j];
    }
    return new LayerPlan(r.layer(), ids, dev, ord, load, st, en, xl, xe, xs, xel, xv, xk, xst, xen, (float) tl.makespan);
  }

  /** The predicted makespan of a layer under a mode, without building a plan (prefetch impact). */
  public double makespan(LayerRequest r, SchedulingMode mode) {
    SplitSearch w = search.get();
    w.load(r, -1);
    return w.decide(mode);
  }

  /** Above this many activated experts, {@link #residencyGains} keeps the base split (see there). */
  public static final int EXACT_GAIN_LIMIT = 16;

  /**
   * Up to this many activated experts {@link SchedulingMode#ORACLE} prices every split (2^n of them,
   * each in tens of nanoseconds: a fraction of a millisecond at the limit); above it, it plans as
   * HYBRID.
   */
  public static final int EXHAUSTIVE_LIMIT = 12;

  /**
   * For each given miss (index into r.experts), how much the layer's predicted makespan drops if
   * that expert were resident: the prefetcher's impact. Up to {@link #EXACT_GAIN_LIMIT} activated
   * experts (decode) each case is re-planned from scratch, once per load: misses of equal load are
   * interchangeable but for the queue rules' tie-breaks by expert id, so they get the same impact
   * (in a decode step every load is 1, so one re-plan serves every candidate of a layer). Above it
   * (prefill, up to 64 experts) the base split is kept and only the expert's own placement changes
   * (it leaves the transfer list or the CPU queue and is ready on the GPU), which prices one split
   * instead of a full decision and keeps a look-ahead-3 decision well under the layer time.
   */
  public double[] residencyGains(LayerRequest r, SchedulingMode mode, int[] misses) {
    double[] gains = new double[misses.length];
    SplitSearch w = search.get();
    w.load(r, -1);
    double baseMs = w.decide(mode);
    boolean exact = w.size() <= EXACT_GAIN_LIMIT;
    boolean[] base = null;
    if (!exact) {
      base = new boolean[w.size()];
      w.save(base);
    }
    int[] loads = r.loads();
    for (int c = 0; c < misses.length; c++) {
      int i = misses[c];
      int same = -1;
      for (int d = 0; exact && d < c && same < 0; d++) {
        int j = misses[d];
        if (loads[j] == loads[i] && !r.onGpu(i) && !r.onGpu(j)) {
          same = d;
        }
      }
      if (same >= 0) {
        gains[c] = gains[same];
        continue;
      }
      w.load(r, i);
      double ms;
      if (exact) {
        ms = w.decide(mode);
      } else {
        w.set(base);
        w.flip[i] = false; // resident now, and on the GPU
        ms = w.makespan();
      }
      gains[c] = baseMs - ms;
    }
    return gains;
  }

  /** Makespan with every routed expert on the CPU (shared experts stay on the GPU). */
  public double allCpuMakespan(LayerRequest r) {
    int n = r.experts().length;
    double cpu = 0;
    int[] idx = sortedByLoad(r, allIndices(n), true);
    for (int k = 0; k < idx.length; k++) {
      cpu += cost.cpuMs(r.loads()[idx[k]], k == 0);
    }
    double gpu = 0;
    for (int k = 0; k < r.sharedExperts(); k++) {
      gpu += cost.sharedGpuMs(r.sharedLoad()) + (k == 0 ? firstGpuMs(cost) : 0);
    }
    return Math.max(cpu, gpu);
  }

  // The split of a mode: misses to transfer (link order), residents moved to the CPU.
  Split decide(LayerRequest r, SchedulingMode mode) {
    SplitSearch w = search.get();
    w.load(r, -1);
    w.decide(mode);
    return w.split();
  }

  /** The queue rules' split alone, before local search (tests measure what the search adds). */
  Split queueRules(LayerRequest r) {
    SplitSearch w = search.get();
    w.load(r, -1);
    w.queueRules();
    return w.split();
  }

  /** Load orders of a request, computed once per request and reused by every timeline of it. */
  private static final class Orders {
    final LayerRequest request;
    final int[] asc;
    final int[] desc;

    Orders(LayerRequest r) {
      int n = r.experts().length;
      int[] all = new int[n];
      for (int i = 0; i < n; i++) {
        all[i] = i;
      }
      this.request = r;
      this.asc = sortedByLoad(r, all, true);
      this.desc = sortedByLoad(r, all, false);
    }
  }

  // One entry per thread: decide() evaluates many splits of the same request in a row.
  private final ThreadLocal<Orders> lastOrders = new ThreadLocal<>();

  private Orders orders(LayerRequest r) {
    Orders o = lastOrders.get();
    if (o == null || o.request != r) {
      o = new Orders(r);
      lastOrders.set(o);
    }
    return o;
  }

  /** Predicted times of one split: per plan entry (routed then shared) and per transfer. */
  static final class Timeline {
    boolean[] onGpu;
    int[] order;
    double[] start;
    double[] end;
    double[] xferStart;
    double[] xferEnd;
    double makespan;
  }

  Timeline timeline(LayerRequest r, Split split) {
    int[] xfers = split.xfers();
    boolean[] toCpu = split.toCpu();
    int n = r.experts().length;
    int s = r.sharedExperts();
    int total = n + s;
    Timeline tl = new Timeline();
    tl.onGpu = new boolean[total];
    tl.order = new int[total];
    tl.start = new double[total];
    tl.end = new double[total];
    tl.xferStart = new double[xfers.length];
    tl.xferEnd = new double[xfers.length];
    double[] ready = new double[total];
    for (int i = 0; i < n; i++) {
      tl.onGpu[i] = r.onGpu(i) && (toCpu == null || !toCpu[i]);
      ready[i] = r.readyMs()[i];
    }
    for (int i = n; i < total; i++) {
      tl.onGpu[i] = true;
      ready[i] = 0;
    }
    double link = r.linkFreeMs();
    double xfer = cost.xferMs();
    for (int j = 0; j < xfers.length; j++) {
      int i = xfers[j];
      tl.xferStart[j] = link;
      link += xfer;
      tl.xferEnd[j] = link;
      tl.onGpu[i] = true;
      ready[i] = link;
    }
    double makespan = 0;
    double gpuFirst = firstGpuMs(cost);
    // CPU: lightest first, one after another from the block's start.
    int cpuCount = 0;
    for (int i = 0; i < n; i++) {
      if (!tl.onGpu[i]) {
        cpuCount++;
      }
    }
    int[] cpu = new int[cpuCount];
    int[] asc = orders(r).asc;
    for (int k = 0, c = 0; k < n; k++) {
      if (!tl.onGpu[asc[k]]) {
        cpu[c++] = asc[k];
      }
    }
    double t = 0;
    for (int k = 0; k < cpu.length; k++) {
      int i = cpu[k];
      tl.start[i] = t;
      t += cost.cpuMs(r.loads()[i], k == 0);
      tl.end[i] = t;
      tl.order[i] = k;
    }
    makespan = t;
    // GPU: whenever free, the heaviest expert that is ready; idle until the next arrival otherwise.
    int gpuCount = total - cpuCount;
    // heaviest first, ties by expert id; shared experts (load = every token) after routed ones of equal load
    int[] gpu = new int[gpuCount];
    int[] desc = orders(r).desc;
    int c = 0;
    boolean sharedPlaced = s == 0;
    for (int k = 0; k < n; k++) {
      int i = desc[k];
      if (!sharedPlaced && r.loads()[i] < r.sharedLoad()) {
        for (int j = n; j < total; j++) {
          gpu[c++] = j;
        }
        sharedPlaced = true;
      }
      if (tl.onGpu[i]) {
        gpu[c++] = i;
      }
    }
    if (!sharedPlaced) {
      for (int j = n; j < total; j++) {
        gpu[c++] = j;
      }
    }
    boolean[] done = new boolean[gpuCount];
    t = 0;
    for (int k = 0; k < gpuCount; k++) {
      int pick = -1;
      double nextReady = Double.POSITIVE_INFINITY;
      for (int a = 0; a < gpuCount; a++) {
        if (done[a]) {
          continue;
        }
        double rd = ready[gpu[a]];
        if (rd <= t) {
          pick = a;
          break;
        }
        nextReady = Math.min(nextReady, rd);
      }
      if (pick < 0) {
        t = nextReady;
        k--;
        continue;
      }
      done[pick] = true;
      int i = gpu[pick];
      tl.start[i] = t;
      t += i < n ? cost.gpuMs(r.loads()[i], k == 0) : cost.sharedGpuMs(r.sharedLoad()) + (k == 0 ? gpuFirst : 0);
      tl.end[i] = t;
      tl.order[i] = k;
    }
    // Where the device and the link share the CPU's host (the emulated device), the part of their
    // busy time that does not overlap the CPU's work delays the CPU queue, and copies delay the
    // device's (CostModel.cpuStallMs, gpuStallMs; 0 on a real GPU). Only the window in which the
    // delayed resource is busy counts.
    if (cost.sharesHost()) {
      double gpuBusy = 0;
      for (int k = 0; k < gpuCount; k++) {
        gpuBusy += tl.end[gpu[k]] - tl.start[gpu[k]];
      }
      double linkBusy = xfers.length * xfer;
      if (cpu.length > 0) {
        makespan += cost.cpuStallMs(Math.min(gpuBusy, makespan), Math.min(linkBusy, makespan));
      }
      if (gpuCount > 0) {
        t += cost.gpuStallMs(Math.min(linkBusy, gpuBusy));
      }
    }
    tl.makespan = Math.max(makespan, t);
    return tl;
  }

  private static int[] allIndices(int n) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    return a;
  }

  // Sorted copy by load (ascending or descending), ties by expert id, so plans are deterministic.
  // Primitive sort of packed keys: load (23 bits), expert id (24 bits), index (16 bits).
  private static int[] sortedByLoad(LayerRequest r, int[] idx, boolean ascending) {
    long[] keys = new long[idx.length];
    int[] loads = r.loads();
    int[] ex = r.experts();
    for (int k = 0; k < idx.length; k++) {
      int i = idx[k];
      long ld = ascending ? loads[i] : (1L << 23) - 1 - loads[i];
      keys[k] = (ld << 40) | ((long) ex[i] << 16) | i;
    }
    Arrays.sort(keys);
    int[] out = new int[idx.length];
    for (int k = 0; k < idx.length; k++) {
      out[k] = (int) (keys[k] & 0xffff);
    }
    return out;
  }
}
