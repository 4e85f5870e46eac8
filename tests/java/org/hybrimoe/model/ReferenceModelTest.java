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
 * f32 / bf16 / f16 weights, one file and shards; DeepSeek also with q-lora and YaRN. The engine
 * runs a prefill of 6 tokens then 3 KV-cached decode steps; every position's logits must agree
 * within 1e-5 of max(1, max |logit|). Random norms, biases and routed_scaling_factor 1.5 make
 * conventions the HF fixtures cannot see (norm weights, bias, scaling) show.
 */
class ReferenceModelTest {
  static final double TOL = 1e-5; // measured: 2e-7 to 4e-7
  // bf16 weights on AVX-512 with the bf16 extension go through VDPBF16PS, which rounds the
  // activations to bf16 as well (measured on an AVX-512 Xeon: 4e-4 to 1.2e-3 of the logit scale).
  static final double TOL_BF16_ACTIVATIONS = 1e-2;

  /** Whether this machine's kernels round activations to bf16 for bf16 weights. */
  static boolean roundsActivationsToBf16() {
    org.hybrimoe.nativeapi.Native.load();
    int[] f = new int[1];
    org.hybrimoe.nativeapi.Native.check(
        "hmoe_cpu_features", org.hybrimoe.nativeapi.HmoeNative.hmoe_cpu_features(f));
    return org.hybrimoe.nativeapi.Native.kernelVariant() == org.hybrimoe.nativeapi.Native.KernelVariant.AVX512
        && (f[0] & org.hybrimoe.nativeapi.HmoeNative.HMOE_CPU_AVX512_BF16) != 0;
  }

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
    return out.stream();
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
  void engineAgreesWithFloat64Reference(String name, ModelMaker.Spec spec, @TempDir Path dir) throws IOException {
    ModelMaker.write(spec, dir);
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
      double err = 0;
      double scale = 1;
      for (int t = 0; t < ids.length; t++) {
        for (int i = 0; i < ref[t].length; i++) {
          err = Math.max(err, Math.abs(got[t][i] - ref[t][i]));
          scale = Math.max(scale, Math.abs(ref[t][i]));
        }
      }
      double tol = "BF16".equals(spec.dtype()) && roundsActivationsToBf16() ? TOL_BF16_ACTIVATIONS : TOL;
      System.out.printf("reference %s: max error %.3g (scale %.3g, tolerance %.0e)%n", name, err, scale, tol);
      assertTrue(err < tol * scale, name + ": max abs error " + err + " vs float64 reference");
    }
  }

  /**
   * Where the bf16 kernels round activations (AVX-512 with bf16), the same bf16 model must still
   * agree tightly through the AVX2 kernels, which keep activations in f32: the looser tolerance
   * above is the rounding, not a hidden error.
   */
  @org.junit.jupiter.api.Test
  void bf16WeightsAgreeTightlyWhenActivationsStayF32(@TempDir Path dir) throws IOException {
    org.junit.jupiter.api.Assumptions.assumeTrue(roundsActivationsToBf16(), "activations stay f32 here already");
    ModelMaker.Spec spec = with(ModelMaker.Spec.defaults("mixtral"), 2, 64, 8, 2, "BF16", false, 1, 0, false);
    ModelMaker.write(spec, dir);
    int[] ids = {5, 9, 2, 7};
    double[][] ref = new ReferenceForward(dir).forward(ids);
    org.hybrimoe.nativeapi.Native.KernelVariant before = org.hybrimoe.nativeapi.Native.kernelVariant();
    org.hybrimoe.nativeapi.Native.forceKernelVariant(org.hybrimoe.nativeapi.Native.KernelVariant.AVX2);
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(2, null, 32));
        Session s = m.newSession(8)) {
      float[][] got = s.forward(ids);
      double err = 0, scale = 1;
      for (int t = 0; t < ids.length; t++) {
        for (int i = 0; i < ref[t].length; i++) {
          err = Math.max(err, Math.abs(got[t][i] - ref[t][i]));
          scale = Math.max(scale, Math.abs(ref[t][i]));
        }
      }
      assertTrue(err < TOL * scale, "bf16 weights through AVX2: max abs error " + err);
    } finally {
      org.hybrimoe.nativeapi.Native.forceKernelVariant(before);
    }
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
