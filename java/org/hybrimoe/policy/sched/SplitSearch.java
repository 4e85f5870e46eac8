package org.hybrimoe.policy.sched;

import java.util.Arrays;
import org.hybrimoe.policy.cost.CostModel;

/**
 * The working state of one layer's split decision (ALGORITHMS.md section 2): the request's costs and
 * orders, and one candidate split that the queue rules, the local search and the exhaustive search
 * change in place and price with {@link #makespan()}, allocating nothing per candidate. One per
 * thread and scheduler ({@link HybridScheduler} keeps it in a ThreadLocal); not thread-safe.
 *
 * <p>A split is one flag per routed expert, {@code flip[i]}: for a miss, "transferred and computed
 * on the GPU"; for a resident expert (on the GPU or on its way), "computed on the CPU instead". So
 * expert i runs on the CPU exactly when {@code miss[i] != flip[i]}, and every move of the local
 * search is a toggle of one flag (move) or of two on opposite devices (swap).
 *
 * <p>Why the makespan needs no full timeline: the timeline of {@link HybridScheduler#timeline}
 * runs the CPU queue back to back from 0, so the CPU's end is its sum of expert times whatever their
 * order; and the GPU never idles while a ready expert waits, so on one machine with release times
 * every such order has the same busy periods and the same end. The GPU's end is therefore the
 * work-conserving completion of its experts in release order: residents at their ready time,
 * shared experts at 0, transfers at their link arrival. The same argument fixes the link order:
 * putting a heavier (costlier on the GPU) transfer earlier can only shrink every suffix of GPU work
 * released after a given time, so heaviest-first is an optimal order for any set of transfers, and
 * searching sets of transfers (in that order) is searching all plans of this timeline. The tests
 * check both facts against the reference timeline.
 */
final class SplitSearch {
  /** Improving moves the local search takes at most (each pass prices the whole neighbourhood). */
  static final int MAX_MOVES = 64;
  /** Relative drop a change must bring: ignores rounding differences between equal makespans. */
  private static final double REL_EPS = 1e-12;

  private final CostModel cost;
  private final double xfer;
  private final double cpuFirst;
  private final double gpuFirst;

  // The request whose costs and orders are loaded (identity: requests are immutable records).
  private LayerRequest req;
  private int n;
  private int shared;
  private double sharedMs; // one shared expert on the GPU, without the first-expert term
  private double linkFree;
  private int[] loads;
  private double[] cpuMs = new double[0]; // [n] cpuMs(load, false)
  private double[] cpuFirstMs = new double[0]; // [n] cpuMs(load, true)
  private double[] gpuMs = new double[0]; // [n] gpuMs(load, false)
  private double[] gpuFirstMs = new double[0]; // [n] gpuMs(load, true)
  private int[] asc = new int[0]; // [n] lightest first, ties by expert id (the CPU queue's order)
  private int[] desc = new int[0]; // [n] heaviest first, ties by expert id (link and GPU priority)
  private int[] prio = new int[0]; // [n + shared] the GPU's priority list, shared experts inserted
  private long[] keys = new long[0]; // sort scratch

  // Residency: the request's, with at most one miss made resident (prefetch impact).
  private boolean[] miss = new boolean[0]; // [n]
  private final int[] lastOf = new int[4]; // local search scratch: last representative per (side, kind)
  private double[] ready = new double[0]; // [n] residents' arrival (ms from the block's start)
  private int[] missAsc = new int[0]; // misses, lightest first
  private int[] missDesc = new int[0]; // misses, heaviest first: the link order
  private int nMiss;
  private int[] resAsc = new int[0]; // residents, lightest first
  private int[] resByReady = new int[0]; // residents by arrival
  private int nRes;
  private int nRes0; // residents already there (ready at 0): a prefix of resByReady

  // The split being priced, and the best one kept.
  boolean[] flip = new boolean[0];
  private boolean[] best = new boolean[0];
  private double ms;
  private double cpuEnd;
  private double gpuEnd;

  // Scratch of the reference list schedule the queue rules consult.
  private double[] rd = new double[0]; // [n + shared]
  private int[] done = new int[0]; // [n + shared] stamp
  private int stamp;
  private int[] gpuList = new int[0]; // [n + shared] the queue rules' GPU queue, priority order
  private int[] prioRank = new int[0]; // [n + shared] position in prio
  private int[] cpuReps = new int[0]; // local search: experts tried per side
  private int[] gpuReps = new int[0];

