package org.hybrimoe.policy.cache;

/** Least recently used: the victim is the resident expert whose layer routed to it longest ago. */
public final class LruCache extends ExpertCache {
  private final long[] lastUse;
  private long clock;

  public LruCache(int layers, int experts, int slots, Capacity capacity) {
    super(layers, experts, slots, capacity);
    this.lastUse = new long[layers * experts];
  }

  @Override
  public String name() {
    return "LRU" + (capacity() == Capacity.GLOBAL ? "-global" : "");
  }

  @Override
  protected double priority(int key) {
    return lastUse[key];
  }

  @Override
  public void observe(int layer, int[] ids, int tokens, int topK, float[] scores) {
    clock++;
    for (int i = 0; i < tokens * topK; i++) {
      lastUse[layer * experts + ids[i]] = clock;
    }
  }

  @Override
  protected void onInsert(int key) {
    lastUse[key] = Math.max(lastUse[key], clock);
  }
}
