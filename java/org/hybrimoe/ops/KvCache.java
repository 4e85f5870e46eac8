package org.hybrimoe.ops;

import java.lang.ref.Cleaner;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * A native KV cache: per layer up to maxSeq positions of nKvHeads heads, kDim key and vDim value
 * floats each, owned natively. {@link DenseOps#attention} appends to one layer and attends over
 * everything stored. Close it when done (a Cleaner is the backstop).
 *
 * <p>A shared-KV cache ({@link #createSharedKv}) stores keys only: a head's value is the first
 * vDim floats of its key, so a position costs nKvHeads * kDim floats instead of nKvHeads * (kDim +
 * vDim).
 *
 * <p>Elements are f32 by default; {@link Dtype#BF16} halves the memory and the attention's
 * reads, rounding keys and values to bf16 as they are appended (what a bf16 model's cache holds
 * in HuggingFace).
 *
 * <p>Thread-safety: one call at a time per cache.
 */
public final class KvCache implements AutoCloseable {
  /** Element type of the stored keys and values. */
  public enum Dtype {
    F32(HmoeNative.HMOE_DTYPE_F32, 4),
    BF16(HmoeNative.HMOE_DTYPE_BF16, 2);

    final int code;
    /** Bytes an element. */
    public final int bytes;

    Dtype(int code, int bytes) {
      this.code = code;
      this.bytes = bytes;
    }

    /** The engine's HMOE_DTYPE_* code. */
    public int code() {
      return code;
    }
  }

  private static final Cleaner CLEANER = Cleaner.create();

  private final HmoeNative.hmoe_kv_cache_t handle;
  private final Cleaner.Cleanable cleanable;
  private final int nLayers;
  private final int maxSeq;
  private final int nKvHeads;
  private final int kDim;
  private final int vDim;
  private final boolean sharedKv;
  private final Dtype dtype;
  private boolean closed;

  private KvCache(
      HmoeNative.hmoe_kv_cache_t handle, int nLayers, int maxSeq, int nKvHeads, int kDim, int vDim,
      boolean sharedKv, Dtype dtype) {
    this.handle = handle;
    this.dtype = dtype;
    this.nLayers = nLayers;
    this.maxSeq = maxSeq;
    this.nKvHeads = nKvHeads;
    this.kDim = kDim;
    this.vDim = vDim;
    this.sharedKv = sharedKv;
    this.cleanable = CLEANER.register(this, new Release(handle));
  }

  /** Creates an empty f32 cache (every layer length 0). */
  public static KvCache create(int nLayers, int maxSeq, int nKvHeads, int kDim, int vDim) {
    return create(nLayers, maxSeq, nKvHeads, kDim, vDim, Dtype.F32, false);
  }

  /** Creates an empty cache of dtype elements, key-only when sharedKv (see {@link #createSharedKv}). */
  public static KvCache create(int nLayers, int maxSeq, int nKvHeads, int kDim, int vDim, Dtype dtype, boolean sharedKv) {
    Native.load();
    HmoeNative.hmoe_kv_cache_t out = new HmoeNative.hmoe_kv_cache_t();
    Native.check(
        "hmoe_kv_cache_create_typed",
        HmoeNative.hmoe_kv_cache_create_typed(nLayers, maxSeq, nKvHeads, kDim, vDim, dtype.code, sharedKv ? 1 : 0, out));
    return new KvCache(out, nLayers, maxSeq, nKvHeads, kDim, vDim, sharedKv, dtype);
  }

  /**
   * Creates an empty key-only cache: the value of a cached head is the first vDim floats of its
   * key (vDim <= kDim, else {@link org.hybrimoe.nativeapi.NativeException.InvalidArgument}).
   */
  public static KvCache createSharedKv(int nLayers, int maxSeq, int nKvHeads, int kDim, int vDim) {
    return create(nLayers, maxSeq, nKvHeads, kDim, vDim, Dtype.F32, true);
  }

  /** The element type. */
  public Dtype dtype() {
    return dtype;
  }

  public int nLayers() {
    return nLayers;
  }

  /** Positions a layer can hold. */
  public int maxSeq() {
    return maxSeq;
  }

  public int nKvHeads() {
    return nKvHeads;
  }

  public int kDim() {
    return kDim;
  }

  public int vDim() {
    return vDim;
  }

  /** Whether values are read from the keys (no value storage). */
  public boolean sharedKv() {
    return sharedKv;
  }

  /** Floats stored per position per layer. */
  public long floatsPerPosition() {
    return (long) nKvHeads * (sharedKv ? kDim : kDim + vDim);
  }

  /** Positions stored in one layer. */
  public int length(int layer) {
    long[] out = new long[1];
    Native.check("hmoe_kv_cache_length", HmoeNative.hmoe_kv_cache_length(handle(), layer, out));
    return Math.toIntExact(out[0]);
  }

  /** Drops positions at and after {@code length} in every layer (0: a new sequence). */
  public void truncate(int length) {
    Native.check("hmoe_kv_cache_truncate", HmoeNative.hmoe_kv_cache_truncate(handle(), length));
  }

  HmoeNative.hmoe_kv_cache_t handle() {
    if (closed) {
      throw new IllegalStateException("KV cache is closed");
    }
    return handle;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      cleanable.clean();
    }
  }

  private static final class Release implements Runnable {
    private final HmoeNative.hmoe_kv_cache_t handle;

    Release(HmoeNative.hmoe_kv_cache_t handle) {
      this.handle = handle;
    }

    @Override
    public void run() {
      HmoeNative.hmoe_kv_cache_free(handle);
      handle.setNull();
    }
  }
}
