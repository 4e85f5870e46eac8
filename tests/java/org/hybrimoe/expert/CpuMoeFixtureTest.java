package org.hybrimoe.expert;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.hybrimoe.weights.SafetensorsFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The operator on the single-block HuggingFace references in ../shared/fixtures/moe-tiny
 * (input -> hf_ref), routed as each model does (softmax, top-k, renormalise: Mixtral always,
 * the others if norm_topk_prob;
 * Qwen2-MoE adds its shared expert gated by sigmoid). Weights are mapped from the safetensors
 * file and borrowed in place (packed gate_up_proj / down_proj). Skipped where the fixtures are
 * absent. The shared folder: system property hybrimoe.shared, else env HYBRIMOE_SHARED.
 *
 * <p>Tolerance (max |out - hf_ref| / max |hf_ref|): 1e-4 for f32 weights (f32 arithmetic against
 * HF's float64), 3e-2 for bf16 weights (weight rounding included), 0.1 for int8 (weights
 * quantized, and on VNNI activations too: emulating the activation rounding alone gives 2.2e-2).
 */
class CpuMoeFixtureTest {
  private static CpuMoe moe;

  @BeforeAll
  static void start() {
    moe = CpuMoe.create(0);
  }

  @AfterAll
  static void stop() {
    moe.close();
  }

  static Path fixtures() {
    return org.hybrimoe.SharedFixtures.moeTiny();
  }

  static ByteBuffer direct(long n) {
    return ByteBuffer.allocateDirect(Math.toIntExact(n)).order(ByteOrder.LITTLE_ENDIAN);
  }

  static FloatBuffer floats(float[] v) {
    FloatBuffer f = direct(4L * v.length).asFloatBuffer();
    f.put(v).flip();
    return f;
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral_layer0", "qwen2_moe_layer0", "qwen3_moe_layer0"})
  void matchesHuggingFace(String name) throws IOException {
    Path dir = fixtures();
    Assumptions.assumeTrue(dir != null, "fixtures absent (set -Dhybrimoe.shared or HYBRIMOE_SHARED)");
    Assumptions.assumeTrue(Files.exists(dir.resolve(name + ".json")), name + " absent");
    JsonNode j = new ObjectMapper().readTree(dir.resolve(name + ".json").toFile());
    int e = j.get("num_experts").asInt();
    int k = j.get("experts_per_token").asInt();
    int d = j.get("d_model").asInt();
    int ff = j.get("d_ff").asInt();
    String prefix = j.get("tensor_prefix").asText();
    float[] x = toFloats(j.get("input"));
    double[] ref = new double[d];
    for (int i = 0; i < d; i++) {
      ref[i] = j.get("hf_ref").get(i).asDouble();
    }
    int nTokens = x.length / d;
    try (SafetensorsFile st = SafetensorsFile.open(dir.resolve(name + ".safetensors"))) {
      String router = st.has(prefix + ".gate.weight") ? prefix + ".gate.weight" : prefix + ".router.weight";
      float[] wr = st.readF32(router); // [E, d]
      int[] ids = new int[nTokens * k];
      float[] w = new float[nTokens * k];
      for (int t = 0; t < nTokens; t++) {
        // Mixtral always renormalises the top-k weights (it has no norm_topk_prob; MODELS.md).
        boolean norm = j.get("model").asText().equals("mixtral") || j.get("norm_topk_prob").asBoolean();
        route(wr, x, t, d, e, k, norm, ids, w);
      }
      ExpertLayerWeights weights =
          ExpertLayerWeights.builder(ExpertFormat.F32, e, d, ff)
              .packed(st.bytes(prefix + ".experts.gate_up_proj"), st.bytes(prefix + ".experts.down_proj"))
              .build();
      ExpertLayer shared = null;
      float sharedGate = 0;
      if (j.get("has_shared").asBoolean()) {
        String s = prefix + ".shared_expert.";
        long sff = st.tensor(s + "gate_proj.weight").shape()[0];
        shared =
            ExpertLayer.borrow(
                ExpertLayerWeights.builder(ExpertFormat.F32, 1, d, sff)
                    .expert(0, st.bytes(s + "gate_proj.weight"), st.bytes(s + "up_proj.weight"),
                        st.bytes(s + "down_proj.weight"))
                    .build());
        float[] g = st.readF32(prefix + ".shared_expert_gate.weight");
        double dot = 0;
        for (int i = 0; i < d; i++) {
          dot += g[i] * x[i];
        }
        sharedGate = (float) (1 / (1 + Math.exp(-dot)));
      }
      try (ExpertLayer f32 = ExpertLayer.borrow(weights);
          ExpertLayer bf16 = ExpertLayer.quantize(moe.engine(), ExpertFormat.BF16, 0, weights);
          ExpertLayer int8 = ExpertLayer.quantize(moe.engine(), ExpertFormat.INT8, 0, weights)) {
        ExpertLayer[] layers = {f32, bf16, int8};
        double[] tol = {1e-4, 3e-2, 0.1};
        for (int li = 0; li < layers.length; li++) {
          FloatBuffer out = direct(4L * nTokens * d).asFloatBuffer();
          moe.run(layers[li], floats(x), nTokens, k, direct(4L * ids.length).asIntBuffer().put(ids).flip(),
              floats(w), null, out);
          if (shared != null) {
            IntBuffer zero = direct(4).asIntBuffer();
            moe.run(shared, floats(x), 1, 1, zero, floats(new float[] {sharedGate}), null, out);
          }
          double maxRef = 0;
          double maxErr = 0;
          for (int i = 0; i < d; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            maxErr = Math.max(maxErr, Math.abs(out.get(i) - ref[i]));
          }
          double rel = maxErr / maxRef;
          assertTrue(rel <= tol[li], name + " " + layers[li].format() + ": rel err " + rel + " > " + tol[li]);
        }
      } finally {
        if (shared != null) {
          shared.close();
        }
      }
    }
  }

  /** Softmax over all experts, top-k (lower id first on ties), renormalised if asked. */
  static void route(float[] wr, float[] x, int t, int d, int e, int k, boolean norm, int[] ids, float[] w) {
    double[] p = new double[e];
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < e; i++) {
      double s = 0;
      for (int c = 0; c < d; c++) {
        s += wr[i * d + c] * x[t * d + c];
      }
      p[i] = s;
      max = Math.max(max, s);
    }
    double sum = 0;
    for (int i = 0; i < e; i++) {
      p[i] = Math.exp(p[i] - max);
      sum += p[i];
    }
    Integer[] order = new Integer[e];
    for (int i = 0; i < e; i++) {
      order[i] = i;
      p[i] /= sum;
    }
    Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
    double top = 0;
    for (int j = 0; j < k; j++) {
      top += p[order[j]];
    }
    for (int j = 0; j < k; j++) {
      ids[t * k + j] = order[j];
      w[t * k + j] = (float) (norm ? p[order[j]] / top : p[order[j]]);
    }
  }

  static float[] toFloats(JsonNode a) {
    float[] v = new float[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) a.get(i).asDouble();
    }
    return v;
  }
}
