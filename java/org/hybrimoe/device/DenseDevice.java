package org.hybrimoe.device;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.nativeapi.NativeHandle;
import org.hybrimoe.ops.DenseOps.WeightType;

/**
 * A dense device (cpp/include/hybrimoe/dense_device.h): copies of linear weights in a device's
 * memory, linears computed there, activations from and back to host memory in each call, which
 * returns when its outputs are written. CUDA, or a host-emulated device whose linears are the CPU
 * kernels on an engine of its own (so that the model's dense placement runs and is tested without
 * a GPU; it makes no speed claim).
 *
 * <p>Not thread-safe: one thread drives a device at a time.
 */
public final class DenseDevice implements AutoCloseable {
  /** Most weights one {@link #linears} call takes. */
  public static final int MAX_GROUP = HmoeNative.HMOE_DENSE_MAX_GROUP;

  /** A weight on this device: its id and shape. */
  public record Weight(int id, int out, int in) {}

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

  /** Frees the device and its weights. */
  @Override
  public void close() {
    handle.close();
  }
}
