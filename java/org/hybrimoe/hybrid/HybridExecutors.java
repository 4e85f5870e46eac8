package org.hybrimoe.hybrid;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
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
import org.hybrimoe.model.Linear;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.LoadProgress;
import org.hybrimoe.model.Lookahead;
import org.hybrimoe.model.MoeExecutorFactory;
import org.hybrimoe.model.MoeLayerExecutor;
import org.hybrimoe.model.SharedExpert;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps.WeightType;
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
 * {@code lookahead}); {@link MoeLayerExecutor#stats} reports per decoder layer. Shared experts are
 * pinned on the device as routed-shaped pieces where that changes no number (bf16 weights, bf16
 * experts: {@link #losslessOnDevice}); otherwise, and without a device, they stay on the model's
 * path.
 */
public final class HybridExecutors {
  /** Which expert device to use. */
  public enum DeviceKind {
    /** CUDA where the runtime finds a CUDA device, else {@link #NONE} ({@link HybridExecutors#resolve}). */
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
     * what fits after the scratch margin and the other slots (staging, pinned shared experts), at
     * {@code slotBytes} per expert.
     *
     * @throws IllegalArgumentException when a byte budget holds no cached expert, saying how much
     *     is missing
     */
    public int cacheSlots(int moeLayers, int expertsPerLayer, long slotBytes, int otherSlots, long scratchBytes) {
      if (moeLayers < 1 || expertsPerLayer < 1 || slotBytes < 1 || otherSlots < 0 || scratchBytes < 0) {
        throw new IllegalArgumentException("need >= 1 layer, expert and slot byte, and no negative staging or scratch");
      }
      long all = (long) moeLayers * expertsPerLayer;
      if (isRatio()) {
        return (int) Math.min(all, ExpertCache.slotsFor(cacheRatio, moeLayers, expertsPerLayer));
      }
      long fixed = scratchBytes + otherSlots * slotBytes;
      if (bytes - fixed < slotBytes) {
        throw new IllegalArgumentException(String.format(Locale.ROOT,
            "GPU budget of %s holds no cached expert: scratch %s + %d staging and shared-expert slots of %s = %s,"
                + " and one cache slot needs %s more; %s missing",
            size(bytes), size(scratchBytes), otherSlots, size(slotBytes), size(fixed), size(slotBytes),
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
    if (format != ExpertFormat.BF16 && format != ExpertFormat.INT4 && format != ExpertFormat.F32) {
      throw new IllegalArgumentException("hybrid experts are bf16 or int4 (what devices compute), or f32 with no "
          + "device, not " + format);
    }
    return new MoeExecutorFactory() {
      @Override
      public MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers, LoadOptions options) {
        return create(engine, layers, Map.of(), options);
      }

      @Override
      public MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers,
          Map<Integer, SharedExpert> shared, LoadOptions options) {
        return HybridExecutors.create(engine, layers, shared, bundle, budget, kind, format, options.groupSize(), cost,
            options.progressOrNone());
      }
    };
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

  private static MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers,
      Map<Integer, SharedExpert> offered, PolicyBundle bundle, GpuBudget budget, DeviceKind requested,
      ExpertFormat format, int groupSize, CostModel fixedCost, LoadProgress progress) {
    if (layers.isEmpty()) {
      throw new IllegalArgumentException("the model has no MoE layer for a hybrid executor");
    }
    DeviceKind kind = resolve(requested);
    if (format == ExpertFormat.F32 && kind != DeviceKind.NONE) {
      throw new IllegalArgumentException("f32 experts run on the CPU only; a " + kind + " device holds bf16 or int4");
    }
    List<ExpertLayer> routed = new ArrayList<>();
    List<ExpertLayer> shared = new ArrayList<>(); // per MoE layer, null where the model keeps its own
    Device device = null;
    try {
      int group = format == ExpertFormat.INT4 ? groupSize : 0;
      int[] decoder = layers.keySet().stream().mapToInt(Integer::intValue).sorted().toArray();
      for (int l : decoder) {
        ExpertLayerWeights w = layers.get(l);
        if (w.format() != format && format == ExpertFormat.F32) {
          throw new IllegalArgumentException("f32 experts need an f32 checkpoint; this one stores " + w.format());
        }
        routed.add(w.format() == format && w.groupSize() == group ? ExpertLayer.borrow(w)
            : ExpertLayer.quantize(engine, format, group, w));
        progress.progress("preparing experts", routed.size(), decoder.length);
      }
      ExpertLayer first = routed.get(0);
      int experts = first.nExperts();
      int cacheSlots = 0;
      int staging = 0;
      Linear[] sharedGates = new Linear[decoder.length];
      int pinned = 0;
      for (int m = 0; m < decoder.length; m++) {
        SharedExpert se = kind == DeviceKind.NONE ? null : offered.get(decoder[m]);
        shared.add(se != null && losslessOnDevice(se, format) ? sharedPieces(se, first) : null);
        if (shared.get(m) != null) {
          sharedGates[m] = se.gate();
          pinned += shared.get(m).nExperts();
        }
      }
      if (kind != DeviceKind.NONE) {
        ExpertShape shape = format == ExpertFormat.INT4
            ? ExpertShape.int4((int) first.dModel(), (int) first.dFf(), group)
            : ExpertShape.bf16((int) first.dModel(), (int) first.dFf());
        staging = stagingSlots(experts);
        cacheSlots = budget.cacheSlots(routed.size(), experts, shape.bytes(), staging + pinned, scratchBytes(kind));
        int slots = HybridMoe.deviceSlots(cacheSlots, staging, pinned);
        device = kind == DeviceKind.CUDA ? Device.cuda(0, shape, slots) : Device.emulated(1, shape, slots);
      }
      progress.progress("calibrating", 0, 1);
      CostModel calibrated = fixedCost;
      if (calibrated == null) {
        Calibration cal = Calibration.measure(engine, device, first, 5, Calibration.DEFAULT_MAX_TOKENS);
        System.Logger log = System.getLogger(HybridExecutors.class.getName());
        log.log(System.Logger.Level.DEBUG, "calibrated on this machine:\n" + cal.describe());
        calibrated = cal.cost();
      }
      HybridMoe.Config config = HybridMoe.Config.of(bundle, calibrated, cacheSlots, staging);
      progress.progress("calibrating", 1, 1);
      if (fixedCost != null) { // as given: no online refinement
        config = new HybridMoe.Config(bundle, fixedCost, cacheSlots, staging, null, 0, config.maxPrefetchCandidates());
      }
      // top-k 0: the model's, from its first call
      HybridMoe moe = new HybridMoe(engine, device, config, routed, pinned > 0 ? shared : null, decoder, 0);
      return new Owning(moe, device, routed, shared, kind, engine, decoder, sharedGates);
    } catch (RuntimeException e) {
      routed.forEach(ExpertLayer::close);
      shared.stream().filter(Objects::nonNull).forEach(ExpertLayer::close);
      if (device != null) {
        device.close();
      }
      throw e;
    }
  }

  /**
   * Whether a shared expert goes to the device unchanged: bf16 weights without biases and bf16
   * device experts. Anything else would round the model's shared expert differently from the
   * CPU path (f32 to bf16, or to int4), so it stays on the model's path.
   */
  public static boolean losslessOnDevice(SharedExpert s, ExpertFormat format) {
    for (Linear l : new Linear[] {s.mlp().gate(), s.mlp().up(), s.mlp().down()}) {
      if (l.type() != WeightType.BF16 || l.bias() != null) {
        return false;
      }
    }
    return format == ExpertFormat.BF16;
  }

  /**
   * A bf16 shared expert as ceil(ff_shared / ff) routed-shaped pieces: SwiGLU is a sum over the
   * intermediate dimension, so piece p holds gate/up rows and down columns [p*ff, (p+1)*ff),
   * zero-padded past ff_shared (silu(0) * 0 adds nothing). Copies, one per layer.
   */
  static ExpertLayer sharedPieces(SharedExpert s, ExpertLayer routed) {
    int d = (int) routed.dModel();
    int ff = (int) routed.dFf();
    int sff = s.mlp().ff();
    int pieces = (sff + ff - 1) / ff;
    ByteBuffer gate = s.mlp().gate().weight().slice(); // [sff, d] bf16
    ByteBuffer up = s.mlp().up().weight().slice(); // [sff, d]
    ByteBuffer down = s.mlp().down().weight().slice(); // [d, sff]
    ExpertLayerWeights.Builder b = ExpertLayerWeights.builder(ExpertFormat.BF16, pieces, d, ff);
    byte[] row = new byte[2 * Math.max(d, ff)];
    for (int p = 0; p < pieces; p++) {
      int rows = Math.min(ff, sff - p * ff); // real rows of this piece; the rest stay zero
      ByteBuffer g = direct(2L * ff * d);
      ByteBuffer u = direct(2L * ff * d);
      ByteBuffer dn = direct(2L * d * ff); // [d, ff]
      for (int r = 0; r < rows; r++) {
        int from = Math.toIntExact(2L * (p * ff + r) * d);
        gate.get(from, row, 0, 2 * d);
        g.put(2 * r * d, row, 0, 2 * d);
        up.get(from, row, 0, 2 * d);
        u.put(2 * r * d, row, 0, 2 * d);
      }
      for (int r = 0; r < d; r++) {
        down.get(Math.toIntExact(2L * ((long) r * sff + (long) p * ff)), row, 0, 2 * rows);
        dn.put(2 * r * ff, row, 0, 2 * rows);
      }
      b.expert(p, g, u, dn);
    }
    return ExpertLayer.borrow(b.build());
  }

  private static ByteBuffer direct(long bytes) {
    return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
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

  /**
   * The executor together with what it was built on, closed with it. Runs the shared experts it
   * took (pinned on the device as pieces), with Qwen2-MoE's sigmoid gate computed here.
   */
  private static final class Owning implements MoeLayerExecutor {
    private final HybridMoe moe;
    private final Device device;
    private final List<ExpertLayer> layers;
    private final List<ExpertLayer> shared; // per MoE layer, null where the model runs its own
    private final DeviceKind kind;
    private final Engine engine;
    private final int[] moeOf; // decoder layer -> MoE layer, -1
    private final Linear[] sharedGates; // per MoE layer: [1, d] or null
    private FloatBuffer gateLogits = FloatBuffer.allocate(0); // [n], direct once used
    private FloatBuffer sharedWeights = FloatBuffer.allocate(0); // [n, pieces], direct once used

    Owning(HybridMoe moe, Device device, List<ExpertLayer> layers, List<ExpertLayer> shared, DeviceKind kind,
        Engine engine, int[] decoder, Linear[] sharedGates) {
      this.moe = moe;
      this.device = device;
      this.layers = layers;
      this.shared = shared;
      this.kind = kind;
      this.engine = engine;
      this.moeOf = new int[decoder[decoder.length - 1] + 1];
      Arrays.fill(moeOf, -1);
      for (int m = 0; m < decoder.length; m++) {
        moeOf[decoder[m]] = m;
      }
      this.sharedGates = sharedGates;
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer out) {
      run(layer, x, n, k, ids, w, null, out);
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer scores,
        FloatBuffer out) {
      if (!runsSharedExpert(layer)) {
        moe.run(layer, x, n, k, ids, w, scores, out);
        return;
      }
      int m = moe.moeLayer(layer, k);
      moe.runLayer(m, x, n, ids, w, scores, gateWeights(m, x, n), out);
    }

    // sigmoid(x @ gate^T) per token, repeated for each piece; null (weight 1) without a gate.
    private FloatBuffer gateWeights(int m, FloatBuffer x, int n) {
      Linear gate = sharedGates[m];
      if (gate == null) {
        return null;
      }
      int pieces = shared.get(m).nExperts();
      if (gateLogits.capacity() < n) {
        gateLogits = direct(4L * n).asFloatBuffer();
      }
      if (sharedWeights.capacity() < (long) n * pieces) {
        sharedWeights = direct(4L * n * pieces).asFloatBuffer();
      }
      FloatBuffer g = gateLogits.duplicate().limit(n);
      gate.apply(engine, x, n, g);
      FloatBuffer sw = sharedWeights.duplicate().limit(n * pieces);
      for (int t = 0; t < n; t++) {
        float v = (float) (1.0 / (1.0 + Math.exp(-g.get(t))));
        for (int p = 0; p < pieces; p++) {
          sw.put(t * pieces + p, v);
        }
      }
      return sw;
    }

    @Override
    public boolean runsSharedExpert(int layer) {
      return layer >= 0 && layer < moeOf.length && moeOf[layer] >= 0 && shared.get(moeOf[layer]) != null;
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
      shared.stream().filter(Objects::nonNull).forEach(ExpertLayer::close);
    }
  }
}