  SplitSearch(CostModel cost) {
    this.cost = cost;
    this.xfer = cost.xferMs();
    this.cpuFirst = HybridScheduler.firstCpuMs(cost);
    this.gpuFirst = HybridScheduler.firstGpuMs(cost);
  }

  int size() {
    return n;
  }

  /** Loads a request; {@code madeResident} >= 0 treats that expert as on the GPU now (ready at 0). */
  void load(LayerRequest r, int madeResident) {
    if (r != req) {
      loadRequest(r);
    }
    nMiss = 0;
    nRes = 0;
    for (int i = 0; i < n; i++) {
      boolean m = !r.onGpu(i) && i != madeResident;
      miss[i] = m;
      ready[i] = i == madeResident ? 0 : r.readyMs()[i];
    }
    for (int k = 0; k < n; k++) {
      int i = asc[k];
      if (miss[i]) {
        missAsc[nMiss++] = i;
      } else {
        resAsc[nRes++] = i;
      }
    }
    for (int k = 0, m = 0; k < n; k++) {
      if (miss[desc[k]]) {
        missDesc[m++] = desc[k];
      }
    }
    // residents by arrival (insertion sort: stable from the load order, a handful in decode)
    for (int k = 0; k < nRes; k++) {
      int i = resAsc[k];
      int p = k;
      while (p > 0 && ready[resByReady[p - 1]] > ready[i]) {
        resByReady[p] = resByReady[p - 1];
        p--;
      }
      resByReady[p] = i;
    }
    nRes0 = 0;
    while (nRes0 < nRes && ready[resByReady[nRes0]] == 0) {
      nRes0++;
    }
    Arrays.fill(flip, 0, n, false);
  }

  private void loadRequest(LayerRequest r) {
    req = r;
    n = r.experts().length;
    shared = r.sharedExperts();
    loads = r.loads();
    linkFree = r.linkFreeMs();
    sharedMs = shared > 0 ? cost.sharedGpuMs(r.sharedLoad()) : 0;
    if (cpuMs.length < n) {
      int c = Math.max(n, 2 * cpuMs.length);
      cpuMs = new double[c];
      cpuFirstMs = new double[c];
      gpuMs = new double[c];
      gpuFirstMs = new double[c];
      asc = new int[c];
      desc = new int[c];
      keys = new long[c];
      miss = new boolean[c];
      ready = new double[c];
      missAsc = new int[c];
      missDesc = new int[c];
      resAsc = new int[c];
      resByReady = new int[c];
      flip = new boolean[c];
      best = new boolean[c];
      cpuReps = new int[c];
      gpuReps = new int[c];
    }
    if (prio.length < n + shared) {
      int c = Math.max(n + shared, 2 * prio.length);
      prio = new int[c];
      rd = new double[c];
      done = new int[c];
      gpuList = new int[c];
      prioRank = new int[c];
    }
    for (int i = 0; i < n; i++) {
      cpuMs[i] = cost.cpuMs(loads[i], false);
      cpuFirstMs[i] = cost.cpuMs(loads[i], true);
      gpuMs[i] = cost.gpuMs(loads[i], false);
      gpuFirstMs[i] = cost.gpuMs(loads[i], true);
    }
    sortByLoad(r, true, asc);
    sortByLoad(r, false, desc);
    // as HybridScheduler.timeline queues the GPU: shared experts before the first lighter routed one
    int c = 0;
    boolean placed = shared == 0;
    for (int k = 0; k < n; k++) {
      int i = desc[k];
      if (!placed && loads[i] < r.sharedLoad()) {
        for (int j = n; j < n + shared; j++) {
          prio[c++] = j;
        }
        placed = true;
      }
      prio[c++] = i;
    }
    if (!placed) {
      for (int j = n; j < n + shared; j++) {
        prio[c++] = j;
      }
    }
    for (int p = 0; p < n + shared; p++) {
      prioRank[prio[p]] = p;
    }
  }

  // The same packed keys as HybridScheduler.sortedByLoad: load, expert id, index.
  private void sortByLoad(LayerRequest r, boolean ascending, int[] out) {
    int[] ex = r.experts();
    for (int i = 0; i < n; i++) {
      long ld = ascending ? loads[i] : (1L << 23) - 1 - loads[i];
      keys[i] = (ld << 40) | ((long) ex[i] << 16) | i;
    }
    Arrays.sort(keys, 0, n);
    for (int k = 0; k < n; k++) {
      out[k] = (int) (keys[k] & 0xffff);
    }
  }

  /** Whether expert i runs on the CPU in the current split. */
  boolean onCpu(int i) {
    return miss[i] != flip[i];
  }

