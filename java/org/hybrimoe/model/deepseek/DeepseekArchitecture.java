package org.hybrimoe.model.deepseek;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.model.Architecture;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.DecoderLayer;
import org.hybrimoe.model.FeedForward;
import org.hybrimoe.model.Layers;
import org.hybrimoe.model.Linear;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.MlaAttention;
import org.hybrimoe.model.ModelConfig;
import org.hybrimoe.model.ModelFormatException;
import org.hybrimoe.model.ModelWeights;
import org.hybrimoe.model.MoeBlock;
import org.hybrimoe.model.Router;
import org.hybrimoe.model.Yarn;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps.WeightType;

/**
 * DeepSeek-V2, V2-Lite and V3 (model_type "deepseek_v2", "deepseek_v3"): multi-head latent
 * attention ({@link MlaAttention}, optional q-lora, YaRN rope_scaling); layers from
 * first_k_dense_replace on (every moe_layer_freq-th) are MoE with n_routed_experts experts plus
 * n_shared_experts merged into one ungated shared SwiGLU; the rest dense MLPs.
 *
 * <p>Routing: scoring_func softmax or sigmoid; topk_method greedy, group_limited_greedy (groups
 * by max score) or noaux_tc (V3: e_score_correction_bias, groups by top-2 sum). V2 multiplies
 * by routed_scaling_factor only when it does not renormalise (norm_topk_prob false), as
 * DeepSeek-V2's code does; V3 renormalises when norm_topk_prob and always scales. Absent fields
 * take the HF config classes' defaults (V3: sigmoid, noaux_tc, n_group 8, topk_group 4,
 * norm_topk_prob true, routed_scaling_factor 2.5).
 */
