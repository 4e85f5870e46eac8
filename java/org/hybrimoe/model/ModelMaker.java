package org.hybrimoe.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.hybrimoe.tokenizer.TokenizerMaker;
import org.hybrimoe.weights.SafetensorsWriter;

/**
 * Writes a random-weight model in HuggingFace layout (config.json and model.safetensors, or
 * shards with model.safetensors.index.json) for tests, demos and benchmarks at any size. Linear
 * weights are uniform in +-1/sqrt(in); norm weights 1 +- 0.3 and biases +-0.1, so that tests see
 * non-trivial values everywhere.
 */
public final class ModelMaker {
  /** Architectures make-model writes. */
  public static final List<String> ARCHITECTURES = List.of("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3");

  /**
   * What to write. expertFf is the routed experts' intermediate size; sharedFf the shared
   * expert's (qwen2_moe) and denseFf the dense MLP layers' (the first {@code denseLayers} layers,
   * where the architecture has them). DeepSeek fields: kvLoraRank, qLoraRank (0: none), rope,
   * nope, vDim, nShared, routedScale, yarn (rope_scaling factor 4). dtype F32/BF16/F16; packed:
   * gate_up_proj/down_proj instead of per-expert tensors; shards: files (1 = model.safetensors).
   */
  public record Spec(
      String arch, int layers, int hidden, int experts, int topK, int expertFf, int heads, int kvHeads,
      int vocab, int sharedFf, int denseFf, int denseLayers, int kvLoraRank, int qLoraRank, int rope,
      int nope, int vDim, int nShared, double routedScale, boolean normTopk, boolean yarn, long seed,
      String dtype, boolean packed, int shards) {
    /** Small defaults for an architecture: 2 layers, hidden 64, 8 experts, top-2. */
    public static Spec defaults(String arch) {
      return new Spec(arch, 2, 64, 8, 2, 32, 4, 2, 96, 48, 96, arch.equals("mixtral") || arch.equals("olmoe") ? 0 : 1,
          16, 0, 8, 8, 8, 1, 1.5, arch.equals("qwen3_moe") || arch.equals("deepseek_v3"), false, 1, "F32", true, 1);
    }

    /** The same model with another vocabulary size. */
    public Spec withVocab(int v) {
      return new Spec(arch, layers, hidden, experts, topK, expertFf, heads, kvHeads, v, sharedFf, denseFf, denseLayers,
          kvLoraRank, qLoraRank, rope, nope, vDim, nShared, routedScale, normTopk, yarn, seed, dtype, packed, shards);
    }

    /** The same model with another number of decoder layers. */
    public Spec withLayers(int n) {
      return new Spec(arch, n, hidden, experts, topK, expertFf, heads, kvHeads, vocab, sharedFf, denseFf, denseLayers,
          kvLoraRank, qLoraRank, rope, nope, vDim, nShared, routedScale, normTopk, yarn, seed, dtype, packed, shards);
    }
  }

  /** The smallest vocabulary that gets a tokenizer (256 byte tokens and 3 special tokens). */
  public static final int MIN_TOKENIZER_VOCAB = 259;

  private ModelMaker() {}

