package org.hybrimoe.hybrid;

import java.nio.FloatBuffer;

/**
 * The prefetcher's look-ahead (ALGORITHMS.md section 3): a later MoE layer's router applied to the
 * current layer's router input, then that layer's own top-k rule. Costs the router matrices only.
 */
@FunctionalInterface
public interface RoutePredictor {
  /**
   * Predicts MoE layer {@code target}'s routing of {@code n} tokens from {@code x}.
   *
   * @param x [n, dModel] f32, the current layer's router input
   * @param ids [n * topK] predicted expert ids (out)
   */
  void predict(int target, FloatBuffer x, int n, int[] ids);
}
