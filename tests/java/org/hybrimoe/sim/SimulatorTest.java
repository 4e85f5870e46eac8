package org.hybrimoe.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.HardwareProfile;
import org.hybrimoe.policy.cost.ModelShape;
import org.junit.jupiter.api.Test;

class SimulatorTest {
  private static final ModelShape SMALL = new ModelShape("small", 6, 32, 4, 1, 2048, 1408, 1408, 4_330_000L);

  private static Simulator synthetic() throws IOException {
    Trace t = new SyntheticTraceGenerator().shape(32, 4, 6).tokens(3000).skew(0.9).reuse(0.3).crossLayer(0.3).seed(11).generate();
    CostModel c = HardwareProfile.load("paper-a6000").costModel(SMALL);
    return new Simulator(t, SMALL, c, new LookaheadOracle(t, LookaheadOracle.DEFAULT_ACCURACY, 1), 1000);
  }

  @Test
  void decodeAccountsTimeBytesAndBusyConsistently() throws IOException {
    Simulator sim = synthetic();
    CostModel c = sim.cost();
    for (PolicyBundle b : PolicyBundle.simulated()) {
      SimResult r = sim.decode(b, 0.25, 20, 200);
      String w = b.name();
      assertTrue(r.ms() > 0 && r.hitRate() >= 0 && r.hitRate() <= 1, w);
      // no resource is busier than the wall time of a token
      assertTrue(r.gpuBusyMs() <= r.ms() + 1e-6 && r.cpuBusyMs() <= r.ms() + 1e-6, w);
      assertEquals(r.bytesMoved() / c.expertBytes() * c.xferMs(), r.linkBusyMs(), 1e-6, w);
      // a token cannot be faster than its non-MoE work plus the shared experts on the GPU
      assertTrue(r.ms() >= SMALL.layers() * (c.nonMoeMs(1) + c.sharedGpuMs(1)) - 1e-6, w);
      if (b.mode() == org.hybrimoe.policy.sched.SchedulingMode.STATIC && b.prefetch() == PolicyBundle.PrefetchKind.NONE
          && !b.fillOnMiss()) {
        assertEquals(0, r.bytesMoved(), w + " moves nothing");
      }
    }
  }

  @Test
  void hybrimoeBeatsKTransformersAndPrefetchIsCounted() throws IOException {
    Simulator sim = synthetic();
    for (double ratio : new double[] {0.25, 0.5}) {
      SimResult kt = sim.decode(PolicyBundle.KTRANSFORMERS, ratio, 20, 200);
      SimResult hy = sim.decode(PolicyBundle.HYBRIMOE, ratio, 20, 200);
      assertTrue(hy.ms() < kt.ms(), "decode " + hy.ms() + " vs " + kt.ms());
      SimResult kp = sim.prefill(PolicyBundle.KTRANSFORMERS, ratio, 128, 2);
      SimResult hp = sim.prefill(PolicyBundle.HYBRIMOE, ratio, 128, 2);
      assertTrue(hp.ms() < kp.ms(), "prefill " + hp.ms() + " vs " + kp.ms());
    }
    SimResult pf = sim.decode(PolicyBundle.ONLY_PREFETCH, 0.25, 20, 200);
    assertTrue(pf.prefetchUsed() > 0, "prefetches used");
    assertTrue(pf.accuracy().length == 3 && pf.accuracy()[0] > pf.accuracy()[2], "accuracy decays with distance");
  }

  @Test
  void timelineShowsAllThreeLanes() throws IOException {
    Simulator sim = synthetic();
    List<TimelineEvent> ev = new ArrayList<>();
    sim.prefill(PolicyBundle.HYBRIMOE, 0.25, 64, 1, ev, 2);
    assertTrue(ev.stream().anyMatch(e -> e.lane().equals("GPU")));
    assertTrue(ev.stream().anyMatch(e -> e.lane().equals("CPU")));
    assertTrue(ev.stream().anyMatch(e -> e.lane().equals("PCIe")));
    String svg = GanttSvg.render("t", ev);
    assertTrue(svg.startsWith("<svg") && svg.contains("PCIe") && svg.contains("idle"));
  }

