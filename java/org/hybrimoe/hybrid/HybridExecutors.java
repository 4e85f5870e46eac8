package org.hybrimoe.hybrid;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.hybrimoe.device.Device;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.device.MemoryBudget;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.model.ExecutorStats;
import org.hybrimoe.model.Lookahead;
import org.hybrimoe.model.MoeExecutorFactory;
import org.hybrimoe.model.MoeLayerExecutor;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.runtime.CudaDiscovery;

/**
 * Plugs the hybrid executor into the model runtime ({@link org.hybrimoe.model.LoadOptions#withExecutors}):
 * at load, every MoE layer's experts in the device's format (bf16 borrowed from a bf16 checkpoint,
 * otherwise converted), a device sized by a {@link GpuBudget}, the cost model calibrated on this
 * machine, and a {@link HybridMoe} over them. The model hands the executor its routing
 * probabilities (MRS) and its routers' look-ahead (prefetch, as deep as the bundle's
 * {@code lookahead}); {@link MoeLayerExecutor#stats} reports per decoder layer. The model's shared
 * experts stay on its own path.
 */
public final class HybridExecutors {
  /** Which expert device to use. */
  public enum DeviceKind {
    /** CUDA where the runtime finds a CUDA device, else {@link #NONE} ({@link #resolve}). */
    AUTO,
    CUDA,
    /** The host-emulated device: the hybrid pipeline on host threads (tests; no speed claim). */
    EMULATED,
    /** No device: every expert on the CPU, planned by the bundle all the same. */
    NONE
  }

  /**
   * How much of the device the expert cache gets: a share of all routed experts of the model, or
   * a byte budget for the device's expert memory. Exactly one is set (the other 0); build it with
   * {@link #ratio} or {@link #bytes}.
   *
   * <p>A byte budget holds, besides the cache, the executor's staging slots (experts moved for one
   * use) and a scratch margin: {@link MemoryBudget#DEFAULT_SCRATCH_BYTES} on CUDA (activations,
   * plan buffers, CUDA context growth), none on the emulated device, whose slots are plain host
   * memory and which keeps nothing else on a device (so that a byte budget sizes its cache the
   * way it would size a GPU's, without a 512 MiB margin no test machine could spare).
   *
   * @param cacheRatio the cache's share of all routed experts, in (0, 1], or 0
   * @param bytes the device memory for experts, > 0, or 0
   */
  public record GpuBudget(double cacheRatio, long bytes) {
    public GpuBudget {
      boolean hasRatio = cacheRatio != 0;
      boolean hasBytes = bytes != 0;
      if (hasRatio == hasBytes) {
        throw new IllegalArgumentException(
            "a GPU budget is a cache ratio or a byte count, exactly one; got ratio " + cacheRatio + " and " + bytes
                + " bytes");
      }
      if (hasRatio && !(cacheRatio > 0 && cacheRatio <= 1)) {
        throw new IllegalArgumentException("cache ratio must be in (0, 1], got " + cacheRatio);
      }
      if (hasBytes && bytes < 0) {
        throw new IllegalArgumentException("GPU budget must be > 0 bytes, got " + bytes);
      }
    }

    /** A cache of {@code cacheRatio} of all routed experts, in (0, 1]. */
    public static GpuBudget ratio(double cacheRatio) {
      if (!(cacheRatio > 0 && cacheRatio <= 1)) {
        throw new IllegalArgumentException("cache ratio must be in (0, 1], got " + cacheRatio);
      }
      return new GpuBudget(cacheRatio, 0);
    }

    /** A cache of whatever fits in {@code bytes} of device memory (> 0). */
    public static GpuBudget bytes(long bytes) {
      if (bytes <= 0) {
        throw new IllegalArgumentException("GPU budget must be > 0 bytes, got " + bytes);
      }
      return new GpuBudget(0, bytes);
    }

    /** Whether this is a ratio (else bytes). */
    public boolean isRatio() {
      return bytes == 0;
    }