  /** Prices the current split: the makespan, and each device's end. */
  double makespan() {
    // The CPU's end is a sum (class comment): the first-expert term once, whichever expert is first.
    double c = 0;
    int any = 0;
    for (int i = 0; i < n; i++) {
      int on = miss[i] != flip[i] ? 1 : 0;
      c += on * cpuMs[i];
      any |= on;
    }
    cpuEnd = c + any * cpuFirst;
    gpuEnd = gpuEndOfSplit();
    if (cost.sharesHost()) { // the same stalls as HybridScheduler.timeline (shared-host devices)
      double gpuBusy = shared * sharedMs;
      int moved = 0;
      int onGpu = shared;
      for (int i = 0; i < n; i++) {
        boolean gpu = miss[i] == flip[i];
        if (gpu) {
          gpuBusy += gpuMs[i];
          onGpu++;
          moved += miss[i] ? 1 : 0;
        }
      }
      gpuBusy += onGpu > 0 ? gpuFirst : 0;
      double linkBusy = moved * xfer;
      if (any > 0) {
        cpuEnd += cost.cpuStallMs(Math.min(gpuBusy, cpuEnd), Math.min(linkBusy, cpuEnd));
      }
      if (onGpu > 0) {
        gpuEnd += cost.gpuStallMs(Math.min(linkBusy, gpuBusy));
      }
    }
    ms = Math.max(cpuEnd, gpuEnd);
    return ms;
  }

  // Work-conserving completion of the GPU's experts in release order (class comment).
  private double gpuEndOfSplit() {
    // released at 0: the shared experts and the residents already there
    double w = shared * sharedMs;
    int count = shared;
    int a = 0;
    for (; a < nRes0; a++) {
      int i = resByReady[a];
      int on = flip[i] ? 0 : 1;
      w += on * gpuMs[i];
      count += on;
    }
    boolean started = count > 0;
    double t = started ? w + gpuFirst : 0;
    double lk = linkFree;
    if (a == nRes) { // nothing in flight: only this layer's transfers follow, in link order
      for (int k = 0; k < nMiss; k++) {
        int i = missDesc[k];
        if (flip[i]) {
          lk += xfer;
          t = Math.max(t, lk) + (started ? gpuMs[i] : gpuFirstMs[i]);
          started = true;
        }
      }
      return t;
    }
    int b = 0;
    while (true) {
      while (a < nRes && flip[resByReady[a]]) {
        a++;
      }
      while (b < nMiss && !flip[missDesc[b]]) {
        b++;
      }
      double rr = a < nRes ? ready[resByReady[a]] : Double.POSITIVE_INFINITY;
      double rx = b < nMiss ? lk + xfer : Double.POSITIVE_INFINITY;
      int i;
      double r;
      if (rr <= rx) {
        if (a >= nRes) {
          return t;
        }
        i = resByReady[a++];
        r = rr;
      } else {
        i = missDesc[b++];
        r = rx;
        lk = rx;
      }
      t = Math.max(t, r) + (started ? gpuMs[i] : gpuFirstMs[i]);
      started = true;
    }
  }

  private static boolean better(double a, double b) {
    return a < b - REL_EPS * b;
  }

  /** The split of a mode, left in {@link #flip}; returns its makespan. */
  double decide(SchedulingMode mode) {
    switch (mode) {
      case STATIC:
        return makespan();
      case GPU_ONLY:
        for (int k = 0; k < nMiss; k++) {
          flip[missAsc[k]] = true;
        }
        return makespan();
      case FIDDLER:
        for (int k = 0; k < nMiss; k++) {
          int i = missAsc[k];
          flip[i] = cost.cpuMs(loads[i], false) > xfer + cost.gpuMs(loads[i], false);
        }
        return makespan();
      case ORACLE:
        if (n <= HybridScheduler.EXHAUSTIVE_LIMIT) {
          return exhaustive();
        }
        queueRules();
        return localSearch();
      case HYBRID:
      default:
        queueRules();
        return localSearch();
    }
  }

