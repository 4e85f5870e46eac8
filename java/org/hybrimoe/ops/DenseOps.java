package org.hybrimoe.ops;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * The engine's dense transformer operations (cpp/include/hybrimoe/dense.h) with checked buffers:
 * every buffer must be direct and is used from its position, in place (no copies). Activations
 * are f32 row-major; linear weights [out, in] in f32, bf16 or f16, applied as x @ W^T.
 *
 * <p>Thread-safety: calls that take an engine are serialized by it; the others run on the
 * calling thread and touch only their arguments.
 */
public final class DenseOps {
  private DenseOps() {}

  /** Element type of linear weights. */
  public enum WeightType {
    F32(HmoeNative.HMOE_DTYPE_F32, 4),
    BF16(HmoeNative.HMOE_DTYPE_BF16, 2),
    F16(HmoeNative.HMOE_DTYPE_F16, 2);

    private final int code;
    private final int bytes;

    WeightType(int code, int bytes) {
      this.code = code;
      this.bytes = bytes;
    }

    /** The engine's dtype code (HMOE_DTYPE_*). */
    public int code() {
      return code;
    }

    /** Bytes per element. */
    public int bytes() {
      return bytes;
    }

    /** The safetensors dtype name's weight type, or null when it is none of F32, BF16, F16. */
    public static WeightType ofSafetensors(String dtype) {
      return switch (dtype) {
        case "F32" -> F32;
        case "BF16" -> BF16;
        case "F16" -> F16;
        default -> null;
      };
    }
  }

  /** RoPE pairing: HALF pairs i with i + rot/2 (HF rotate_half), INTERLEAVED pairs 2i, 2i+1. */
  public enum RopeStyle {
    HALF,
    INTERLEAVED
  }

  /** A direct little-endian float buffer of n zeros. */
  public static FloatBuffer floats(long n) {
    return ByteBuffer.allocateDirect(Math.toIntExact(Math.multiplyExact(n, 4L)))
        .order(ByteOrder.nativeOrder())
        .asFloatBuffer();
  }

  /** A direct int buffer of n zeros. */
  public static IntBuffer ints(long n) {
    return ByteBuffer.allocateDirect(Math.toIntExact(Math.multiplyExact(n, 4L)))
        .order(ByteOrder.nativeOrder())
        .asIntBuffer();
  }

  /**
   * y[n, out] = x[n, in] @ w^T + bias.
   *
   * @param w [out, in] of {@code type}, little-endian bytes from its position
   * @param bias [out] or null
   */
  public static void linear(
      Engine engine, FloatBuffer x, int n, int in, ByteBuffer w, WeightType type, int out,
      FloatBuffer bias, FloatBuffer y) {
    Native.requireDirect("x", x, (long) n * in);
    Native.requireDirect("w", w, (long) out * in * type.bytes());
    if (bias != null) {
      Native.requireDirect("bias", bias, out);
    }
    Native.requireDirect("y", y, (long) n * out);
    Native.check(
        "hmoe_dense_linear",
        HmoeNative.hmoe_dense_linear(
            engine.handle(), x.slice(), n, in, w.slice(), type.code, out,
            bias == null ? null : bias.slice(), y.slice()));
  }

  /**
   * Per-head linears in one native call: for t < n, h < heads, y[t*ldyToken + h*ldyHead + r] =
   * x[t*ldxToken + h*ldxHead + :] . W_h[r, :], W_h [out, in] of {@code type} at w's position +
   * h * wHeadStride elements. Output rows of different (token, head) must not overlap.
   */
  public static void linearHeads(
      Engine engine, FloatBuffer x, int n, int heads, int in, int ldxToken, int ldxHead, ByteBuffer w,
      WeightType type, long wHeadStride, int out, FloatBuffer y, int ldyToken, int ldyHead) {
    if (n < 0 || heads < 1 || in < 1 || out < 1 || ldxToken < 0 || ldxHead < 0 || wHeadStride < 0
        || ldyToken < 0 || ldyHead < 0) {
      throw new IllegalArgumentException("linearHeads: negative stride or empty shape (n " + n + ", heads " + heads
          + ", in " + in + ", out " + out + ")");
    }
    if (n == 0) {
      return;
    }
    Native.requireDirect("x", x, (long) (n - 1) * ldxToken + (long) (heads - 1) * ldxHead + in);
    Native.requireDirect("w", w, ((heads - 1) * wHeadStride + (long) out * in) * type.bytes());
    Native.requireDirect("y", y, (long) (n - 1) * ldyToken + (long) (heads - 1) * ldyHead + out);
    Native.check(
        "hmoe_dense_linear_heads",
        HmoeNative.hmoe_dense_linear_heads(
            engine.handle(), x.slice(), n, heads, in, ldxToken, ldxHead, w.slice(), type.code, wHeadStride, out,
            y.slice(), ldyToken, ldyHead));
  }