    /**
     * Cache slots for a model of {@code moeLayers} x {@code expertsPerLayer} routed experts, at most
     * all of them. A ratio rounds as the simulator does ({@link ExpertCache#slotsFor}); bytes give
     * what fits after the scratch margin and the staging slots, at {@code slotBytes} per expert.
     *
     * @throws IllegalArgumentException when a byte budget holds no cached expert, saying how much
     *     is missing
     */
    public int cacheSlots(int moeLayers, int expertsPerLayer, long slotBytes, int stagingSlots, long scratchBytes) {
      if (moeLayers < 1 || expertsPerLayer < 1 || slotBytes < 1 || stagingSlots < 0 || scratchBytes < 0) {
        throw new IllegalArgumentException("need >= 1 layer, expert and slot byte, and no negative staging or scratch");
      }
      long all = (long) moeLayers * expertsPerLayer;
      if (isRatio()) {
        return (int) Math.min(all, ExpertCache.slotsFor(cacheRatio, moeLayers, expertsPerLayer));
      }
      long fixed = scratchBytes + stagingSlots * slotBytes;
      if (bytes - fixed < slotBytes) {
        throw new IllegalArgumentException(String.format(Locale.ROOT,
            "GPU budget of %s holds no cached expert: scratch %s + %d staging slots of %s = %s, and one cache slot"
                + " needs %s more; %s missing",
            size(bytes), size(scratchBytes), stagingSlots, size(slotBytes), size(fixed), size(slotBytes),
            size(fixed + slotBytes - bytes)));
      }
      return (int) Math.min(all, MemoryBudget.slotsForBytes(bytes, 0, 0, fixed, slotBytes));
    }

    @Override
    public String toString() {
      return isRatio() ? "cache ratio " + cacheRatio : size(bytes);
    }
  }

  private HybridExecutors() {}

  /** The device {@code kind} means on this machine: AUTO is CUDA with a CUDA device, else NONE. */
  public static DeviceKind resolve(DeviceKind kind) {
    if (kind != DeviceKind.AUTO) {
      return Objects.requireNonNull(kind, "kind");
    }
    return CudaDiscovery.discover().devices().isEmpty() ? DeviceKind.NONE : DeviceKind.CUDA;
  }

  /** Staging slots of an executor over layers of {@code experts} experts. */
  public static int stagingSlots(int experts) {
    return Math.max(2, Math.min(experts, 8));
  }

  /** Device scratch a byte budget keeps besides slots ({@link GpuBudget}). */
  public static long scratchBytes(DeviceKind kind) {
    return kind == DeviceKind.CUDA || kind == DeviceKind.AUTO ? MemoryBudget.DEFAULT_SCRATCH_BYTES : 0;
  }

  /** As {@link #factory(PolicyBundle, GpuBudget, DeviceKind, ExpertFormat)} with a cache ratio. */
  public static MoeExecutorFactory factory(PolicyBundle bundle, double cacheRatio, DeviceKind kind, ExpertFormat format) {
    return factory(bundle, GpuBudget.ratio(cacheRatio), kind, format);
  }

  /**
   * A factory: bundle (its {@code lookahead} is the prefetch depth), device budget (ignored without
   * a device), device (AUTO resolved when the model loads) and the experts' format on both sides
   * (BF16 or INT4).
   */
  public static MoeExecutorFactory factory(PolicyBundle bundle, GpuBudget budget, DeviceKind kind, ExpertFormat format) {
    return factory(bundle, budget, kind, format, null);
  }

