package org.hybrimoe.policy.cache;

/** Least frequently used: the victim has the fewest token activations so far (every token counts). */
public final class LfuCache extends ExpertCache {
  private final long[] count;

  public LfuCache(int layers, int experts, int slots, Capacity capacity) {
    super(layers, experts, slots, capacity);
    this.count = new long[layers * experts];
  }

  @Override
  public String name() {
    return "LFU" + (capacity() == Capacity.GLOBAL ? "-global" : "");
  }

  @Override
  protected double priority(int key) {
    return count[key];
  }

  @Override
  public void observe(int layer, int[] ids, int tokens, int topK, float[] scores) {
    for (int i = 0; i < tokens * topK; i++) {
      count[layer * experts + ids[i]]++;
    }
  }
}
