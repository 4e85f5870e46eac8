package org.hybrimoe.device;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeHandle;

/**
 * An expert device: a fixed pool of expert slots plus compute, copy and prefetch streams (see
 * cpp/include/hybrimoe/device.h). Loads and expert runs are queued and return at once; the device
 * itself orders them so that a slot is never overwritten while a kernel may read it and never
 * read before its load has landed. {@link #await()} is the one blocking call.
 *
 * <p>Not thread-safe: one thread drives a device at a time ({@link #slotState} excepted).
 * Host buffers handed to {@link #load} must stay valid until the load completes.
 */
public final class Device implements AutoCloseable {
  /** Which stream a load goes on: demand transfers or prefetches. */
  public enum Stream {
    COPY(1),
    PREFETCH(2);

    final int code;

    Stream(int code) {
      this.code = code;
    }
  }

  /** A slot's state, read from the device's events. */
  public enum SlotState {
    FREE,
    LOADING,
    READY,
    IN_USE
  }

  /** The implementation behind a device. */
  public enum Kind {
    CUDA,
    EMULATED
  }

  private final NativeHandle<HmoeNative.hmoe_device_t> handle;
  private final ExpertShape shape;
  private final Kind kind;
  private final int slots;

  private Device(HmoeNative.hmoe_device_t handle, ExpertShape shape) {
    this.handle = new NativeHandle<>(this, handle, HmoeNative::hmoe_device_free, "device");
    this.shape = shape;
    int[] k = new int[1];
    int[] s = new int[1];
    Native.check("hmoe_device_describe", HmoeNative.hmoe_device_describe(handle, k, s, new long[1]));
    this.kind = k[0] == 1 ? Kind.CUDA : Kind.EMULATED;
    this.slots = s[0];
  }

  /**
   * A CUDA device on GPU {@code index} with {@code slots} slots of {@code shape}.
   *
   * @throws org.hybrimoe.nativeapi.NativeException.OutOfMemory when they do not fit (nothing
   *     leaks: retry with fewer, see {@link #cudaMaxSlots})
   * @throws org.hybrimoe.nativeapi.NativeException.NoDevice without such a GPU
   */
  public static Device cuda(int index, ExpertShape shape, int slots) {
    Native.load();
    HmoeNative.hmoe_device_t out = new HmoeNative.hmoe_device_t();
    Native.check(
        "hmoe_device_create_cuda", HmoeNative.hmoe_device_create_cuda(index, shape.abi(), slots, out));
    return new Device(out, shape);
  }

  /**
   * A host-emulated device: the same slots, streams, events and hazards on host threads, experts
   * computed by the CPU kernels on an engine of its own with {@code threads} workers. It lets the
   * hybrid pipeline run and be tested without a GPU; it makes no speed claim.
   */
  public static Device emulated(int threads, ExpertShape shape, int slots) {
    Native.load();
    HmoeNative.hmoe_device_t out = new HmoeNative.hmoe_device_t();
    Native.check(
        "hmoe_device_create_emulated",
        HmoeNative.hmoe_device_create_emulated(threads, shape.abi(), slots, out));
    return new Device(out, shape);
  }

  /**
   * Test hook of the emulated device: sleeps before every load and every expert run, so that
   * tests can show the hazards hold when transfers and kernels are slow.
   */
  public void emulatedDelays(int copyMicros, int computeMicros) {
    Native.check(
        "hmoe_device_emulated_delays",
        HmoeNative.hmoe_device_emulated_delays(handle(), copyMicros, computeMicros));
  }

  /** Slots of {@code shape} that fit in GPU {@code index}'s free memory less {@code reserveBytes}. */
  public static int cudaMaxSlots(int index, ExpertShape shape, long reserveBytes) {
    Native.load();
    int[] out = new int[1];
    Native.check(
        "hmoe_device_cuda_max_slots",
        HmoeNative.hmoe_device_cuda_max_slots(index, shape.abi(), reserveBytes, out));
    return out[0];
  }

  public ExpertShape shape() {
    return shape;
  }

  public Kind kind() {
    return kind;
  }

  public int slots() {
    return slots;
  }

  /**
   * Pins a host region (a mapped weight file, a direct buffer) for direct DMA. Returns false when
   * the driver refuses; loads from it then go through pinned staging, which is slower, not wrong.
   */
  public boolean registerHost(ByteBuffer region) {
    Native.requireDirect("region", region, 1);
    int[] pinned = new int[1];
    Native.check(
        "hmoe_device_register_host",
        HmoeNative.hmoe_device_register_host(handle(), region, region.remaining(), pinned));
    return pinned[0] != 0;
  }

  /** Undoes {@link #registerHost} for the same buffer (same start address). */
  public void unregisterHost(ByteBuffer region) {
    Native.requireDirect("region", region, 1);
    Native.check("hmoe_device_unregister_host", HmoeNative.hmoe_device_unregister_host(handle(), region));
  }