  /**
   * As {@link #factory(PolicyBundle, GpuBudget, DeviceKind, ExpertFormat)}, planning with a fixed
   * cost model (a stored hardware profile's, or a test's) used as given: no calibration at load and
   * no online refinement, so that plans depend on the routing and the cost model, not on how fast
   * this run happened to be. Its {@code expertBytes} should be the device slot's (bytesMoved
   * counts in it). Null: calibrate at load and refine online.
   */
  public static MoeExecutorFactory factory(PolicyBundle bundle, GpuBudget budget, DeviceKind kind, ExpertFormat format,
      CostModel cost) {
    Objects.requireNonNull(bundle, "bundle");
    Objects.requireNonNull(budget, "budget");
    Objects.requireNonNull(kind, "kind");
    if (format != ExpertFormat.BF16 && format != ExpertFormat.INT4) {
      throw new IllegalArgumentException("hybrid experts are bf16 or int4 (what devices compute), not " + format);
    }
    return (engine, layers, options) -> create(engine, layers, bundle, budget, kind, format, options.groupSize(), cost);
  }

  /** The hybrid executor behind a model's executor, when it is one (timelines, cost model). */
  public static Optional<HybridMoe> unwrap(MoeLayerExecutor e) {
    if (e instanceof Owning o) {
      return Optional.of(o.moe);
    }
    return e instanceof HybridMoe h ? Optional.of(h) : Optional.empty();
  }

  /** The device an executor of {@link #factory} runs on (AUTO resolved), when it is one. */
  public static Optional<DeviceKind> deviceKind(MoeLayerExecutor e) {
    return e instanceof Owning o ? Optional.of(o.kind) : Optional.empty();
  }

  private static MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers, PolicyBundle bundle,
      GpuBudget budget, DeviceKind requested, ExpertFormat format, int groupSize, CostModel fixedCost) {
    if (layers.isEmpty()) {
      throw new IllegalArgumentException("the model has no MoE layer for a hybrid executor");
    }
    DeviceKind kind = resolve(requested);
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
      int cacheSlots = 0;
      int staging = 0;
      if (kind != DeviceKind.NONE) {
        ExpertShape shape = format == ExpertFormat.INT4
            ? ExpertShape.int4((int) first.dModel(), (int) first.dFf(), group)
            : ExpertShape.bf16((int) first.dModel(), (int) first.dFf());
        staging = stagingSlots(experts);
        cacheSlots = budget.cacheSlots(routed.size(), experts, shape.bytes(), staging, scratchBytes(kind));
        int slots = HybridMoe.deviceSlots(cacheSlots, staging, 0);
        device = kind == DeviceKind.CUDA ? Device.cuda(0, shape, slots) : Device.emulated(1, shape, slots);
      }
      HybridMoe.Config config = HybridMoe.Config.of(bundle,
          fixedCost != null ? fixedCost : LayerBench.calibrate(engine, device, first, 5), cacheSlots, staging);
      if (fixedCost != null) { // as given: no online refinement
        config = new HybridMoe.Config(bundle, fixedCost, cacheSlots, staging, null, 0, config.maxPrefetchCandidates());
      }
      // top-k 0: the model's, from its first call
      return new Owning(new HybridMoe(engine, device, config, routed, null, decoder, 0), device, routed, kind);
    } catch (RuntimeException e) {
      routed.forEach(ExpertLayer::close);
      if (device != null) {
        device.close();
      }
      throw e;
    }
  }

  private static String size(long b) {
    if (b < 1024) {
      return b + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = b;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, "%.2f %s (%d B)", v, units[u], b);
  }

  /** The executor together with what it was built on, closed with it. */
  private static final class Owning implements MoeLayerExecutor {
    private final HybridMoe moe;
    private final Device device;
    private final List<ExpertLayer> layers;
    private final DeviceKind kind;

    Owning(HybridMoe moe, Device device, List<ExpertLayer> layers, DeviceKind kind) {
      this.moe = moe;
      this.device = device;
      this.layers = layers;
      this.kind = kind;
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer out) {
      moe.run(layer, x, n, k, ids, w, null, out);
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer scores,
        FloatBuffer out) {
      moe.run(layer, x, n, k, ids, w, scores, out);
    }

    @Override
    public void setLookahead(Lookahead lookahead) {
      moe.setLookahead(lookahead);
    }

    @Override
    public ExecutorStats stats() {
      return moe.stats();
    }

    @Override
    public void resetStats() {
      moe.resetStats();
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
