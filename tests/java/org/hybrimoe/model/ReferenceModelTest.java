package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine against {@link ReferenceForward} (plain-Java float64, no native code) on
 * make-model outputs of every architecture, at two sizes, packed and classic expert layouts,
 * f32 / bf16 / f16 / fp8 (block-quantized, dequantized at load) weights, one file and shards;
 * DeepSeek also with q-lora and YaRN. The engine
 * runs a prefill of 6 tokens then 3 KV-cached decode steps; every position's logits must agree
 * within 1e-5 of max(1, max |logit|). Random norms, biases and routed_scaling_factor 1.5 make
 * conventions the HF fixtures cannot see (norm weights, bias, scaling) show.
 */
class ReferenceModelTest {
  static final double TOL = 1e-5; // measured: 2e-7 to 4e-7
  // bf16 weights: the engine's rule (cpu_moe.h) rounds every linear's input to bf16 on every
  // variant, which this float64 reference does not (measured: 4e-4 to 1.2e-3 of the logit scale).
  static final double TOL_BF16_ACTIVATIONS = 1e-2;
  // Two variants computing the same rule differ by summation order, and now and then an element
  // rounded to the neighbouring bf16 value: one such flip moves a logit by about a weight times a
  // bf16 ulp (2^-8) of one activation, ~1e-4 of the scale on these small models. Measured here
  // (scalar, AVX2, AVX-512 without bf16, no flip): 1.4e-7; VDPBF16PS sums in another order.
  static final double TOL_BETWEEN_VARIANTS = 5e-4;

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (String arch : ModelMaker.ARCHITECTURES) {
      ModelMaker.Spec base = ModelMaker.Spec.defaults(arch);
      out.add(Arguments.of(arch + " small packed f32", base));
      out.add(Arguments.of(arch + " small classic bf16", with(base, 2, 64, 8, 2, "BF16", false, 1, 0, false)));
      out.add(Arguments.of(arch + " larger classic f32 sharded",
          with(base, 3, 96, 6, 3, "F32", false, 3, 0, false)));
      out.add(Arguments.of(arch + " larger packed f16", with(base, 3, 96, 6, 3, "F16", true, 1, 0, false)));
    }
    ModelMaker.Spec ds = ModelMaker.Spec.defaults("deepseek_v2");
    out.add(Arguments.of("deepseek_v2 q-lora yarn", with(ds, 2, 64, 8, 2, "F32", true, 1, 12, true)));
    out.add(Arguments.of("deepseek_v2 q-lora yarn bf16 classic", with(ds, 3, 64, 8, 3, "BF16", false, 2, 12, true)));
    // FP8: make-model's small-model blocks [24, 40] (partial blocks at both edges of most matrices),
    // and power-of-two [16, 16] blocks on a larger sharded model (scales beside their weights).
    for (String arch : ModelMaker.ARCHITECTURES) {
      out.add(Arguments.of(arch + " small classic fp8", with(ModelMaker.Spec.defaults(arch), 2, 64, 8, 2, "FP8", false,
          1, 0, false)));
    }
    for (String arch : new String[] {"mixtral", "qwen3_moe", "deepseek_v2"}) {
      out.add(Arguments.of(arch + " larger packed fp8 sharded 16x16", with(ModelMaker.Spec.defaults(arch), 3, 96, 6, 3,
          "FP8", true, 3, 0, false), new int[] {16, 16}));
    }
    out.add(Arguments.of("deepseek_v2 q-lora yarn fp8 packed", with(ds, 2, 64, 8, 2, "FP8", true, 1, 12, true)));
    // Cases given as (name, spec) take make-model's default FP8 block: a null third argument.
    return out.stream().map(a -> a.get().length == 2 ? Arguments.of(a.get()[0], a.get()[1], null) : a);
  }

  /** Writes spec into dir, FP8 with fp8Block when not null (else make-model's default block). */
  static void write(ModelMaker.Spec spec, int[] fp8Block, Path dir) throws IOException {
    if (fp8Block == null) {
      ModelMaker.write(spec, dir);
    } else {
      ModelMaker.write(spec, dir, fp8Block[0], fp8Block[1]);
    }
  }

  /** The tolerance for a dtype: bf16 weights (fp8 ones become bf16) round activations to bf16. */
  static double tolerance(String dtype) {
    return "BF16".equals(dtype) || "FP8".equals(dtype) ? TOL_BF16_ACTIVATIONS : TOL;
  }

  static ModelMaker.Spec with(
      ModelMaker.Spec s, int layers, int hidden, int experts, int topK, String dtype, boolean packed, int shards,
      int qLora, boolean yarn) {
    return new ModelMaker.Spec(
        s.arch(), layers, hidden, experts, topK, s.expertFf(), s.heads(), s.kvHeads(), s.vocab(), s.sharedFf(),
        s.denseFf(), s.denseLayers(), s.kvLoraRank(), qLora, s.rope(), s.nope(), s.vDim(), s.nShared(),
        s.routedScale(), s.normTopk(), yarn, s.seed() + layers * 31L + hidden, dtype, packed, shards);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void engineAgreesWithFloat64Reference(String name, ModelMaker.Spec spec, int[] fp8Block, @TempDir Path dir)
      throws IOException {
    write(spec, fp8Block, dir);
    assertEquals(spec.shards() > 1, Files.exists(dir.resolve("model.safetensors.index.json")));
    int[] ids = new int[9];
    SplittableRandom r = new SplittableRandom(spec.seed());
    for (int i = 0; i < ids.length; i++) {
      ids[i] = r.nextInt(spec.vocab());
    }
    double[][] ref = new ReferenceForward(dir).forward(ids);
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(2, null, 32));
        Session s = m.newSession(16)) {
      assertEquals(spec.arch(), m.modelType());
      float[][] got = new float[ids.length][];
      float[][] pre = s.forward(java.util.Arrays.copyOf(ids, 6));
      System.arraycopy(pre, 0, got, 0, 6);
      for (int t = 6; t < ids.length; t++) {
        got[t] = s.forward(ids[t])[0];
      }
      ReferenceForward.Deviation dev = ReferenceForward.deviation(got, ref, 1);
      double err = dev.max();
      double scale = dev.scale();
      double tol = tolerance(spec.dtype());
      System.out.printf("reference %s: max error %.3g (scale %.3g, tolerance %.0e)%n", name, err, scale, tol);
      assertTrue(err < tol * scale, name + ": max abs error " + err + " vs float64 reference");
    }
  }

  /**
   * FP8 experts dequantized to bf16 at load then converted to int8 or int4 (LoadOptions'
   * expertFormat on top): the layers hold the requested format and the logits stay within the
   * conversion's own error of the float64 reference (ExpertConversionTest's tolerances).
   */
  @ParameterizedTest(name = "{0} {1}")
  @org.junit.jupiter.params.provider.CsvSource({
    "mixtral, INT8, 0.01", "qwen3_moe, INT8, 0.01", "deepseek_v2, INT8, 0.01", "deepseek_v2, INT4, 0.06"
  })
  void fp8ExpertsConvertedAtLoadStayNearTheReference(String arch, org.hybrimoe.expert.ExpertFormat format, double tol,
      @TempDir Path dir) throws IOException {
    ModelMaker.Spec spec = with(ModelMaker.Spec.defaults(arch), 2, 64, 8, 2, "FP8", false, 1, 0, false);
    ModelMaker.write(spec, dir);
    int[] ids = {5, 17, 3, 40, 22, 9};
    double[][] ref = new ReferenceForward(dir).forward(ids);
    for (org.hybrimoe.expert.ExpertFormat f : new org.hybrimoe.expert.ExpertFormat[] {null, format}) {
      try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(2, f, 32));
          Session s = m.newSession(8)) {
        // Unconverted, the dequantized experts are borrowed as bf16.
        assertEquals(f == null ? org.hybrimoe.expert.ExpertFormat.BF16 : f,
            ((CpuMoeExecutor) m.experts()).layer(m.numLayers() - 1).format());
        float[][] got = s.forward(ids);
        ReferenceForward.Deviation dev = ReferenceForward.deviation(got, ref, 1);
        double err = dev.max();
        double scale = dev.scale();
        double limit = f == null ? tolerance("FP8") : tol;
        System.out.printf("reference %s fp8 experts as %s: max error %.3g (scale %.3g, tolerance %.0e)%n", arch,
            f == null ? "BF16" : f, err, scale, limit);
        assertTrue(err < limit * scale, arch + " fp8 as " + f + ": max abs error " + err);
        if (f != null) {
          assertTrue(err > TOL * scale, "conversion changed nothing: were the experts converted?");
        }
      }
    }
  }

  /**
   * The looser bf16 tolerance above is the rule's rounding, not a hidden error or a CPU's quirk:
   * the same bf16 model (and an fp8 one, bf16 after load) gives the same logits under every kernel
   * variant this CPU has (scalar, AVX2, AVX-512) for a prompt, within summation order.
   */
  @ParameterizedTest(name = "{0}")
  @org.junit.jupiter.params.provider.ValueSource(strings = {"BF16", "FP8"})
  void bf16WeightsGiveTheSameLogitsOnEveryVariant(String dtype, @TempDir Path dir) throws IOException {
    ModelMaker.Spec spec = with(ModelMaker.Spec.defaults("mixtral"), 2, 64, 8, 2, dtype, false, 1, 0, false);
    ModelMaker.write(spec, dir);
    int[] ids = {5, 9, 2, 7};
    org.hybrimoe.nativeapi.Native.KernelVariant before = org.hybrimoe.nativeapi.Native.kernelVariant();
    float[][] first = null;
    List<String> ran = new ArrayList<>();
    try {
      for (org.hybrimoe.nativeapi.Native.KernelVariant v : org.hybrimoe.nativeapi.Native.KernelVariant.values()) {
        if (v == org.hybrimoe.nativeapi.Native.KernelVariant.AUTO) {
          continue;
        }
        try {
          org.hybrimoe.nativeapi.Native.forceKernelVariant(v);
        } catch (org.hybrimoe.nativeapi.NativeException.Unsupported e) {
          System.out.println("ReferenceModelTest: variant " + v + " skipped: " + e.getMessage());
          continue;
        }
        ran.add(v.toString());
        try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(2, null, 32));
            Session s = m.newSession(8)) {
          float[][] got = s.forward(ids);
          if (first == null) {
            first = got;
            continue;
          }
          double[][] firstD = new double[first.length][];
          for (int i = 0; i < first.length; i++) {
            firstD[i] = new double[first[i].length];
            for (int j = 0; j < first[i].length; j++) {
              firstD[i][j] = first[i][j];
            }
          }
          ReferenceForward.Deviation dev = ReferenceForward.deviation(got, firstD, 1);
          System.out.printf("ReferenceModelTest: %s weights, %s against %s: %.3g of the logit scale%n", dtype, v,
              ran.get(0), dev.max() / dev.scale());
          assertTrue(dev.max() < TOL_BETWEEN_VARIANTS * dev.scale(),
              dtype + " weights, " + v + " against " + ran.get(0) + ": max abs error " + dev.max());
        }
      }
    } finally {
      org.hybrimoe.nativeapi.Native.forceKernelVariant(before);
    }
    assertTrue(ran.size() >= 2, "scalar and at least one vector variant run: " + ran);
  }

  /**
   * DeepSeek-V3/R1 checkpoints hold their multi-token-prediction module as one layer past
   * num_hidden_layers (num_nextn_predict_layers 1): it is skipped, not refused, and the model is
   * the first num_hidden_layers layers; a layer beyond both is still refused.
   */
  @org.junit.jupiter.api.Test
  void deepseekV3MtpLayerPastTheLastIsIgnored(@TempDir Path dir) throws IOException {
    ModelMaker.write(with(ModelMaker.Spec.defaults("deepseek_v3"), 3, 64, 8, 2, "FP8", false, 1, 0, false), dir);
    ModelLoadErrorsTest.editConfig(dir, "num_hidden_layers", 2); // layer 2 plays the MTP module
    ModelLoadErrorsTest.editConfig(dir, "num_nextn_predict_layers", 1);
    int[] ids = {3, 1, 4, 1, 5};
    double[][] ref = new ReferenceForward(dir).forward(ids); // runs num_hidden_layers layers
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32));
        Session s = m.newSession(8)) {
      assertEquals(2, m.numLayers());
      float[][] got = s.forward(ids);
      for (int t = 0; t < ids.length; t++) {
        for (int i = 0; i < ref[t].length; i++) {
          assertTrue(Math.abs(got[t][i] - ref[t][i]) < tolerance("FP8") * 4, "position " + t + " logit " + i);
        }
      }
    }
    ModelLoadErrorsTest.editConfig(dir, "num_nextn_predict_layers", 0);
    Exception e = org.junit.jupiter.api.Assertions.assertThrows(ModelFormatException.class,
        () -> ModelRegistry.load(dir, new LoadOptions(1, null, 32)).close());
    assertTrue(e.getMessage().contains("'num_hidden_layers' is 2 but the checkpoint has a layer 2"), e.getMessage());
  }

  @org.junit.jupiter.api.Test
  void tiedEmbeddingsServeAsTheLmHead(@TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults("qwen3_moe"), dir);
    // Hide lm_head.weight (same-length rename) and declare the embeddings tied.
    ModelLoadErrorsTest.patchHeader(dir.resolve("model.safetensors"), "\"lm_head.weight\"", "\"lm_head.unused\"");
    com.fasterxml.jackson.databind.ObjectMapper om = new com.fasterxml.jackson.databind.ObjectMapper();
    var cfg = (com.fasterxml.jackson.databind.node.ObjectNode) om.readTree(dir.resolve("config.json").toFile());
    cfg.put("tie_word_embeddings", true);
    om.writeValue(dir.resolve("config.json").toFile(), cfg);
    int[] ids = {3, 1, 4, 1, 5};
    double[][] ref = new ReferenceForward(dir).forward(ids);
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32));
        Session s = m.newSession(8)) {
      float[][] got = s.forward(ids);
      for (int t = 0; t < ids.length; t++) {
        for (int i = 0; i < ref[t].length; i++) {
          assertTrue(Math.abs(got[t][i] - ref[t][i]) < TOL * 4, "position " + t + " logit " + i);
        }
      }
    }
    // Untied with lm_head missing: a clear error naming the tensor.
    cfg.put("tie_word_embeddings", false);
    om.writeValue(dir.resolve("config.json").toFile(), cfg);
    Exception e = org.junit.jupiter.api.Assertions.assertThrows(ModelFormatException.class,
        () -> ModelRegistry.load(dir, new LoadOptions(1, null, 32)).close());
    assertTrue(e.getMessage().contains("missing tensor 'lm_head.weight'"), e.getMessage());
  }
}
