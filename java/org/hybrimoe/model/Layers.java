package org.hybrimoe.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps.WeightType;

/**
 * Checkpoint-to-layer helpers the architecture packages share: tensor lookups with shape checks
 * against the config (messages name the file, the tensor and the config fields) and the two
 * expert layouts mapped onto the engine's expert layers without copies.
 */
public final class Layers {
  private Layers() {}

  /**
   * Describes one MoE layer's routed experts where they lie in the checkpoint. Packed layout:
   * {@code <packed>gate_up_proj} [E, 2ff, d] (gate rows first) and {@code <packed>down_proj}
   * [E, d, ff]; classic: {@code <classic><e>.<names[0|1|2]>.weight} for gate [ff, d], up [ff, d],
   * down [d, ff]. F32 and BF16 experts are borrowed in place; F16 experts are widened to f32
   * copies (the engine has no f16 expert kernels) and FP8 experts dequantized to BF16 copies
   * ({@link ModelWeights#weight}; LoadOptions.expertFormat converts either further).
   */
  public static ExpertLayerWeights experts(
      ModelWeights w, int layer, String packed, String classic, String[] names, int nExperts, int d,
      int ff, String why) throws IOException {
    if (w.has(packed + "gate_up_proj")) {
      String gu = packed + "gate_up_proj";
      String dn = packed + "down_proj";
      ModelWeights.Weight gw = w.weight(gu, why, nExperts, 2L * ff, d);
      ModelWeights.Weight dw = w.weight(dn, why, nExperts, d, ff);
      sameType(w, gu, gw.type(), dn, dw.type());
      return ExpertLayerWeights.builder(formatOf(gw.type()), nExperts, d, ff)
          .packed(widen(gw, 2L * nExperts * ff * d), widen(dw, (long) nExperts * d * ff))
          .build();
    }
    String first = classic + "0." + names[0] + ".weight";
    if (!w.has(first)) {
      throw new ModelFormatException(
          w.source() + ": layer " + layer + " has neither packed experts '" + packed
              + "gate_up_proj' nor classic experts '" + first + "'");
    }
    // A checkpoint with more experts than the config names contradicts it (checked before any
    // expert is read, so that FP8 experts are not dequantized for nothing).
    String extra = classic + nExperts + "." + names[0] + ".weight";
    if (w.has(extra)) {
      throw new ModelFormatException(
          w.fileOf(extra) + ": tensor '" + extra + "' exists but " + why + " says " + nExperts + " experts");
    }
    ExpertLayerWeights.Builder b = null;
    WeightType type = null;
    for (int e = 0; e < nExperts; e++) {
      String g = classic + e + "." + names[0] + ".weight";
      String u = classic + e + "." + names[1] + ".weight";
      String dn = classic + e + "." + names[2] + ".weight";
      ModelWeights.Weight gw = w.weight(g, why, ff, d);
      ModelWeights.Weight uw = w.weight(u, why, ff, d);
      ModelWeights.Weight dw = w.weight(dn, why, d, ff);
      if (b == null) {
        type = gw.type();
        b = ExpertLayerWeights.builder(formatOf(type), nExperts, d, ff);
      }
      sameType(w, first, type, g, gw.type());
      sameType(w, first, type, u, uw.type());
      sameType(w, first, type, dn, dw.type());
      b.expert(e, widen(gw, (long) ff * d), widen(uw, (long) ff * d), widen(dw, (long) d * ff));
    }
    return b.build();
  }

  /** num_experts_per_tok, checked against the routed expert count (its config field named). */
  public static int topK(ModelConfig cfg, int experts, String expertsField) {
    int topK = cfg.requirePositiveInt("num_experts_per_tok");
    if (topK > experts) {
      throw cfg.bad("num_experts_per_tok", "(" + topK + ") exceeds " + expertsField + " (" + experts + ")");
    }
    return topK;
  }