  /**
   * Queues a load of one bf16 expert into {@code slot}: each buffer holds one projection's rows
   * from its position.
   */
  public void load(int slot, ByteBuffer gate, ByteBuffer up, ByteBuffer down, Stream stream) {
    load(slot, gate, up, down, null, null, null, stream);
  }

  /**
   * Queues a load of one expert into {@code slot}: rows of each projection ({@link
   * ExpertShape#rowBytes} x {@link ExpertShape#rows}) and, for int4, its scales ([rows,
   * scalesPerRow] f32; null for bf16).
   */
  public void load(
      int slot,
      ByteBuffer gate,
      ByteBuffer up,
      ByteBuffer down,
      FloatBuffer gateScales,
      FloatBuffer upScales,
      FloatBuffer downScales,
      Stream stream) {
    ByteBuffer[] w = {gate, up, down};
    FloatBuffer[] s = {gateScales, upScales, downScales};
    String[] names = {"gate", "up", "down"};
    for (int p = 0; p < 3; p++) {
      Native.requireDirect(names[p], w[p], shape.rows(p) * shape.rowBytes(p));
      if (shape.format() == ExpertShape.Format.INT4) {
        Native.requireDirect(names[p] + "Scales", s[p], shape.rows(p) * shape.scalesPerRow(p));
      } else if (s[p] != null) {
        throw new IllegalArgumentException("bf16 experts have no scales; pass null for " + names[p] + "Scales");
      }
    }
    Native.check(
        "hmoe_device_load",
        HmoeNative.hmoe_device_load(
            handle(), slot, gate, up, down, gateScales, upScales, downScales, stream.code));
  }

  /** The slot's state now. */
  public SlotState slotState(int slot) {
    int[] out = new int[1];
    Native.check("hmoe_device_slot_state", HmoeNative.hmoe_device_slot_state(handle(), slot, out));
    return SlotState.values()[out[0]];
  }

  /**
   * Queues the routed experts held in slots: out[t] = sum of weights[t, j] * FFN(x[t]) over the
   * j whose expert has a slot in {@code slotOfExpert} (-1 = computed elsewhere). Inputs are read
   * before the call returns; {@code out} is filled by {@link #await()}.
   *
   * @param x [nTokens, dModel] f32
   * @param ids [nTokens, topK] expert ids
   * @param weights [nTokens, topK] routing weights
   * @param slotOfExpert [nExperts] slot per expert or -1
   * @param out [nTokens, dModel] f32, overwritten
   */
  public void moeRun(
      FloatBuffer x,
      int nTokens,
      IntBuffer ids,
      FloatBuffer weights,
      int topK,
      IntBuffer slotOfExpert,
      int nExperts,
      FloatBuffer out) {
    checkRun(x, nTokens, ids, weights, topK, slotOfExpert, nExperts);
    Native.requireDirect("out", out, (long) nTokens * shape.dModel());
    Native.check(
        "hmoe_device_moe_run",
        HmoeNative.hmoe_device_moe_run(
            handle(), x, nTokens, ids, weights, topK, slotOfExpert, nExperts, out));
  }

  /** Blocks until every queued load and run has finished and outputs are written. */
  public void await() {
    Native.check("hmoe_device_wait", HmoeNative.hmoe_device_wait(handle()));
  }

  /** Median milliseconds of the device work of {@link #moeRun} with these inputs over reps runs. */
  public float timeMoe(
      FloatBuffer x,
      int nTokens,
      IntBuffer ids,
      FloatBuffer weights,
      int topK,
      IntBuffer slotOfExpert,
      int nExperts,
      int reps) {
    checkRun(x, nTokens, ids, weights, topK, slotOfExpert, nExperts);
    float[] ms = new float[1];
    Native.check(
        "hmoe_device_time_moe",
        HmoeNative.hmoe_device_time_moe(
            handle(), x, nTokens, ids, weights, topK, slotOfExpert, nExperts, reps, ms));
    return ms[0];
  }

  private void checkRun(
      FloatBuffer x, int nTokens, IntBuffer ids, FloatBuffer weights, int topK, IntBuffer slotOf, int nExperts) {
    if (nTokens < 0 || topK < 1 || nExperts < 1) {
      throw new IllegalArgumentException(
          "need nTokens >= 0, topK >= 1, nExperts >= 1; got " + nTokens + ", " + topK + ", " + nExperts);
    }
    Native.requireDirect("x", x, (long) nTokens * shape.dModel());
    Native.requireDirect("ids", ids, (long) nTokens * topK);
    Native.requireDirect("weights", weights, (long) nTokens * topK);
    Native.requireDirect("slotOfExpert", slotOf, nExperts);
  }

  /** The native handle, for other bindings (the hybrid executor); valid while this is open. */
  public HmoeNative.hmoe_device_t handle() {
    return handle.get();
  }

  /** Finishes queued work and frees the device. */
  @Override
  public void close() {
    handle.close();
  }
}
