package org.hybrimoe.device;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.nativeapi.NativeHandle;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.ops.KvCache;

/**
 * A dense device (cpp/include/hybrimoe/dense_device.h): copies of linear weights in a device's
 * memory, linears computed there, activations from and back to host memory in each call, which
 * returns when its outputs are written. CUDA, or a host-emulated device whose linears are the CPU
 * kernels on an engine of its own (so that the model's dense placement runs and is tested without
 * a GPU; it makes no speed claim).
 *
 * <p>Whole attention sublayers run here too ({@link #addGqa}, {@link #addMla}, {@link #attend}),
 * their keys and values in a {@link Kv} cache in the device's memory.
 *
 * <p>Not thread-safe: one thread drives a device at a time.
 */
public final class DenseDevice implements AutoCloseable {
  /** Most weights one {@link #linears} call takes. */
  public static final int MAX_GROUP = HmoeNative.HMOE_DENSE_MAX_GROUP;

  /** A weight on this device: its id and shape. */
  public record Weight(int id, int out, int in) {}

  /** q/k normalisation of {@link #addGqa}: none, per head, over the whole projection. */
  public static final int QK_NORM_NONE = HmoeNative.HMOE_QK_NORM_NONE;
  public static final int QK_NORM_PER_HEAD = HmoeNative.HMOE_QK_NORM_PER_HEAD;
  public static final int QK_NORM_FULL = HmoeNative.HMOE_QK_NORM_FULL;

  /**
   * An attention sublayer on this device: its id, its input and output width d, and the geometry
   * of the cache it needs (heads, key and value floats per head, whether values share the key).
   */
  public record Attention(int id, int width, int cacheHeads, int keyDim, int valueDim, boolean sharedKv) {}

  private final NativeHandle<HmoeNative.hmoe_dense_device_t> handle;
  private final Device.Kind kind;
  private final int[] group = new int[MAX_GROUP];

  private DenseDevice(HmoeNative.hmoe_dense_device_t h) {
    this.handle = new NativeHandle<>(this, h, HmoeNative::hmoe_dense_device_free, "dense device");
    int[] k = new int[1];
    Native.check("hmoe_dense_device_describe", HmoeNative.hmoe_dense_device_describe(h, k, null, null));
    this.kind = k[0] == HmoeNative.HMOE_DEVICE_CUDA ? Device.Kind.CUDA : Device.Kind.EMULATED;
  }

  /**
   * A CUDA dense device on GPU {@code index}.
   *
   * @throws NativeException.NoDevice without that GPU or in a build without CUDA
   */
  public static DenseDevice cuda(int index) {
    Native.load();
    HmoeNative.hmoe_dense_device_t out = new HmoeNative.hmoe_dense_device_t();
    Native.check("hmoe_dense_device_create_cuda", HmoeNative.hmoe_dense_device_create_cuda(index, out));
    return new DenseDevice(out);
  }

  /** A host-emulated dense device computing on {@code threads} threads of its own (0: one). */
  public static DenseDevice emulated(int threads) {
    Native.load();
    HmoeNative.hmoe_dense_device_t out = new HmoeNative.hmoe_dense_device_t();
    Native.check(
        "hmoe_dense_device_create_emulated", HmoeNative.hmoe_dense_device_create_emulated(threads, out));
    return new DenseDevice(out);
  }

  public Device.Kind kind() {
    return kind;
  }

  /** Weights uploaded so far. */
  public int weights() {
    int[] n = new int[1];
    Native.check("hmoe_dense_device_describe", HmoeNative.hmoe_dense_device_describe(handle.get(), null, n, null));
    return n[0];
  }

  /** Device memory the uploaded weights take, in bytes. */
  public long bytes() {
    long[] b = new long[1];
    Native.check("hmoe_dense_device_describe", HmoeNative.hmoe_dense_device_describe(handle.get(), null, null, b));
    return b[0];
  }

  /**
   * Copies a linear's weight (and bias) onto the device; the host buffers are only read during
   * the call.
   *
   * @param w [out, in] of {@code type} from its position
   * @param bias [out] or null
   * @throws NativeException.OutOfMemory when it does not fit: nothing is kept and the device
   *     stays usable
   */
  public Weight upload(ByteBuffer w, WeightType type, int out, int in, FloatBuffer bias) {
    if (out < 1 || in < 1) {
      throw new IllegalArgumentException("weight shape must be [out, in] with out, in >= 1, got [" + out + ", " + in + "]");
    }
    Native.requireDirect("w", w, (long) out * in * type.bytes());
    if (bias != null) {
      Native.requireDirect("bias", bias, out);
    }
    int[] id = new int[1];
    Native.check(
        "hmoe_dense_device_upload",
        HmoeNative.hmoe_dense_device_upload(
            handle.get(), w.slice(), type.code(), out, in, bias == null ? null : bias.slice(), id));
    return new Weight(id[0], out, in);
  }