  /** Writes the model into dir (created if needed). */
  public static void write(Spec s, Path dir) throws IOException {
    if (!ARCHITECTURES.contains(s.arch())) {
      throw new IllegalArgumentException("arch must be one of " + ARCHITECTURES + ", got " + s.arch());
    }
    if (s.hidden() % s.heads() != 0 || s.heads() % s.kvHeads() != 0 || (s.hidden() / s.heads()) % 2 != 0) {
      throw new IllegalArgumentException(
          "hidden (" + s.hidden() + ") / heads (" + s.heads() + ") must be an even head size and kv-heads ("
              + s.kvHeads() + ") must divide heads");
    }
    if (s.topK() < 1 || s.topK() > s.experts() || s.shards() < 1 || s.layers() < 1) {
      throw new IllegalArgumentException("need 1 <= top-k <= experts, shards >= 1, layers >= 1");
    }
    Files.createDirectories(dir);
    SplittableRandom rnd = new SplittableRandom(s.seed());
    Map<String, Object[]> tensors = new LinkedHashMap<>(); // name -> {float[], long[] shape}
    int d = s.hidden();
    int hd = d / s.heads();
    boolean ds = s.arch().startsWith("deepseek");
    put(tensors, "model.embed_tokens.weight", uniform(rnd, s.vocab() * d, 1.0), s.vocab(), d);
    for (int l = 0; l < s.layers(); l++) {
      String p = "model.layers." + l + ".";
      put(tensors, p + "input_layernorm.weight", norm(rnd, d), d);
      put(tensors, p + "post_attention_layernorm.weight", norm(rnd, d), d);
      String a = p + "self_attn.";
      if (ds) {
        int qk = s.heads() * (s.nope() + s.rope());
        if (s.qLoraRank() > 0) {
          linear(tensors, rnd, a + "q_a_proj.weight", s.qLoraRank(), d);
          put(tensors, a + "q_a_layernorm.weight", norm(rnd, s.qLoraRank()), s.qLoraRank());
          linear(tensors, rnd, a + "q_b_proj.weight", qk, s.qLoraRank());
        } else {
          linear(tensors, rnd, a + "q_proj.weight", qk, d);
        }
        linear(tensors, rnd, a + "kv_a_proj_with_mqa.weight", s.kvLoraRank() + s.rope(), d);
        put(tensors, a + "kv_a_layernorm.weight", norm(rnd, s.kvLoraRank()), s.kvLoraRank());
        linear(tensors, rnd, a + "kv_b_proj.weight", s.heads() * (s.nope() + s.vDim()), s.kvLoraRank());
        linear(tensors, rnd, a + "o_proj.weight", d, s.heads() * s.vDim());
      } else {
        boolean bias = s.arch().equals("qwen2_moe");
        linear(tensors, rnd, a + "q_proj.weight", s.heads() * hd, d);
        linear(tensors, rnd, a + "k_proj.weight", s.kvHeads() * hd, d);
        linear(tensors, rnd, a + "v_proj.weight", s.kvHeads() * hd, d);
        linear(tensors, rnd, a + "o_proj.weight", d, s.heads() * hd);
        if (bias) {
          put(tensors, a + "q_proj.bias", uniform(rnd, s.heads() * hd, 0.1), s.heads() * hd);
          put(tensors, a + "k_proj.bias", uniform(rnd, s.kvHeads() * hd, 0.1), s.kvHeads() * hd);
          put(tensors, a + "v_proj.bias", uniform(rnd, s.kvHeads() * hd, 0.1), s.kvHeads() * hd);
        }
        if (s.arch().equals("qwen3_moe")) {
          put(tensors, a + "q_norm.weight", norm(rnd, hd), hd);
          put(tensors, a + "k_norm.weight", norm(rnd, hd), hd);
        } else if (s.arch().equals("olmoe")) {
          put(tensors, a + "q_norm.weight", norm(rnd, s.heads() * hd), s.heads() * hd);
          put(tensors, a + "k_norm.weight", norm(rnd, s.kvHeads() * hd), s.kvHeads() * hd);
        }
      }
      boolean dense = l < s.denseLayers() && !s.arch().equals("mixtral") && !s.arch().equals("olmoe");
      if (dense) {
        mlp(tensors, rnd, p + "mlp.", d, s.denseFf());
        continue;
      }
      experts(tensors, rnd, s, p, d);
      if (s.arch().equals("qwen2_moe") && s.sharedFf() > 0) {
        mlp(tensors, rnd, p + "mlp.shared_expert.", d, s.sharedFf());
        linear(tensors, rnd, p + "mlp.shared_expert_gate.weight", 1, d);
      }
      if (s.arch().equals("deepseek_v3")) { // bias large enough to change choices
        put(tensors, p + "mlp.gate.e_score_correction_bias", uniform(rnd, s.experts(), 0.5), s.experts());
      }
      if (ds && s.nShared() > 0) {
        mlp(tensors, rnd, p + "mlp.shared_experts.", d, s.expertFf() * s.nShared());
      }
    }
    put(tensors, "model.norm.weight", norm(rnd, d), d);
    linear(tensors, rnd, "lm_head.weight", s.vocab(), d);
    writeWeights(tensors, s, dir);
    writeConfig(s, dir.resolve("config.json"));
    if (s.vocab() >= MIN_TOKENIZER_VOCAB) { // bytes + specials fit: text prompts work on this model
      TokenizerMaker.writeByteLevel(dir, s.vocab());
    }
  }