  /**
   * What every architecture ends with: the check that the checkpoint has no layer beyond
   * num_hidden_layers (and the num_nextn_predict_layers MTP layers after them), the embedding,
   * final norm and LM head, the dense linears placed on a device when the options ask
   * ({@link DenseOffload}: attention projections, dense MLPs and the LM head before the experts
   * take device memory, since every token reads them; then the attention sublayers whole when
   * all their projections are there), and last the MoE executor, offered the MoE
   * blocks' shared experts; the shared experts it leaves to the model go to the dense device
   * after it.
   *
   * @param layers the decoder layers, all of num_hidden_layers
   */
  public static CausalLm assemble(ModelConfig cfg, ModelWeights w, LoadOptions options, Engine engine,
      boolean ownsEngine, WeightType embType, Map<Integer, ExpertLayerWeights> experts, List<DecoderLayer> layers,
      int vocab, int d, float eps) throws IOException {
    int nLayers = layers.size();
    // DeepSeek-V3/R1 store their multi-token-prediction modules as layers num_hidden_layers ..
    // + num_nextn_predict_layers - 1 (layer 61 of 61): present, and not run here.
    int mtp = Math.max(0, cfg.intOr("num_nextn_predict_layers", 0));
    if (w.has("model.layers." + (nLayers + mtp) + ".input_layernorm.weight")) {
      throw cfg.bad("num_hidden_layers", "is " + nLayers + (mtp > 0 ? " (and num_nextn_predict_layers " + mtp + ")" : "")
          + " but the checkpoint has a layer " + (nLayers + mtp));
    }
    ByteBuffer emb = w.bytes("model.embed_tokens.weight");
    FloatBuffer finalNorm = norm(w, "model.norm.weight", d, "hidden_size");
    Linear head = lmHead(w, cfg, vocab, d);
    DenseOffload dense = options.dense() == null ? null : DenseOffload.open(options.dense(), engine);
    MoeLayerExecutor executor = null;
    try {
      if (dense != null) {
        options.progressOrNone().progress("dense weights to the device", 0, 1);
        for (DecoderLayer l : layers) {
          dense.place(l.attention().linears());
          if (l.ffn() instanceof DenseMlp m) {
            dense.place(m.linears());
          }
        }
        dense.place(List.of(head));
        dense.placeAttention(layers.stream().map(DecoderLayer::attention).toList());
      }
      executor = executor(engine, experts, layers, options);
      if (dense != null) {
        for (int l = 0; l < nLayers; l++) {
          if (layers.get(l).ffn() instanceof MoeBlock b && b.sharedExpert() != null && !executor.runsSharedExpert(l)) {
            dense.place(b.sharedExpert().mlp().linears());
          }
        }
        options.progressOrNone().progress("dense weights to the device", 1, 1);
      }
      return new CausalLm(cfg.modelType(), engine, ownsEngine, w, executor, emb, embType, layers, finalNorm, head, eps,
          cfg.intOr("max_position_embeddings", 4096), dense);
    } catch (RuntimeException e) {
      if (executor != null) {
        executor.close();
      }
      if (dense != null) {
        dense.close();
      }
      throw e;
    }
  }

  /** The model's MoE executor over the described expert layers (options' factory, else CPU). */
  public static MoeLayerExecutor executor(
      Engine engine, Map<Integer, ExpertLayerWeights> experts, LoadOptions options) {
    return options.executorFactory().create(engine, Collections.unmodifiableMap(experts), options);
  }

  /**
   * As {@link #executor(Engine, Map, LoadOptions)}, offering the executor the shared experts of the
   * MoE blocks among {@code layers} (decoder layers in order).
   */
  public static MoeLayerExecutor executor(
      Engine engine, Map<Integer, ExpertLayerWeights> experts, List<DecoderLayer> layers, LoadOptions options) {
    Map<Integer, SharedExpert> shared = new TreeMap<>();
    for (int l = 0; l < layers.size(); l++) {
      if (layers.get(l).ffn() instanceof MoeBlock b && b.sharedExpert() != null) {
        shared.put(l, b.sharedExpert());
      }
    }
    return options.executorFactory().create(
        engine, Collections.unmodifiableMap(experts), Collections.unmodifiableMap(shared), options);
  }

  /** theta^(-2i/dim) for i < dim/2, in f32 as HF computes RoPE frequencies. */
  public static float[] ropeInvFreq(double theta, int dim) {
    return Act.ropeInvFreq(theta, dim);
  }

  /** The embedding table [vocab, d]. */
  public static WeightType embedding(ModelWeights w, int vocab, int d) {
    return w.check("model.embed_tokens.weight", "vocab_size, hidden_size", vocab, d);
  }

  /** lm_head.weight, or the embedding table when tie_word_embeddings. */
  public static Linear lmHead(ModelWeights w, ModelConfig cfg, int vocab, int d) throws IOException {
    boolean tie = cfg.boolOr("tie_word_embeddings", false);
    String name = tie && !w.has("lm_head.weight") ? "model.embed_tokens.weight" : "lm_head.weight";
    return w.linear(name, null, vocab, d, "vocab_size, hidden_size");
  }

  /** A norm weight of n elements as f32. */
  public static FloatBuffer norm(ModelWeights w, String name, int n, String why) throws IOException {
    return w.vector(name, n, why);
  }

  private static ExpertFormat formatOf(WeightType t) {
    return t == WeightType.BF16 ? ExpertFormat.BF16 : ExpertFormat.F32;
  }

