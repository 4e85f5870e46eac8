package org.hybrimoe.hybrid;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.device.MemoryBudget;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.hybrid.HybridExecutors.DeviceKind;
import org.hybrimoe.hybrid.HybridExecutors.GpuBudget;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.ExecutorStats;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.Lookahead;
import org.hybrimoe.model.ModelMaker;
import org.hybrimoe.model.ModelRegistry;
import org.hybrimoe.model.MoeExecutorFactory;
import org.hybrimoe.model.MoeLayerExecutor;
import org.hybrimoe.model.Session;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.runtime.CudaDiscovery;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The hybrid executor inside a whole model, with what the model hands it: routing scores (MRS)
 * and its routers' look-ahead (prefetch). Every bundle reproduces the CPU executor's logits on the
 * HuggingFace fixtures; on a deeper make-model model the look-ahead makes prefetches happen, and
 * none without it; statistics add up per decoder layer; device budgets in bytes become slots.
 */
class HybridPlumbingTest {
  static final double TOL = 1e-4;
  static final int[] PROMPT = {3, 17, 9, 30, 1, 22, 5};

  static Path fixtures() {
    return org.hybrimoe.SharedFixtures.moeTiny();
  }

  /** Loads a model: a fixture (config, weights) or a directory (config null). */
  static CausalLm load(Path dirOrWeights, Path config, LoadOptions o) throws IOException {
    return config == null ? ModelRegistry.load(dirOrWeights, o) : ModelRegistry.load(config, dirOrWeights, o);
  }

