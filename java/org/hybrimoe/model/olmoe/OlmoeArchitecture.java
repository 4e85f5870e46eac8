package org.hybrimoe.model.olmoe;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.model.Architecture;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.DecoderLayer;
import org.hybrimoe.model.GqaAttention;
import org.hybrimoe.model.Layers;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.ModelConfig;
import org.hybrimoe.model.ModelWeights;
import org.hybrimoe.model.MoeBlock;
import org.hybrimoe.model.Rope;
import org.hybrimoe.model.Router;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps.WeightType;

/**
 * OLMoE (model_type "olmoe"): GQA attention with RMSNorm over the whole q and k projections
 * (q_norm [heads * head_dim], k_norm [kv_heads * head_dim]) before RoPE, every layer a MoE of
 * num_experts experts of intermediate_size, softmax router renormalised when norm_topk_prob
 * (false in OLMoE-1B-7B); q, k and v clamped to +-clip_qkv after the norms when it is set (null in
 * OLMoE-1B-7B).
 */
public final class OlmoeArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("olmoe");
  }

  @Override
  public CausalLm build(
      ModelConfig cfg, ModelWeights w, LoadOptions options, Engine engine, boolean ownsEngine)
      throws IOException {
    int vocab = cfg.requirePositiveInt("vocab_size");
    int d = cfg.requirePositiveInt("hidden_size");
    int ff = cfg.requirePositiveInt("intermediate_size");
    int nLayers = cfg.requirePositiveInt("num_hidden_layers");
    int experts = cfg.requirePositiveInt("num_experts");
    int topK = Layers.topK(cfg, experts, "num_experts");
    float clip = cfg.has("clip_qkv") ? (float) cfg.positiveDoubleOr("clip_qkv", 0) : 0f;
    boolean norm = cfg.boolOr("norm_topk_prob", false);
    Layers.GqaShape a = Layers.GqaShape.of(cfg, d);
    float eps = (float) cfg.positiveDoubleOr("rms_norm_eps", 1e-5);
    Rope rope = Rope.of(cfg, a.headDim(), 10000);
    WeightType embType = Layers.embedding(w, vocab, d);
    Map<Integer, ExpertLayerWeights> expertWeights = new TreeMap<>();
    List<DecoderLayer> layers = new ArrayList<>();
    String why = "hidden_size, intermediate_size, num_experts";
    for (int l = 0; l < nLayers; l++) {
      String p = "model.layers." + l + ".";
      GqaAttention att =
          Layers.gqa(w, p + "self_attn.", d, a,
              cfg.boolOr("attention_bias", false), GqaAttention.QkNorm.FULL, eps, rope, clip, 0);
      expertWeights.put(l, Layers.experts(w, l, p + "mlp.experts.", p + "mlp.experts.",
          new String[] {"gate_proj", "up_proj", "down_proj"}, experts, d, ff, why));
      MoeBlock moe = new MoeBlock(
          w.linear(p + "mlp.gate.weight", null, experts, d, why), Router.softmax(experts, topK, norm), null, null);
      layers.add(new DecoderLayer(
          Layers.norm(w, p + "input_layernorm.weight", d, "hidden_size"), att,
          Layers.norm(w, p + "post_attention_layernorm.weight", d, "hidden_size"), moe));
    }
    return Layers.assemble(cfg, w, options, engine, ownsEngine, embType, expertWeights, layers, vocab, d, eps);
  }
}
