package org.hybrimoe.api;

import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.hybrid.HybridExecutors;
import org.hybrimoe.hybrid.HybridExecutors.GpuBudget;
import org.hybrimoe.model.LoadProgress;
import org.hybrimoe.policy.PolicyBundle;

/**
 * How {@link Model#load} runs a model. Immutable; build with {@link #builder()}. Defaults: the
 * GPU when there is one (else the CPU alone), a quarter of the experts cached on it, the HybriMoE
 * policies with their look-ahead of 3 layers, bf16 experts, one thread per physical core, a
 * context of up to 4096 positions, an f32 KV cache.
 */
public final class ModelOptions {
  /** Where the experts that are not on the CPU run. */
  public enum Device {
    /** CUDA device 0 when the runtime finds one, else the CPU alone. */
    AUTO(HybridExecutors.DeviceKind.AUTO),
    CUDA(HybridExecutors.DeviceKind.CUDA),
    /** Host threads playing the GPU's part (tests and demos without a GPU; no speed claim). */
    EMULATED(HybridExecutors.DeviceKind.EMULATED),
    /** Every expert on the CPU. */
    CPU(HybridExecutors.DeviceKind.NONE);

    final HybridExecutors.DeviceKind kind;

    Device(HybridExecutors.DeviceKind kind) {
      this.kind = kind;
    }
  }

  /** Element type of each request's KV cache. */
  public enum KvCacheType {
    /** Exact (4 bytes an element). */
    F32(org.hybrimoe.ops.KvCache.Dtype.F32),
    /**
     * Half the memory and half the attention's reads at long contexts; keys and values rounded
     * to bf16 as HuggingFace's cache of a bf16 model holds them.
     */
    BF16(org.hybrimoe.ops.KvCache.Dtype.BF16);

    final org.hybrimoe.ops.KvCache.Dtype dtype;

    KvCacheType(org.hybrimoe.ops.KvCache.Dtype dtype) {
      this.dtype = dtype;
    }
  }

  /** Where the dense linears (attention projections, dense MLPs, shared experts, LM head) run. */
  public enum Dense {
    /** On the GPU with a CUDA device (as many as fit, before the expert cache), else the CPU. */
    AUTO,
    /** On the device, CUDA or emulated (the emulated one for tests; it makes no speed claim). */
    DEVICE,
    /** On the CPU. */
    CPU
  }

  private final Device device;
  private final Dense dense;
  private final GpuBudget budget;
  private final int threads;
  private final PolicyBundle bundle;
  private final ExpertFormat expertFormat;
  private final int groupSize;
  private final int maxContext;
  private final KvCacheType kvCache;
  private final LoadProgress progress;
  private final org.hybrimoe.model.RoutingSink routing;

