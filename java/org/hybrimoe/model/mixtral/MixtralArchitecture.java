package org.hybrimoe.model.mixtral;

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
 * Mixtral (model_type "mixtral"): GQA attention with rotate_half RoPE, every layer a MoE of
 * num_local_experts SwiGLU experts, softmax router with the top-k weights always renormalised.
 * Experts classic (block_sparse_moe.experts.N.w1/w3/w2, router block_sparse_moe.gate) or packed
 * (mlp.experts.gate_up_proj/down_proj, router mlp.gate).
 */
public final class MixtralArchitecture implements Architecture {
  @Override
  public List<String> modelTypes() {
    return List.of("mixtral");
  }

  @Override
  public CausalLm build(
      ModelConfig cfg, ModelWeights w, LoadOptions options, Engine engine, boolean ownsEngine)
      throws IOException {
    int vocab = cfg.requirePositiveInt("vocab_size");
    int d = cfg.requirePositiveInt("hidden_size");
    int ff = cfg.requirePositiveInt("intermediate_size");
    int nLayers = cfg.requirePositiveInt("num_hidden_layers");
    int experts = cfg.requirePositiveInt("num_local_experts");
    int topK = Layers.topK(cfg, experts, "num_local_experts");
    Layers.GqaShape a = Layers.GqaShape.of(cfg, d);
    float eps = (float) cfg.positiveDoubleOr("rms_norm_eps", 1e-5);
    Rope rope = Rope.of(cfg, a.headDim(), 1e6);
    WeightType embType = Layers.embedding(w, vocab, d);
    Map<Integer, ExpertLayerWeights> expertWeights = new TreeMap<>();
    List<DecoderLayer> layers = new ArrayList<>();
    String why = "hidden_size, intermediate_size, num_local_experts";
    for (int l = 0; l < nLayers; l++) {
      String p = "model.layers." + l + ".";
      GqaAttention att =
          Layers.gqa(w, p + "self_attn.", d, a, false,
              GqaAttention.QkNorm.NONE, eps, rope, 0f, Layers.slidingWindow(cfg, l, false));
      boolean packed = w.has(p + "mlp.experts.gate_up_proj");
      String routerName = packed ? p + "mlp.gate.weight" : p + "block_sparse_moe.gate.weight";
      expertWeights.put(l, Layers.experts(w, l, p + "mlp.experts.", p + "block_sparse_moe.experts.",
          new String[] {"w1", "w3", "w2"}, experts, d, ff, why));
      MoeBlock moe =
          new MoeBlock(w.linear(routerName, null, experts, d, why), Router.softmax(experts, topK, true), null, null);
      layers.add(new DecoderLayer(
          Layers.norm(w, p + "input_layernorm.weight", d, "hidden_size"), att,
          Layers.norm(w, p + "post_attention_layernorm.weight", d, "hidden_size"), moe));
    }
    return Layers.assemble(cfg, w, options, engine, ownsEngine, embType, expertWeights, layers, vocab, d, eps);
  }
}
