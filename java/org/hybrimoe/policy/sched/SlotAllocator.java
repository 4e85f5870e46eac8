package org.hybrimoe.policy.sched;

/**
 * Chooses the GPU cache slot a transfer fills and the expert it evicts; implemented by the caches.
 * Must never evict an expert in {@code needed} (the layer being planned uses it) or one in flight.
 */
@FunctionalInterface
public interface SlotAllocator {
  /** A slot, or {@link #STAGING} when the expert is used from a staging buffer and not kept. */
  record Slot(int slot, int evictedLayer, int evicted) {}

  /** Not cached: a staging buffer for this use only. */
  Slot STAGING = new Slot(-1, -1, -1);

  /** Allocates for expert {@code expert} of MoE layer {@code layer}; {@code needed} are this layer's experts. */
  Slot allocate(int layer, int expert, int[] needed);
}
