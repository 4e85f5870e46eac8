package org.hybrimoe.hybrid;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.hybrimoe.device.Device;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.sched.LayerPlan;
import org.hybrimoe.runtime.CudaDiscovery;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The hybrid executor against the all-CPU result: every bundle at several cache ratios and token
 * counts, many layers with slow transfers racing prefetches, and failures that leave it usable.
 * Runs on the host-emulated device (CI) and, tagged gpu, on CUDA where present.
 */
class HybridMoeTest {
  static final int L = 4;
  static final int E = 8;
  static final int K = 2;
  static final int D = 64;
  static final int FF = 48;
  // bf16 experts on either side: only the order of float additions differs.
  static final double TOL = 1e-4;

  static Engine engine;
  static CpuMoe cpu;
  static SyntheticMoe moe;

  @BeforeAll
  static void setUp() {
    engine = Engine.create(2);
    cpu = CpuMoe.on(engine);
    moe = SyntheticMoe.create(engine, ExpertFormat.BF16, L, E, K, 1, D, FF, 11);
  }

  @AfterAll
  static void tearDown() {
    moe.close();
    engine.close();
  }

  /** Costs that make every bundle move, keep and split experts: slow CPU, fast GPU, mid link. */
  static CostModel cost() {
    return CostModel.linear(0.05, 0.4, 0.1, 0.02, 0.05, 0.01, 0.02, 2e5, 2L * 3 * D * FF, 0.1, 0.01, 1, 0.05);
  }

