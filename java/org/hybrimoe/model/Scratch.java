package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * A session's reusable activation buffers. Each use site asks for its own {@link Slot}; a slot's
 * direct buffer grows to the largest request and is reused by every later layer and step, so a
 * decode step allocates no direct memory (allocateDirect zeroes, registers a cleaner and counts
 * against the direct-memory limit, once per buffer per layer per token before this existed).
 *
 * <p>Contents are not cleared between uses: every caller writes a buffer before reading it. Two
 * values alive at once never share a slot: each slot belongs to one piece of code, named below.
 * Not thread-safe, like the session that owns it.
 */
final class Scratch {
  /** Who owns each buffer. */
  enum Slot {
    POSITIONS, // Session: absolute positions of the step's tokens
    HIDDEN, // Session: the residual stream [n, d]
    NORMED, // Session: norm of the residual, input of a sublayer [n, d]
    SUBLAYER_OUT, // Session: attention or FFN output [n, d]
    HEAD_IN, // CausalLm.head: final norm [n, d]
    LOGITS, // CausalLm.head: [n, vocab]
    Q, // attention: queries (GQA: q, k and v in turn; MLA with q_proj: q, then the latent key)
    ATTENDED, // attention: attention output before o_proj
    Q_LATENT, // MLA with q_lora: q_a_proj output, then the cached key [n, rank + rope] (kv_a_proj_with_mqa output, normed and roped)
    Q_ABSORBED, // MLA: absorbed queries [n, H, rank + rope]
    LATENT_OUT, // MLA: attention output in latent space [n, H, rank]
    ROUTER_LOGITS, // MoeBlock
    EXPERT_IDS, // MoeBlock
    EXPERT_WEIGHTS, // MoeBlock
    ROUTER_SCORES, // MoeBlock: routing probabilities [n, experts] for the executor's cache
    SHARED_OUT, // MoeBlock: shared expert output
    SHARED_GATE, // MoeBlock: shared expert gate logits
    MLP_GATE_UP // DenseMlp (also the shared expert inside MoeBlock): gate then up, [n, ff] each
  }

  private final ByteBuffer[] buffers = new ByteBuffer[Slot.values().length];

  /** A view of exactly n floats (capacity n) on the slot's buffer. */
  FloatBuffer floats(Slot slot, long n) {
    return bytes(slot, n).asFloatBuffer();
  }

  /** A view of exactly n ints (capacity n) on the slot's buffer. */
  IntBuffer ints(Slot slot, long n) {
    return bytes(slot, n).asIntBuffer();
  }

  private ByteBuffer bytes(Slot slot, long elements) {
    int need = Math.toIntExact(Math.multiplyExact(elements, 4L));
    ByteBuffer b = buffers[slot.ordinal()];
    if (b == null || b.capacity() < need) {
      b = ByteBuffer.allocateDirect(need).order(ByteOrder.nativeOrder());
      buffers[slot.ordinal()] = b;
    }
    return b.duplicate().limit(need).order(ByteOrder.nativeOrder());
  }
}
