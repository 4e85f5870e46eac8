package org.hybrimoe.policy.sched;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.hybrimoe.policy.cost.CostModel;
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
        if (mode == SchedulingMode.HYBRID) {
          assertTrue(p.makespan() <= allCpu(c, q) + EPS, where + ": worse than all-on-CPU");
          assertTrue(p.makespan() <= allGpu(c, q) + EPS, where + ": worse than all-on-GPU with on-demand transfers "
              + p.makespan() + " > " + allGpu(c, q));
          double st = s.plan(q, SchedulingMode.STATIC, (l, e, nd) -> SlotAllocator.STAGING).makespan();
          assertTrue(p.makespan() <= st + EPS, where + ": worse than the static split");
        }
      }
    }
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
