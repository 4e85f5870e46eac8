package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.KvCache;

/**
 * What a forward step's sublayers share: the engine, the session's KV cache, the MoE executor,
 * the absolute positions [n] of the step's tokens, and the session's scratch buffers.
 */
public record ForwardContext(
    Engine engine, KvCache cache, MoeLayerExecutor experts, IntBuffer positions, Scratch scratch) {

  /** A context with scratch buffers of its own (one-shot use, tests). */
  public ForwardContext(Engine engine, KvCache cache, MoeLayerExecutor experts, IntBuffer positions) {
    this(engine, cache, experts, positions, new Scratch());
  }

  FloatBuffer floats(Scratch.Slot slot, long n) {
    return scratch.floats(slot, n);
  }

  IntBuffer ints(Scratch.Slot slot, long n) {
    return scratch.ints(slot, n);
  }
}
