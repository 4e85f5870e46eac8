package org.hybrimoe.model;

import java.nio.FloatBuffer;

/** Element-wise helpers on f32 activations (small next to the native matmuls). */
final class Act {
  private Act() {}

  /** y[i] += x[i] for i < n. */
  static void addInPlace(FloatBuffer y, FloatBuffer x, int n) {
    for (int i = 0; i < n; i++) {
      y.put(i, y.get(i) + x.get(i));
    }
  }

  /** g[i] = silu(g[i]) * u[i] for i < n (SwiGLU's hidden activation), silu(a) = a / (1 + e^-a). */
  static void siluMul(FloatBuffer g, FloatBuffer u, int n) {
    for (int i = 0; i < n; i++) {
      float a = g.get(i);
      g.put(i, (float) (a / (1.0 + Math.exp(-a))) * u.get(i));
    }
  }

  /** theta^(-2i/dim) for i < dim/2, in f32 as HF computes it. */
  static float[] ropeInvFreq(double theta, int dim) {
    float[] f = new float[dim / 2];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / dim));
    }
    return f;
  }
}
