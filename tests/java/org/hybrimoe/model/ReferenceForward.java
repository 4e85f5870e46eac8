package org.hybrimoe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.hybrimoe.weights.SafetensorsFile;

/**
 * An independent float64 forward pass in plain Java (no native code, none of the runtime's
 * classes): reads config.json and the safetensors of a model directory and recomputes every
 * position from scratch (no KV cache), following ../shared/docs/MODELS.md. For mixtral,
 * qwen2_moe, qwen3_moe, olmoe, deepseek_v2 (greedy softmax routing, optional YaRN) and
 * deepseek_v3 (sigmoid, noaux_tc group-limited routing with the correction bias). FP8
 * block-quantized weights (F8_E4M3 with {@code <name>_scale_inv}, config quantization_config) are
 * decoded here from the e4m3 spec, scaled per block and rounded to bf16, the weights the loader's
 * BF16 copies should hold.
 */
final class ReferenceForward {
  private final JsonNode c;
  private final Map<String, double[]> w = new HashMap<>();
  // FP8 tensors read so far (name -> shape), holding their unscaled e4m3 values until every file,
  // and so every scale tensor, has been read.
  private final Map<String, long[]> fp8 = new java.util.LinkedHashMap<>();
  private final String type;
  private final int d;
  private final double eps;

  ReferenceForward(Path dir) throws IOException {
    c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    type = c.get("model_type").asText();
    d = c.get("hidden_size").asInt();
    eps = c.get("rms_norm_eps").asDouble();
    Path index = dir.resolve("model.safetensors.index.json");
    if (Files.exists(index)) {
      JsonNode map = new ObjectMapper().readTree(index.toFile()).get("weight_map");
      java.util.Set<String> files = new java.util.TreeSet<>();
      map.forEach(f -> files.add(f.asText()));
      for (String f : files) {
        read(dir.resolve(f));
      }
    } else {
      read(dir.resolve("model.safetensors"));
    }
    for (Map.Entry<String, long[]> e : fp8.entrySet()) {
      scaleFp8(e.getKey(), e.getValue());
    }
  }

