package org.hybrimoe.model;

import java.nio.FloatBuffer;

/**
 * A look-ahead onto the model's routers, for prefetching (ALGORITHMS.md section 3): decoder layer
 * {@code decoderLayer}'s gate and top-k rule applied to another layer's router input. A
 * {@link CausalLm} builds one from its MoE blocks and hands it to its executor
 * ({@link MoeLayerExecutor#setLookahead}).
 *
 * <p>It computes into buffers of its own, so an executor may call it while the forward pass's
 * buffers are in use; it is called from the forward pass's thread only.
 */
public interface Lookahead {
  /**
   * Experts per token that decoder layer {@code decoderLayer} routes to.
   *
   * @throws IllegalArgumentException when that layer is not a MoE layer
   */
  int topK(int decoderLayer);

  /**
   * Predicts decoder layer {@code decoderLayer}'s routing of {@code nTokens} tokens from another
   * layer's router input.
   *
   * @param x [nTokens, dModel] f32, direct (the current layer's router input)
   * @param ids [nTokens * topK(decoderLayer)] predicted expert ids (out)
   * @throws IllegalArgumentException when that layer is not a MoE layer, or ids is too short
   */
  void predict(int decoderLayer, FloatBuffer x, int nTokens, int[] ids);
}
