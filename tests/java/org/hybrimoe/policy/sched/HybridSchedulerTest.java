package org.hybrimoe.policy.sched;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.HardwareProfile;
import org.hybrimoe.policy.cost.ModelShape;
import org.junit.jupiter.api.Test;

class HybridSchedulerTest {
  private static final double EPS = 1e-3;

  private static CostModel randomCost(SplittableRandom r) {
    return CostModel.linear(r.nextDouble(0, 1), r.nextDouble(0.1, 1.5), r.nextDouble(0, 0.1), r.nextDouble(0, 0.2),
        r.nextDouble(0.05, 1), r.nextDouble(0, 0.01), r.nextDouble(0, 0.05), r.nextDouble(2e6, 3e7), 4_330_000L, 0.1,
        0.001, r.nextDouble(0, 2), r.nextDouble(0, 2));
  }

  private static LayerRequest randomRequest(SplittableRandom r) {
    int tokens = r.nextBoolean() ? 1 : 1 + r.nextInt(600);
    int experts = 8 + r.nextInt(57);
    int topK = 1 + r.nextInt(Math.min(8, experts));
    int shared = r.nextInt(3);
    LayerRequest q = SchedulerBenchmark.randomRequest(r.nextInt(30), tokens, experts, topK, shared, r.nextDouble(), r);
    double[] ready = q.readyMs().clone();
    for (int i = 0; i < ready.length; i++) {
      if (ready[i] == 0 && r.nextInt(4) == 0) {
        ready[i] = r.nextDouble(0, 3); // in flight
      }
    }
    return new LayerRequest(q.layer(), q.experts(), q.loads(), ready, shared, tokens, r.nextInt(3) == 0 ? r.nextDouble(0, 2) : 0);
  }

  // Independent of the scheduler: every routed expert on the CPU lightest first, shared on the GPU.
  private static double allCpu(CostModel c, LayerRequest q) {
    int[] loads = q.loads().clone();
    Arrays.sort(loads);
    double cpu = 0;
    for (int i = 0; i < loads.length; i++) {
      cpu += c.cpuMs(loads[i], i == 0);
    }
    double gpu = q.sharedExperts() * c.sharedGpuMs(q.sharedLoad()) + (q.sharedExperts() > 0 ? c.gpuFirst() : 0);
    return Math.max(cpu, gpu);
  }

