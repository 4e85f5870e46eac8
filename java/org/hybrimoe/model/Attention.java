package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.util.List;

/** The attention sublayer of a decoder layer (grouped-query or multi-head latent attention). */
public interface Attention {
  /**
   * out[n, d] = attention of the n new tokens (already normalised, x [n, d]) over the cache's
   * layer, appending their keys and values.
   */
  void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out);

  /** KV heads the cache stores per position. */
  int cacheHeads();

  /** Key floats per cached head. */
  int cacheKeyDim();

  /** Value floats per cached head. */
  int cacheValueDim();

  /**
   * Whether a cached head's value is the first {@link #cacheValueDim} floats of its key (the cache
   * then stores keys only, and forward passes no separate value).
   */
  default boolean cacheValueSharesKey() {
    return false;
  }

  /**
   * The projections a {@link DenseOffload} may run on a device (whole [out, in] weights applied to
   * the sublayer's activations); the default, none.
   */
  default List<Linear> linears() {
    return List.of();
  }
}
