package org.hybrimoe.policy.sched;

import java.util.Arrays;
import org.hybrimoe.policy.cost.CostModel;

/**
 * The intra-layer hybrid scheduler (ALGORITHMS.md section 2) and the baselines' splits, producing
 * a {@link LayerPlan}.
 *
 * <p>HYBRID runs the paper's event loop: resident experts queue for the GPU heaviest first, misses
 * queue for the CPU lightest first, and whenever the link is free before the CPU the heaviest miss
 * (the CPU queue's tail) is transferred if the simulated GPU finish of it, after waiting for the
 * link and the GPU's queue, beats its CPU finish at the queue's end; the first time it does not, the
 * link stops (later tails are lighter and the CPU queue only shortens, so it would not win later).
 * The resulting split is then compared under the same cost model with all-on-CPU, the static split
 * and all-on-GPU with on-demand transfers, and the best is kept, so the plan is never worse than
 * any of them (the section 2 invariant holds by construction, not by luck of the heuristic).
 *
 * <p>Stateless apart from the cost model; one instance may serve many threads.
 */
public final class HybridScheduler {
  private final CostModel cost;

  public HybridScheduler(CostModel cost) {
    this.cost = cost;
  }

  public CostModel cost() {
    return cost;
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
    return timeline(r, decide(r, mode)).makespan;
  }

  /** Above this many activated experts, {@link #residencyGains} keeps the base split (see there). */
  public static final int EXACT_GAIN_LIMIT = 16;