  /**
   * RMSNorm of n rows of dim values (row strides in elements); y may be x (in place).
   *
   * @param w [dim] or null for no weight
   */
  public static void rmsnorm(
      FloatBuffer x, int n, int dim, int xStride, FloatBuffer w, float eps, FloatBuffer y, int yStride) {
    long span = n == 0 ? 0 : (long) (n - 1) * Math.max(xStride, dim) + dim;
    Native.requireDirect("x", x, span);
    Native.requireDirect("y", y, n == 0 ? 0 : (long) (n - 1) * Math.max(yStride, dim) + dim);
    if (w != null) {
      Native.requireDirect("w", w, dim);
    }
    Native.check(
        "hmoe_dense_rmsnorm",
        HmoeNative.hmoe_dense_rmsnorm(
            x.slice(), n, dim, xStride, w == null ? null : w.slice(), eps, y.slice(), yStride));
  }

  /**
   * Rotary embedding in place on the first rotDim elements of each head; element [t, h, i] at
   * {@code t * tokenStride + h * headStride + i} from x's position.
   *
   * @param positions [n] absolute positions
   * @param invFreq [rotDim / 2] angle per position of each pair
   * @param mscale factor on cos and sin (YaRN), 1 otherwise
   */
  public static void rope(
      FloatBuffer x, int n, int nHeads, int tokenStride, int headStride, int rotDim,
      IntBuffer positions, FloatBuffer invFreq, float mscale, RopeStyle style) {
    long span = n == 0 ? 0 : (long) (n - 1) * tokenStride + (long) (nHeads - 1) * headStride + rotDim;
    Native.requireDirect("x", x, span);
    Native.requireDirect("positions", positions, n);
    Native.requireDirect("invFreq", invFreq, rotDim / 2);
    Native.check(
        "hmoe_dense_rope",
        HmoeNative.hmoe_dense_rope(
            x.slice(), n, nHeads, tokenStride, headStride, rotDim, positions.slice(),
            invFreq.slice(), mscale,
            style == RopeStyle.HALF ? HmoeNative.HMOE_ROPE_HALF : HmoeNative.HMOE_ROPE_INTERLEAVED));
  }

  /**
   * Causal attention of n new tokens against the cache's layer, appending their keys and values
   * (see {@link KvCache}).
   *
   * @param q [n, nHeads, kDim]
   * @param k [n, nKvHeads, kDim]
   * @param v [n, nKvHeads, vDim]; ignored (may be null) for a shared-KV cache, whose values are
   *     the keys' first vDim floats
   * @param out [n, nHeads, vDim], overwritten
   */
  public static void attention(
      Engine engine, KvCache cache, int layer, FloatBuffer q, FloatBuffer k, FloatBuffer v, int n,
      int nHeads, float scale, FloatBuffer out) {
    attention(engine, cache, layer, q, k, v, n, nHeads, scale, 0, out);
  }

  /**
   * {@link #attention} with a sliding window: a token at position p attends to positions p -
   * window + 1..p only (HuggingFace's sliding-window mask); window 0 for none.
   */
  public static void attention(
      Engine engine, KvCache cache, int layer, FloatBuffer q, FloatBuffer k, FloatBuffer v, int n,
      int nHeads, float scale, int window, FloatBuffer out) {
    if (window < 0) {
      throw new IllegalArgumentException("window must be >= 0, got " + window);
    }
    Native.requireDirect("q", q, (long) n * nHeads * cache.kDim());
    Native.requireDirect("k", k, (long) n * cache.nKvHeads() * cache.kDim());
    if (!cache.sharedKv()) {
      Native.requireDirect("v", v, (long) n * cache.nKvHeads() * cache.vDim());
    }
    Native.requireDirect("out", out, (long) n * nHeads * cache.vDim());
    Native.check(
        "hmoe_dense_attention",
        HmoeNative.hmoe_dense_attention_window(
            engine.handle(), cache.handle(), layer, q.slice(), k.slice(),
            cache.sharedKv() ? null : v.slice(), n, nHeads, scale, window, out.slice()));
  }
}
