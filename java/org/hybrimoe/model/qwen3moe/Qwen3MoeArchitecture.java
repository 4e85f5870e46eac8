package org.hybrimoe.model.qwen3moe;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.model.Architecture;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.DecoderLayer;
import org.hybrimoe.model.FeedForward;
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
 * Qwen3-MoE (model_type "qwen3_moe"): GQA attention with per-head RMSNorm on q and k before RoPE
 * (q/k/v biases only if attention_bias), no shared expert, softmax router renormalised when
 * norm_topk_prob (true in the released configs; false when absent, as HF's config class);
 * router mlp.gate.weight or mlp.router.weight. Absent fields take HF's config-class defaults.
 * Sparse layers as Qwen2-MoE: every decoder_sparse_step-th, minus mlp_only_layers.
 */
public final class Qwen3MoeArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("qwen3_moe");
  }

  @Override
  public CausalLm build(
      ModelConfig cfg, ModelWeights w, LoadOptions options, Engine engine, boolean ownsEngine)
      throws IOException {
    int vocab = cfg.requirePositiveInt("vocab_size");
    int d = cfg.requirePositiveInt("hidden_size");
    int nLayers = cfg.requirePositiveInt("num_hidden_layers");
    int experts = cfg.requirePositiveInt("num_experts");
    int topK = Layers.topK(cfg, experts, "num_experts");
    int moeFf = cfg.requirePositiveInt("moe_intermediate_size");
    int step = cfg.intOr("decoder_sparse_step", 1);
    if (step < 1) {
      throw cfg.bad("decoder_sparse_step", "must be >= 1, got " + step);
    }
    List<Integer> mlpOnly = cfg.intListOr("mlp_only_layers");
    boolean norm = cfg.boolOr("norm_topk_prob", false);
    boolean bias = cfg.boolOr("attention_bias", false);
    Layers.GqaShape a = Layers.GqaShape.of(cfg, d);
    float eps = (float) cfg.positiveDoubleOr("rms_norm_eps", 1e-6);
    Rope rope = Rope.of(cfg, a.headDim(), 10000);
    WeightType embType = Layers.embedding(w, vocab, d);
    Map<Integer, ExpertLayerWeights> expertWeights = new TreeMap<>();
    List<DecoderLayer> layers = new ArrayList<>();
    String why = "hidden_size, moe_intermediate_size, num_experts";
    for (int l = 0; l < nLayers; l++) {
      String p = "model.layers." + l + ".";
      GqaAttention att =
          Layers.gqa(w, p + "self_attn.", d, a, bias,
              GqaAttention.QkNorm.PER_HEAD, eps, rope, 0f, Layers.slidingWindow(cfg, l, true));
      FeedForward ffn;
      if (!mlpOnly.contains(l) && (l + 1) % step == 0) {
        expertWeights.put(l, Layers.experts(w, l, p + "mlp.experts.", p + "mlp.experts.",
            new String[] {"gate_proj", "up_proj", "down_proj"}, experts, d, moeFf, why));
        String router = w.has(p + "mlp.router.weight") ? p + "mlp.router.weight" : p + "mlp.gate.weight";
        ffn = new MoeBlock(w.linear(router, null, experts, d, why), Router.softmax(experts, topK, norm), null, null);
      } else {
        ffn = Layers.mlp(w, p + "mlp.", d, cfg.requirePositiveInt("intermediate_size"), "intermediate_size");
      }
      layers.add(new DecoderLayer(
          Layers.norm(w, p + "input_layernorm.weight", d, "hidden_size"), att,
          Layers.norm(w, p + "post_attention_layernorm.weight", d, "hidden_size"), ffn));
    }
    return Layers.assemble(cfg, w, options, engine, ownsEngine, embType, expertWeights, layers, vocab, d, eps);
  }
}
