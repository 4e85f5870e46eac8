package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.api.GenerateRequest;
import org.hybrimoe.api.Model;
import org.hybrimoe.api.ModelOptions;
import org.hybrimoe.device.Device;
import org.hybrimoe.runtime.CudaDiscovery;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Dense linears on a dense device ({@link DenseOffload}). The emulated device computes with the
 * CPU kernels, so a model with its dense linears there must give the CPU path's logits (to the
 * last bits but SwiGLU's exp, which C++ and Java may round apart); what was placed must be every
 * whole-weight projection, dense MLP, model-run shared expert and the LM head, or what a byte
 * limit lets through, the rest staying on the CPU. On a GPU the same models and HuggingFace's
 * golden logits run with the dense linears on CUDA (skipped without one).
 */
class DenseOffloadTest {
  private static final DenseOffload.Options EMULATED = new DenseOffload.Options(Device.Kind.EMULATED, 0);

  private static boolean gpu() {
    return !CudaDiscovery.discover().devices().isEmpty();
  }

  private static DenseOffload.Options kind(String k) {
    if (k.equals("CUDA")) {
      Assumptions.assumeTrue(gpu(), "no CUDA device");
    }
    return new DenseOffload.Options(Device.Kind.valueOf(k), 0);
  }

  // A prefill of 9 tokens (the device's many-token path) and 3 single-token steps (its streaming path).
  private static List<float[]> run(CausalLm m) {
    List<float[]> out = new ArrayList<>();
    try (Session s = m.newSession(16)) {
      assertEquals(m.denseOffload().map(DenseOffload::attentionOnDevice).orElse(false), s.attentionOnDevice(),
          "the session's cache is where the model's attention runs");
      for (float[] row : s.forward(5, 17, 2, 60, 33, 8, 91, 40, 11)) {
        out.add(row);
      }
      for (int t : new int[] {7, 3, 12}) {
        out.add(s.forwardLast(t));
      }
    }
    return out;
  }

  private static double maxDiff(List<float[]> a, List<float[]> b) {
    double m = 0;
    for (int t = 0; t < a.size(); t++) {
      for (int i = 0; i < a.get(t).length; i++) {
        m = Math.max(m, Math.abs(a.get(t)[i] - b.get(t)[i]));
      }
    }
    return m;
  }

  private static int wholeWeightLinears(CausalLm m) {
    int n = 1; // the LM head
    for (DecoderLayer l : m.layers()) {
      n += l.attention().linears().size();
      if (l.ffn() instanceof DenseMlp) {
        n += 3;
      } else if (l.ffn() instanceof MoeBlock b && b.sharedExpert() != null) {
        n += 3;
      }
    }
    return n;
  }