  /**
   * Linears sharing their input: y holds each weight's [n, out_i] block in turn, y_i = x @ W_i^T +
   * b_i.
   *
   * @param x [n, in] f32, every weight's in
   * @param y [n, sum of out_i] f32, overwritten
   */
  public void linears(FloatBuffer x, int n, FloatBuffer y, Weight... ws) {
    if (ws.length < 1 || ws.length > MAX_GROUP) {
      throw new IllegalArgumentException("a group has 1 to " + MAX_GROUP + " weights, got " + ws.length);
    }
    long outs = 0;
    for (int i = 0; i < ws.length; i++) {
      if (ws[i].in() != ws[0].in()) {
        throw new IllegalArgumentException("weights of a group share their input size: " + ws[0].in() + " and "
            + ws[i].in());
      }
      outs += ws[i].out();
      group[i] = ws[i].id();
    }
    Native.requireDirect("x", x, (long) n * ws[0].in());
    Native.requireDirect("y", y, n * outs);
    Native.check(
        "hmoe_dense_device_linears",
        HmoeNative.hmoe_dense_device_linears(handle.get(), ws.length, group, x.slice(), n, y.slice()));
  }

  /**
   * y = down(silu(gate(x)) * up(x)), the intermediate kept on the device.
   *
   * @param x [n, d] f32
   * @param y [n, d] f32, overwritten
   */
  public void mlp(Weight gate, Weight up, Weight down, FloatBuffer x, int n, FloatBuffer y) {
    Native.requireDirect("x", x, (long) n * gate.in());
    Native.requireDirect("y", y, (long) n * down.out());
    Native.check(
        "hmoe_dense_device_mlp",
        HmoeNative.hmoe_dense_device_mlp(handle.get(), gate.id(), up.id(), down.id(), x.slice(), n, y.slice()));
  }

  /**
   * Registers grouped-query attention over uploaded weights (dense_device.h's
   * hmoe_dense_device_add_gqa): q [heads*headDim, d], k and v [kvHeads*headDim, d], o [d,
   * heads*headDim]; norms per {@code qkNorm} (null for {@link #QK_NORM_NONE}); rotate_half RoPE
   * with invFreq [headDim / 2] and ropeScale; clip and window 0 for none. The vectors are copied.
   */
  public Attention addGqa(
      Weight q, Weight k, Weight v, Weight o, int heads, int kvHeads, int headDim, int qkNorm, FloatBuffer qNorm,
      FloatBuffer kNorm, float eps, FloatBuffer invFreq, float ropeScale, float clip, int window, float scale) {
    if (heads < 1 || kvHeads < 1 || headDim < 2) {
      throw new IllegalArgumentException("heads, kvHeads >= 1 and headDim >= 2 needed, got " + heads + ", " + kvHeads
          + ", " + headDim);
    }
    long normLen = qkNorm == QK_NORM_PER_HEAD ? headDim : (long) heads * headDim;
    if (qkNorm != QK_NORM_NONE) {
      Native.requireDirect("qNorm", qNorm, normLen);
      Native.requireDirect("kNorm", kNorm, qkNorm == QK_NORM_PER_HEAD ? headDim : (long) kvHeads * headDim);
    }
    Native.requireDirect("invFreq", invFreq, headDim / 2);
    int[] id = new int[1];
    Native.check("hmoe_dense_device_add_gqa", HmoeNative.hmoe_dense_device_add_gqa(handle.get(), q.id(), k.id(), v.id(),
        o.id(), heads, kvHeads, headDim, qkNorm, slice(qNorm), slice(kNorm), eps, invFreq.slice(), ropeScale, clip,
        window, scale, id));
    return new Attention(id[0], q.in(), kvHeads, headDim, headDim, false);
  }