  // Independent: every expert on the GPU, misses transferred heaviest first, GPU never idle while
  // any ready expert waits; a lower bound on it is the makespan of any such list schedule.
  private static double allGpu(CostModel c, LayerRequest q) {
    int n = q.experts().length;
    List<double[]> items = new ArrayList<>(); // {ready, load, cost}
    double link = q.linkFreeMs();
    Integer[] idx = new Integer[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    Arrays.sort(idx, (a, b) -> q.loads()[b] != q.loads()[a] ? q.loads()[b] - q.loads()[a] : q.experts()[a] - q.experts()[b]);
    for (int i : idx) {
      double ready = q.readyMs()[i];
      if (ready == Double.POSITIVE_INFINITY) {
        link += c.xferMs();
        ready = link;
      }
      items.add(new double[] {ready, q.loads()[i], c.gpuMs(q.loads()[i], false)});
    }
    for (int s = 0; s < q.sharedExperts(); s++) {
      items.add(new double[] {0, q.sharedLoad(), c.sharedGpuMs(q.sharedLoad())});
    }
    items.sort((a, b) -> Double.compare(b[1], a[1]));
    double t = 0;
    boolean first = true;
    while (!items.isEmpty()) {
      double[] pick = null;
      for (double[] it : items) {
        if (it[0] <= t) {
          pick = it;
          break;
        }
      }
      if (pick == null) {
        t = items.stream().mapToDouble(it -> it[0]).min().getAsDouble();
        continue;
      }
      items.remove(pick);
      t += pick[2] + (first ? c.gpuFirst() : 0);
      first = false;
    }
    return t;
  }

  @Test
  void invariantsHoldOnRandomLayers() {
    SplittableRandom r = new SplittableRandom(2024);
    for (int trial = 0; trial < 400; trial++) {
      CostModel c = randomCost(r);
      LayerRequest q = randomRequest(r);
      HybridScheduler s = new HybridScheduler(c);
      for (SchedulingMode mode : SchedulingMode.values()) {
        LayerPlan p = s.plan(q, mode, (l, e, needed) -> SlotAllocator.STAGING);
        String where = "trial " + trial + " " + mode;
        // every activated expert (and every shared one) computed exactly once
        int n = q.experts().length;
        assertEquals(n + q.sharedExperts(), p.size(), where);
        int[] ids = new int[p.size()];
        for (int i = 0; i < p.size(); i++) {
          ids[i] = p.expert(i);
        }
        int[] expect = new int[n + q.sharedExperts()];
        for (int i = 0; i < n; i++) {
          expect[i] = q.experts()[i];
        }
        for (int i = 0; i < q.sharedExperts(); i++) {
          expect[n + i] = -1 - i;
        }
        Arrays.sort(ids);
        Arrays.sort(expect);
        assertTrue(Arrays.equals(expect, ids), where);
        // devices never run two experts at once; a GPU expert starts after its weights arrive
        for (int dev : new int[] {LayerPlan.CPU, LayerPlan.GPU}) {
          List<float[]> spans = new ArrayList<>();
          for (int i = 0; i < p.size(); i++) {
            if (p.device(i) == dev) {
              spans.add(new float[] {p.start(i), p.end(i)});
            }
          }
          spans.sort((a, b) -> Float.compare(a[0], b[0]));
          for (int i = 1; i < spans.size(); i++) {
            assertTrue(spans.get(i)[0] >= spans.get(i - 1)[1] - EPS, where + " overlap on device " + dev);
          }
        }
        for (int j = 0; j < p.transfers(); j++) {
          assertTrue(p.transferStart(j) >= q.linkFreeMs() - EPS, where + " transfer before the link is free");
          if (j > 0) {
            assertTrue(p.transferStart(j) >= p.transferEnd(j - 1) - EPS, where + " link overlap");
          }
          int e = p.transferExpert(j);
          for (int i = 0; i < p.size(); i++) {
            if (p.expert(i) == e) {
              assertEquals(LayerPlan.GPU, p.device(i), where);
              assertTrue(p.start(i) >= p.transferEnd(j) - EPS, where + " computed before arrival");
            }
          }
        }
        for (int i = 0; i < n; i++) {
          int k = indexOf(q.experts(), p.expert(i));
          if (k >= 0 && p.device(i) == LayerPlan.GPU && q.readyMs()[k] != Double.POSITIVE_INFINITY) {
            assertTrue(p.start(i) >= q.readyMs()[k] - EPS, where + " in-flight expert used early");
          }
        }
        float max = 0;
        for (int i = 0; i < p.size(); i++) {
          max = Math.max(max, p.end(i));
        }
        assertEquals(max, p.makespan(), EPS, where);
        if (mode == SchedulingMode.STATIC) {
          assertEquals(0, p.transfers(), where);
        }
        if (mode == SchedulingMode.HYBRID || mode == SchedulingMode.ORACLE) {
          double queue = s.timeline(q, s.queueRules(q)).makespan;
          assertTrue(p.makespan() <= queue + EPS, where + ": worse than the queue rules' plan " + p.makespan() + " > " + queue);
          assertTrue(p.makespan() <= allCpu(c, q) + EPS, where + ": worse than all-on-CPU");
          assertTrue(p.makespan() <= allGpu(c, q) + EPS, where + ": worse than all-on-GPU with on-demand transfers "
              + p.makespan() + " > " + allGpu(c, q));
          double st = s.plan(q, SchedulingMode.STATIC, (l, e, nd) -> SlotAllocator.STAGING).makespan();
          assertTrue(p.makespan() <= st + EPS, where + ": worse than the static split");
        }
      }
    }
  }

  // --- the fast pricing against the reference timeline -------------------------------------------

  // Misses heaviest first, ties by expert id: the link order the scheduler uses.
  private static int[] heaviestFirst(LayerRequest q, List<Integer> idx) {
    return idx.stream().sorted((a, b) -> q.loads()[b] != q.loads()[a] ? q.loads()[b] - q.loads()[a]
        : q.experts()[a] - q.experts()[b]).mapToInt(Integer::intValue).toArray();
  }

  // The split a bit mask names: bit i of a miss transfers it, bit i of a resident moves it to the CPU.
  private static HybridScheduler.Split splitOf(LayerRequest q, long mask) {
    int n = q.experts().length;
    List<Integer> x = new ArrayList<>();
    boolean[] toCpu = new boolean[n];
    for (int i = 0; i < n; i++) {
      if ((mask >>> i & 1) != 0) {
        if (q.onGpu(i)) {
          toCpu[i] = true;
        } else {
          x.add(i);
        }
      }
    }
    return new HybridScheduler.Split(heaviestFirst(q, x), toCpu);
  }

  @Test
  void fastPricingEqualsTheReferenceTimelineOnEverySplit() {
    SplittableRandom r = new SplittableRandom(77);
    for (int trial = 0; trial < 300; trial++) {
      CostModel c = randomCost(r);
      LayerRequest q = randomRequest(r);
      HybridScheduler s = new HybridScheduler(c);
      SplitSearch w = new SplitSearch(c);
      w.load(q, -1);
      int n = q.experts().length;
      for (int k = 0; k < 20; k++) {
        long mask = r.nextLong();
        for (int i = 0; i < n; i++) {
          w.flip[i] = (mask >>> (i % 64) & 1) != 0;
        }
        double fast = w.makespan();
        double ref = s.timeline(q, w.split()).makespan;
        assertEquals(ref, fast, 1e-9 * Math.max(1, ref), "trial " + trial);
      }
    }
  }

  @Test
  void noLinkOrderBeatsHeaviestFirst() {
    // Why the search moves experts and never reorders the link (SplitSearch's class comment): for
    // every set of transfers, every permutation of it is priced on the reference timeline.
    SplittableRandom r = new SplittableRandom(31);
    int orders = 0;
    for (int trial = 0; trial < 200; trial++) {
      LayerRequest q = smallLayer(r, 4 + r.nextInt(4), r.nextBoolean());
      CostModel c = trial % 2 == 0 ? paperA6000() : authorsConstants();
      HybridScheduler s = new HybridScheduler(c);
      int n = q.experts().length;
      for (long mask = 0; mask < 1L << n; mask += 1 + r.nextInt(3)) {
        HybridScheduler.Split split = splitOf(q, mask);
        double heavy = s.timeline(q, split).makespan;
        for (int[] perm : permutations(split.xfers())) {
          double ms = s.timeline(q, new HybridScheduler.Split(perm, split.toCpu())).makespan;
          assertTrue(ms >= heavy - 1e-9, "trial " + trial + ": order " + Arrays.toString(perm) + " gives " + ms
              + " < heaviest first " + heavy);
          orders++;
        }
      }
    }
    assertTrue(orders > 10_000, "orders priced: " + orders);
  }

  private static List<int[]> permutations(int[] a) {
    List<int[]> out = new ArrayList<>();
    permute(a.clone(), 0, out);
    return out;
  }

  private static void permute(int[] a, int k, List<int[]> out) {
    if (k == a.length) {
      out.add(a.clone());
      return;
    }
    for (int i = k; i < a.length; i++) {
      int t = a[k];
      a[k] = a[i];
      a[i] = t;
      permute(a, k + 1, out);
      a[i] = a[k];
      a[k] = t;
    }
  }

  // The paper's loop as first written, on full reference timelines: the queue rules must not change.
  private static HybridScheduler.Split referenceQueueRules(HybridScheduler s, CostModel c, LayerRequest q) {
    int n = q.experts().length;
    List<Integer> missList = new ArrayList<>();
    List<Integer> resList = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      (q.onGpu(i) ? resList : missList).add(i);
    }
    int[] heavy = heaviestFirst(q, missList);
    int[] cpuQ = new int[heavy.length]; // lightest first, ties by expert id
    Integer[] boxed = missList.toArray(new Integer[0]);
    Arrays.sort(boxed, (a, b) -> q.loads()[a] != q.loads()[b] ? q.loads()[a] - q.loads()[b] : q.experts()[a] - q.experts()[b]);
    for (int k = 0; k < boxed.length; k++) {
      cpuQ[k] = boxed[k];
    }
    int head = 0;
    int tail = cpuQ.length;
    List<Integer> xfers = new ArrayList<>();
    double cpuT = 0;
    boolean first = true;
    double linkT = q.linkFreeMs();
    while (head < tail) {
      if (linkT <= cpuT) {
        int cand = cpuQ[tail - 1];
        double cpuFinish = cpuT;
        for (int k = head; k < tail; k++) {
          cpuFinish += c.cpuMs(q.loads()[cpuQ[k]], first && k == head);
        }
        xfers.add(cand);
        HybridScheduler.Timeline tl = s.timeline(q, new HybridScheduler.Split(xfers.stream().mapToInt(Integer::intValue).toArray(), null));
        if (tl.end[cand] < cpuFinish) {
          tail--;
          linkT += c.xferMs();
        } else {
          xfers.remove(xfers.size() - 1);
          break;
        }
      } else {
        cpuT += c.cpuMs(q.loads()[cpuQ[head]], first);
        first = false;
        head++;
      }
    }
    int[] x = xfers.stream().mapToInt(Integer::intValue).toArray();
    HybridScheduler.Split best = new HybridScheduler.Split(x, null);
    double bestMs = s.timeline(q, best).makespan;
    Integer[] res = resList.toArray(new Integer[0]);
    Arrays.sort(res, (a, b) -> q.loads()[a] != q.loads()[b] ? q.loads()[a] - q.loads()[b] : q.experts()[a] - q.experts()[b]);
    boolean[] toCpu = new boolean[n];
    for (int i : res) {
      toCpu[i] = true;
      double ms = s.timeline(q, new HybridScheduler.Split(x, toCpu.clone())).makespan;
      if (ms < bestMs * (1 - 1e-12)) {
        bestMs = ms;
        best = new HybridScheduler.Split(x, toCpu.clone());
      } else {
        break;
      }
    }
    boolean[] allCpu = new boolean[n];
    Arrays.fill(allCpu, true);
    for (HybridScheduler.Split o : new HybridScheduler.Split[] {new HybridScheduler.Split(new int[0], null),
        new HybridScheduler.Split(heavy, null), new HybridScheduler.Split(new int[0], allCpu)}) {
      double ms = s.timeline(q, o).makespan;
      if (ms < bestMs * (1 - 1e-12)) {
        bestMs = ms;
        best = o;
      }
    }
    return best;
  }

