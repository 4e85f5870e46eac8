package org.hybrimoe.model;

import java.nio.FloatBuffer;

/** The feed-forward sublayer of a decoder layer: a dense SwiGLU MLP or a mixture of experts. */
public interface FeedForward {
  /** out[n, d] = FFN(x[n, d]) (overwritten). */
  void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out);
}