  /**
   * Registers DeepSeek's absorbed multi-head latent attention (hmoe_dense_device_add_mla): qProj,
   * or qA with qANorm [qA.out] and qB (q-lora); kvA [rank + rope, d] with kvANorm [rank]; ukT
   * [heads*rank, nope] (per head W_uk^T); kvB, kv_b_proj [heads*(nope+vd), rank]; o [d,
   * heads*vd]. Null weights are absent; the vectors are copied.
   */
  public Attention addMla(
      Weight qProj, Weight qA, FloatBuffer qANorm, Weight qB, Weight kvA, FloatBuffer kvANorm, Weight ukT, Weight kvB,
      Weight o, int heads, int nope, int rope, int vd, int rank, float eps, FloatBuffer invFreq, float ropeScale,
      float scale) {
    if (qA != null) {
      Native.requireDirect("qANorm", qANorm, qA.out());
    }
    Native.requireDirect("kvANorm", kvANorm, rank);
    Native.requireDirect("invFreq", invFreq, rope / 2);
    int[] id = new int[1];
    Native.check("hmoe_dense_device_add_mla", HmoeNative.hmoe_dense_device_add_mla(handle.get(), idOf(qProj), idOf(qA),
        slice(qANorm), idOf(qB), kvA.id(), kvANorm.slice(), ukT.id(), kvB.id(), o.id(), heads, nope, rope, vd, rank,
        eps, invFreq.slice(), ropeScale, scale, id));
    return new Attention(id[0], kvA.in(), 1, rank + rope, rank, true);
  }

  private static int idOf(Weight w) {
    return w == null ? -1 : w.id();
  }

  private static FloatBuffer slice(FloatBuffer b) {
    return b == null ? null : b.slice();
  }

  /**
   * A KV cache in this device's memory for {@code attention}'s geometry: layers x maxSeq
   * positions of dtype elements, every layer empty. Close it to free its memory (the device's
   * close frees it too).
   *
   * @throws NativeException.OutOfMemory when it does not fit (nothing is kept)
   */
  public Kv kvCreate(Attention attention, int layers, int maxSeq, KvCache.Dtype dtype) {
    int[] id = new int[1];
    Native.check("hmoe_dense_device_kv_create", HmoeNative.hmoe_dense_device_kv_create(handle.get(), layers, maxSeq,
        attention.cacheHeads(), attention.keyDim(), attention.valueDim(), dtype.code(), attention.sharedKv() ? 1 : 0,
        id));
    return new Kv(id[0], layers, maxSeq);
  }

  /**
   * Runs attention sublayer {@code a} for n new tokens on layer {@code layer} of {@code kv}:
   * appends their keys and values, attends causally over the layer, out = o_proj of that.
   *
   * @param x [n, d] f32, already normalised
   * @param positions [n] absolute positions (RoPE)
   * @param out [n, d] f32, overwritten
   * @throws NativeException.State when the layer has no room for n more positions
   */
  public void attend(Attention a, Kv kv, int layer, FloatBuffer x, int n, IntBuffer positions, FloatBuffer out) {
    Native.requireDirect("x", x, (long) n * a.width());
    Native.requireDirect("positions", positions, n);
    Native.requireDirect("out", out, (long) n * a.width());
    Native.check("hmoe_dense_device_attend", HmoeNative.hmoe_dense_device_attend(handle.get(), a.id(), kv.live(), layer,
        x.slice(), n, positions.slice(), out.slice()));
  }

  /** A KV cache in the device's memory ({@link #kvCreate}); not thread-safe, like the device. */
  public final class Kv implements AutoCloseable {
    private final int id;
    private final int layers;
    private final int maxSeq;
    private boolean closed;

    private Kv(int id, int layers, int maxSeq) {
      this.id = id;
      this.layers = layers;
      this.maxSeq = maxSeq;
    }

    public int layers() {
      return layers;
    }

    public int maxSeq() {
      return maxSeq;
    }

    /** Positions stored in {@code layer}. */
    public long length(int layer) {
      long[] out = new long[1];
      Native.check("hmoe_dense_device_kv_length",
          HmoeNative.hmoe_dense_device_kv_length(handle.get(), live(), layer, out));
      return out[0];
    }

    /** Sets every layer's length to at most {@code length} (0: a new sequence). */
    public void truncate(long length) {
      Native.check("hmoe_dense_device_kv_truncate",
          HmoeNative.hmoe_dense_device_kv_truncate(handle.get(), live(), length));
    }

    private int live() {
      if (closed) {
        throw new IllegalStateException("device KV cache is closed");
      }
      return id;
    }

    /** Frees the cache's device memory (nothing to do once the device is closed: it went with it). */
    @Override
    public void close() {
      if (!closed) {
        closed = true;
        if (!handle.closed()) {
          Native.check("hmoe_dense_device_kv_free", HmoeNative.hmoe_dense_device_kv_free(handle.get(), id));
        }
      }
    }
  }

  /** Frees the device and its weights. */
  @Override
  public void close() {
    handle.close();
  }
}