  @Test
  void queueRulesAreThePaperLoop() {
    SplittableRandom r = new SplittableRandom(404);
    int sameSplit = 0;
    int trials = 600;
    for (int trial = 0; trial < trials; trial++) {
      CostModel c = trial % 3 == 0 ? randomCost(r) : trial % 3 == 1 ? paperA6000() : authorsConstants();
      LayerRequest q = trial % 2 == 0 ? randomRequest(r) : smallLayer(r, 4 + r.nextInt(7), r.nextBoolean());
      HybridScheduler s = new HybridScheduler(c);
      HybridScheduler.Split fast = s.queueRules(q);
      HybridScheduler.Split ref = referenceQueueRules(s, c, q);
      double a = s.timeline(q, fast).makespan;
      double b = s.timeline(q, ref).makespan;
      assertEquals(b, a, 1e-9 * Math.max(1, b), "trial " + trial);
      if (sameSet(fast.xfers(), ref.xfers()) && Arrays.equals(cpuFlags(fast, q), cpuFlags(ref, q))) {
        sameSplit++;
      }
    }
    System.out.printf(Locale.ROOT, "queue rules: %d of %d layers give the reference loop's very split%n", sameSplit, trials);
    assertTrue(sameSplit >= trials * 0.95, sameSplit + " of " + trials);
  }