  // F16 expert bytes become an f32 copy; other types pass through untouched.
  private static ByteBuffer widen(ModelWeights.Weight w, long elements) {
    if (w.type() != WeightType.F16) {
      return w.bytes();
    }
    FloatBuffer f = ModelWeights.toF32(w.bytes(), w.type(), Math.toIntExact(elements));
    ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(elements * 4)).order(ByteOrder.LITTLE_ENDIAN);
    out.asFloatBuffer().put(f);
    return out;
  }

  private static void sameType(ModelWeights w, String a, WeightType ta, String b, WeightType tb) {
    if (ta != tb) {
      throw new ModelFormatException(
          w.fileOf(b) + ": tensor '" + b + "' is " + tb + " but '" + a + "' is " + ta
              + "; a layer's experts must share one dtype");
    }
  }

  /**
   * Grouped-query attention of one layer from {@code <prefix>q_proj/k_proj/v_proj/o_proj}
   * (.weight, and .bias for q/k/v when {@code bias}), with {@code <prefix>q_norm/k_norm.weight}
   * when qkNorm is not NONE; rope, clip and window as {@link GqaAttention} takes them.
   */
  public static GqaAttention gqa(
      ModelWeights w, String prefix, int d, GqaShape shape, boolean bias, GqaAttention.QkNorm qkNorm,
      float eps, Rope rope, float clip, int window) throws IOException {
    int heads = shape.heads();
    int kvHeads = shape.kvHeads();
    int headDim = shape.headDim();
    String why = "hidden_size, num_attention_heads, num_key_value_heads, head_dim";
    int qd = heads * headDim;
    int kd = kvHeads * headDim;
    Linear q = w.linear(prefix + "q_proj.weight", bias ? prefix + "q_proj.bias" : null, qd, d, why);
    Linear k = w.linear(prefix + "k_proj.weight", bias ? prefix + "k_proj.bias" : null, kd, d, why);
    Linear v = w.linear(prefix + "v_proj.weight", bias ? prefix + "v_proj.bias" : null, kd, d, why);
    Linear o = w.linear(prefix + "o_proj.weight", null, d, qd, why);
    FloatBuffer qn = null;
    FloatBuffer kn = null;
    if (qkNorm == GqaAttention.QkNorm.PER_HEAD) {
      qn = w.vector(prefix + "q_norm.weight", headDim, "head_dim");
      kn = w.vector(prefix + "k_norm.weight", headDim, "head_dim");
    } else if (qkNorm == GqaAttention.QkNorm.FULL) {
      qn = w.vector(prefix + "q_norm.weight", qd, why);
      kn = w.vector(prefix + "k_norm.weight", kd, why);
    }
    return new GqaAttention(q, k, v, o, heads, kvHeads, headDim, qkNorm, qn, kn, eps, rope, clip, window);
  }

  /** A SwiGLU MLP from {@code <prefix>gate_proj/up_proj/down_proj.weight}. */
  public static DenseMlp mlp(ModelWeights w, String prefix, int d, int ff, String why) throws IOException {
    return new DenseMlp(
        w.linear(prefix + "gate_proj.weight", null, ff, d, why),
        w.linear(prefix + "up_proj.weight", null, ff, d, why),
        w.linear(prefix + "down_proj.weight", null, d, ff, why));
  }

  /**
   * Decoder layer l's sliding attention window (0: none), HuggingFace's conventions: Mistral's
   * {@code sliding_window} on every layer when {@code qwenStyle} is false; Qwen2/3's only with
   * {@code use_sliding_window} true, and then only on layers l >= {@code max_window_layers}.
   */
  public static int slidingWindow(ModelConfig cfg, int layer, boolean qwenStyle) {
    if (!cfg.has("sliding_window")) {
      return 0;
    }
    if (qwenStyle && (!cfg.boolOr("use_sliding_window", false) || layer < cfg.intOr("max_window_layers", 28))) {
      return 0;
    }
    return cfg.requirePositiveInt("sliding_window");
  }

  /** GQA attention sizes from the common config fields, checked against each other. */
  public record GqaShape(int heads, int kvHeads, int headDim) {
    /** Reads num_attention_heads, num_key_value_heads (default: heads), head_dim (d / heads). */
    public static GqaShape of(ModelConfig cfg, int d) {
      int heads = cfg.requirePositiveInt("num_attention_heads");
      int kv = cfg.has("num_key_value_heads") ? cfg.requirePositiveInt("num_key_value_heads") : heads;
      if (heads % kv != 0) {
        throw cfg.bad("num_key_value_heads", "(" + kv + ") must divide num_attention_heads (" + heads + ")");
      }
      int hd;
      if (cfg.has("head_dim")) {
        hd = cfg.requirePositiveInt("head_dim");
      } else {
        if (d % heads != 0) {
          throw cfg.bad("num_attention_heads", "(" + heads + ") must divide hidden_size (" + d + ") when head_dim is absent");
        }
        hd = d / heads;
      }
      if (hd % 2 != 0) {
        throw cfg.bad("head_dim", "must be even for RoPE, got " + hd);
      }
      return new GqaShape(heads, kv, hd);
    }
  }
}
