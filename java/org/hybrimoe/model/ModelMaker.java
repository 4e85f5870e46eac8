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
 *
 * <p>dtype FP8 writes what DeepSeek-V3 and the Qwen3 *-FP8 releases ship: projections and experts
 * (attention, routed and shared experts, dense MLPs) as F8_E4M3 with F32 {@code <name>_scale_inv}
 * per block (amax / 448), and {@code quantization_config} in config.json; norms, routers,
 * embeddings, lm_head and the correction bias in BF16.
 */
public final class ModelMaker {
  /** Architectures make-model writes. */
  public static final List<String> ARCHITECTURES = List.of("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3");

  /**
   * What to write. expertFf is the routed experts' intermediate size; sharedFf the shared
   * expert's (qwen2_moe) and denseFf the dense MLP layers' (the first {@code denseLayers} layers,
   * where the architecture has them). DeepSeek fields: kvLoraRank, qLoraRank (0: none), rope,
   * nope, vDim, nShared, routedScale, yarn (rope_scaling factor 4). dtype F32/BF16/F16/FP8; packed:
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

  /** dtype FP8's block [rows, cols] when none is given and hidden >= 512: the released checkpoints'. */
  public static final List<Integer> FP8_BLOCK = List.of(128, 128);

  /**
   * dtype FP8's block when none is given and hidden < 512: chosen to divide none of the usual
   * power-of-two sizes, so that small models have several blocks per matrix and partial blocks at
   * both edges (64 rows: 24 + 24 + 16; 64 columns: 40 + 24).
   */
  public static final List<Integer> FP8_BLOCK_SMALL = List.of(24, 40);

  // One tensor to write: values [product of shape] and whether an FP8 model stores it as F8_E4M3.
  private record Tensor(float[] values, boolean fp8, long... shape) {}

  private ModelMaker() {}

  /** Writes the model into dir (created if needed); FP8 with the default block for its size. */
  public static void write(Spec s, Path dir) throws IOException {
    List<Integer> b = s.hidden() >= 512 ? FP8_BLOCK : FP8_BLOCK_SMALL;
    write(s, dir, b.get(0), b.get(1));
  }