  @ParameterizedTest
  @CsvSource({
    "mixtral, F32", "qwen2_moe, BF16", "qwen3_moe, F32", "olmoe, BF16", "deepseek_v2, BF16", "deepseek_v3, F32",
    "deepseek_v2, F16"
  })
  void emulatedDenseDeviceGivesTheCpuLogits(String arch, String dtype, @TempDir Path dir) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults(arch);
    ModelMaker.write(new ModelMaker.Spec(s.arch(), 3, 64, 8, 2, s.expertFf(), s.heads(), s.kvHeads(), s.vocab(),
        s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(), arch.equals("deepseek_v2") ? 24 : s.qLoraRank(),
        s.rope(), s.nope(), s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), s.yarn(), 5, dtype, false, 1), dir);
    List<float[]> cpu;
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32))) {
      assertTrue(m.denseOffload().isEmpty());
      cpu = run(m);
    }
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32).withDense(EMULATED))) {
      DenseOffload.Placement p = m.denseOffload().orElseThrow().placement();
      assertEquals(wholeWeightLinears(m), p.deviceLinears(), "every whole-weight linear goes to the device");
      assertEquals(0, p.cpuLinears());
      assertTrue(m.denseOffload().orElseThrow().attentionOnDevice(), "every projection is there: the attention goes too");
      assertTrue(m.denseOffload().orElseThrow().device().bytes() > p.deviceBytes(), "placed weights and the self-check's");
      double err = maxDiff(cpu, run(m));
      System.out.printf("%s %s: emulated dense device vs CPU, max logit difference %.3g%n", arch, dtype, err);
      assertTrue(err < 1e-5, arch + ": " + err);
    }
  }

  @Test
  void aByteLimitKeepsTheRestOnTheCpu(@TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults("deepseek_v2").withLayers(3), dir);
    List<float[]> cpu;
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32))) {
      cpu = run(m);
    }
    long limit = 40_000;
    try (CausalLm m = ModelRegistry.load(dir,
        new LoadOptions(1, null, 32).withDense(new DenseOffload.Options(Device.Kind.EMULATED, limit)))) {
      DenseOffload.Placement p = m.denseOffload().orElseThrow().placement();
      assertTrue(p.deviceLinears() > 0 && p.cpuLinears() > 0, p.toString());
      assertTrue(p.deviceBytes() <= limit, p.toString());
      assertEquals(wholeWeightLinears(m), p.deviceLinears() + p.cpuLinears());
      assertTrue(maxDiff(cpu, run(m)) < 1e-5);
    }
  }

  @Test
  void theApiPlacesSharedExpertsTheExecutorLeaves(@TempDir Path dir) throws IOException {
    // bf16 weights and experts: the hybrid executor pins Qwen2-MoE's shared experts itself, so the
    // dense device gets the attention, the dense layer and the head only.
    ModelMaker.Spec s = ModelMaker.Spec.defaults("qwen2_moe").withVocab(300);
    ModelMaker.write(new ModelMaker.Spec(s.arch(), 3, 64, 8, 2, s.expertFf(), s.heads(), s.kvHeads(), s.vocab(),
        s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(), s.qLoraRank(), s.rope(), s.nope(), s.vDim(),
        s.nShared(), s.routedScale(), s.normTopk(), s.yarn(), 2, "BF16", true, 1), dir);
    ModelOptions.Builder b = ModelOptions.builder().device(ModelOptions.Device.EMULATED).threads(1).cacheRatio(0.5);
    GenerateRequest req = GenerateRequest.builder().promptTokens(1, 2, 3, 4).maxTokens(5).ignoreEos(true).build();
    int[] onCpu;
    try (Model m = Model.load(dir, b.dense(ModelOptions.Dense.CPU).build())) {
      assertTrue(m.densePlacement().isEmpty());
      onCpu = m.generate(req).tokens();
    }
    try (Model m = Model.load(dir, b.dense(ModelOptions.Dense.AUTO).build())) {
      assertTrue(m.densePlacement().isEmpty(), "AUTO takes CUDA only, not the emulated device");
    }
    try (Model m = Model.load(dir, b.dense(ModelOptions.Dense.DEVICE).build())) {
      DenseOffload.Placement p = m.densePlacement().orElseThrow();
      // 3 layers x (q, k, v, o) + the dense layer's MLP + the head; the 2 MoE layers' shared experts
      // run in the executor.
      assertEquals(3 * 4 + 3 + 1, p.deviceLinears(), p.toString());
      assertEquals(0, p.cpuLinears());
      assertEquals(java.util.Arrays.toString(onCpu), java.util.Arrays.toString(m.generate(req).tokens()));
    }
  }

  @Test
  void denseOnTheDeviceNeedsOne() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelOptions.builder()
        .device(ModelOptions.Device.CPU).dense(ModelOptions.Dense.DEVICE).build());
    assertTrue(e.getMessage().contains("dense"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new DenseOffload.Options(Device.Kind.EMULATED, -1));
  }

  @ParameterizedTest
  @ValueSource(strings = {"EMULATED", "CUDA"})
  void goldenLogitsWithDenseOnTheDevice(String k) throws IOException {
    DenseOffload.Options o = kind(k);
    Path dir = GoldenModelTest.requireFixtures();
    String[][] models = {
      {"full_mixtral", "mixtral_tiny_config.json"},
      {"qwen_moe_tiny", "qwen_moe_tiny_config.json"},
      {"deepseek_full", "deepseek_full_config.json"}
    };
    for (String[] nm : models) {
      JsonNode j = GoldenModelTest.json(dir.resolve(nm[0] + ".json"));
      int[] ids = GoldenModelTest.ints(j.get("input_ids"));
      JsonNode ref = j.get("hf_logits");
      try (CausalLm m = ModelRegistry.load(dir.resolve(nm[1]), dir.resolve(nm[0] + ".safetensors"),
              new LoadOptions(2, null, 32).withDense(o));
          Session s = m.newSession(16)) {
        assertTrue(m.denseOffload().orElseThrow().placement().deviceLinears() > 0);
        float[][] logits = s.forward(ids);
        int v = m.vocabSize();
        double err = 0;
        for (int t = 0; t < ids.length; t++) {
          for (int i = 0; i < v; i++) {
            err = Math.max(err, Math.abs(logits[t][i] - ref.get(t * v + i).asDouble()));
          }
        }
        System.out.printf("golden %s, dense on %s: max |logit - HF| = %.3g%n", nm[0], k, err);
        assertTrue(err < GoldenModelTest.TOL, nm[0] + ": max abs error " + err);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"EMULATED", "CUDA"})
  void goldenGreedyDecodeWithDenseOnTheDevice(String k) throws IOException {
    DenseOffload.Options o = kind(k);
    Path dir = GoldenModelTest.requireFixtures();
    JsonNode j = GoldenModelTest.json(dir.resolve("full_mixtral_gen.json"));
    int[] prompt = GoldenModelTest.ints(j.get("prompt_ids"));
    int[] expected = GoldenModelTest.ints(j.get("generated_ids"));
    try (CausalLm m = ModelRegistry.load(dir.resolve("mixtral_tiny_config.json"),
            dir.resolve("full_mixtral.safetensors"), new LoadOptions(2, null, 32).withDense(o));
        Session s = m.newSession(16)) {
      float[] last = s.forwardLast(prompt);
      for (int step = 0; step < expected.length; step++) {
        int got = GoldenModelTest.argmax(last);
        assertEquals(expected[step], got, "step " + step);
        if (step + 1 < expected.length) {
          last = s.forwardLast(got);
        }
      }
    }
  }
}