  static int argmax(float[] v) {
    int b = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[b]) {
        b = i;
      }
    }
    return b;
  }

  /**
   * Prefill logits of every prompt position, then {@code steps} decode steps, each feeding
   * {@code tokens[i]} (or, where tokens is null, the greedy choice, written back into it).
   */
  static float[][] decode(CausalLm m, int[] prompt, int[] tokens) {
    try (Session s = m.newSession(prompt.length + tokens.length + 1)) {
      float[][] p = s.forward(prompt);
      float[][] out = Arrays.copyOf(p, p.length + tokens.length);
      float[] last = p[p.length - 1];
      for (int i = 0; i < tokens.length; i++) {
        if (tokens[i] < 0) {
          tokens[i] = argmax(last);
        }
        last = s.forwardLast(tokens[i]);
        out[p.length + i] = last;
      }
      return out;
    }
  }

  static int[] greedy(int steps) {
    int[] t = new int[steps];
    Arrays.fill(t, -1);
    return t;
  }

  /** Wraps a factory's executor and checks what reaches it: scores on every call, one look-ahead. */
  static final class Checking implements MoeLayerExecutor {
    final MoeLayerExecutor inner;
    int calls;
    int lookaheads;
    Lookahead lookahead;

    Checking(MoeLayerExecutor inner) {
      this.inner = inner;
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer out) {
      throw new AssertionError("the model calls the run that takes scores");
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer scores,
        FloatBuffer out) {
      assertTrue(scores != null && scores.isDirect(), "scores flow to the executor");
      calls++;
      inner.run(layer, x, n, k, ids, w, scores, out);
    }

    @Override
    public void setLookahead(Lookahead l) {
      lookaheads++;
      lookahead = l;
      inner.setLookahead(l);
    }

    @Override
    public ExecutorStats stats() {
      return inner.stats();
    }

    @Override
    public void resetStats() {
      inner.resetStats();
    }

    @Override
    public void close() {
      inner.close();
    }
  }

  static double maxRelDiff(float[][] a, float[][] b) {
    return HybridModelTest.maxDiff(a, b);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "full_mixtral, mixtral_tiny_config.json",
    "qwen_moe_tiny, qwen_moe_tiny_config.json",
    "deepseek_full, deepseek_full_config.json"
  })
  void everyBundleReproducesTheCpuExecutorOnTheFixturesWithScoresAndLookahead(String name, String config)
      throws IOException {
    Path fx = fixtures();
    Assumptions.assumeTrue(fx != null, "fixtures absent (set -Dhybrimoe.shared or HYBRIMOE_SHARED)");
    Path weights = fx.resolve(name + ".safetensors");
    Path cfg = fx.resolve(config);
    // The reference converts the f32 experts to bf16 as the hybrid executor does.
    LoadOptions base = new LoadOptions(1, ExpertFormat.BF16, 32);
    int[] tokens = greedy(4);
    float[][] want;
    try (CausalLm m = load(weights, cfg, base)) {
      want = decode(m, PROMPT, tokens);
    }
    for (PolicyBundle b : PolicyBundle.all()) {
      for (double ratio : new double[] {0.25, 0.75}) {
        Checking[] seen = new Checking[1];
        MoeExecutorFactory hybrid = HybridExecutors.factory(b, GpuBudget.ratio(ratio), DeviceKind.EMULATED,
            ExpertFormat.BF16);
        LoadOptions o = base.withExecutors((engine, layers, options) ->
            seen[0] = new Checking(hybrid.create(engine, layers, options)));
        try (CausalLm m = load(weights, cfg, o)) {
          float[][] got = decode(m, PROMPT, tokens.clone());
          String what = name + " " + b.name() + " ratio " + ratio;
          assertTrue(maxRelDiff(got, want) < TOL, what + ": " + maxRelDiff(got, want));
          assertEquals(1, seen[0].lookaheads, what);
          assertTrue(seen[0].lookahead != null && seen[0].calls == 2 * (1 + tokens.length), what + ": " + seen[0].calls);
          ExecutorStats s = m.experts().stats();
          assertEquals(s.activations(), s.cpuTotal() + s.gpuTotal(), what + " " + s);
          assertTrue(HybridExecutors.unwrap(seen[0].inner).isPresent());
        }
      }
    }
  }

  /** A deeper make-model model: {@code moeLayers} MoE layers of 16 experts top-4 after one dense layer. */
  static Path deep(Path dir, int moeLayers) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults("deepseek_v2");
    ModelMaker.write(new ModelMaker.Spec(s.arch(), moeLayers + 1, s.hidden(), 16, 4, s.expertFf(), s.heads(),
        s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), 1, s.kvLoraRank(), s.qLoraRank(), s.rope(), s.nope(),
        s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), false, 5, "BF16", true, 1), dir);
    return dir;
  }

  static LoadOptions hybrid(PolicyBundle b, GpuBudget budget, DeviceKind kind) {
    return new LoadOptions(1, null, 32).withExecutors(HybridExecutors.factory(b, budget, kind, ExpertFormat.BF16));
  }

  /**
   * Fixed costs in the paper's proportions for the make-model experts (slow CPU, fast GPU, a link
   * that moves an expert in a fifth of a CPU expert's time, attention between MoE layers): plans
   * then depend on the routing, not on how fast this run's tiny experts happened to be.
   */
  static CostModel paperLikeCost() {
    ModelMaker.Spec s = ModelMaker.Spec.defaults("deepseek_v2");
    long slot = ExpertShape.bf16(s.hidden(), s.expertFf()).bytes();
    return CostModel.linear(0.05, 0.4, 0.1, 0.02, 0.05, 0.01, 0.02, slot / 0.06, slot, 0.1, 0.01, 1, 0.05);
  }

  @Test
  void lookaheadMakesTheHybrimoeAndAdapmoeBundlesPrefetchAndNoneWithoutIt(@TempDir Path dir) throws IOException {
    deep(dir, 4);
    int[] tokens = greedy(10);
    float[][] want;
    try (CausalLm m = load(dir, null, new LoadOptions(1, null, 32))) {
      want = decode(m, PROMPT, tokens);
    }
    for (PolicyBundle b : List.of(PolicyBundle.HYBRIMOE, PolicyBundle.ADAPMOE)) {
      long[] hits = new long[2];
      for (boolean withLookahead : new boolean[] {true, false}) {
        LoadOptions o = new LoadOptions(1, null, 32).withExecutors(HybridExecutors.factory(b, GpuBudget.ratio(0.25),
            DeviceKind.EMULATED, ExpertFormat.BF16, paperLikeCost()));
        try (CausalLm m = load(dir, null, o)) {
          if (!withLookahead) {
            m.experts().setLookahead(null);
          }
          float[][] got = decode(m, PROMPT, tokens.clone());
          String what = b.name() + (withLookahead ? " with" : " without") + " look-ahead";
          assertTrue(maxRelDiff(got, want) < TOL, what + ": " + maxRelDiff(got, want));
          ExecutorStats s = m.experts().stats();
          if (withLookahead) {
            assertTrue(s.prefetches() > 0, what + ": no prefetch " + s);
            assertTrue(s.prefetchUsed() + s.prefetchWasted() <= s.prefetches(), what + " " + s);
          } else {
            assertEquals(0, s.prefetches(), what + " " + s);
          }
          assertTrue(s.bytesMoved() > 0, what + " " + s);
          hits[withLookahead ? 0 : 1] = s.hits();
          HybridExecutors.unwrap(m.experts()).orElseThrow().sync();
        }
      }
      // (about 90-110 against 60-65 hits of 209 here: the predictions are mostly right)
      assertTrue(hits[0] > hits[1], b.name() + ": prefetching raises the hit count: " + Arrays.toString(hits));
    }
  }

  @Test
  void hybridStatsAddUpPerDecoderLayerAndReset(@TempDir Path dir) throws IOException {
    deep(dir, 3); // decoder layer 0 dense, 1..3 MoE
    for (DeviceKind kind : List.of(DeviceKind.EMULATED, DeviceKind.NONE)) {
      LoadOptions o = new LoadOptions(1, null, 32).withExecutors(HybridExecutors.factory(PolicyBundle.HYBRIMOE,
          GpuBudget.ratio(0.25), kind, ExpertFormat.BF16, paperLikeCost())); // the GPU gets experts
      try (CausalLm m = load(dir, null, o)) {
        decode(m, PROMPT, greedy(3));
        ExecutorStats s = m.experts().stats();
        assertEquals(4, s.layers(), s.toString());
        assertEquals(0, s.cpuExperts()[0] + s.gpuExperts()[0], "the dense layer: " + s);
        for (int l = 1; l < 4; l++) {
          assertTrue(s.cpuExperts()[l] + s.gpuExperts()[l] >= 4 * 4, "layer " + l + ": at least top-k per call " + s);
        }
        assertEquals(s.activations(), s.cpuTotal() + s.gpuTotal(), s.toString());
        assertTrue(s.hits() <= s.activations() && s.hitRate() >= 0 && s.hitRate() <= 1, s.toString());
        if (kind == DeviceKind.NONE) {
          assertEquals(0, s.gpuTotal() + s.hits() + s.bytesMoved() + s.prefetches() + s.demandTransfers(), s.toString());
        } else {
          assertTrue(s.gpuTotal() > 0, s.toString());
        }
        HybridMoe h = HybridExecutors.unwrap(m.experts()).orElseThrow();
        h.sync();
        assertFalse(h.recentTimelines().isEmpty());
        assertEquals(3, h.layers());
        m.experts().resetStats();
        ExecutorStats r = m.experts().stats();
        assertEquals(0, r.activations() + r.cpuTotal() + r.gpuTotal() + r.hits() + r.prefetches() + r.bytesMoved()
            + r.demandTransfers() + r.fills(), r.toString());
        decode(m, PROMPT, greedy(1)); // counting resumes
        assertTrue(m.experts().stats().activations() > 0);
      }
    }
  }

  @Test
  void byteBudgetsBecomeCacheSlotsAfterScratchAndStaging() {
    long slot = 12_800;
    long scratch = 1 << 20;
    int staging = 4;
    long fixed = scratch + staging * slot;
    assertEquals(5, GpuBudget.bytes(fixed + 5 * slot + slot / 2).cacheSlots(4, 16, slot, staging, scratch));
    assertEquals(1, GpuBudget.bytes(fixed + slot).cacheSlots(4, 16, slot, staging, scratch));
    assertEquals(64, GpuBudget.bytes(Long.MAX_VALUE / 2).cacheSlots(4, 16, slot, staging, scratch), "all experts");
    assertEquals(16, GpuBudget.ratio(0.25).cacheSlots(4, 16, slot, staging, scratch));
    assertEquals(64, GpuBudget.ratio(1).cacheSlots(4, 16, slot, staging, scratch));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GpuBudget.bytes(fixed + slot - 100).cacheSlots(4, 16, slot, staging, scratch));
    assertTrue(e.getMessage().contains("100 B missing"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> GpuBudget.bytes(1 << 20).cacheSlots(1, 8, slot, staging, MemoryBudget.DEFAULT_SCRATCH_BYTES));
    long missing = MemoryBudget.DEFAULT_SCRATCH_BYTES + 5 * slot - (1 << 20);
    assertTrue(e.getMessage().contains("(" + missing + " B) missing"), e.getMessage());
    assertTrue(e.getMessage().contains("holds no cached expert"), e.getMessage());
    assertEquals(MemoryBudget.DEFAULT_SCRATCH_BYTES, HybridExecutors.scratchBytes(DeviceKind.CUDA));
    assertEquals(0, HybridExecutors.scratchBytes(DeviceKind.EMULATED));
  }

  @Test
  void invalidBudgetsAreRejected() {
    for (double r : new double[] {0, -0.1, 1.5, Double.NaN}) {
      assertThrows(IllegalArgumentException.class, () -> GpuBudget.ratio(r), "ratio " + r);
    }
    for (long b : new long[] {0, -1}) {
      assertThrows(IllegalArgumentException.class, () -> GpuBudget.bytes(b), "bytes " + b);
    }
    assertThrows(IllegalArgumentException.class, () -> new GpuBudget(0.5, 1024), "both set");
    assertThrows(IllegalArgumentException.class, () -> new GpuBudget(0, 0), "neither set");
    assertThrows(IllegalArgumentException.class, () -> new GpuBudget(2, 0));
    assertThrows(IllegalArgumentException.class, () -> new GpuBudget(0, -5));
    assertTrue(GpuBudget.ratio(0.5).isRatio());
    assertFalse(GpuBudget.bytes(1).isRatio());
    assertThrows(IllegalArgumentException.class,
        () -> HybridExecutors.factory(PolicyBundle.HYBRIMOE, 0.0, DeviceKind.EMULATED, ExpertFormat.BF16),
        "the ratio overload validates too");
  }

  @Test
  void aByteBudgetSizesTheEmulatedDeviceAndOneTooSmallFailsTheLoad(@TempDir Path dir) throws IOException {
    deep(dir, 2);
    ModelMaker.Spec s = ModelMaker.Spec.defaults("deepseek_v2");
    long slot = ExpertShape.bf16(s.hidden(), s.expertFf()).bytes();
    int pinned = HybridExecutors.stagingSlots(16) + 2; // staging, and each layer's bf16 shared expert
    float[][] want;
    try (CausalLm m = load(dir, null, new LoadOptions(1, null, 32))) {
      want = decode(m, PROMPT, greedy(2));
    }
    // 6 of 32 experts cached (no scratch on the emulated device).
    try (CausalLm m = load(dir, null, hybrid(PolicyBundle.HYBRIMOE, GpuBudget.bytes((pinned + 6) * slot),
        DeviceKind.EMULATED))) {
      assertTrue(maxRelDiff(decode(m, PROMPT, greedy(2)), want) < TOL);
      assertTrue(m.experts().stats().hits() > 0);
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, null,
        hybrid(PolicyBundle.HYBRIMOE, GpuBudget.bytes(pinned * slot), DeviceKind.EMULATED)));
    assertTrue(e.getMessage().contains(slot + " B) missing") || e.getMessage().contains(" " + slot + " B missing"),
        e.getMessage());
    // Without a device the budget does not matter.
    try (CausalLm m = load(dir, null, hybrid(PolicyBundle.HYBRIMOE, GpuBudget.bytes(1), DeviceKind.NONE))) {
      assertTrue(maxRelDiff(decode(m, PROMPT, greedy(2)), want) < TOL);
    }
  }

  /** A make-model checkpoint of {@code arch} with shared experts, 3 layers, in {@code dtype}. */
  static Path withShared(Path dir, String arch, String dtype) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults(arch); // qwen2_moe: shared ff 48 over routed 32 (padded pieces)
    ModelMaker.write(new ModelMaker.Spec(s.arch(), 3, s.hidden(), s.experts(), s.topK(), s.expertFf(), s.heads(),
        s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), 1, s.kvLoraRank(), s.qLoraRank(), s.rope(), s.nope(),
        s.vDim(), arch.equals("deepseek_v2") ? 2 : s.nShared(), s.routedScale(), s.normTopk(), false, 3, dtype, true, 1),
        dir);
    return dir;
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"qwen2_moe", "deepseek_v2"})
  void sharedExpertsRunPinnedOnTheDeviceWithTheModelsNumbers(String arch, @TempDir Path tmp) throws IOException {
    Path dir = withShared(tmp.resolve("bf16"), arch, "BF16");
    int[] tokens = greedy(3);
    float[][] want;
    try (CausalLm m = load(dir, null, new LoadOptions(1, null, 32))) {
      want = decode(m, PROMPT, tokens);
    }
    for (PolicyBundle b : List.of(PolicyBundle.HYBRIMOE, PolicyBundle.ADAPMOE, PolicyBundle.KTRANSFORMERS)) {
      LoadOptions o = new LoadOptions(1, null, 32).withExecutors(HybridExecutors.factory(b, GpuBudget.ratio(0.25),
          DeviceKind.EMULATED, ExpertFormat.BF16, paperLikeCost()));
      try (CausalLm m = load(dir, null, o)) {
        assertFalse(m.experts().runsSharedExpert(0), "layer 0 is dense");
        assertTrue(m.experts().runsSharedExpert(1) && m.experts().runsSharedExpert(2), b.name());
        float[][] got = decode(m, PROMPT, tokens.clone());
        assertTrue(maxRelDiff(got, want) < TOL, arch + " " + b.name() + ": " + maxRelDiff(got, want));
        ExecutorStats s = m.experts().stats();
        assertEquals(s.activations(), s.cpuTotal() + s.gpuTotal(), "shared experts are not counted: " + s);
      }
    }
    // Without a device, in int4, or from f32 weights (bf16 on the device would change them): the model's path.
    try (CausalLm m = load(dir, null, hybrid(PolicyBundle.HYBRIMOE, GpuBudget.ratio(0.25), DeviceKind.NONE))) {
      assertFalse(m.experts().runsSharedExpert(1));
      assertTrue(maxRelDiff(decode(m, PROMPT, tokens.clone()), want) < TOL);
    }
    try (CausalLm m = load(dir, null, new LoadOptions(1, null, 32).withExecutors(HybridExecutors.factory(
        PolicyBundle.HYBRIMOE, GpuBudget.ratio(0.25), DeviceKind.EMULATED, ExpertFormat.INT4)))) {
      assertFalse(m.experts().runsSharedExpert(1));
    }
    Path f32 = withShared(tmp.resolve("f32"), arch, "F32");
    try (CausalLm m = load(f32, null, hybrid(PolicyBundle.HYBRIMOE, GpuBudget.ratio(0.25), DeviceKind.EMULATED))) {
      assertFalse(m.experts().runsSharedExpert(1));
    }
  }

  @Test
  void pinnedSharedExpertsCountAgainstAByteBudget(@TempDir Path tmp) throws IOException {
    Path dir = withShared(tmp, "qwen2_moe", "BF16"); // 2 MoE layers, 2 shared pieces each
    ModelMaker.Spec s = ModelMaker.Spec.defaults("qwen2_moe");
    long slot = ExpertShape.bf16(s.hidden(), s.expertFf()).bytes();
    long pinned = HybridExecutors.stagingSlots(s.experts()) + 2 * 2;
    try (CausalLm m = load(dir, null, hybrid(PolicyBundle.HYBRIMOE, GpuBudget.bytes((pinned + 1) * slot),
        DeviceKind.EMULATED))) {
      assertTrue(m.experts().runsSharedExpert(1));
      decode(m, PROMPT, greedy(1));
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(dir, null,
        hybrid(PolicyBundle.HYBRIMOE, GpuBudget.bytes(pinned * slot), DeviceKind.EMULATED)));
    assertTrue(e.getMessage().contains(pinned + " staging and shared-expert slots"), e.getMessage());
  }

  @Test
  void autoIsCudaWhereTheRuntimeFindsADeviceElseCpuOnly(@TempDir Path dir) throws IOException {
    boolean gpu = !CudaDiscovery.discover().devices().isEmpty();
    assertEquals(gpu ? DeviceKind.CUDA : DeviceKind.NONE, HybridExecutors.resolve(DeviceKind.AUTO));
    for (DeviceKind k : List.of(DeviceKind.CUDA, DeviceKind.EMULATED, DeviceKind.NONE)) {
      assertEquals(k, HybridExecutors.resolve(k));
    }
    deep(dir, 2);
    try (CausalLm m = load(dir, null, hybrid(PolicyBundle.HYBRIMOE, GpuBudget.ratio(0.5), DeviceKind.AUTO))) {
      assertEquals(HybridExecutors.resolve(DeviceKind.AUTO), HybridExecutors.deviceKind(m.experts()).orElseThrow());
      decode(m, PROMPT, greedy(1));
    }
    try (CausalLm m = load(dir, null, new LoadOptions(1, null, 32))) {
      assertTrue(HybridExecutors.unwrap(m.experts()).isEmpty(), "the CPU executor is not a hybrid one");
      assertTrue(HybridExecutors.deviceKind(m.experts()).isEmpty());
    }
  }
}