  private static void experts(Map<String, Object[]> t, SplittableRandom rnd, Spec s, String p, int d) {
    int e = s.experts();
    int ff = s.expertFf();
    boolean mixtralClassic = s.arch().equals("mixtral") && !s.packed();
    linear(t, rnd, (mixtralClassic ? p + "block_sparse_moe." : p + "mlp.") + "gate.weight", e, d);
    if (s.packed()) {
      put(t, p + "mlp.experts.gate_up_proj", uniform(rnd, e * 2 * ff * d, 1 / Math.sqrt(d)), e, 2L * ff, d);
      put(t, p + "mlp.experts.down_proj", uniform(rnd, e * d * ff, 1 / Math.sqrt(ff)), e, d, ff);
      return;
    }
    for (int x = 0; x < e; x++) {
      if (mixtralClassic) {
        String q = p + "block_sparse_moe.experts." + x + ".";
        linear(t, rnd, q + "w1.weight", ff, d);
        linear(t, rnd, q + "w3.weight", ff, d);
        linear(t, rnd, q + "w2.weight", d, ff);
      } else {
        mlp(t, rnd, p + "mlp.experts." + x + ".", d, ff);
      }
    }
  }

  private static void mlp(Map<String, Object[]> t, SplittableRandom rnd, String p, int d, int ff) {
    linear(t, rnd, p + "gate_proj.weight", ff, d);
    linear(t, rnd, p + "up_proj.weight", ff, d);
    linear(t, rnd, p + "down_proj.weight", d, ff);
  }

  private static void linear(Map<String, Object[]> t, SplittableRandom rnd, String name, int out, int in) {
    put(t, name, uniform(rnd, out * in, 1 / Math.sqrt(in)), out, in);
  }

  private static void put(Map<String, Object[]> t, String name, float[] v, long... shape) {
    t.put(name, new Object[] {v, shape});
  }

