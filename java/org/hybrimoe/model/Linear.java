package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;

/**
 * A linear layer y = x @ W^T + b: W [out, in] in f32, bf16 or f16, borrowed from the checkpoint
 * (mapped, not copied), or the BF16 copy of an FP8 weight ({@link ModelWeights#weight}); bias
 * [out] f32 or null.
 */
public record Linear(ByteBuffer weight, WeightType type, int out, int in, FloatBuffer bias) {
  /** y[n, out] = x[n, in] @ W^T + b, on the engine's pool. */
  public void apply(Engine engine, FloatBuffer x, int n, FloatBuffer y) {
    DenseOps.linear(engine, x, n, in, weight, type, out, bias, y);
  }
}
