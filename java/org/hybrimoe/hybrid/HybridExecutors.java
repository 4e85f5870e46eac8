package org.hybrimoe.hybrid;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.hybrimoe.device.Device;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.model.MoeExecutorFactory;
import org.hybrimoe.model.MoeLayerExecutor;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cost.CostModel;

/**
 * Plugs the hybrid executor into the model runtime ({@link org.hybrimoe.model.LoadOptions#withExecutors}):
 * at load, every MoE layer's experts in the device's format (bf16 borrowed from a bf16 checkpoint,
 * otherwise converted), a device sized for the cache ratio, the cost model calibrated on this
 * machine, and a {@link HybridMoe} over them. The model's shared experts stay on its own path.
 */
public final class HybridExecutors {
  /** Which expert device to use. */
  public enum DeviceKind {
    CUDA,
    EMULATED,
    NONE
  }

  private HybridExecutors() {}

  /**
   * A factory: bundle, cache ratio, device, and the experts' format on both sides (BF16 or INT4).
   */
  public static MoeExecutorFactory factory(PolicyBundle bundle, double cacheRatio, DeviceKind kind, ExpertFormat format) {
    if (format != ExpertFormat.BF16 && format != ExpertFormat.INT4) {
      throw new IllegalArgumentException("hybrid experts are bf16 or int4 (what devices compute), not " + format);
    }
    return (engine, layers, options) -> create(engine, layers, bundle, cacheRatio, kind, format, options.groupSize());
  }

  private static MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers, PolicyBundle bundle,
      double ratio, DeviceKind kind, ExpertFormat format, int groupSize) {
    List<ExpertLayer> routed = new ArrayList<>();
    Device device = null;
    try {
      int group = format == ExpertFormat.INT4 ? groupSize : 0;
      int[] decoder = layers.keySet().stream().mapToInt(Integer::intValue).sorted().toArray();
      for (int l : decoder) {
        ExpertLayerWeights w = layers.get(l);
        routed.add(w.format() == format && w.groupSize() == group ? ExpertLayer.borrow(w)
            : ExpertLayer.quantize(engine, format, group, w));
      }
      ExpertLayer first = routed.get(0);
      int experts = first.nExperts();
      int cacheSlots = kind == DeviceKind.NONE ? 0 : ExpertCache.slotsFor(ratio, routed.size(), experts);
      int staging = kind == DeviceKind.NONE ? 0 : Math.max(2, Math.min(experts, 8));
      if (kind != DeviceKind.NONE) {
        ExpertShape shape = format == ExpertFormat.INT4
            ? ExpertShape.int4((int) first.dModel(), (int) first.dFf(), group)
            : ExpertShape.bf16((int) first.dModel(), (int) first.dFf());
        int slots = HybridMoe.deviceSlots(cacheSlots, staging, 0);
        device = kind == DeviceKind.CUDA ? Device.cuda(0, shape, slots) : Device.emulated(1, shape, slots);
      }
      CostModel cost = LayerBench.calibrate(engine, device, first, 5);
      return new Owning(new HybridMoe(engine, device, HybridMoe.Config.of(bundle, cost, cacheSlots, staging), routed,
          null, decoder, 0), device, routed); // top-k: the model's, from its first call
    } catch (RuntimeException e) {
      routed.forEach(ExpertLayer::close);
      if (device != null) {
        device.close();
      }
      throw e;
    }
  }

  /** The executor together with what it was built on, closed with it. */
  private static final class Owning implements MoeLayerExecutor {
    private final HybridMoe moe;
    private final Device device;
    private final List<ExpertLayer> layers;

    Owning(HybridMoe moe, Device device, List<ExpertLayer> layers) {
      this.moe = moe;
      this.device = device;
      this.layers = layers;
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer out) {
      moe.run(layer, x, n, k, ids, w, out);
    }

    @Override
    public void close() {
      moe.close();
      if (device != null) {
        device.close();
      }
      layers.forEach(ExpertLayer::close);
    }
  }
}
