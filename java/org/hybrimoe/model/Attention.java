package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.util.List;
import org.hybrimoe.device.DenseDevice;

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

  /**
   * Registers this sublayer whole on {@code dense}'s device, over its linears placed there
   * already; null when it cannot go there (a linear on the CPU, a weight it needs besides refused
   * by the byte limit or the device's memory, or a form the device lacks: the default).
   */
  default DenseDevice.Attention placeOn(DenseOffload dense) {
    return null;
  }
}