  static FloatBuffer floats(int n) {
    return ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  static IntBuffer ints(int n) {
    return ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asIntBuffer();
  }

  static int[] decoderLayers(int n) {
    int[] d = new int[n];
    for (int i = 0; i < n; i++) {
      d[i] = 2 * i + 1; // MoE at odd decoder layers: the mapping is exercised
    }
    return d;
  }

  static HybridMoe executor(Device dev, PolicyBundle b, double ratio, int staging, SyntheticMoe m) {
    int slots = dev == null ? 0 : ExpertCache.slotsFor(ratio, m.layers(), m.experts());
    return new HybridMoe(engine, dev, HybridMoe.Config.of(b, cost(), slots, dev == null ? 0 : staging), m.routed(),
        m.shared(), decoderLayers(m.layers()), m.topK());
  }

  static Device emulated(SyntheticMoe m, double ratio, int staging) {
    int slots = ExpertCache.slotsFor(ratio, m.layers(), m.experts());
    return Device.emulated(1, ExpertShape.bf16(m.dModel(), m.dFf()),
        HybridMoe.deviceSlots(slots, staging, m.layers() * m.sharedExperts()));
  }

  static double relErr(FloatBuffer got, FloatBuffer want, int n) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < n; i++) {
      num = Math.max(num, Math.abs(got.get(i) - want.get(i)));
      den = Math.max(den, Math.abs(want.get(i)));
    }
    return num / Math.max(den, 1e-30);
  }

  /**
   * Passes of all layers, each layer's output checked against the all-CPU one; returns the
   * timelines. Inputs drift from layer to layer so that the prefetcher's look-ahead means something.
   */
  static List<LayerTimeline> passes(HybridMoe h, SyntheticMoe m, int[] tokens, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<LayerTimeline> out = new ArrayList<>();
    for (int n : tokens) {
      FloatBuffer x = SyntheticMoe.randomInput(n, m.dModel(), r);
      IntBuffer ids = ints(n * m.topK());
      FloatBuffer w = floats(n * m.topK());
      FloatBuffer sc = floats(n * m.experts());
      FloatBuffer got = floats(n * m.dModel());
      FloatBuffer want = floats(n * m.dModel());
      for (int l = 0; l < m.layers(); l++) {
        m.route(l, x, n, ids, w, sc);
        for (int i = 0; i < n * m.dModel(); i++) {
          got.put(i, 0.5f); // accumulated into: a nonzero start shows it
          want.put(i, 0.5f);
        }
        LayerTimeline tl = h.runLayer(l, x, n, ids, w, sc, null, got);
        m.allCpu(cpu, l, x, n, ids, w, want);
        double err = relErr(got, want, n * m.dModel());
        assertTrue(err < TOL, h.bundle().name() + " layer " + l + " n=" + n + ": error " + err + " " + tl);
        out.add(tl);
        SyntheticMoe.drift(x, n * m.dModel(), 0.3, r);
      }
    }
    return out;
  }

  static List<PolicyBundle> bundles() {
    return PolicyBundle.all();
  }

  @ParameterizedTest
  @MethodSource("bundles")
  void everyBundleEqualsAllCpuOnTheEmulatedDevice(PolicyBundle b) {
    for (double ratio : new double[] {0.25, 0.5, 0.75}) {
      try (Device dev = emulated(moe, ratio, 3); HybridMoe h = executor(dev, b, ratio, 3, moe)) {
        h.setPredictor(moe.predictor());
        // decode tokens and prefills of awkward lengths, interleaved
        List<LayerTimeline> tls = passes(h, moe, new int[] {1, 7, 1, 1, 13, 1}, Double.doubleToLongBits(ratio) ^ b.hashCode());
        HybridMoe.Stats s = h.hybridStats();
        assertEquals(6L * L, s.layers());
        for (LayerTimeline tl : tls) {
          LayerPlan p = tl.plan();
          assertTrue(tl.measuredMs() >= 0 && tl.end() >= tl.begin());
          for (int i = 0; i < p.size(); i++) {
            assertFalse(Double.isNaN(tl.expertStart(i)), "every expert has a measured time: " + tl);
            assertTrue(tl.expertStart(i) >= tl.begin() - 1e-3 && tl.expertEnd(i) <= tl.end() + 1e-3);
          }
        }
      }
    }
  }

  @Test
  void cpuOnlyWithoutDevice() {
    try (HybridMoe h = executor(null, PolicyBundle.HYBRIMOE, 0, 0, moe)) {
      List<LayerTimeline> tls = passes(h, moe, new int[] {1, 9}, 5);
      for (LayerTimeline tl : tls) {
        assertEquals(0, tl.plan().transfers());
        assertEquals(0.0, tl.plan().busy(LayerPlan.GPU));
      }
      assertEquals(0, h.hybridStats().gpuExperts());
    }
  }

  @Test
  void manyLayersWithSlowTransfersRacingPrefetchAndEviction() {
    try (SyntheticMoe deep = SyntheticMoe.create(engine, ExpertFormat.BF16, 10, E, K, 1, D, FF, 3)) {
      for (PolicyBundle b : List.of(PolicyBundle.HYBRIMOE, PolicyBundle.ADAPMOE, PolicyBundle.ONLY_PREFETCH)) {
        // No online refinement here: the emulated device's deliberate sleeps would teach the cost
        // model a link too slow for any prefetch window, and this test is about racing, not tuning.
        int slots = ExpertCache.slotsFor(0.25, deep.layers(), deep.experts());
        try (Device dev = emulated(deep, 0.25, 2);
            HybridMoe h = new HybridMoe(engine, dev, new HybridMoe.Config(b, cost(), slots, 2, null, 0, 12),
                deep.routed(), deep.shared(), decoderLayers(deep.layers()), K)) {
          dev.emulatedDelays(400, 150); // copies slower than kernels: prefetches still in flight when used
          h.setPredictor(deep.predictor());
          List<LayerTimeline> tls = passes(h, deep, new int[] {1, 1, 1, 11, 1, 1}, 99);
          HybridMoe.Stats s = h.hybridStats();
          assertTrue(s.demandTransfers() + s.prefetches() > 0, b.name() + ": nothing moved " + s);
          if (b == PolicyBundle.ADAPMOE) { // GPU-only through 2 staging slots: several waves
            assertTrue(tls.stream().anyMatch(t -> t.waves() > 1), "expected staging waves");
          }
          // (GPU-only keeps the link busy with demand transfers: its prefetches rarely find a window.)
          if (b.prefetch() == PolicyBundle.PrefetchKind.IMPACT) {
            assertTrue(s.prefetches() > 0, b.name() + ": no prefetch " + s);
          }
          h.sync();
        }
      }
    }
  }

  /**
   * A layer whose expert 7 has no weights (a broken load): using it fails, the rest works. (The
   * warm start places experts 0..3, so the executor itself builds.)
   */
  static ExpertLayer withHole() {
    ExpertLayer l = ExpertLayer.create(ExpertFormat.BF16, E, D, FF, 0);
    SplittableRandom r = new SplittableRandom(1);
    for (int e = 0; e < E; e++) {
      if (e == 7) {
        continue;
      }
      ByteBuffer[] p = new ByteBuffer[3];
      for (int q = 0; q < 3; q++) {
        p[q] = ByteBuffer.allocateDirect(2 * D * FF).order(ByteOrder.nativeOrder());
        for (int i = 0; i < D * FF; i++) {
          p[q].putShort(2 * i, (short) (Float.floatToRawIntBits((float) (r.nextGaussian() * 0.1)) >>> 16));
        }
      }
      l.setExpert(e, new ExpertLayerWeights.Expert(p[0], p[1], p[2], null, null, null));
    }
    return l;
  }

  @Test
  void failedLayersSurfaceAsExceptionsAndLeaveTheExecutorUsable() {
    for (PolicyBundle b : List.of(PolicyBundle.ADAPMOE, PolicyBundle.KTRANSFORMERS)) {
      for (boolean withDevice : new boolean[] {true, false}) {
        try (ExpertLayer holed = withHole();
            Device dev = withDevice ? Device.emulated(1, ExpertShape.bf16(D, FF), 8) : null;
            HybridMoe h = new HybridMoe(engine, dev,
                HybridMoe.Config.of(b, cost(), withDevice ? 4 : 0, withDevice ? 4 : 0), List.of(holed), null,
                new int[] {0}, K)) {
          int n = 3;
          FloatBuffer x = SyntheticMoe.randomInput(n, D, new SplittableRandom(2));
          IntBuffer ids = ints(n * K);
          FloatBuffer w = floats(n * K);
          FloatBuffer out = floats(n * D);
          for (int t = 0; t < n; t++) { // the broken expert (CPU or moved), next to resident ones
            ids.put(t * K, 7);
            ids.put(t * K + 1, t % 3);
            w.put(t * K, 0.5f);
            w.put(t * K + 1, 0.5f);
          }
          NativeException ex = assertThrows(NativeException.class, () -> h.runLayer(0, x, n, ids, w, null, null, out));
          assertTrue(ex.getMessage().contains("expert 7"), ex.getMessage());
          // The same executor, routing that avoids the broken expert: right answer.
          for (int t = 0; t < n; t++) {
            ids.put(t * K, 4 + t % 3);
          }
          FloatBuffer want = floats(n * D);
          for (int i = 0; i < n * D; i++) {
            out.put(i, 0f);
          }
          h.runLayer(0, x, n, ids, w, null, null, out);
          cpu.run(holed, x, n, K, ids, w, null, want);
          assertTrue(relErr(out, want, n * D) < TOL, b.name() + " device " + withDevice);
        }
      }
    }
  }

  @Test
  void badArgumentsAreClearErrors() {
    try (HybridMoe h = executor(null, PolicyBundle.HYBRIMOE, 0, 0, moe)) {
      IntBuffer ids = ints(K);
      ids.put(0, E + 1);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> h.runLayer(0, floats(D), 1, ids, floats(K), null, null, floats(D)));
      assertTrue(e.getMessage().contains("expert id"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> h.run(0, floats(D), 1, K, ints(K), floats(K), floats(D)));
      assertThrows(IllegalArgumentException.class,
          () -> h.runLayer(0, FloatBuffer.allocate(D), 1, ints(K), floats(K), null, null, floats(D)));
    }
    try (Device dev = Device.emulated(1, ExpertShape.bf16(D, FF), 4)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> executor(dev, PolicyBundle.HYBRIMOE, 0.5, 2, moe));
      assertTrue(e.getMessage().contains("slots"), e.getMessage());
    }
  }

  /**
   * The engine runs the plan's timeline: every transferred expert starts on the device only after
   * its own transfer has landed, and not after a later transfer of the same layer has (no wave
   * barrier over a group of transfers), unless the device was still busy with earlier work.
   */
  @Test
  void eachTransferredExpertStartsBehindItsOwnTransferNotAGroups() {
    int checked = 0;
    try (Device dev = emulated(moe, 0.25, 4); HybridMoe h = executor(dev, PolicyBundle.GPU_ONLY, 0.25, 4, moe)) {
      for (LayerTimeline tl : passes(h, moe, new int[] {1, 6, 6, 1, 16}, 9)) {
        if (!tl.perExpertGpuTimes()) {
          continue;
        }
        org.hybrimoe.policy.sched.LayerPlan p = tl.plan();
        for (int j = 0; j < p.transfers(); j++) {
          if (p.transferKind(j) != org.hybrimoe.policy.sched.LayerPlan.DEMAND) {
            continue;
          }
          int i = indexOf(p, p.transferExpert(j));
          double start = tl.expertStart(i);
          double landed = tl.transferEnd(j);
          assertTrue(start >= landed - 1e-3, "expert " + p.expert(i) + " started at " + start + " before its transfer landed at "
              + landed + ": " + tl);
          // Work the device had to finish first: GPU experts that started before this one.
          double busyUntil = 0;
          for (int q = 0; q < p.size(); q++) {
            if (q != i && p.device(q) == org.hybrimoe.policy.sched.LayerPlan.GPU && tl.expertStart(q) < start) {
              busyUntil = Math.max(busyUntil, tl.expertEnd(q));
            }
          }
          for (int k = j + 1; k < p.transfers(); k++) { // a later transfer that landed long before it started
            if (p.transferKind(k) == org.hybrimoe.policy.sched.LayerPlan.DEMAND && tl.transferEnd(k) > Math.max(landed, busyUntil) + 0.5) {
              assertTrue(start < tl.transferEnd(k), "expert " + p.expert(i) + " waited for transfer " + k + ": " + tl);
            }
          }
          checked++;
        }
      }
    }
    assertTrue(checked > 0, "the gpu-only bundle moved experts on demand");
  }

  private static int indexOf(org.hybrimoe.policy.sched.LayerPlan p, int expert) {
    for (int i = 0; i < p.size(); i++) {
      if (p.expert(i) == expert) {
        return i;
      }
    }
    throw new AssertionError("expert " + expert + " not in the plan");
  }

  @Test
  void measuredTimelineDrawsNextToThePrediction() {
    try (Device dev = emulated(moe, 0.25, 2); HybridMoe h = executor(dev, PolicyBundle.HYBRIMOE, 0.25, 2, moe)) {
      h.setPredictor(moe.predictor());
      List<LayerTimeline> tls = passes(h, moe, new int[] {5}, 4);
      LayerTimeline tl = tls.get(0);
      String svg = org.hybrimoe.sim.GanttSvg.measuredVsPredicted("layer 0", tl.measuredEvents(tl.begin()),
          tl.predictedEvents(0));
      assertTrue(svg.startsWith("<svg") && svg.contains("GPU measured") && svg.contains("CPU predicted"));
      double[] scales = h.costScales();
      assertTrue(scales[0] != 1 || scales[1] != 1, "measurements refine the cost model");
    }
  }

  @Test
  @Tag("gpu")
  void everyBundleEqualsAllCpuOnCuda() {
    Assumptions.assumeFalse(CudaDiscovery.discover().devices().isEmpty(), "no CUDA device");
    // GPU kernels round activations to bf16 where the CPU does not: a looser bound.
    for (PolicyBundle b : PolicyBundle.all()) {
      int slots = ExpertCache.slotsFor(0.5, L, E);
      try (Device dev = Device.cuda(0, ExpertShape.bf16(D, FF), HybridMoe.deviceSlots(slots, 3, L));
          HybridMoe h = executor(dev, b, 0.5, 3, moe)) {
        h.setPredictor(moe.predictor());
        SplittableRandom r = new SplittableRandom(8);
        for (int n : new int[] {1, 9, 1}) {
          FloatBuffer x = SyntheticMoe.randomInput(n, D, r);
          IntBuffer ids = ints(n * K);
          FloatBuffer w = floats(n * K);
          FloatBuffer got = floats(n * D);
          FloatBuffer want = floats(n * D);
          for (int l = 0; l < L; l++) {
            moe.route(l, x, n, ids, w, null);
            for (int i = 0; i < n * D; i++) {
              got.put(i, 0f);
              want.put(i, 0f);
            }
            h.runLayer(l, x, n, ids, w, null, null, got);
            moe.allCpu(cpu, l, x, n, ids, w, want);
            assertTrue(relErr(got, want, n * D) < 2e-2, b.name() + " layer " + l);
          }
        }
      }
    }
  }
}