  private ModelOptions(Builder b) {
    this.device = b.device;
    this.dense = b.dense;
    this.budget = b.budget;
    this.threads = b.threads;
    this.expertFormat = b.expertFormat;
    this.groupSize = b.groupSize;
    this.maxContext = b.maxContext;
    this.kvCache = b.kvCache;
    this.progress = b.progress;
    this.routing = b.routing;
    PolicyBundle p = b.bundle;
    if (b.prefetchDepth >= 0) {
      if (b.prefetchDepth == 0) {
        p = new PolicyBundle(p.name(), p.mode(), p.cache(), PolicyBundle.PrefetchKind.NONE, 0, p.fillOnMiss());
      } else if (p.prefetch() == PolicyBundle.PrefetchKind.NONE) {
        throw new IllegalArgumentException("bundle " + p.name() + " does not prefetch; prefetchDepth "
            + b.prefetchDepth + " needs one that does (hybrimoe, adapmoe)");
      } else {
        p = new PolicyBundle(p.name(), p.mode(), p.cache(), p.prefetch(), b.prefetchDepth, p.fillOnMiss());
      }
    }
    this.bundle = p;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The defaults (see the class comment). */
  public static ModelOptions defaults() {
    return builder().build();
  }

  /** A bundle by short name (hybrimoe, ktransformers, llamacpp, gpu-only, adapmoe, fiddler) or full name. */
  public static PolicyBundle bundleNamed(String name) {
    return PolicyBundle.byName(name);
  }

  public Device device() {
    return device;
  }

  public GpuBudget budget() {
    return budget;
  }

  public int threads() {
    return threads;
  }

  /** The policy bundle, with the prefetch depth applied. */
  public PolicyBundle bundle() {
    return bundle;
  }

  public ExpertFormat expertFormat() {
    return expertFormat;
  }

  public int groupSize() {
    return groupSize;
  }

  /** Longest sequence (prompt + new tokens) a request may reach; capped by the model's own. */
  public int maxContext() {
    return maxContext;
  }

  /** Element type of each request's KV cache. */
  public KvCacheType kvCache() {
    return kvCache;
  }

  /** Where the dense linears run. */
  public Dense dense() {
    return dense;
  }

  /** Told about loading progress, or null. */
  public LoadProgress progress() {
    return progress;
  }

  /** Receives every MoE layer call's routing (generate --trace), or null. */
  public org.hybrimoe.model.RoutingSink routing() {
    return routing;
  }

  /** Builds {@link ModelOptions}; each setter validates its value. */
  public static final class Builder {
    private Device device = Device.AUTO;
    private Dense dense = Dense.AUTO;
    private GpuBudget budget = GpuBudget.ratio(0.25);
    private int threads;
    private PolicyBundle bundle = PolicyBundle.HYBRIMOE;
    private int prefetchDepth = -1;
    private ExpertFormat expertFormat = ExpertFormat.BF16;
    private int groupSize = 64;
    private int maxContext = 4096;
    private KvCacheType kvCache = KvCacheType.F32;
    private LoadProgress progress;
    private org.hybrimoe.model.RoutingSink routing;

    private Builder() {}

    public Builder device(Device d) {
      this.device = java.util.Objects.requireNonNull(d, "device");
      return this;
    }

    /** GPU memory the experts' cache may use, in bytes (the rest of the GPU is left alone). */
    public Builder gpuMemory(long bytes) {
      this.budget = GpuBudget.bytes(bytes);
      return this;
    }

    /** Cache this fraction of all routed experts on the GPU, in (0, 1]. */
    public Builder cacheRatio(double ratio) {
      this.budget = GpuBudget.ratio(ratio);
      return this;
    }

    /** CPU worker threads (0: one per physical core). */
    public Builder threads(int n) {
      if (n < 0) {
        throw new IllegalArgumentException("threads must be >= 0 (0: one per physical core), got " + n);
      }
      this.threads = n;
      return this;
    }

    public Builder bundle(PolicyBundle b) {
      this.bundle = java.util.Objects.requireNonNull(b, "bundle");
      return this;
    }

    /** A bundle by name; see {@link ModelOptions#bundleNamed}. */
    public Builder bundle(String name) {
      return bundle(bundleNamed(name));
    }

    /** Layers the prefetcher looks ahead (0: no prefetch); default the bundle's own. */
    public Builder prefetchDepth(int layers) {
      if (layers < 0 || layers > 16) {
        throw new IllegalArgumentException("prefetchDepth must be in [0, 16], got " + layers);
      }
      this.prefetchDepth = layers;
      return this;
    }

    /** Experts in BF16 (default) or INT4 (group-wise, {@link #groupSize}); F32 on the CPU device only. */
    public Builder expertFormat(ExpertFormat f) {
      if (f != ExpertFormat.BF16 && f != ExpertFormat.INT4 && f != ExpertFormat.F32) {
        throw new IllegalArgumentException("expert format must be BF16, INT4 or F32 (CPU only), got " + f);
      }
      this.expertFormat = f;
      return this;
    }

    /** INT4 group size: 32, 64 or 128. */
    public Builder groupSize(int g) {
      if (g != 32 && g != 64 && g != 128) {
        throw new IllegalArgumentException("group size must be 32, 64 or 128, got " + g);
      }
      this.groupSize = g;
      return this;
    }

    public Builder maxContext(int positions) {
      if (positions < 2) {
        throw new IllegalArgumentException("maxContext must be >= 2, got " + positions);
      }
      this.maxContext = positions;
      return this;
    }

    public Builder kvCache(KvCacheType t) {
      if (t == null) {
        throw new IllegalArgumentException("kvCache must not be null");
      }
      this.kvCache = t;
      return this;
    }

    /** Where the dense linears run (default AUTO: the GPU with CUDA, else the CPU). */
    public Builder dense(Dense d) {
      this.dense = java.util.Objects.requireNonNull(d, "dense");
      return this;
    }

    /**
     * Records the model's routing into sink (for example an org.hybrimoe.sim.TraceRecorder, which
     * writes a routing trace for simulate), with the look-ahead's predictions for the next three
     * MoE layers; what the model computes is unchanged. null: none (the default).
     */
    public Builder recordRouting(org.hybrimoe.model.RoutingSink sink) {
      this.routing = sink;
      return this;
    }

    public Builder progress(LoadProgress p) {
      this.progress = p;
      return this;
    }

    public ModelOptions build() {
      if (dense == Dense.DEVICE && device == Device.CPU) {
        throw new IllegalArgumentException("dense linears on the device need one; device CPU has none");
      }
      if (expertFormat == ExpertFormat.F32 && device != Device.CPU) {
        throw new IllegalArgumentException("F32 experts run on the CPU device only; GPUs and the emulated "
            + "device hold BF16 or INT4");
      }
      return new ModelOptions(this);
    }
  }
}