  @Test
  void mismatchedShapeAndBadRangesAreRefused() throws IOException {
    Trace t = new SyntheticTraceGenerator().shape(32, 4, 6).tokens(500).generate();
    CostModel c = HardwareProfile.load("paper-a6000").costModel(ModelShape.DEEPSEEK_V2_LITE);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new Simulator(t, ModelShape.DEEPSEEK_V2_LITE, c, new LookaheadOracle(t, new double[] {0.9}, 1), 100));
    assertTrue(e.getMessage().contains("deepseek-v2-lite"));
    Simulator sim = synthetic();
    assertThrows(IllegalArgumentException.class, () -> sim.prefill(PolicyBundle.HYBRIMOE, 0.5, 5000, 1));
    assertThrows(IllegalArgumentException.class, () -> sim.decode(PolicyBundle.HYBRIMOE, 1.5, 0, 10));
  }

  @Test
  void oracleSeesTheFutureAndOnlyTheSimulatorRunsIt() throws IOException {
    Simulator sim = synthetic();
    for (double ratio : new double[] {0.25, 0.5}) {
      SimResult hy = sim.decode(PolicyBundle.HYBRIMOE, ratio, 20, 200);
      SimResult or = sim.decode(PolicyBundle.ORACLE, ratio, 20, 200);
      assertTrue(or.ms() < hy.ms(), "ratio " + ratio + ": oracle " + or.ms() + " vs HybriMoE " + hy.ms());
      assertTrue(or.hitRate() > hy.hitRate(), "Belady and a perfect look-ahead: " + or.hitRate() + " vs " + hy.hitRate());
      for (double a : or.accuracy()) {
        assertEquals(1.0, a, 0.0, "the look-ahead is the true routing");
      }
      SimResult hp = sim.prefill(PolicyBundle.HYBRIMOE, ratio, 128, 2);
      SimResult op = sim.prefill(PolicyBundle.ORACLE, ratio, 128, 2);
      assertTrue(op.ms() > 0 && op.ms() < 1.5 * hp.ms(), "prefill: oracle " + op.ms() + " vs HybriMoE " + hp.ms());
    }
    assertTrue(PolicyBundle.ORACLE.simulatorOnly() && !PolicyBundle.all().contains(PolicyBundle.ORACLE));
    assertEquals(PolicyBundle.ORACLE, PolicyBundle.byName("Oracle"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> org.hybrimoe.policy.cache.Caches.create(PolicyBundle.CacheKind.BELADY_GLOBAL, 6, 32, 10, new long[6 * 32],
            new int[0]));
    assertTrue(e.getMessage().contains("simulator only"), e.getMessage());
  }

  @Test
  void futureRoutingNamesEachKeysNextPass() {
    Trace t = new SyntheticTraceGenerator().shape(16, 2, 3).tokens(400).seed(4).generate();
    int[] starts = {10, 50, 51, 200, 300};
    int tokens = 3;
    FutureRouting f = new FutureRouting(t, starts, tokens);
    for (int pass = -1; pass < starts.length; pass++) {
      for (int l = 0; l < 3; l++) {
        for (int e = 0; e < 16; e++) {
          long want = Long.MAX_VALUE;
          for (int q = starts.length - 1; q > pass; q--) {
            for (int tok = starts[q]; tok < starts[q] + tokens; tok++) {
              for (int k = 0; k < 2; k++) {
                if (t.id(tok, l, k) == e) {
                  want = (long) q * 3 + l;
                }
              }
            }
          }
          assertEquals(want, f.nextUseAfter(l, e, pass), "pass " + pass + " layer " + l + " expert " + e);
        }
      }
    }
  }

  /** The acceptance check on the real trace, paper profile, deepseek-v2-lite shape. */
  @Test
  void hybrimoeFasterThanKTransformersInDecodeOnTheRealTrace() throws IOException {
    Trace t = TraceReader.read(SharedTraces.deepseekOrSkip());
    ModelShape s = ModelShape.DEEPSEEK_V2_LITE;
    Simulator sim = new Simulator(t, s, HardwareProfile.load("paper-a6000").costModel(s),
        new LookaheadOracle(t, LookaheadOracle.DEFAULT_ACCURACY, 1), 5000);
    for (double ratio : new double[] {0.25, 0.5, 0.75}) {
      SimResult kt = sim.decode(PolicyBundle.KTRANSFORMERS, ratio, 50, 300);
      SimResult hy = sim.decode(PolicyBundle.HYBRIMOE, ratio, 50, 300);
      assertTrue(hy.ms() < kt.ms(), "ratio " + ratio + ": HybriMoE " + hy.ms() + " ms vs kTransformers-like " + kt.ms());
    }
  }
}
