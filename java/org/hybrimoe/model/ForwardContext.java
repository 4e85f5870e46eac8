package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.KvCache;

/**
 * What a forward step's sublayers share: the engine, the session's KV cache, the MoE executor,
 * the absolute positions [n] of the step's tokens, the session's scratch buffers, and where the
 * dense linears run ({@link DenseOffload}; null: all on the CPU).
 */
public record ForwardContext(
    Engine engine, KvCache cache, MoeLayerExecutor experts, IntBuffer positions, Scratch scratch,
    DenseOffload dense) {

  /** A context whose dense linears all run on the CPU. */
  public ForwardContext(Engine engine, KvCache cache, MoeLayerExecutor experts, IntBuffer positions, Scratch scratch) {
    this(engine, cache, experts, positions, scratch, null);
  }

  /** A context with scratch buffers of its own (one-shot use, tests). */
  public ForwardContext(Engine engine, KvCache cache, MoeLayerExecutor experts, IntBuffer positions) {
    this(engine, cache, experts, positions, new Scratch(), null);
  }

  FloatBuffer floats(Scratch.Slot slot, long n) {
    return scratch.floats(slot, n);
  }

  IntBuffer ints(Scratch.Slot slot, long n) {
    return scratch.ints(slot, n);
  }

  /** y[n, out] = x[n, in] @ W^T + b, on the device when the linear is there. */
  void linear(Linear l, FloatBuffer x, int n, FloatBuffer y) {
    DenseOffload.linears(dense, engine, x, n, y, l);
  }

  /** Linears sharing x [n, in]; y holds each one's [n, out_i] block in turn. */
  void linears(FloatBuffer x, int n, FloatBuffer y, Linear... ls) {
    DenseOffload.linears(dense, engine, x, n, y, ls);
  }
}
