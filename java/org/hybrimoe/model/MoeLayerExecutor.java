package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * Runs the routed experts of the model's MoE layers. The forward pass routes tokens itself and
 * hands every MoE layer to this one interface, so that the CPU engine ({@link CpuMoeExecutor})
 * and the hybrid CPU-GPU executor are interchangeable. Besides the routing, the model hands over
 * its routing probabilities (for a score-based cache) and, once, a {@link Lookahead} onto later
 * layers' routers (for prefetching); an executor may ignore both.
 *
 * <p>Thread-safety: called by one forward pass at a time.
 */
public interface MoeLayerExecutor extends AutoCloseable {
  /**
   * out[t] += sum over j of weights[t, j] * FFN_{ids[t, j]}(x[t]) for the experts of MoE layer
   * {@code layer} (the decoder layer's index).
   *
   * @param x [nTokens, dModel] f32, direct
   * @param ids [nTokens, topK] expert ids
   * @param weights [nTokens, topK] routing weights
   * @param out [nTokens, dModel] f32, accumulated into
   */
  void run(int layer, FloatBuffer x, int nTokens, int topK, IntBuffer ids, FloatBuffer weights, FloatBuffer out);

  /**
   * As {@link #run(int, FloatBuffer, int, int, IntBuffer, FloatBuffer, FloatBuffer)}, with every
   * token's routing probabilities; what the model's forward pass calls. The default ignores them.
   *
   * @param scores [nTokens, nExperts] softmax or sigmoid values ({@link Router#route(FloatBuffer,
   *     int, IntBuffer, FloatBuffer, FloatBuffer)}), direct, or null
   */
  default void run(
      int layer, FloatBuffer x, int nTokens, int topK, IntBuffer ids, FloatBuffer weights, FloatBuffer scores,
      FloatBuffer out) {
    run(layer, x, nTokens, topK, ids, weights, out);
  }

  /**
   * Gives the executor the model's look-ahead onto later layers' routers (null: none). The model
   * calls it once, when it is assembled; the default ignores it.
   */
  default void setLookahead(Lookahead lookahead) {}

  /**
   * Whether {@link #run} adds decoder layer {@code layer}'s shared expert (gated as the model
   * would) to out as well, so that the model skips its own; only for a shared expert it was
   * offered at load ({@link MoeExecutorFactory}). The default: never.
   */
  default boolean runsSharedExpert(int layer) {
    return false;
  }

  /** Counters since creation or {@link #resetStats}, or null when the executor keeps none. */
  default ExecutorStats stats() {
    return null;
  }

  /** Zeroes the counters of {@link #stats} (what the executor has learnt, its cache, stays). */
  default void resetStats() {}

  @Override
  void close();
}