public final class DeepseekArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("deepseek_v2", "deepseek_v3");
  }

  @Override
  public CausalLm build(
      ModelConfig cfg, ModelWeights w, LoadOptions options, Engine engine, boolean ownsEngine)
      throws IOException {
    boolean v3 = cfg.modelType().equals("deepseek_v3");
    int vocab = cfg.requirePositiveInt("vocab_size");
    int d = cfg.requirePositiveInt("hidden_size");
    int nLayers = cfg.requirePositiveInt("num_hidden_layers");
    int heads = cfg.requirePositiveInt("num_attention_heads");
    int rank = cfg.requirePositiveInt("kv_lora_rank");
    int qRank = cfg.has("q_lora_rank") ? cfg.requirePositiveInt("q_lora_rank") : 0;
    int rope = cfg.requirePositiveInt("qk_rope_head_dim");
    int nope = cfg.requirePositiveInt("qk_nope_head_dim");
    int vd = cfg.requirePositiveInt("v_head_dim");
    if (rope % 2 != 0) {
      throw cfg.bad("qk_rope_head_dim", "must be even, got " + rope);
    }
    boolean bias = cfg.boolOr("attention_bias", false);
    float eps = (float) cfg.positiveDoubleOr("rms_norm_eps", 1e-6);
    double theta = cfg.positiveDoubleOr("rope_theta", 10000);
    int firstDense = cfg.intOr("first_k_dense_replace", 0);
    int freq = cfg.intOr("moe_layer_freq", 1);
    if (freq < 1) {
      throw cfg.bad("moe_layer_freq", "must be >= 1, got " + freq);
    }
    int experts = cfg.has("n_routed_experts") ? cfg.requirePositiveInt("n_routed_experts") : 0;

    Yarn yarn = yarn(cfg);
    float[] invFreq = yarn == null ? Layers.ropeInvFreq(theta, rope) : yarn.invFreq(theta, rope);
    double softmaxScale = 1.0 / Math.sqrt(nope + rope) * (yarn == null ? 1.0 : yarn.softmaxFactor());
    float ropeScale = yarn == null ? 1f : yarn.ropeScale();

    WeightType embType = Layers.embedding(w, vocab, d);
    Map<Integer, ExpertLayerWeights> expertWeights = new TreeMap<>();
    List<DecoderLayer> layers = new ArrayList<>();
    String aw = "hidden_size, num_attention_heads, q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim";
    for (int l = 0; l < nLayers; l++) {
      String p = "model.layers." + l + ".";
      String s = p + "self_attn.";
      int qk = heads * (nope + rope);
      Linear qProj = null;
      Linear qA = null;
      Linear qB = null;
      FloatBuffer qANorm = null;
      if (qRank == 0) {
        qProj = w.linear(s + "q_proj.weight", null, qk, d, aw);
      } else {
        qA = w.linear(s + "q_a_proj.weight", bias ? s + "q_a_proj.bias" : null, qRank, d, aw);
        qANorm = w.vector(s + "q_a_layernorm.weight", qRank, "q_lora_rank");
        qB = w.linear(s + "q_b_proj.weight", null, qk, qRank, aw);
      }
      Linear kvA = w.linear(s + "kv_a_proj_with_mqa.weight", bias ? s + "kv_a_proj_with_mqa.bias" : null, rank + rope, d, aw);
      FloatBuffer kvANorm = w.vector(s + "kv_a_layernorm.weight", rank, "kv_lora_rank");
      Linear kvB = w.linear(s + "kv_b_proj.weight", null, heads * (nope + vd), rank, aw);
      Linear o = w.linear(s + "o_proj.weight", bias ? s + "o_proj.bias" : null, d, heads * vd, aw);
      MlaAttention att = new MlaAttention(qProj, qA, qANorm, qB, kvA, kvANorm, kvB, o, heads, nope, rope, vd, rank,
          invFreq, ropeScale, (float) softmaxScale);

      FeedForward ffn;
      if (experts > 0 && l >= firstDense && l % freq == 0) {
        ffn = moe(cfg, w, expertWeights, l, p, d, experts, v3);
      } else {
        ffn = Layers.mlp(w, p + "mlp.", d, cfg.requirePositiveInt("intermediate_size"), "intermediate_size");
      }
      layers.add(new DecoderLayer(
          Layers.norm(w, p + "input_layernorm.weight", d, "hidden_size"), att,
          Layers.norm(w, p + "post_attention_layernorm.weight", d, "hidden_size"), ffn));
    }
    return Layers.assemble(cfg, w, options, engine, ownsEngine, embType, expertWeights, layers, vocab, d, eps);
  }

  private static MoeBlock moe(
      ModelConfig cfg, ModelWeights w, Map<Integer, ExpertLayerWeights> expertWeights, int l,
      String p, int d, int experts, boolean v3) throws IOException {
    int topK = Layers.topK(cfg, experts, "n_routed_experts");
    int ff = cfg.requirePositiveInt("moe_intermediate_size");
    String why = "hidden_size, moe_intermediate_size, n_routed_experts";
    expertWeights.put(l, Layers.experts(w, l, p + "mlp.experts.", p + "mlp.experts.",
        new String[] {"gate_proj", "up_proj", "down_proj"}, experts, d, ff, why));
    String scoring = cfg.stringOr("scoring_func", v3 ? "sigmoid" : "softmax");
    Router.Scoring sc = switch (scoring) {
      case "softmax" -> Router.Scoring.SOFTMAX;
      case "sigmoid" -> Router.Scoring.SIGMOID;
      default -> throw cfg.bad("scoring_func", "is '" + scoring + "', not softmax or sigmoid");
    };
    String method = cfg.stringOr("topk_method", v3 ? "noaux_tc" : "greedy");
    Router.Method m = switch (method) {
      case "greedy" -> Router.Method.GREEDY;
      case "group_limited_greedy" -> Router.Method.GROUP_LIMITED_GREEDY;
      case "noaux_tc" -> Router.Method.NOAUX_TC;
      default -> throw cfg.bad("topk_method", "is '" + method + "', not greedy, group_limited_greedy or noaux_tc");
    };
    int nGroup = cfg.intOr("n_group", v3 ? 8 : 1);
    int topkGroup = cfg.intOr("topk_group", v3 ? 4 : 1);
    if (m != Router.Method.GREEDY && (nGroup < 1 || experts % nGroup != 0)) {
      throw cfg.bad("n_group", "(" + nGroup + ") must divide n_routed_experts (" + experts + ")");
    }
    if (m != Router.Method.GREEDY && (topkGroup < 1 || topkGroup > nGroup)) {
      throw cfg.bad("topk_group", "must be in 1..n_group (" + nGroup + "), got " + topkGroup);
    }
    float[] corr = null;
    if (m == Router.Method.NOAUX_TC) {
      FloatBuffer b = w.vector(p + "mlp.gate.e_score_correction_bias", experts, "n_routed_experts");
      corr = new float[experts];
      b.get(0, corr);
    }
    Router router;
    try {
      router = new Router(experts, topK, sc, m, cfg.boolOr("norm_topk_prob", v3),
          cfg.doubleOr("routed_scaling_factor", v3 ? 2.5 : 1.0), v3, nGroup, topkGroup, corr);
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(cfg.path() + ": routing fields: " + e.getMessage(), e);
    }
    int shared = cfg.intOr("n_shared_experts", 0);
    return new MoeBlock(
        w.linear(p + "mlp.gate.weight", null, experts, d, why), router,
        shared > 0 ? Layers.mlp(w, p + "mlp.shared_experts.", d, ff * shared, "moe_intermediate_size * n_shared_experts") : null,
        null);
  }

  private static Yarn yarn(ModelConfig cfg) {
    if (!cfg.has("rope_scaling")) {
      return null;
    }
    JsonNode r = cfg.json().get("rope_scaling");
    String type = r.has("type") ? r.get("type").asText() : r.path("rope_type").asText("");
    if (!type.equals("yarn")) {
      throw cfg.bad("rope_scaling", "type '" + type + "' is not supported (only yarn)");
    }
    if (!r.has("factor") || !r.get("factor").isNumber() || r.get("factor").asDouble() <= 0) {
      throw cfg.bad("rope_scaling", "needs a positive 'factor'");
    }
    return new Yarn(
        r.get("factor").asDouble(),
        r.path("original_max_position_embeddings").asInt(4096),
        r.path("beta_fast").asDouble(32),
        r.path("beta_slow").asDouble(1),
        r.path("mscale").asDouble(1),
        r.path("mscale_all_dim").asDouble(0));
  }

}
