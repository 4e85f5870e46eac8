package org.hybrimoe.model;

/**
 * YaRN rotary scaling as DeepSeek's modelling code defines it: per pair a blend of the original
 * frequency and the frequency divided by factor, ramped between the correction dimensions of
 * beta_fast and beta_slow; cos/sin scaled by mscale(factor, mscale) / mscale(factor,
 * mscale_all_dim); the softmax scale multiplied by mscale(factor, mscale_all_dim)^2.
 */
public record Yarn(
    double factor, int originalMaxPositions, double betaFast, double betaSlow, double mscale,
    double mscaleAllDim) {

  /** 0.1 * m * ln(scale) + 1 for scale > 1, else 1. */
  public static double mscale(double scale, double m) {
    return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
  }

  /** The per-pair inverse frequencies for a rotary dimension {@code dim}, base theta. */
  public float[] invFreq(double theta, int dim) {
    int half = dim / 2;
    double low = Math.floor(correctionDim(betaFast, dim, theta));
    double high = Math.ceil(correctionDim(betaSlow, dim, theta));
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    if (low == high) {
      high += 0.001;
    }
    float[] out = new float[half];
    for (int i = 0; i < half; i++) {
      // DeepSeek computes these in f32: base ** (arange(0, dim, 2) / dim).
      float pow = (float) Math.pow(theta, (float) (2 * i) / dim);
      float extra = 1f / pow;
      float inter = 1f / ((float) factor * pow);
      float ramp = (float) Math.min(1, Math.max(0, (i - low) / (high - low)));
      float mask = 1f - ramp;
      out[i] = inter * (1f - mask) + extra * mask;
    }
    return out;
  }

  /** The factor on cos and sin. */
  public float ropeScale() {
    return (float) (mscale(factor, mscale) / mscale(factor, mscaleAllDim));
  }

  /** The factor on the softmax scale (1 when mscale_all_dim is 0). */
  public double softmaxFactor() {
    if (mscaleAllDim == 0) {
      return 1.0;
    }
    double m = mscale(factor, mscaleAllDim);
    return m * m;
  }

  private double correctionDim(double rotations, int dim, double base) {
    return (dim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  }
}
