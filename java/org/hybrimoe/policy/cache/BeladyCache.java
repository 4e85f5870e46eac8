package org.hybrimoe.policy.cache;

/**
 * Belady's optimal replacement over a known future, with bypass (simulator only): on a miss the
 * candidate and every evictable resident are compared by next use, and the one used farthest in
 * the future is the one left out, which may be the candidate itself (then it is not cached, as a
 * hybrid system can compute a miss on the CPU). With bypass it is optimal among all policies over
 * the request sequence, static placements included, so it bounds every hit rate from above.
 *
 * <p>The caller keeps the future current: {@link #setNextUse} for every (layer, expert) of a step
 * before the step's misses are allocated.
 */
public final class BeladyCache extends ExpertCache {
  private final long[] nextUse;

  public BeladyCache(int layers, int experts, int slots, Capacity capacity) {
    super(layers, experts, slots, capacity);
    this.nextUse = new long[layers * experts];
    java.util.Arrays.fill(nextUse, Long.MAX_VALUE);
  }

  @Override
  public String name() {
    return "Belady" + (capacity() == Capacity.GLOBAL ? "-global" : "");
  }

  /** The position (in request order) of the next use of (layer, expert), Long.MAX_VALUE if never. */
  public void setNextUse(int layer, int expert, long position) {
    nextUse[layer * experts + expert] = position;
  }

  @Override
  protected double priority(int key) {
    return -(double) nextUse[key];
  }

  @Override
  protected boolean admit(int key, int victimKey) {
    return victimKey < 0 ? nextUse[key] != Long.MAX_VALUE : nextUse[key] < nextUse[victimKey];
  }

  @Override
  public void observe(int layer, int[] ids, int tokens, int topK, float[] scores) {}
}