  /**
   * Writes the model into dir (created if needed); an FP8 model with scale blocks of
   * fp8BlockRows x fp8BlockCols (weight_block_size; ignored for other dtypes).
   */
  public static void write(Spec s, Path dir, int fp8BlockRows, int fp8BlockCols) throws IOException {
    if (!List.of("F32", "BF16", "F16", "FP8").contains(s.dtype())) {
      throw new IllegalArgumentException("dtype must be F32, BF16, F16 or FP8, got " + s.dtype());
    }
    if (fp8BlockRows < 1 || fp8BlockCols < 1) {
      throw new IllegalArgumentException("FP8 block must be at least 1 x 1, got " + fp8BlockRows + " x " + fp8BlockCols);
    }
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
    Map<String, Tensor> tensors = new LinkedHashMap<>();
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
          linear(tensors, rnd, a + "q_a_proj.weight", s.qLoraRank(), d, true);
          put(tensors, a + "q_a_layernorm.weight", norm(rnd, s.qLoraRank()), s.qLoraRank());
          linear(tensors, rnd, a + "q_b_proj.weight", qk, s.qLoraRank(), true);
        } else {
          linear(tensors, rnd, a + "q_proj.weight", qk, d, true);
        }
        linear(tensors, rnd, a + "kv_a_proj_with_mqa.weight", s.kvLoraRank() + s.rope(), d, true);
        put(tensors, a + "kv_a_layernorm.weight", norm(rnd, s.kvLoraRank()), s.kvLoraRank());
        linear(tensors, rnd, a + "kv_b_proj.weight", s.heads() * (s.nope() + s.vDim()), s.kvLoraRank(), true);
        linear(tensors, rnd, a + "o_proj.weight", d, s.heads() * s.vDim(), true);
      } else {
        boolean bias = s.arch().equals("qwen2_moe");
        linear(tensors, rnd, a + "q_proj.weight", s.heads() * hd, d, true);
        linear(tensors, rnd, a + "k_proj.weight", s.kvHeads() * hd, d, true);
        linear(tensors, rnd, a + "v_proj.weight", s.kvHeads() * hd, d, true);
        linear(tensors, rnd, a + "o_proj.weight", d, s.heads() * hd, true);
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
        linear(tensors, rnd, p + "mlp.shared_expert_gate.weight", 1, d, false);
      }
      if (s.arch().equals("deepseek_v3")) { // bias large enough to change choices
        put(tensors, p + "mlp.gate.e_score_correction_bias", uniform(rnd, s.experts(), 0.5), s.experts());
      }
      if (ds && s.nShared() > 0) {
        mlp(tensors, rnd, p + "mlp.shared_experts.", d, s.expertFf() * s.nShared());
      }
    }
    put(tensors, "model.norm.weight", norm(rnd, d), d);
    linear(tensors, rnd, "lm_head.weight", s.vocab(), d, false);
    int[] block = s.dtype().equals("FP8") ? new int[] {fp8BlockRows, fp8BlockCols} : null;
    writeWeights(tensors, s, block, dir);
    writeConfig(s, block, dir.resolve("config.json"));
    if (s.vocab() >= MIN_TOKENIZER_VOCAB) { // bytes + specials fit: text prompts work on this model
      TokenizerMaker.writeByteLevel(dir, s.vocab());
    }
  }

  private static void experts(Map<String, Tensor> t, SplittableRandom rnd, Spec s, String p, int d) {
    int e = s.experts();
    int ff = s.expertFf();
    boolean mixtralClassic = s.arch().equals("mixtral") && !s.packed();
    // Routers (like shared_expert_gate and lm_head) stay unquantized in FP8 checkpoints.
    linear(t, rnd, (mixtralClassic ? p + "block_sparse_moe." : p + "mlp.") + "gate.weight", e, d, false);
    if (s.packed()) {
      t.put(p + "mlp.experts.gate_up_proj", new Tensor(uniform(rnd, e * 2 * ff * d, 1 / Math.sqrt(d)), true, e, 2L * ff, d));
      t.put(p + "mlp.experts.down_proj", new Tensor(uniform(rnd, e * d * ff, 1 / Math.sqrt(ff)), true, e, d, ff));
      return;
    }
    for (int x = 0; x < e; x++) {
      if (mixtralClassic) {
        String q = p + "block_sparse_moe.experts." + x + ".";
        linear(t, rnd, q + "w1.weight", ff, d, true);
        linear(t, rnd, q + "w3.weight", ff, d, true);
        linear(t, rnd, q + "w2.weight", d, ff, true);
      } else {
        mlp(t, rnd, p + "mlp.experts." + x + ".", d, ff);
      }
    }
  }

  private static void mlp(Map<String, Tensor> t, SplittableRandom rnd, String p, int d, int ff) {
    linear(t, rnd, p + "gate_proj.weight", ff, d, true);
    linear(t, rnd, p + "up_proj.weight", ff, d, true);
    linear(t, rnd, p + "down_proj.weight", d, ff, true);
  }

  // fp8: written as F8_E4M3 with block scales when the dtype is FP8 (projections and experts).
  private static void linear(Map<String, Tensor> t, SplittableRandom rnd, String name, int out, int in, boolean fp8) {
    t.put(name, new Tensor(uniform(rnd, out * in, 1 / Math.sqrt(in)), fp8, out, in));
  }

  private static void put(Map<String, Tensor> t, String name, float[] v, long... shape) {
    t.put(name, new Tensor(v, false, shape));
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

  // block: the FP8 block [rows, cols], or null when the dtype is not FP8.
  private static void writeWeights(Map<String, Tensor> tensors, Spec s, int[] block, Path dir) throws IOException {
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
        String name = names.get(i);
        Tensor t = tensors.get(name);
        if (block != null && t.fp8()) { // codes and their scales, side by side in one shard
          long[] scaleShape = new Fp8BlockDequant(block[0], block[1]).scaleShape(t.shape());
          float[] scales = new float[Math.toIntExact(java.util.Arrays.stream(scaleShape).reduce(1, Math::multiplyExact))];
          byte[] codes = quantizeFp8(t.values(), t.shape(), block, scales);
          w.addF8E4m3(name, codes, t.shape());
          w.add(name + Fp8BlockDequant.SCALE_SUFFIX, "F32", scales, scaleShape);
          map.put(name, file);
          map.put(name + Fp8BlockDequant.SCALE_SUFFIX, file);
          total += codes.length + 4L * scales.length;
          continue;
        }
        // One dtype for every other tensor, norms and biases included (the loader widens them);
        // BF16 beside FP8, as the released FP8 checkpoints store them.
        String dtype = block != null ? "BF16" : s.dtype();
        w.add(name, dtype, t.values(), t.shape());
        map.put(name, file);
        total += (long) t.values().length * (dtype.equals("F32") ? 4 : 2);
      }
      w.write(dir.resolve(file));
    }
    if (shards > 1) {
      index.putObject("metadata").put("total_size", total);
      index.set("weight_map", map);
      json.writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
    }
  }

  private static int ceilDiv(int a, int b) {
    return (a + b - 1) / b;
  }

  /**
   * e4m3 codes of values [count, rows, cols] (2-D: count 1) in blocks of block[0] x block[1], each
   * block scaled by amax / 448 (written into scales [count, ceil(rows/b0), ceil(cols/b1)]) so that
   * its largest magnitude maps to 448; an all-zero block gets scale 1.
   */
  private static byte[] quantizeFp8(float[] values, long[] shape, int[] block, float[] scales) {
    int n = shape.length;
    int count = n == 3 ? (int) shape[0] : 1;
    int rows = (int) shape[n - 2];
    int cols = (int) shape[n - 1];
    int sRows = ceilDiv(rows, block[0]);
    int sCols = ceilDiv(cols, block[1]);
    byte[] codes = new byte[values.length];
    for (int m = 0; m < count; m++) {
      for (int br = 0; br < sRows; br++) {
        for (int bc = 0; bc < sCols; bc++) {
          int r0 = br * block[0];
          int r1 = Math.min(rows, r0 + block[0]);
          int c0 = bc * block[1];
          int c1 = Math.min(cols, c0 + block[1]);
          float amax = 0;
          for (int r = r0; r < r1; r++) {
            for (int c = c0; c < c1; c++) {
              amax = Math.max(amax, Math.abs(values[(m * rows + r) * cols + c]));
            }
          }
          float scale = amax > 0 ? amax / Fp8BlockDequant.E4M3_MAX : 1f;
          scales[(m * sRows + br) * sCols + bc] = scale;
          for (int r = r0; r < r1; r++) {
            for (int c = c0; c < c1; c++) {
              int at = (m * rows + r) * cols + c;
              codes[at] = toE4m3(values[at] / scale);
            }
          }
        }
      }
    }
    return codes;
  }

  /**
   * The e4m3fn code nearest to x, ties to the even code (mantissa LSB 0), saturating at +-448 (as
   * the checkpoints' quantizers clamp to the finite range); NaN gives 0x7F. Positive codes
   * 0x00..0x7E increase with their value, so the nearest is found by bisection over them.
   */
  static byte toE4m3(float x) {
    if (Float.isNaN(x)) {
      return 0x7f;
    }
    int sign = (Float.floatToRawIntBits(x) >>> 24) & 0x80;
    float a = Math.abs(x);
    int lo = 0; // largest code whose value is <= a
    int hi = 0x7e;
    if (a >= Fp8BlockDequant.E4M3_MAX) {
      return (byte) (sign | 0x7e);
    }
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (Fp8BlockDequant.e4m3ToFloat((byte) mid) <= a) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    float below = a - Fp8BlockDequant.e4m3ToFloat((byte) lo);
    float above = Fp8BlockDequant.e4m3ToFloat((byte) (lo + 1)) - a;
    int code = below < above || (below == above && (lo & 1) == 0) ? lo : lo + 1;
    return (byte) (sign | code);
  }

  private static void writeConfig(Spec s, int[] fp8Block, Path path) throws IOException {
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
    if (fp8Block != null) { // as DeepSeek-V3's and Qwen3-*-FP8's config.json
      ObjectNode q = c.putObject("quantization_config");
      q.put("quant_method", "fp8");
      q.put("fmt", "e4m3");
      q.put("activation_scheme", "dynamic");
      q.putArray("weight_block_size").add(fp8Block[0]).add(fp8Block[1]);
    }
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