  /**
   * For each given miss (index into r.experts), how much the layer's predicted makespan drops if
   * that expert were resident: the prefetcher's impact. Up to {@link #EXACT_GAIN_LIMIT} activated
   * experts (decode) each case is re-planned from scratch; above it (prefill, up to 64 experts) the
   * base split is kept and only the expert's own placement changes (it leaves the transfer list or
   * the CPU queue and is ready on the GPU), which costs one timeline instead of a full decision and
   * keeps a look-ahead-3 decision well under the layer time.
   */
  public double[] residencyGains(LayerRequest r, SchedulingMode mode, int[] misses) {
    double[] gains = new double[misses.length];
    int n = r.experts().length;
    Split base = decide(r, mode);
    double baseMs = timeline(r, base).makespan;
    for (int c = 0; c < misses.length; c++) {
      int i = misses[c];
      double[] ready = r.readyMs().clone();
      ready[i] = 0;
      LayerRequest with = new LayerRequest(r.layer(), r.experts(), r.loads(), ready, r.sharedExperts(), r.sharedLoad(),
          r.linkFreeMs());
      double ms;
      if (n <= EXACT_GAIN_LIMIT) {
        ms = timeline(with, decide(with, mode)).makespan;
      } else {
        int[] x = new int[base.xfers().length];
        int k = 0;
        for (int j : base.xfers()) {
          if (j != i) {
            x[k++] = j;
          }
        }
        boolean[] toCpu = base.toCpu() == null ? null : base.toCpu().clone();
        if (toCpu != null) {
          toCpu[i] = false;
        }
        ms = timeline(with, new Split(Arrays.copyOf(x, k), toCpu)).makespan;
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
      gpu += cost.sharedGpuMs(r.sharedLoad()) + (k == 0 ? cost.gpuFirst() : 0);
    }
    return Math.max(cpu, gpu);
  }

  // The split of a mode: misses to transfer (link order), every other miss on the CPU.
  Split decide(LayerRequest r, SchedulingMode mode) {
    int n = r.experts().length;
    int[] misses = missIndices(r);
    switch (mode) {
      case STATIC:
        return new Split(new int[0], null);
      case GPU_ONLY:
        return new Split(sortedByLoad(r, misses, false), null);
      case FIDDLER: {
        int[] heavyFirst = sortedByLoad(r, misses, false);
        int cnt = 0;
        int[] out = new int[heavyFirst.length];
        for (int i : heavyFirst) {
          int ld = r.loads()[i];
          if (cost.cpuMs(ld, false) > cost.xferMs() + cost.gpuMs(ld, false)) {
            out[cnt++] = i;
          }
        }
        return new Split(Arrays.copyOf(out, cnt), null);
      }
      case HYBRID:
      default: {
        Split best = steal(r, new Split(greedy(r, misses), null));
        double bestMs = timeline(r, best).makespan;
        Split[] others = {
          new Split(new int[0], null),
          new Split(sortedByLoad(r, misses, false), null),
          allCpu(n)
        };
        for (Split o : others) {
          double ms = timeline(r, o).makespan;
          if (ms < bestMs) {
            bestMs = ms;
            best = o;
          }
        }
        return best;
      }
    }
  }

  private static Split allCpu(int n) {
    boolean[] all = new boolean[n];
    Arrays.fill(all, true);
    return new Split(new int[0], all);
  }

  /**
   * The CPU side of "the simulation decides": where the GPU is the bottleneck (many hits, shared
   * experts, a slow GPU per expert), the lightest resident experts move to the CPU one at a time
   * while that shortens the simulated makespan. The paper's loop only moves work towards the GPU;
   * with its own constants (0.5 ms per GPU expert, about 1 ms per CPU expert) a high hit rate would
   * otherwise make the GPU the critical path.
   */
  private Split steal(LayerRequest r, Split split) {
    int n = r.experts().length;
    boolean[] inXfer = new boolean[n];
    for (int i : split.xfers()) {
      inXfer[i] = true;
    }
    int[] residentLightFirst = sortedByLoad(r, residentIndices(r), true);
    double best = timeline(r, split).makespan;
    boolean[] toCpu = null;
    for (int i : residentLightFirst) {
      boolean[] trial = toCpu == null ? new boolean[n] : toCpu.clone();
      trial[i] = true;
      Split s = new Split(split.xfers(), trial);
      double ms = timeline(r, s).makespan;
      if (ms < best) {
        best = ms;
        toCpu = trial;
      } else {
        break;
      }
    }
    return toCpu == null ? split : new Split(split.xfers(), toCpu);
  }

  private static int[] residentIndices(LayerRequest r) {
    int n = r.experts().length;
    int c = 0;
    for (int i = 0; i < n; i++) {
      if (r.onGpu(i)) {
        c++;
      }
    }
    int[] out = new int[c];
    for (int i = 0, k = 0; i < n; i++) {
      if (r.onGpu(i)) {
        out[k++] = i;
      }
    }
    return out;
  }

  private int[] greedy(LayerRequest r, int[] misses) {
    int[] cpuQ = sortedByLoad(r, misses, true); // head = lightest, tail = heaviest
    int head = 0;
    int tail = cpuQ.length; // exclusive
    int[] xfers = new int[cpuQ.length];
    int nx = 0;
    double cpuT = 0;
    boolean cpuFirst = true;
    double linkT = r.linkFreeMs();
    double xfer = cost.xferMs();
    boolean linkActive = true;
    while (head < tail) {
      if (linkActive && linkT <= cpuT) {
        int cand = cpuQ[tail - 1];
        double cpuFinish = cpuT;
        for (int q = head; q < tail; q++) {
          cpuFinish += cost.cpuMs(r.loads()[cpuQ[q]], cpuFirst && q == head);
        }
        xfers[nx] = cand;
        Timeline tl = timeline(r, new Split(Arrays.copyOf(xfers, nx + 1), null));
        if (tl.end[cand] < cpuFinish) {
          nx++;
          tail--;
          linkT += xfer;
        } else {
          linkActive = false;
        }
      } else {
        cpuT += cost.cpuMs(r.loads()[cpuQ[head]], cpuFirst);
        cpuFirst = false;
        head++;
      }
    }
    return Arrays.copyOf(xfers, nx);
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
      t += i < n ? cost.gpuMs(r.loads()[i], k == 0) : cost.sharedGpuMs(r.sharedLoad()) + (k == 0 ? cost.gpuFirst() : 0);
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

  private static int[] missIndices(LayerRequest r) {
    int n = r.experts().length;
    int c = 0;
    for (int i = 0; i < n; i++) {
      if (!r.onGpu(i)) {
        c++;
      }
    }
    int[] out = new int[c];
    for (int i = 0, k = 0; i < n; i++) {
      if (!r.onGpu(i)) {
        out[k++] = i;
      }
    }
    return out;
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
