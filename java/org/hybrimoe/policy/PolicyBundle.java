package org.hybrimoe.policy;

import java.util.List;
import java.util.Locale;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.sched.SchedulingMode;

/**
 * One system of ALGORITHMS.md section 5 as a combination of policies: how a layer is split
 * (scheduling mode), which cache, which prefetcher and how far ahead, and whether misses computed on
 * the CPU are copied into the cache in the link's idle time when the cache judges them worth a slot
 * (MRS's own fill; static placements never move anything).
 */
public record PolicyBundle(String name, SchedulingMode mode, CacheKind cache, PrefetchKind prefetch, int lookahead,
    boolean fillOnMiss) {

  /** The cache a bundle uses. */
  public enum CacheKind {
    MRS(ExpertCache.Capacity.PER_LAYER),
    MRS_GLOBAL(ExpertCache.Capacity.GLOBAL),
    LRU(ExpertCache.Capacity.PER_LAYER),
    STATIC_FREQUENCY(ExpertCache.Capacity.GLOBAL),
    STATIC_LAYERS(ExpertCache.Capacity.GLOBAL),
    /** Belady's replacement over the run's known future, one pool (simulator only: the oracle). */
    BELADY_GLOBAL(ExpertCache.Capacity.GLOBAL);

    public final ExpertCache.Capacity capacity;

    CacheKind(ExpertCache.Capacity c) {
      this.capacity = c;
    }
  }

  /** The prefetcher a bundle uses. */
  public enum PrefetchKind {
    NONE,
    /** The predicted experts of the next layer, heaviest first (AdapMoE). */
    NEXT_LAYER,
    /** Impact-driven over the look-ahead horizon (HybriMoE, section 3). */
    IMPACT,
    /**
     * Impact-driven over the trace's true routing of the next layers instead of the router's
     * predictions: a perfect look-ahead (simulator only: the oracle).
     */
    IMPACT_PERFECT
  }

  public PolicyBundle {
    if (lookahead < 0 || (prefetch != PrefetchKind.NONE && lookahead == 0)) {
      throw new IllegalArgumentException("bundle " + name + ": bad look-ahead " + lookahead);
    }
  }

  public static final PolicyBundle LLAMA_CPP =
      new PolicyBundle("llama.cpp-like", SchedulingMode.STATIC, CacheKind.STATIC_LAYERS, PrefetchKind.NONE, 0, false);
  public static final PolicyBundle KTRANSFORMERS =
      new PolicyBundle("ktransformers-like", SchedulingMode.STATIC, CacheKind.STATIC_FREQUENCY, PrefetchKind.NONE, 0, false);
  public static final PolicyBundle ADAPMOE =
      new PolicyBundle("adapmoe-like", SchedulingMode.GPU_ONLY, CacheKind.LRU, PrefetchKind.NEXT_LAYER, 1, false);
  public static final PolicyBundle FIDDLER =
      new PolicyBundle("fiddler-like", SchedulingMode.FIDDLER, CacheKind.STATIC_FREQUENCY, PrefetchKind.NONE, 0, false);
  /** Every activated expert computed on the GPU, misses moved on demand, LRU cache, no prefetch. */
  public static final PolicyBundle GPU_ONLY =
      new PolicyBundle("gpu-only", SchedulingMode.GPU_ONLY, CacheKind.LRU, PrefetchKind.NONE, 0, false);
  public static final PolicyBundle HYBRIMOE =
      new PolicyBundle("hybrimoe", SchedulingMode.HYBRID, CacheKind.MRS, PrefetchKind.IMPACT, 3, true);
  public static final PolicyBundle HYBRIMOE_GLOBAL =
      new PolicyBundle("hybrimoe-global", SchedulingMode.HYBRID, CacheKind.MRS_GLOBAL, PrefetchKind.IMPACT, 3, true);

  /**
   * The oracle, a reference point for HybriMoE rather than a system: every policy given what a real
   * engine cannot know. Belady's cache over the run's future (one pool, so no per-layer split limits
   * it), impact prefetch ranked on the true routing of the next three layers, misses computed on the
   * CPU filled into the cache in idle link time when Belady admits them, and every layer planned by
   * the exhaustive search over splits ({@link SchedulingMode#ORACLE}; local search above 12
   * activated experts). Not a proven lower bound on time (each part is optimal on its own terms,
   * not jointly), so HybriMoE can in principle come out ahead; simulate reports the ratio.
   */
  public static final PolicyBundle ORACLE =
      new PolicyBundle("oracle", SchedulingMode.ORACLE, CacheKind.BELADY_GLOBAL, PrefetchKind.IMPACT_PERFECT, 3, true);

  /** Ablations over the kTransformers-like base: one technique switched on at a time. */
  public static final PolicyBundle ONLY_SCHEDULER =
      new PolicyBundle("ktransformers+sched", SchedulingMode.HYBRID, CacheKind.STATIC_FREQUENCY, PrefetchKind.NONE, 0, false);
  public static final PolicyBundle ONLY_PREFETCH =
      new PolicyBundle("ktransformers+prefetch", SchedulingMode.STATIC, CacheKind.STATIC_FREQUENCY, PrefetchKind.IMPACT, 3, false);
  public static final PolicyBundle ONLY_MRS =
      new PolicyBundle("ktransformers+mrs", SchedulingMode.STATIC, CacheKind.MRS, PrefetchKind.NONE, 0, true);

  /** The systems compared (section 5). */
  public static List<PolicyBundle> systems() {
    return List.of(LLAMA_CPP, KTRANSFORMERS, ADAPMOE, FIDDLER, HYBRIMOE, HYBRIMOE_GLOBAL);
  }

  /** The ablation rows, base first and full HybriMoE last. */
  public static List<PolicyBundle> ablations() {
    return List.of(KTRANSFORMERS, ONLY_SCHEDULER, ONLY_PREFETCH, ONLY_MRS, HYBRIMOE);
  }

  /** Every named bundle an engine can run. */
  public static List<PolicyBundle> all() {
    return List.of(LLAMA_CPP, KTRANSFORMERS, GPU_ONLY, ADAPMOE, FIDDLER, HYBRIMOE, HYBRIMOE_GLOBAL, ONLY_SCHEDULER,
        ONLY_PREFETCH, ONLY_MRS);
  }

  /** Every named bundle the simulator can run: {@link #all()} and the oracle. */
  public static List<PolicyBundle> simulated() {
    return List.of(LLAMA_CPP, KTRANSFORMERS, GPU_ONLY, ADAPMOE, FIDDLER, HYBRIMOE, HYBRIMOE_GLOBAL, ONLY_SCHEDULER,
        ONLY_PREFETCH, ONLY_MRS, ORACLE);
  }

  /** Whether the bundle needs the future of a trace (Belady, perfect look-ahead): simulator only. */
  public boolean simulatorOnly() {
    return cache == CacheKind.BELADY_GLOBAL || prefetch == PrefetchKind.IMPACT_PERFECT;
  }

  /**
   * A bundle by name, case-insensitive, with or without the "-like" suffix and the dot
   * (ktransformers, llamacpp, llama.cpp-like, gpu-only, hybrimoe, ..., and the simulator's oracle,
   * which an engine refuses when it builds the bundle's cache).
   */
  public static PolicyBundle byName(String name) {
    String want = shortName(name);
    for (PolicyBundle b : simulated()) {
      if (shortName(b.name).equals(want)) {
        return b;
      }
    }
    throw new IllegalArgumentException("unknown bundle '" + name + "': known are "
        + String.join(", ", simulated().stream().map(PolicyBundle::name).toList()));
  }

  private static String shortName(String name) {
    String n = name.trim().toLowerCase(Locale.ROOT).replace(".", "");
    return n.endsWith("-like") ? n.substring(0, n.length() - 5) : n;
  }

  @Override
  public String toString() {
    return name.toLowerCase(Locale.ROOT);
  }
}
