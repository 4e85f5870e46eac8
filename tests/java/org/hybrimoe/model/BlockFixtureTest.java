package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The single-block HuggingFace references (../shared/fixtures/moe-tiny) through the runtime's own
 * MoE block: its loaders (packed experts, shared experts), {@link Router} and the CPU executor.
 * Max abs error under 1e-4 (f32 against HF's float64). Skipped where the fixtures are absent.
 */
class BlockFixtureTest {
  @ParameterizedTest
  @ValueSource(strings = {"mixtral_layer0", "qwen2_moe_layer0", "qwen3_moe_layer0", "deepseek_block"})
  void blockMatchesHuggingFace(String name) throws IOException {
    Path dir = GoldenModelTest.fixtures();
    Assumptions.assumeTrue(dir != null, "fixtures absent (set -Dhybrimoe.shared or HYBRIMOE_SHARED)");
    JsonNode j = new ObjectMapper().readTree(dir.resolve(name + ".json").toFile());
    boolean ds = name.equals("deepseek_block");
    int e = ds ? j.get("n_routed_experts").asInt() : j.get("num_experts").asInt();
    int k = ds ? j.get("num_experts_per_tok").asInt() : j.get("experts_per_token").asInt();
    int d = ds ? j.get("hidden").asInt() : j.get("d_model").asInt();
    int ff = ds ? j.get("moe_intermediate_size").asInt() : j.get("d_ff").asInt();
    String p = ds ? "model.layers.0.mlp." : j.get("tensor_prefix").asText() + ".";
    JsonNode in = j.get(ds ? "probe" : "input");
    JsonNode ref = j.get(ds ? "mlp_output" : "hf_ref");
    boolean mixtral = !ds && j.get("model").asText().equals("mixtral");
    boolean norm = mixtral || (!ds && j.get("norm_topk_prob").asBoolean());
    try (Engine engine = Engine.create(2);
        ModelWeights w = ModelWeights.single(dir.resolve(name + ".safetensors"));
        MoeLayerExecutor exec = Layers.executor(engine, java.util.Map.of(0, Layers.experts(w, 0, p + "experts.",
            p + "experts.", new String[] {"gate_proj", "up_proj", "down_proj"}, e, d, ff, name)),
            LoadOptions.defaults())) {
      String router = w.has(p + "gate.weight") ? p + "gate.weight" : p + "router.weight";
      DenseMlp shared = null;
      Linear sharedGate = null;
      if (ds) {
        shared = Layers.mlp(w, p + "shared_experts.", d, ff * j.get("n_shared_experts").asInt(), name);
      } else if (j.get("has_shared").asBoolean()) {
        int sff = (int) w.tensor(p + "shared_expert.gate_proj.weight").shape()[0];
        shared = Layers.mlp(w, p + "shared_expert.", d, sff, name);
        sharedGate = w.linear(p + "shared_expert_gate.weight", null, 1, d, name);
      }
      MoeBlock block = new MoeBlock(w.linear(router, null, e, d, name), Router.softmax(e, k, norm), shared, sharedGate);
      int n = in.size() / d;
      FloatBuffer x = DenseOps.floats(in.size());
      for (int i = 0; i < in.size(); i++) {
        x.put(i, (float) in.get(i).asDouble());
      }
      FloatBuffer out = DenseOps.floats(in.size());
      block.forward(new ForwardContext(engine, null, exec, null), 0, x, n, out);
      double err = 0;
      for (int i = 0; i < ref.size(); i++) {
        err = Math.max(err, Math.abs(out.get(i) - ref.get(i).asDouble()));
      }
      System.out.printf("block %s: max error %.3g%n", name, err);
      assertTrue(err < 1e-4, name + ": max abs error " + err);
    }
  }
}