  private static float[] uniform(SplittableRandom rnd, int n, double a) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) ((rnd.nextDouble() * 2 - 1) * a);
    }
    return v;
  }

  private static float[] norm(SplittableRandom rnd, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (1 + (rnd.nextDouble() * 2 - 1) * 0.3);
    }
    return v;
  }

  private static void writeWeights(Map<String, Object[]> tensors, Spec s, Path dir) throws IOException {
    List<String> names = new ArrayList<>(tensors.keySet());
    int shards = Math.min(s.shards(), names.size());
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode index = json.createObjectNode();
    long total = 0;
    ObjectNode map = json.createObjectNode();
    for (int k = 0; k < shards; k++) {
      SafetensorsWriter w = new SafetensorsWriter();
      String file = shards == 1 ? "model.safetensors" : String.format("model-%05d-of-%05d.safetensors", k + 1, shards);
      for (int i = k * names.size() / shards; i < (k + 1) * names.size() / shards; i++) {
        Object[] e = tensors.get(names.get(i));
        float[] v = (float[]) e[0];
        // One dtype for every tensor, norms and biases included (the loader widens them).
        w.add(names.get(i), s.dtype(), v, (long[]) e[1]);
        map.put(names.get(i), file);
        total += (long) v.length * (s.dtype().equals("F32") ? 4 : 2);
      }
      w.write(dir.resolve(file));
    }
    if (shards > 1) {
      index.putObject("metadata").put("total_size", total);
      index.set("weight_map", map);
      json.writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
    }
  }

  private static void writeConfig(Spec s, Path path) throws IOException {
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode c = json.createObjectNode();
    int hd = s.hidden() / s.heads();
    c.put("model_type", s.arch());
    c.put("vocab_size", s.vocab());
    c.put("hidden_size", s.hidden());
    c.put("num_hidden_layers", s.layers());
    c.put("num_attention_heads", s.heads());
    c.put("max_position_embeddings", 256);
    c.put("rms_norm_eps", 1e-5);
    c.put("tie_word_embeddings", false);
    c.put("num_experts_per_tok", s.topK());
    c.put("_generator", "hybrimoe make-model, seed " + s.seed());
    switch (s.arch()) {
      case "mixtral" -> {
        c.put("num_key_value_heads", s.kvHeads());
        c.put("head_dim", hd);
        c.put("intermediate_size", s.expertFf());
        c.put("num_local_experts", s.experts());
        c.put("rope_theta", 10000.0);
      }
      case "qwen2_moe", "qwen3_moe" -> {
        c.put("num_key_value_heads", s.kvHeads());
        c.put("head_dim", hd);
        c.put("intermediate_size", s.denseFf());
        c.put("moe_intermediate_size", s.expertFf());
        c.put("num_experts", s.experts());
        c.put("decoder_sparse_step", 1);
        ArrayNode only = c.putArray("mlp_only_layers");
        for (int l = 0; l < Math.min(s.denseLayers(), s.layers()); l++) {
          only.add(l);
        }
        c.put("norm_topk_prob", s.normTopk());
        c.put("rope_theta", 10000.0);
        if (s.arch().equals("qwen2_moe")) {
          c.put("shared_expert_intermediate_size", s.sharedFf());
        }
      }
      case "olmoe" -> {
        c.put("num_key_value_heads", s.kvHeads());
        c.put("intermediate_size", s.expertFf());
        c.put("num_experts", s.experts());
        c.put("norm_topk_prob", s.normTopk());
        c.put("rope_theta", 10000.0);
      }
      default -> { // deepseek_v2, deepseek_v3
        c.put("intermediate_size", s.denseFf());
        c.put("moe_intermediate_size", s.expertFf());
        c.put("n_routed_experts", s.experts());
        c.put("n_shared_experts", s.nShared());
        c.put("first_k_dense_replace", s.denseLayers());
        c.put("moe_layer_freq", 1);
        if (s.qLoraRank() > 0) {
          c.put("q_lora_rank", s.qLoraRank());
        } else {
          c.putNull("q_lora_rank");
        }
        c.put("kv_lora_rank", s.kvLoraRank());
        c.put("qk_rope_head_dim", s.rope());
        c.put("qk_nope_head_dim", s.nope());
        c.put("v_head_dim", s.vDim());
        c.put("norm_topk_prob", s.normTopk());
        c.put("routed_scaling_factor", s.routedScale());
        if (s.arch().equals("deepseek_v3")) { // sigmoid scores, noaux_tc over 2 groups
          c.put("scoring_func", "sigmoid");
          c.put("topk_method", "noaux_tc");
          c.put("n_group", 2);
          c.put("topk_group", 1);
        } else {
          c.put("scoring_func", "softmax");
          c.put("topk_method", "greedy");
        }
        c.put("rope_theta", 10000.0);
        if (s.yarn()) {
          ObjectNode y = c.putObject("rope_scaling");
          y.put("type", "yarn");
          y.put("factor", 4.0);
          y.put("original_max_position_embeddings", 64);
          y.put("beta_fast", 32);
          y.put("beta_slow", 1);
          y.put("mscale", 0.707);
          y.put("mscale_all_dim", 0.707);
        }
      }
    }
    json.writeValue(path.toFile(), c);
  }
}
