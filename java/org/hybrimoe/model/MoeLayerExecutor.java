package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * Runs the routed experts of the model's MoE layers. The forward pass routes tokens itself and
 * hands every MoE layer to this one interface, so that the CPU engine ({@link CpuMoeExecutor})
 * and the hybrid CPU-GPU executor are interchangeable.
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

  @Override
  void close();
}