  /**
   * The paper's queue rules (HybridScheduler's class comment): the event loop's transfers, the
   * steal of light residents to the CPU, then the best of that, the static split, all-on-GPU and
   * all-on-CPU. Same decisions as the loop over full timelines it replaces (tests compare them).
   */
  double queueRules() {
    greedy();
    // steal: the lightest residents to the CPU while that shortens the makespan
    double cur = makespan();
    for (int k = 0; k < nRes; k++) {
      int i = resAsc[k];
      flip[i] = true;
      double m = makespan();
      if (better(m, cur)) {
        cur = m;
      } else {
        flip[i] = false;
        break;
      }
    }
    keep();
    double bestMs = cur;
    for (int other = 0; other < 3; other++) {
      Arrays.fill(flip, 0, n, false);
      if (other == 1) { // all on the GPU, misses transferred
        for (int k = 0; k < nMiss; k++) {
          flip[missAsc[k]] = true;
        }
      } else if (other == 2) { // all on the CPU
        for (int k = 0; k < nRes; k++) {
          flip[resAsc[k]] = true;
        }
      }
      double m = makespan();
      if (better(m, bestMs)) {
        bestMs = m;
        keep();
      }
    }
    restore();
    return makespan();
  }

  private void keep() {
    System.arraycopy(flip, 0, best, 0, n);
  }

  private void restore() {
    System.arraycopy(best, 0, flip, 0, n);
  }

  // The link side of the event loop: while the link is free no later than the CPU, transfer the
  // CPU queue's tail if the simulated GPU finish of it beats its finish at the CPU queue's end.
  private void greedy() {
    // the GPU's queue in priority order: every resident and shared expert, transfers added below
    int gc = 0;
    for (int p = 0; p < n + shared; p++) {
      int i = prio[p];
      if (i >= n || !miss[i]) {
        gpuList[gc++] = i;
        rd[i] = i < n ? ready[i] : 0;
      }
    }
    int head = 0;
    int tail = nMiss;
    double cpuT = 0;
    boolean cpuFirstLeft = true;
    double linkT = linkFree;
    while (head < tail) {
      if (linkT <= cpuT) {
        int cand = missAsc[tail - 1];
        double cpuFinish = cpuT;
        for (int q = head; q < tail; q++) {
          int i = missAsc[q];
          cpuFinish += cpuFirstLeft && q == head ? cpuFirstMs[i] : cpuMs[i];
        }
        // the candidate joins the GPU's queue at its priority, ready when its copy lands
        int p = gc;
        while (p > 0 && prioRank[gpuList[p - 1]] > prioRank[cand]) {
          gpuList[p] = gpuList[p - 1];
          p--;
        }
        gpuList[p] = cand;
        gc++;
        rd[cand] = linkT + xfer;
        if (listEnd(gc, cand) < cpuFinish) {
          flip[cand] = true;
          tail--;
          linkT += xfer;
        } else {
          break; // later tails are lighter and the queue only shortens: the link stops
        }
      } else {
        int i = missAsc[head];
        cpuT += cpuFirstLeft ? cpuFirstMs[i] : cpuMs[i];
        cpuFirstLeft = false;
        head++;
      }
    }
  }

  // When expert `target` ends under the GPU's list schedule of gpuList[0..gc) (whenever free, the
  // first ready in priority order): the value the reference timeline gives it.
  private double listEnd(int gc, int target) {
    stamp++;
    double t = 0;
    int k = 0;
    while (true) {
      int pick = -1;
      double next = Double.POSITIVE_INFINITY;
      for (int p = 0; p < gc; p++) {
        int i = gpuList[p];
        if (done[i] == stamp) {
          continue;
        }
        if (rd[i] <= t) {
          pick = i;
          break;
        }
        next = Math.min(next, rd[i]);
      }
      if (pick < 0) {
        t = next; // every queued expert is ready at a finite time, the target among them
        continue;
      }
      done[pick] = stamp;
      t += pick < n ? (k == 0 ? gpuFirstMs[pick] : gpuMs[pick]) : sharedMs + (k == 0 ? gpuFirst : 0);
      k++;
      if (pick == target) {
        return t;
      }
    }
  }