  private static boolean sameSet(int[] a, int[] b) {
    int[] x = a.clone();
    int[] y = b.clone();
    Arrays.sort(x);
    Arrays.sort(y);
    return Arrays.equals(x, y);
  }

  private static boolean[] cpuFlags(HybridScheduler.Split s, LayerRequest q) {
    return s.toCpu() == null ? new boolean[q.experts().length] : s.toCpu();
  }

  // --- local search against the exhaustive oracle --------------------------------------------------

  private static CostModel paperA6000() {
    try {
      return HardwareProfile.load("paper-a6000").costModel(ModelShape.DEEPSEEK_V2_LITE);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static CostModel authorsConstants() {
    try {
      return HardwareProfile.load("paper-authors-constants").costModel(ModelShape.DEEPSEEK_V2_LITE);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * A layer of n activated experts: prefill-like loads (1..200 tokens each) or decode-like ones (a
   * batch of 1..4 tokens); each expert resident (40%), in flight (20%, landing within two copy
   * times) or missing; 0..2 shared experts; the link sometimes still busy with earlier copies.
   */
  private static LayerRequest smallLayer(SplittableRandom r, int n, boolean prefill) {
    int[] ex = new int[n];
    int[] ld = new int[n];
    double[] rd = new double[n];
    int batch = prefill ? 200 : 1 + r.nextInt(4);
    for (int i = 0; i < n; i++) {
      ex[i] = i * 3 + r.nextInt(3);
      ld[i] = 1 + r.nextInt(batch);
      double u = r.nextDouble();
      rd[i] = u < 0.4 ? 0 : u < 0.6 ? r.nextDouble(0, 0.4) : Double.POSITIVE_INFINITY;
    }
    int shared = r.nextInt(3);
    return new LayerRequest(0, ex, ld, rd, shared, Math.max(batch, 1), r.nextInt(3) == 0 ? r.nextDouble(0, 0.4) : 0);
  }

  private static double exhaustiveOptimum(HybridScheduler s, LayerRequest q) {
    double best = Double.POSITIVE_INFINITY;
    for (long mask = 0; mask < 1L << q.experts().length; mask++) {
      best = Math.min(best, s.timeline(q, splitOf(q, mask)).makespan);
    }
    return best;
  }

  /** Per cost model and load kind: how far the queue rules and the local search are from the optimum. */
  private static final class Gap {
    int layers;
    int queueAbove;
    int searchAbove;
    double queueWorst = 1;
    double searchWorst = 1;
    double queueSum;
    double searchSum;

    void add(double queue, double search, double opt) {
      layers++;
      double qr = queue / opt;
      double sr = search / opt;
      queueAbove += qr > 1 + 1e-9 ? 1 : 0;
      searchAbove += sr > 1 + 1e-9 ? 1 : 0;
      queueWorst = Math.max(queueWorst, qr);
      searchWorst = Math.max(searchWorst, sr);
      queueSum += qr;
      searchSum += sr;
    }
  }

  @Test
  void localSearchAgainstTheExhaustiveOracle() {
    SplittableRandom r = new SplittableRandom(2025);
    String[] names = {"paper-a6000", "paper-authors-constants"};
    CostModel[] models = {paperA6000(), authorsConstants()};
    Gap all = new Gap();
    for (int m = 0; m < models.length; m++) {
      HybridScheduler s = new HybridScheduler(models[m]);
      for (boolean prefill : new boolean[] {true, false}) {
        Gap gap = new Gap();
        for (int trial = 0; trial < 250; trial++) {
          LayerRequest q = smallLayer(r, 4 + r.nextInt(7), prefill);
          String where = names[m] + (prefill ? " prefill" : " decode") + " trial " + trial;
          double opt = exhaustiveOptimum(s, q);
          double queue = s.timeline(q, s.queueRules(q)).makespan;
          LayerPlan p = s.plan(q, SchedulingMode.HYBRID, (l, e, nd) -> SlotAllocator.STAGING);
          double search = s.timeline(q, s.decide(q, SchedulingMode.HYBRID)).makespan;
          assertEquals(search, p.makespan(), 1e-5 * search, where); // the plan's makespan is a float
          assertTrue(search <= queue * (1 + 1e-12), where + ": local search " + search + " worse than the queue rules " + queue);
          assertTrue(search >= opt * (1 - 1e-9), where + ": below the exhaustive optimum " + opt);
          double oracle = s.timeline(q, s.decide(q, SchedulingMode.ORACLE)).makespan;
          assertEquals(opt, oracle, 1e-9 * opt, where + ": ORACLE mode is the exhaustive optimum");
          gap.add(queue, search, opt);
          all.add(queue, search, opt);
        }
        System.out.printf(Locale.ROOT, "%-24s %-7s: %d layers; above the optimum: queue rules %d (worst %.4f, mean %.5f),"
            + " with local search %d (worst %.4f, mean %.5f)%n", names[m], prefill ? "prefill" : "decode", gap.layers,
            gap.queueAbove, gap.queueWorst, gap.queueSum / gap.layers, gap.searchAbove, gap.searchWorst,
            gap.searchSum / gap.layers);
      }
    }
    // Bounds from the measured 1000 layers, with margin. Measured (seed 2025): with local search only
    // 5 layers stay above the optimum, all under the authors' constants with prefill loads (worst
    // 1.116: the optimum moves three experts at once, e.g. two light residents to the CPU and a miss
    // onto the link, which no single move or swap improves on); mean ratio 1.0005 over all layers.
    // The queue rules alone: 309 layers above, worst 2.51, mean 1.034.
    assertTrue(all.searchWorst <= SEARCH_WORST, "worst ratio to the optimum " + all.searchWorst);
    assertTrue(all.searchSum / all.layers <= SEARCH_MEAN, "mean ratio to the optimum " + all.searchSum / all.layers);
    assertTrue(all.searchAbove < all.queueAbove, "local search fixes some of the queue rules' misses: "
        + all.searchAbove + " vs " + all.queueAbove);
  }

  private static final double SEARCH_WORST = 1.15;
  private static final double SEARCH_MEAN = 1.005;

  @Test
  void equalLoadMissesShareOneImpactThatReplanningConfirms() {
    // residencyGains re-plans once per load; re-planning each miss on its own must give the same.
    SplittableRandom r = new SplittableRandom(12);
    int compared = 0;
    for (int trial = 0; trial < 300; trial++) {
      CostModel c = trial % 3 == 0 ? randomCost(r) : trial % 3 == 1 ? paperA6000() : authorsConstants();
      LayerRequest q = smallLayer(r, 4 + r.nextInt(9), false);
      HybridScheduler s = new HybridScheduler(c);
      int[] misses = java.util.stream.IntStream.range(0, q.experts().length).filter(i -> !q.onGpu(i)).toArray();
      for (SchedulingMode mode : new SchedulingMode[] {SchedulingMode.HYBRID, SchedulingMode.ORACLE}) {
        double[] all = s.residencyGains(q, mode, misses);
        for (int k = 0; k < misses.length; k++) {
          double alone = s.residencyGains(q, mode, new int[] {misses[k]})[0];
          assertEquals(alone, all[k], 1e-9, "trial " + trial + " " + mode + " miss " + misses[k]);
          assertTrue(all[k] >= -1e-9, "a resident expert never slows its layer down");
          compared++;
        }
      }
    }
    assertTrue(compared > 1000, "compared " + compared);
  }

  private static int indexOf(int[] a, int v) {
    for (int i = 0; i < a.length; i++) {
      if (a[i] == v) {
        return i;
      }
    }
    return -1;
  }

  @Test
  void layerOutputDoesNotDependOnThePlan() {
    // y = sum over experts of w_e * f_e(x), accumulated in the plan's order (GPU then CPU results,
    // each in device order), equals the reference order within float tolerance.
    SplittableRandom r = new SplittableRandom(5);
    for (int trial = 0; trial < 50; trial++) {
      LayerRequest q = randomRequest(r);
      LayerPlan p = new HybridScheduler(randomCost(r)).plan(q, SchedulingMode.HYBRID, (l, e, n) -> SlotAllocator.STAGING);
      int d = 16;
      float[][] f = new float[p.size()][d];
      for (float[] row : f) {
        for (int j = 0; j < d; j++) {
          row[j] = (float) r.nextGaussian();
        }
      }
      float[] ref = new float[d];
      for (int i = 0; i < p.size(); i++) {
        for (int j = 0; j < d; j++) {
          ref[j] += f[i][j] / q.experts().length;
        }
      }
      Integer[] order = new Integer[p.size()];
      for (int i = 0; i < order.length; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> p.device(a) != p.device(b) ? p.device(b) - p.device(a) : p.order(a) - p.order(b));
      float[] got = new float[d];
      for (int i : order) {
        for (int j = 0; j < d; j++) {
          got[j] += f[i][j] / q.experts().length;
        }
      }
      for (int j = 0; j < d; j++) {
        assertEquals(ref[j], got[j], 1e-4);
      }
    }
  }

  @Test
  void linkStopsWhenTheCpuWouldWin() {
    // CPU cheap, transfer expensive: nothing is moved; GPU idle-cheap and link fast: heavy misses move.
    LayerRequest q = new LayerRequest(0, new int[] {0, 1, 2, 3}, new int[] {1, 1, 50, 80},
        new double[] {0, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY}, 0, 100, 0);
    CostModel slowLink = CostModel.linear(0, 0.1, 0.001, 0, 0.5, 0, 0, 1e5, 4_330_000L, 0, 0, 0, 0);
    assertEquals(0, new HybridScheduler(slowLink).plan(q, SchedulingMode.HYBRID, (l, e, n) -> SlotAllocator.STAGING).transfers());
    CostModel fastLink = CostModel.linear(0.8, 0.9, 0.07, 0, 0.5, 0, 0, 1e8, 4_330_000L, 0, 0, 0, 0);
    LayerPlan p = new HybridScheduler(fastLink).plan(q, SchedulingMode.HYBRID, (l, e, n) -> SlotAllocator.STAGING);
    assertTrue(p.transfers() >= 1);
    assertEquals(3, p.transferExpert(0), "heaviest miss first");
  }

  @Test
  void flatLayoutRoundTrips() {
    SplittableRandom r = new SplittableRandom(9);
    LayerRequest q = randomRequest(r);
    LayerPlan p = new HybridScheduler(randomCost(r)).plan(q, SchedulingMode.GPU_ONLY, (l, e, n) -> new SlotAllocator.Slot(e, l, 63 - e))
        .withPrefetches(new int[] {q.layer() + 1}, new int[] {7}, new int[] {3}, new int[] {q.layer() + 1}, new int[] {9},
            new float[] {5f}, new float[] {6f});
    int[] ints = new int[p.intLength() + 3];
    float[] floats = new float[p.floatLength() + 2];
    p.writeTo(ints, 3, floats, 2);
    assertEquals(LayerPlan.LAYOUT_VERSION, ints[3]);
    assertEquals(p.size(), ints[5]);
    assertEquals(p.transfers(), ints[6]);
    assertEquals(p.makespan(), floats[2]);
    LayerPlan back = LayerPlan.readFrom(ints, 3, floats, 2);
    assertEquals(p, back);
    assertEquals(LayerPlan.PREFETCH, back.transferKind(back.transfers() - 1));
  }
}
