package org.hybrimoe.hybrid;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.device.Device;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeHandle;

/**
 * The native hybrid layer executor (cpp/include/hybrimoe/hybrid.h): runs one planned MoE layer per
 * call on the CPU engine and the expert device at once and returns its measured timeline. The
 * policies that make the plans live in {@link HybridMoe}; this class only crosses the boundary.
 *
 * <p>Borrows the engine, the device and the expert layers: they must outlive it. Not thread-safe.
 */
public final class HybridEngine implements AutoCloseable {
  /** Timeline header fields (doubles), as in hybrid.h. */
  static final int TL_BEGIN = 0;
  static final int TL_END = 1;
  static final int TL_FIRST_SEQ = 2;
  static final int TL_LATE = 3;
  static final int TL_PER_RUN = 4;
  static final int TL_WAVES = 5;
  static final int TL_HEADER = 6;

  private final NativeHandle<HmoeNative.hmoe_hybrid_t> handle;
  private final Device device;

  private HybridEngine(HmoeNative.hmoe_hybrid_t h, Device device) {
    this.handle = new NativeHandle<>(this, h, HmoeNative::hmoe_hybrid_free, "hybrid executor");
    this.device = device;
  }

  /** An executor for MoE layers 0..layers-1 of {@code experts} routed experts; device null = CPU only. */
  public static HybridEngine create(Engine engine, Device device, int layers, int experts) {
    Native.load();
    HmoeNative.hmoe_hybrid_t out = new HmoeNative.hmoe_hybrid_t();
    Native.check(
        "hmoe_hybrid_create",
        HmoeNative.hmoe_hybrid_create(engine.handle(), device == null ? null : device.handle(), layers, experts, out));
    return new HybridEngine(out, device);
  }

  /** The device, or null when CPU only. */
  public Device device() {
    return device;
  }

  /**
   * Registers MoE layer {@code layer}: routed experts (on a device, in its format and shape) and
   * optionally shared experts (null: none) pinned in {@code sharedSlots} (null: on the CPU).
   */
  public void setLayer(int layer, ExpertLayer routed, ExpertLayer shared, int[] sharedSlots) {
    Native.check(
        "hmoe_hybrid_set_layer",
        HmoeNative.hmoe_hybrid_set_layer(
            handle.get(), layer, routed.handle(), shared == null ? null : shared.handle(), sharedSlots));
  }

  /** Queues a load of one expert into a slot (initial cache contents). */
  public void preload(int layer, int expert, int slot) {
    Native.check("hmoe_hybrid_preload", HmoeNative.hmoe_hybrid_preload(handle.get(), layer, expert, slot));
  }

  /**
   * Runs one layer: see hybrid.h. {@code plan} holds {@code planInts} ints of the LayerPlan layout
   * with every transfer's slot resolved; {@code out} is accumulated into.
   */
  public void run(IntBuffer plan, int planInts, FloatBuffer x, int nTokens, IntBuffer ids, FloatBuffer weights,
      int topK, FloatBuffer sharedWeights, FloatBuffer out, DoubleBuffer timeline) {
    Native.requireDirect("plan", plan, planInts);
    Native.requireDirect("timeline", timeline, TL_HEADER);
    Native.check(
        "hmoe_hybrid_run",
        HmoeNative.hmoe_hybrid_run(handle.get(), plan.slice(), planInts, x.slice(), nTokens, ids.slice(),
            weights.slice(), topK, sharedWeights == null ? null : sharedWeights.slice(), out.slice(), timeline.slice(),
            timeline.remaining()));
  }

  /** Blocks until every transfer, prefetches included, has finished. */
  public void sync() {
    Native.check("hmoe_hybrid_sync", HmoeNative.hmoe_hybrid_sync(handle.get()));
  }

  /** The engine's clock (ms), the one timelines are measured on. */
  public static double clockMs() {
    Native.load();
    return HmoeNative.hmoe_clock_ms();
  }

  @Override
  public void close() {
    handle.close();
  }
}
