package org.hybrimoe.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.FloatBuffer;
import org.hybrimoe.ops.DenseOps;

/**
 * Rotary frequencies of a GQA model (Mixtral, Qwen2/3-MoE, OLMoE) from config.json as
 * HuggingFace's rope_utils computes them: invFreq [dim / 2] and the factor on cos and sin
 * (attention_factor; 1 without scaling).
 *
 * <p>rope_scaling types (key "rope_type" or the older "type"):
 *
 * <ul>
 *   <li>absent, null or "default": theta^(-2i/dim);
 *   <li>"linear": every frequency divided by factor;
 *   <li>"yarn": {@link Yarn}'s ramp between the correction dimensions of beta_fast (32) and
 *       beta_slow (1) at original_max_position_embeddings (from rope_scaling, else the config's
 *       max_position_embeddings); cos/sin times attention_factor, by default
 *       mscale(factor, mscale) / mscale(factor, mscale_all_dim) when both are set, else 0.1 ln(factor)
 *       + 1. factor is taken as written. (Some transformers releases replace it by
 *       max_position_embeddings / original_max_position_embeddings when both exist; vLLM and
 *       llama.cpp use it as written, and so do the model cards that tell users to add it.)
 * </ul>
 *
 * <p>"dynamic" (NTK) changes the frequencies of tokens already in the KV cache as the sequence
 * grows, "longrope" and "llama3" belong to no supported MoE family, and partial_rotary_factor
 * below 1 is not implemented: each is refused naming the field rather than run silently wrong.
 * (DeepSeek's MLA reads its YaRN with DeepSeek's own conventions in its architecture.)
 */
public record Rope(float[] invFreq, float scale) {

  /** The frequencies of rotary dimension {@code dim} (a head's size) for {@code cfg}. */
  public static Rope of(ModelConfig cfg, int dim, double defaultTheta) {
    double theta = cfg.positiveDoubleOr("rope_theta", defaultTheta);
    if (cfg.has("partial_rotary_factor") && cfg.doubleOr("partial_rotary_factor", 1.0) != 1.0) {
      throw cfg.bad("partial_rotary_factor", "is " + cfg.json().get("partial_rotary_factor")
          + "; only full rotary heads (1.0) are supported");
    }
    if (!cfg.has("rope_scaling")) {
      return new Rope(Act.ropeInvFreq(theta, dim), 1f);
    }
    JsonNode r = cfg.json().get("rope_scaling");
    if (!r.isObject()) {
      throw cfg.bad("rope_scaling", "must be an object or null, got " + r);
    }
    String type = r.hasNonNull("rope_type") ? r.get("rope_type").asText() : r.path("type").asText("default");
    switch (type) {
      case "default":
        return new Rope(Act.ropeInvFreq(theta, dim), 1f);
      case "linear": {
        double factor = factor(cfg, r);
        float[] f = Act.ropeInvFreq(theta, dim);
        for (int i = 0; i < f.length; i++) {
          f[i] = (float) (f[i] / factor); // HF divides the f32 frequencies in place
        }
        return new Rope(f, 1f);
      }
      case "yarn": {
        double factor = factor(cfg, r);
        int orig = r.hasNonNull("original_max_position_embeddings")
            ? positiveInt(cfg, r, "original_max_position_embeddings")
            : cfg.requirePositiveInt("max_position_embeddings");
        double mscale = number(cfg, r, "mscale", 0);
        double mscaleAll = number(cfg, r, "mscale_all_dim", 0);
        // HF: `get("beta_fast") or 32`, so a 0 also means the default.
        double betaFast = number(cfg, r, "beta_fast", 0);
        double betaSlow = number(cfg, r, "beta_slow", 0);
        betaFast = betaFast == 0 ? 32 : betaFast;
        betaSlow = betaSlow == 0 ? 1 : betaSlow;
        if (r.has("truncate") && !r.get("truncate").asBoolean(true)) {
          throw cfg.bad("rope_scaling", "truncate: false is not supported");
        }
        double attention;
        if (r.hasNonNull("attention_factor")) {
          attention = number(cfg, r, "attention_factor", 1);
        } else if (mscale != 0 && mscaleAll != 0) {
          attention = Yarn.mscale(factor, mscale) / Yarn.mscale(factor, mscaleAll);
        } else {
          attention = Yarn.mscale(factor, 1);
        }
        Yarn y = new Yarn(factor, orig, betaFast, betaSlow, 1, 0);
        return new Rope(y.invFreq(theta, dim), (float) attention);
      }
      case "dynamic":
        throw cfg.bad("rope_scaling", "type 'dynamic' (NTK) rescales positions already in the KV cache "
            + "as the sequence grows and is not supported; remove rope_scaling to run within "
            + "max_position_embeddings");
      default:
        throw cfg.bad("rope_scaling", "type '" + type + "' is not supported (default, linear, yarn)");
    }
  }

  /** invFreq in a direct buffer for the engine's rope. */
  public FloatBuffer invFreqBuffer() {
    return DenseOps.floats(invFreq.length).put(invFreq).flip();
  }

  private static double factor(ModelConfig cfg, JsonNode r) {
    double f = number(cfg, r, "factor", Double.NaN);
    if (!(f >= 1)) {
      throw cfg.bad("rope_scaling", "needs a numeric 'factor' >= 1, got " + r.get("factor"));
    }
    return f;
  }

  private static double number(ModelConfig cfg, JsonNode r, String key, double def) {
    JsonNode v = r.get(key);
    if (v == null || v.isNull()) {
      return def;
    }
    if (!v.isNumber() || !Double.isFinite(v.asDouble())) {
      throw cfg.bad("rope_scaling", "'" + key + "' must be a finite number, got " + v);
    }
    return v.asDouble();
  }

  private static int positiveInt(ModelConfig cfg, JsonNode r, String key) {
    JsonNode v = r.get(key);
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() <= 0) {
      throw cfg.bad("rope_scaling", "'" + key + "' must be a positive integer, got " + v);
    }
    return v.asInt();
  }
}