  /**
   * Best-improvement local search from the current split: every single move (one expert to the
   * other device) and every swap (one to the GPU, one to the CPU) is priced, the best is taken if it
   * drops the makespan, until none does or {@link #MAX_MOVES} were taken. Moves that cannot help
   * are skipped unpriced: more CPU work when the CPU already ends last, more GPU work when the GPU
   * does (the GPU's end never drops when work is added, the CPU's is a sum); and of experts that
   * are interchangeable (same side, both misses or both residents, same load, same arrival: every
   * expert of a decode step has load 1) only the first is tried, as the others give the same
   * makespan.
   */
  double localSearch() {
    double cur = makespan();
    for (int move = 0; move < MAX_MOVES; move++) {
      double c = cpuEnd;
      double g = gpuEnd;
      int nCpu = 0;
      int nGpu = 0;
      // representatives, in load order: the first of each run of interchangeable experts per side
      // the last representative per (side, kind): cpu miss, cpu resident, gpu miss, gpu resident
      java.util.Arrays.fill(lastOf, -1);
      int cpuCount = 0;
      for (int k = 0; k < n; k++) {
        int i = asc[k];
        boolean cpu = onCpu(i);
        cpuCount += cpu ? 1 : 0;
        int slot = (cpu ? 0 : 2) + (miss[i] ? 0 : 1);
        if (lastOf[slot] < 0 || !interchangeable(lastOf[slot], i)) {
          if (cpu) {
            cpuReps[nCpu++] = i;
          } else {
            gpuReps[nGpu++] = i;
          }
          lastOf[slot] = i;
        }
      }
      int bestA = -1;
      int bestB = -1;
      double bestMs = cur;
      if (better(g, cur)) { // the CPU ends last: one of its experts to the GPU may help
        for (int k = 0; k < nCpu; k++) {
          int i = cpuReps[k];
          flip[i] = !flip[i];
          double m = makespan();
          flip[i] = !flip[i];
          if (better(m, bestMs)) {
            bestMs = m;
            bestA = i;
          }
        }
      }
      double firstCpu = cpuCount == 0 ? cpuFirst : 0;
      for (int k = 0; k < nGpu; k++) {
        int i = gpuReps[k];
        if (!better(c + cpuMs[i] + firstCpu, cur)) {
          continue;
        }
        flip[i] = !flip[i];
        double m = makespan();
        flip[i] = !flip[i];
        if (better(m, bestMs)) {
          bestMs = m;
          bestA = i;
        }
      }
      for (int ka = 0; ka < nCpu; ka++) {
        int a = cpuReps[ka];
        for (int kb = 0; kb < nGpu; kb++) {
          int b = gpuReps[kb];
          if (!better(c - cpuMs[a] + cpuMs[b], cur)) {
            continue;
          }
          flip[a] = !flip[a];
          flip[b] = !flip[b];
          double m = makespan();
          flip[a] = !flip[a];
          flip[b] = !flip[b];
          if (better(m, bestMs)) {
            bestMs = m;
            bestA = a;
            bestB = b;
          }
        }
      }
      if (bestA < 0) {
        break;
      }
      flip[bestA] = !flip[bestA];
      if (bestB >= 0) {
        flip[bestB] = !flip[bestB];
      }
      cur = makespan();
    }
    return cur;
  }

  // Same device side is the caller's test; same kind, load and (for residents) arrival here.
  private boolean interchangeable(int i, int j) {
    return miss[i] == miss[j] && loads[i] == loads[j] && (miss[i] || ready[i] == ready[j]);
  }

  /**
   * Every split (2^n flag combinations, in Gray-code order so each step toggles one flag), the
   * minimum kept: with heaviest-first link order this is the optimum of the timeline.
   */
  double exhaustive() {
    if (n > 30) {
      throw new IllegalStateException("exhaustive search over " + n + " experts");
    }
    Arrays.fill(flip, 0, n, false);
    double bestMs = makespan();
    int bestCode = 0;
    for (int code = 1; code < (1 << n); code++) {
      int bit = Integer.numberOfTrailingZeros(code);
      flip[bit] = !flip[bit];
      double m = makespan();
      if (m < bestMs) {
        bestMs = m;
        bestCode = code;
      }
    }
    int gray = bestCode ^ (bestCode >>> 1);
    for (int i = 0; i < n; i++) {
      flip[i] = (gray >>> i & 1) != 0;
    }
    return makespan();
  }

  /** Copies the current split into {@code into} (length >= n). */
  void save(boolean[] into) {
    System.arraycopy(flip, 0, into, 0, n);
  }

  /** Sets the current split from {@code from}. */
  void set(boolean[] from) {
    System.arraycopy(from, 0, flip, 0, n);
  }

  /** The current split as the scheduler's Split: transfers heaviest first, residents moved to the CPU. */
  HybridScheduler.Split split() {
    int m = 0;
    for (int k = 0; k < nMiss; k++) {
      if (flip[missDesc[k]]) {
        m++;
      }
    }
    int[] xs = new int[m];
    for (int k = 0, j = 0; k < nMiss; k++) {
      if (flip[missDesc[k]]) {
        xs[j++] = missDesc[k];
      }
    }
    boolean[] toCpu = null;
    for (int k = 0; k < nRes; k++) {
      int i = resAsc[k];
      if (flip[i]) {
        if (toCpu == null) {
          toCpu = new boolean[n];
        }
        toCpu[i] = true;
      }
    }
    return new HybridScheduler.Split(xs, toCpu);
  }
}
