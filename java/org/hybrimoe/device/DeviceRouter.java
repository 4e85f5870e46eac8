package org.hybrimoe.device;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeHandle;

/**
 * A MoE router evaluated on a CUDA device: gate GEMM, scoring and top-k on the GPU, only ids and
 * weights back to the host. Holds its own copy of the router matrix on the device.
 */
public final class DeviceRouter implements AutoCloseable {
  /** How logits become scores. */
  public enum Scoring {
    /** softmax over all experts (Mixtral, Qwen, DeepSeek-V2). */
    SOFTMAX,
    /** sigmoid per expert (DeepSeek-V3 style, without group limits). */
    SIGMOID
  }

  private final NativeHandle<HmoeNative.hmoe_router_t> handle;
  private final int dModel;
  private final int topK;

  private DeviceRouter(HmoeNative.hmoe_router_t handle, int dModel, int topK) {
    this.handle = new NativeHandle<>(this, handle, HmoeNative::hmoe_router_free, "router");
    this.dModel = dModel;
    this.topK = topK;
  }

  /**
   * Creates a router on {@code device} from weight [nExperts, dModel] f32.
   *
   * @param normTopK renormalise the chosen k weights to sum to one
   * @param scale multiplies the final weights (routed_scaling_factor)
   */
  public static DeviceRouter create(
      Device device, FloatBuffer weight, int nExperts, int dModel, int topK, Scoring scoring,
      boolean normTopK, float scale) {
    Native.requireDirect("weight", weight, (long) nExperts * dModel);
    HmoeNative.hmoe_router_t out = new HmoeNative.hmoe_router_t();
    Native.check(
        "hmoe_router_create",
        HmoeNative.hmoe_router_create(
            device.handle(), weight, nExperts, dModel, topK, scoring.ordinal(), normTopK ? 1 : 0, scale, out));
    return new DeviceRouter(out, dModel, topK);
  }

  /** Routes x [nTokens, dModel]; fills ids and weights [nTokens, topK], best first. */
  public void route(FloatBuffer x, int nTokens, IntBuffer ids, FloatBuffer weights) {
    Native.requireDirect("x", x, (long) nTokens * dModel);
    Native.requireDirect("ids", ids, (long) nTokens * topK);
    Native.requireDirect("weights", weights, (long) nTokens * topK);
    Native.check("hmoe_router_run", HmoeNative.hmoe_router_run(handle.get(), x, nTokens, ids, weights));
  }

  @Override
  public void close() {
    handle.close();
  }
}
