package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.KvCache;

/**
 * One sequence being run through a {@link CausalLm}: {@link #forward} appends tokens (a prompt
 * prefill, then one token per decode step) and returns their logits, reusing the KV cache for
 * everything before them. Not thread-safe; close it to free the cache.
 *
 * <p>When the model's attention runs on a dense device ({@link DenseOffload#attentionOnDevice}),
 * the KV cache is in that device's memory; when it does not fit there, this session keeps its
 * cache, and runs its attention, on the CPU.
 */
public final class Session implements AutoCloseable {
  private final CausalLm model;
  private final KvCache cache; // null when the cache is on the dense device
  private final DenseDevice.Kv deviceKv; // null when it is not
  private final Scratch scratch = new Scratch(); // activations, reused by every step
  private int position;

  Session(CausalLm model, int maxSeq, KvCache.Dtype kvType) {
    if (maxSeq < 1) {
      throw new IllegalArgumentException("maxSeq must be >= 1, got " + maxSeq);
    }
    this.model = model;
    this.deviceKv = deviceKv(model, maxSeq, kvType);
    Attention a = model.layers().get(0).attention();
    this.cache = deviceKv != null ? null : KvCache.create(model.numLayers(), maxSeq, a.cacheHeads(), a.cacheKeyDim(),
        a.cacheValueDim(), kvType, a.cacheValueSharesKey());
  }

  private static DenseDevice.Kv deviceKv(CausalLm model, int maxSeq, KvCache.Dtype kvType) {
    DenseOffload dense = model.dense();
    if (dense == null || !dense.attentionOnDevice()) {
      return null;
    }
    try {
      return dense.newKv(model.numLayers(), maxSeq, kvType);
    } catch (NativeException.OutOfMemory e) {
      return null;
    }
  }

  /** Whether this session's KV cache, and its attention, are on the model's dense device. */
  public boolean attentionOnDevice() {
    return deviceKv != null;
  }

  private int maxSeq() {
    return deviceKv != null ? deviceKv.maxSeq() : cache.maxSeq();
  }

  private void truncate(int length) {
    if (deviceKv != null) {
      deviceKv.truncate(length);
    } else {
      cache.truncate(length);
    }
  }

  /** Tokens processed so far (the position of the next one). */
  public int position() {
    return position;
  }

  /**
   * Runs the tokens at positions position()..position()+n-1 and returns their logits [n][vocab].
   *
   * @throws IllegalStateException when the cache would overflow
   */
  public float[][] forward(int... tokens) {
    return forward(tokens, false);
  }

  /**
   * Like {@link #forward} but computes the final norm and LM head for the last token only (what
   * a decoder needs to choose the next token; a long prompt's [n, vocab] logits are skipped).
   */
  public float[] forwardLast(int... tokens) {
    if (tokens.length == 0) {
      throw new IllegalArgumentException("forwardLast needs at least one token");
    }
    return forward(tokens, true)[0];
  }

  private float[][] forward(int[] tokens, boolean lastOnly) {
    int n = tokens.length;
    if (n == 0) {
      return new float[0][];
    }
    if (position + n > maxSeq()) {
      throw new IllegalStateException(
          "sequence of " + (position + n) + " tokens exceeds the session's " + maxSeq() + " positions");
    }
    int d = model.hiddenSize();
    IntBuffer pos = scratch.ints(Scratch.Slot.POSITIONS, n);
    for (int t = 0; t < n; t++) {
      pos.put(t, position + t);
    }
    try {
      return run(tokens, n, d, pos, lastOnly);
    } catch (RuntimeException e) {
      truncate(position); // layers that appended before the failure forget it
      throw e;
    }
  }

  private float[][] run(int[] tokens, int n, int d, IntBuffer pos, boolean lastOnly) {
    ForwardContext ctx = new ForwardContext(model.engine(), cache, model.experts(), pos, scratch, model.dense());
    FloatBuffer h = model.embed(tokens, scratch);
    FloatBuffer x = scratch.floats(Scratch.Slot.NORMED, (long) n * d);
    FloatBuffer y = scratch.floats(Scratch.Slot.SUBLAYER_OUT, (long) n * d);
    for (int l = 0; l < model.numLayers(); l++) {
      DecoderLayer layer = model.layers().get(l);
      DenseOps.rmsnorm(h, n, d, d, layer.norm1(), model.eps(), x, d);
      if (deviceKv != null) {
        model.dense().attend(layer.attention(), deviceKv, l, x, n, pos, y);
      } else {
        layer.attention().forward(ctx, l, x, n, y);
      }
      Act.addInPlace(h, y, n * d);
      DenseOps.rmsnorm(h, n, d, d, layer.norm2(), model.eps(), x, d);
      layer.ffn().forward(ctx, l, x, n, y);
      Act.addInPlace(h, y, n * d);
    }
    position += n;
    int rows = lastOnly ? 1 : n;
    FloatBuffer logits = model.head(ctx, lastOnly ? h.slice((n - 1) * d, d) : h, rows);
    int v = model.vocabSize();
    float[][] out = new float[rows][v];
    for (int t = 0; t < rows; t++) {
      logits.get(t * v, out[t]);
    }
    return out;
  }

  /** The host KV cache; null when the cache is on the dense device. */
  KvCache cache() {
    return cache;
  }

  /** Drops the cache: the next forward starts a new sequence at position 0. */
  public void reset() {
    truncate(0);
    position = 0;
  }

  @Override
  public void close() {
    if (deviceKv != null) {
      deviceKv.close();
    } else {
      cache.close();
    }
  }
}