  // w[..., i, j] * scale_inv[..., i / bs0, j / bs1], then f32 as the product is computed, then bf16.
  private void scaleFp8(String name, long[] shape) {
    JsonNode bs = c.get("quantization_config").get("weight_block_size");
    int b0 = bs.get(0).asInt();
    int b1 = bs.get(1).asInt();
    int n = shape.length;
    int count = n == 3 ? (int) shape[0] : 1;
    int rows = (int) shape[n - 2];
    int cols = (int) shape[n - 1];
    int sRows = (rows + b0 - 1) / b0;
    int sCols = (cols + b1 - 1) / b1;
    double[] v = t(name);
    double[] s = t(name + "_scale_inv");
    for (int m = 0; m < count; m++) {
      for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
          int at = (m * rows + i) * cols + j;
          v[at] = bf16((float) (v[at] * s[(m * sRows + i / b0) * sCols + j / b1]));
        }
      }
    }
  }

  /** An OCP e4m3fn code's value from the spec: S.EEEE.MMM, bias 7, subnormal at E = 0, S.1111.111 NaN. */
  static double e4m3(int code) {
    int e = (code >> 3) & 15;
    int m = code & 7;
    if (e == 15 && m == 7) {
      return Double.NaN;
    }
    double v = e == 0 ? m * Math.pow(2, -9) : (8 + m) * Math.pow(2, e - 10);
    return (code & 0x80) != 0 ? -v : v;
  }

  /** f rounded to 8 significant bits (bf16), ties to even, by scaling to an integer and rint. */
  static double bf16(float f) {
    if (f == 0 || !Float.isFinite(f)) {
      return f;
    }
    double ulp = Math.pow(2, Math.max(Math.getExponent(f), -126) - 7);
    return Math.rint(f / ulp) * ulp;
  }

  private void read(Path file) throws IOException {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (SafetensorsFile.Tensor t : f.tensors().values()) {
        ByteBuffer b = f.bytes(t.name()).order(ByteOrder.LITTLE_ENDIAN);
        double[] v = new double[(int) t.elements()];
        for (int i = 0; i < v.length; i++) {
          v[i] = switch (t.dtype()) {
            case "F32" -> b.getFloat(4 * i);
            case "BF16" -> Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
            case "F16" -> half(b.getShort(2 * i));
            case "F8_E4M3" -> e4m3(b.get(i) & 0xff);
            default -> throw new IllegalArgumentException(t.dtype());
          };
        }
        w.put(t.name(), v);
        if (t.dtype().equals("F8_E4M3")) {
          fp8.put(t.name(), t.shape());
        }
      }
    }
  }

  static double half(short s) {
    int h = s & 0xffff;
    int e = (h >> 10) & 0x1f;
    int m = h & 0x3ff;
    double v = e == 0 ? m * Math.pow(2, -24) : (1 + m / 1024.0) * Math.pow(2, e - 15);
    return (h & 0x8000) != 0 ? -v : v;
  }

  private double[] t(String name) {
    double[] v = w.get(name);
    if (v == null) {
      throw new IllegalArgumentException("reference: no tensor " + name);
    }
    return v;
  }

  private int i(String f, int def) {
    JsonNode n = c.get(f);
    return n == null || n.isNull() ? def : n.asInt();
  }

  /** Logits [n][vocab] of every position. */
  double[][] forward(int[] ids) {
    int n = ids.length;
    int vocab = c.get("vocab_size").asInt();
    double[][] h = new double[n][d];
    double[] emb = t("model.embed_tokens.weight");
    for (int p = 0; p < n; p++) {
      System.arraycopy(emb, ids[p] * d, h[p], 0, d);
    }
    for (int l = 0; l < c.get("num_hidden_layers").asInt(); l++) {
      String pre = "model.layers." + l + ".";
      double[][] x = new double[n][];
      for (int p = 0; p < n; p++) {
        x[p] = rms(h[p], t(pre + "input_layernorm.weight"), eps);
      }
      double[][] a = type.startsWith("deepseek") ? mla(x, pre + "self_attn.") : gqa(x, pre + "self_attn.");
      for (int p = 0; p < n; p++) {
        for (int j = 0; j < d; j++) {
          h[p][j] += a[p][j];
        }
        double[] y = ffn(rms(h[p], t(pre + "post_attention_layernorm.weight"), eps), l, pre);
        for (int j = 0; j < d; j++) {
          h[p][j] += y[j];
        }
      }
    }
    double[][] out = new double[n][];
    for (int p = 0; p < n; p++) {
      boolean tie = c.has("tie_word_embeddings") && c.get("tie_word_embeddings").asBoolean();
      double[] head = tie && !w.containsKey("lm_head.weight") ? emb : t("lm_head.weight");
      out[p] = lin(rms(h[p], t("model.norm.weight"), eps), head, vocab, null);
    }
    return out;
  }

  static double[] rms(double[] x, double[] wt, double eps) {
    double ss = 0;
    for (double v : x) {
      ss += v * v;
    }
    double inv = 1 / Math.sqrt(ss / x.length + eps);
    double[] y = new double[x.length];
    for (int j = 0; j < x.length; j++) {
      y[j] = wt[j] * x[j] * inv;
    }
    return y;
  }

  static double[] lin(double[] x, double[] wt, int out, double[] bias) {
    int in = x.length;
    double[] y = new double[out];
    for (int r = 0; r < out; r++) {
      double s = bias == null ? 0 : bias[r];
      for (int j = 0; j < in; j++) {
        s += wt[r * in + j] * x[j];
      }
      y[r] = s;
    }
    return y;
  }

  private double[] opt(String name) {
    return w.get(name);
  }

  private double[][] gqa(double[][] x, String p) {
    int n = x.length;
    int heads = c.get("num_attention_heads").asInt();
    int kv = i("num_key_value_heads", heads);
    int hd = i("head_dim", d / heads);
    double theta = c.get("rope_theta").asDouble();
    double[] inv = new double[hd / 2];
    double cs = gqaRope(hd, theta, inv);
    double clip = c.hasNonNull("clip_qkv") ? c.get("clip_qkv").asDouble() : 0;
    // sliding window: Mistral-style on every layer; Qwen-style only with use_sliding_window, on
    // layers >= max_window_layers
    int layer = Integer.parseInt(p.split("\\.")[2]);
    int window = 0;
    if (c.hasNonNull("sliding_window") && (!type.startsWith("qwen")
        || c.path("use_sliding_window").asBoolean(false) && layer >= c.path("max_window_layers").asInt(28))) {
      window = c.get("sliding_window").asInt();
    }
    double[][] q = new double[n][], k = new double[n][], v = new double[n][];
    for (int s = 0; s < n; s++) {
      q[s] = lin(x[s], t(p + "q_proj.weight"), heads * hd, opt(p + "q_proj.bias"));
      k[s] = lin(x[s], t(p + "k_proj.weight"), kv * hd, opt(p + "k_proj.bias"));
      v[s] = lin(x[s], t(p + "v_proj.weight"), kv * hd, opt(p + "v_proj.bias"));
      if (type.equals("olmoe")) { // norm over the whole projection
        q[s] = rms(q[s], t(p + "q_norm.weight"), eps);
        k[s] = rms(k[s], t(p + "k_norm.weight"), eps);
      }
      if (type.equals("qwen3_moe")) { // per head
        perHeadNorm(q[s], heads, hd, t(p + "q_norm.weight"));
        perHeadNorm(k[s], kv, hd, t(p + "k_norm.weight"));
      }
      if (clip > 0) { // OLMoE: after the norms, before RoPE
        for (double[] a : new double[][] {q[s], k[s], v[s]}) {
          for (int z = 0; z < a.length; z++) {
            a[z] = Math.max(-clip, Math.min(clip, a[z]));
          }
        }
      }
      for (int hh = 0; hh < heads; hh++) {
        ropeHalf(q[s], hh * hd, hd, s, inv, cs);
      }
      for (int hh = 0; hh < kv; hh++) {
        ropeHalf(k[s], hh * hd, hd, s, inv, cs);
      }
    }
    double[][] out = new double[n][];
    for (int s = 0; s < n; s++) {
      double[] o = new double[heads * hd];
      int j0 = window > 0 ? Math.max(0, s - window + 1) : 0;
      for (int hh = 0; hh < heads; hh++) {
        int g = hh / (heads / kv);
        attend(q[s], hh * hd, k, g * hd, hd, v, g * hd, hd, j0, s, 1 / Math.sqrt(hd), o, hh * hd);
      }
      out[s] = lin(o, t(p + "o_proj.weight"), d, null);
    }
    return out;
  }

  private void perHeadNorm(double[] x, int heads, int hd, double[] wt) {
    for (int hh = 0; hh < heads; hh++) {
      double[] part = java.util.Arrays.copyOfRange(x, hh * hd, (hh + 1) * hd);
      System.arraycopy(rms(part, wt, eps), 0, x, hh * hd, hd);
    }
  }

  /**
   * Fills inv with a GQA model's rotary frequencies and returns the factor on cos/sin, from the
   * rope_scaling types of HF's rope_utils: none, linear (inv / factor), yarn (ramp between the
   * beta_fast and beta_slow correction dimensions; attention_factor, else mscale ratio, else
   * 0.1 ln(factor) + 1).
   */
  private double gqaRope(int dim, double theta, double[] inv) {
    for (int j = 0; j < dim / 2; j++) {
      inv[j] = Math.pow(theta, -2.0 * j / dim);
    }
    JsonNode y = c.get("rope_scaling");
    if (y == null || y.isNull()) {
      return 1;
    }
    String type = y.has("rope_type") ? y.get("rope_type").asText() : y.get("type").asText();
    double f = y.get("factor").asDouble();
    if (type.equals("linear")) {
      for (int j = 0; j < dim / 2; j++) {
        inv[j] /= f;
      }
      return 1;
    }
    if (!type.equals("yarn")) {
      throw new IllegalStateException("reference has no rope_scaling type " + type);
    }
    int orig = y.has("original_max_position_embeddings")
        ? y.get("original_max_position_embeddings").asInt() : c.get("max_position_embeddings").asInt();
    double fast = y.has("beta_fast") ? y.get("beta_fast").asDouble() : 32;
    double slow = y.has("beta_slow") ? y.get("beta_slow").asDouble() : 1;
    double lo = Math.max(0, Math.floor(dim * Math.log(orig / (fast * 2 * Math.PI)) / (2 * Math.log(theta))));
    double hi = Math.min(dim - 1, Math.ceil(dim * Math.log(orig / (slow * 2 * Math.PI)) / (2 * Math.log(theta))));
    if (lo == hi) {
      hi += 0.001;
    }
    for (int j = 0; j < dim / 2; j++) {
      double keep = 1 - Math.min(1, Math.max(0, (j - lo) / (hi - lo)));
      inv[j] = inv[j] / f * (1 - keep) + inv[j] * keep;
    }
    if (y.has("attention_factor")) {
      return y.get("attention_factor").asDouble();
    }
    if (y.has("mscale") && y.has("mscale_all_dim")) {
      return (0.1 * y.get("mscale").asDouble() * Math.log(f) + 1) / (0.1 * y.get("mscale_all_dim").asDouble() * Math.log(f) + 1);
    }
    return 0.1 * Math.log(f) + 1;
  }

  static void ropeHalf(double[] x, int off, int dim, int pos, double[] inv, double cs) {
    for (int j = 0; j < dim / 2; j++) {
      double ang = pos * inv[j];
      double a = x[off + j];
      double b = x[off + j + dim / 2];
      x[off + j] = (a * Math.cos(ang) - b * Math.sin(ang)) * cs;
      x[off + j + dim / 2] = (b * Math.cos(ang) + a * Math.sin(ang)) * cs;
    }
  }

  // softmax(scale * q.k_j) over j <= s, weighted sum of v_j, into o[oo..oo+vd).
  static void attend(double[] q, int qo, double[][] k, int ko, int kd, double[][] v, int vo, int vd, int s,
      double scale, double[] o, int oo) {
    attend(q, qo, k, ko, kd, v, vo, vd, 0, s, scale, o, oo);
  }

  // positions j0..s only (a sliding window); the others' weights stay 0.
  static void attend(double[] q, int qo, double[][] k, int ko, int kd, double[][] v, int vo, int vd, int j0, int s,
      double scale, double[] o, int oo) {
    double[] e = new double[s + 1];
    double mx = Double.NEGATIVE_INFINITY;
    for (int j = j0; j <= s; j++) {
      double dot = 0;
      for (int z = 0; z < kd; z++) {
        dot += q[qo + z] * k[j][ko + z];
      }
      e[j] = dot * scale;
      mx = Math.max(mx, e[j]);
    }
    double sum = 0;
    for (int j = j0; j <= s; j++) {
      e[j] = Math.exp(e[j] - mx);
      sum += e[j];
    }
    for (int j = j0; j <= s; j++) {
      for (int z = 0; z < vd; z++) {
        o[oo + z] += e[j] / sum * v[j][vo + z];
      }
    }
  }

  private double[][] mla(double[][] x, String p) {
    int n = x.length;
    int heads = c.get("num_attention_heads").asInt();
    int rank = c.get("kv_lora_rank").asInt();
    int qRank = i("q_lora_rank", 0);
    int rope = c.get("qk_rope_head_dim").asInt();
    int nope = c.get("qk_nope_head_dim").asInt();
    int vd = c.get("v_head_dim").asInt();
    int qk = nope + rope;
    double theta = c.get("rope_theta").asDouble();
    double[] inv = new double[rope / 2];
    double scale = 1 / Math.sqrt(qk);
    double cs = 1;
    JsonNode y = c.get("rope_scaling");
    for (int j = 0; j < rope / 2; j++) {
      inv[j] = Math.pow(theta, -2.0 * j / rope);
    }
    if (y != null && !y.isNull()) { // YaRN, DeepSeek's formulas
      double f = y.get("factor").asDouble();
      int orig = y.get("original_max_position_embeddings").asInt();
      double lo = Math.max(0, Math.floor(rope * Math.log(orig / (y.get("beta_fast").asDouble() * 2 * Math.PI)) / (2 * Math.log(theta))));
      double hi = Math.min(rope - 1, Math.ceil(rope * Math.log(orig / (y.get("beta_slow").asDouble() * 2 * Math.PI)) / (2 * Math.log(theta))));
      if (lo == hi) {
        hi += 0.001;
      }
      for (int j = 0; j < rope / 2; j++) {
        double keep = 1 - Math.min(1, Math.max(0, (j - lo) / (hi - lo)));
        inv[j] = inv[j] / f * (1 - keep) + inv[j] * keep;
      }
      double ms = 0.1 * y.get("mscale").asDouble() * Math.log(f) + 1;
      double msAll = 0.1 * y.get("mscale_all_dim").asDouble() * Math.log(f) + 1;
      cs = ms / msAll;
      scale *= msAll * msAll;
    }
    double[][] q = new double[n][], k = new double[n][], v = new double[n][];
    for (int s = 0; s < n; s++) {
      q[s] = qRank == 0
          ? lin(x[s], t(p + "q_proj.weight"), heads * qk, null)
          : lin(rms(lin(x[s], t(p + "q_a_proj.weight"), qRank, null), t(p + "q_a_layernorm.weight"), 1e-6),
              t(p + "q_b_proj.weight"), heads * qk, null);
      double[] a = lin(x[s], t(p + "kv_a_proj_with_mqa.weight"), rank + rope, null);
      double[] cn = rms(java.util.Arrays.copyOf(a, rank), t(p + "kv_a_layernorm.weight"), 1e-6);
      double[] kvb = lin(cn, t(p + "kv_b_proj.weight"), heads * (nope + vd), null);
      double[] pe = java.util.Arrays.copyOfRange(a, rank, rank + rope);
      ropeInterleaved(pe, 0, rope, s, inv, cs);
      k[s] = new double[heads * qk];
      v[s] = new double[heads * vd];
      for (int hh = 0; hh < heads; hh++) {
        ropeInterleaved(q[s], hh * qk + nope, rope, s, inv, cs);
        System.arraycopy(kvb, hh * (nope + vd), k[s], hh * qk, nope);
        System.arraycopy(pe, 0, k[s], hh * qk + nope, rope);
        System.arraycopy(kvb, hh * (nope + vd) + nope, v[s], hh * vd, vd);
      }
    }
    double[][] out = new double[n][];
    for (int s = 0; s < n; s++) {
      double[] o = new double[heads * vd];
      for (int hh = 0; hh < heads; hh++) {
        attend(q[s], hh * qk, k, hh * qk, qk, v, hh * vd, vd, s, scale, o, hh * vd);
      }
      out[s] = lin(o, t(p + "o_proj.weight"), d, null);
    }
    return out;
  }

  static void ropeInterleaved(double[] x, int off, int dim, int pos, double[] inv, double cs) {
    for (int j = 0; j < dim / 2; j++) {
      double ang = pos * inv[j];
      double a = x[off + 2 * j];
      double b = x[off + 2 * j + 1];
      x[off + 2 * j] = (a * Math.cos(ang) - b * Math.sin(ang)) * cs;
      x[off + 2 * j + 1] = (b * Math.cos(ang) + a * Math.sin(ang)) * cs;
    }
  }

  private double[] swiglu(double[] x, double[] g, double[] u, double[] dn, int ff) {
    double[] a = lin(x, g, ff, null);
    double[] b = lin(x, u, ff, null);
    for (int j = 0; j < ff; j++) {
      a[j] = a[j] / (1 + Math.exp(-a[j])) * b[j];
    }
    return lin(a, dn, d, null);
  }

  private double[] ffn(double[] x, int l, String p) {
    if (w.containsKey(p + "mlp.gate_proj.weight")) { // dense layer
      int ff = c.get("intermediate_size").asInt();
      return swiglu(x, t(p + "mlp.gate_proj.weight"), t(p + "mlp.up_proj.weight"), t(p + "mlp.down_proj.weight"), ff);
    }
    boolean mixtral = type.equals("mixtral");
    boolean ds = type.startsWith("deepseek");
    int e = mixtral ? c.get("num_local_experts").asInt() : ds ? c.get("n_routed_experts").asInt() : c.get("num_experts").asInt();
    int k = c.get("num_experts_per_tok").asInt();
    int ff = mixtral || type.equals("olmoe") ? c.get("intermediate_size").asInt() : c.get("moe_intermediate_size").asInt();
    boolean classicMixtral = w.containsKey(p + "block_sparse_moe.gate.weight");
    double[] logits = lin(x, t(classicMixtral ? p + "block_sparse_moe.gate.weight" : p + "mlp.gate.weight"), e, null);
    if (type.equals("deepseek_v3")) {
      return v3Moe(x, p, logits, e, k, ff);
    }
    double mx = Double.NEGATIVE_INFINITY;
    for (double v : logits) {
      mx = Math.max(mx, v);
    }
    double z = 0;
    double[] pr = new double[e];
    for (int j = 0; j < e; j++) {
      pr[j] = Math.exp(logits[j] - mx);
      z += pr[j];
    }
    boolean[] used = new boolean[e];
    int[] top = new int[k];
    double tsum = 0;
    for (int j = 0; j < k; j++) {
      int b = -1;
      for (int q = 0; q < e; q++) {
        if (!used[q] && (b < 0 || pr[q] > pr[b])) {
          b = q;
        }
      }
      used[b] = true;
      top[j] = b;
      tsum += pr[b] / z;
    }
    boolean norm = mixtral || (c.has("norm_topk_prob") && c.get("norm_topk_prob").asBoolean());
    double scale = ds && !norm && c.has("routed_scaling_factor") ? c.get("routed_scaling_factor").asDouble() : 1;
    double[] out = new double[d];
    for (int j = 0; j < k; j++) {
      int x0 = top[j];
      double wt = pr[x0] / z;
      wt = norm ? wt / tsum : wt * scale;
      double[][] g = expert(p, x0, e, ff);
      double[] y = swiglu(x, g[0], g[1], g[2], ff);
      for (int q = 0; q < d; q++) {
        out[q] += wt * y[q];
      }
    }
    if (type.equals("qwen2_moe") && w.containsKey(p + "mlp.shared_expert.gate_proj.weight")) {
      int sf = c.get("shared_expert_intermediate_size").asInt();
      double[] y = swiglu(x, t(p + "mlp.shared_expert.gate_proj.weight"), t(p + "mlp.shared_expert.up_proj.weight"),
          t(p + "mlp.shared_expert.down_proj.weight"), sf);
      double gate = 1 / (1 + Math.exp(-lin(x, t(p + "mlp.shared_expert_gate.weight"), 1, null)[0]));
      for (int q = 0; q < d; q++) {
        out[q] += gate * y[q];
      }
    }
    if (ds && i("n_shared_experts", 0) > 0) {
      int sf = ff * c.get("n_shared_experts").asInt();
      double[] y = swiglu(x, t(p + "mlp.shared_experts.gate_proj.weight"), t(p + "mlp.shared_experts.up_proj.weight"),
          t(p + "mlp.shared_experts.down_proj.weight"), sf);
      for (int q = 0; q < d; q++) {
        out[q] += y[q];
      }
    }
    return out;
  }

  // DeepSeek-V3 routing as its modelling code: sigmoid scores; the choice on scores + bias, groups
  // ranked by the sum of their two best biased scores, topk_group groups kept; weights the
  // unbiased scores, renormalised (+1e-20) if norm_topk_prob, times routed_scaling_factor.
  private double[] v3Moe(double[] x, String p, double[] logits, int e, int k, int ff) {
    double[] sc = new double[e];
    double[] choice = new double[e];
    double[] bias = t(p + "mlp.gate.e_score_correction_bias");
    for (int j = 0; j < e; j++) {
      sc[j] = 1 / (1 + Math.exp(-logits[j]));
      choice[j] = sc[j] + bias[j];
    }
    int groups = c.get("n_group").asInt();
    int keep = c.get("topk_group").asInt();
    int per = e / groups;
    Integer[] order = new Integer[groups];
    double[] gs = new double[groups];
    for (int g = 0; g < groups; g++) {
      double[] part = java.util.Arrays.copyOfRange(choice, g * per, (g + 1) * per);
      java.util.Arrays.sort(part);
      gs[g] = part[per - 1] + (per > 1 ? part[per - 2] : 0);
      order[g] = g;
    }
    java.util.Arrays.sort(order, (a, b) -> Double.compare(gs[b], gs[a]));
    double[] masked = new double[e];
    java.util.Arrays.fill(masked, Double.NEGATIVE_INFINITY);
    for (int g = 0; g < keep; g++) {
      for (int j = order[g] * per; j < (order[g] + 1) * per; j++) {
        masked[j] = choice[j];
      }
    }
    Integer[] idx = new Integer[e];
    for (int j = 0; j < e; j++) {
      idx[j] = j;
    }
    java.util.Arrays.sort(idx, (a, b) -> Double.compare(masked[b], masked[a]));
    double sum = 0;
    for (int j = 0; j < k; j++) {
      sum += sc[idx[j]];
    }
    boolean norm = c.get("norm_topk_prob").asBoolean();
    double scale = c.get("routed_scaling_factor").asDouble();
    double[] out = new double[d];
    for (int j = 0; j < k; j++) {
      double wt = (norm ? sc[idx[j]] / (sum + 1e-20) : sc[idx[j]]) * scale;
      double[][] g = expert(p, idx[j], e, ff);
      double[] y = swiglu(x, g[0], g[1], g[2], ff);
      for (int q = 0; q < d; q++) {
        out[q] += wt * y[q];
      }
    }
    int sf = ff * c.get("n_shared_experts").asInt();
    double[] y = swiglu(x, t(p + "mlp.shared_experts.gate_proj.weight"), t(p + "mlp.shared_experts.up_proj.weight"),
        t(p + "mlp.shared_experts.down_proj.weight"), sf);
    for (int q = 0; q < d; q++) {
      out[q] += y[q];
    }
    return out;
  }

  // {gate [ff*d], up [ff*d], down [d*ff]} of expert x in either layout.
  private double[][] expert(String p, int x, int e, int ff) {
    if (w.containsKey(p + "mlp.experts.gate_up_proj")) {
      double[] gu = t(p + "mlp.experts.gate_up_proj");
      double[] dn = t(p + "mlp.experts.down_proj");
      int sz = ff * d;
      return new double[][] {
        java.util.Arrays.copyOfRange(gu, x * 2 * sz, x * 2 * sz + sz),
        java.util.Arrays.copyOfRange(gu, x * 2 * sz + sz, (x + 1) * 2 * sz),
        java.util.Arrays.copyOfRange(dn, x * sz, (x + 1) * sz)};
    }
    if (w.containsKey(p + "block_sparse_moe.experts.0.w1.weight")) {
      String q = p + "block_sparse_moe.experts." + x + ".";
      return new double[][] {t(q + "w1.weight"), t(q + "w3.weight"), t(q + "w2.weight")};
    }
    String q = p + "mlp.experts." + x + ".";
    return new double[][] {t(q + "gate_proj.weight"), t(q + "up_proj.weight"), t(q + "down_proj.weight")};
  }

  /** The largest |got - ref| over all positions, and the largest |ref| (at least {@code floor}). */
  record Deviation(double max, double scale) {}

  /** {@link Deviation} of an engine's logits [t][vocab] from the reference's. */
  static Deviation deviation(float[][] got, double[][] ref, double floor) {
    double err = 0;
    double scale = floor;
    for (int t = 0; t < ref.length; t++) {
      for (int i = 0; i < ref[t].length; i++) {
        err = Math.max(err, Math.abs(got[t][i] - ref[t][i]));
        scale = Math.max(scale, Math.abs(ref[t][i]));
      }
    }
    return new Deviation(err, scale);
  }
}
