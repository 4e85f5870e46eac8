package org.hybrimoe.policy.cache;

import org.hybrimoe.policy.PolicyBundle;

/** The cache a bundle names, built the same way for the simulator and the real executor. */
public final class Caches {
  private Caches() {}

  /**
   * A cache of {@code kind} with {@code slots} slots: static placements from the profile counts
   * ([layers * experts]), dynamic caches warm-started with {@code warmOrder} (keys, best first).
   */
  public static ExpertCache create(PolicyBundle.CacheKind kind, int layers, int experts, int slots, long[] counts,
      int[] warmOrder) {
    ExpertCache c;
    switch (kind) {
      case STATIC_FREQUENCY:
        return StaticCache.frequency(layers, experts, slots, counts);
      case STATIC_LAYERS:
        return StaticCache.layers(layers, experts, slots);
      case BELADY_GLOBAL:
        throw new IllegalArgumentException("the Belady cache needs the future routing of the run: it exists in the"
            + " simulator only (bundle " + PolicyBundle.ORACLE.name() + ")");
      case LRU:
        c = new LruCache(layers, experts, slots, kind.capacity);
        break;
      case MRS:
      case MRS_GLOBAL:
      default:
        c = new MrsCache(layers, experts, slots, kind.capacity);
        break;
    }
    c.preload(warmOrder);
    return c;
  }
}
