package org.hybrimoe.policy.cache;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * A placement fixed before the run; nothing moves at run time (transfers, if any, use staging).
 * Two placements: the globally most frequently activated experts of a profiling window
 * (kTransformers today, Fiddler's offline popularity), and all experts of the first layers
 * (llama.cpp --n-cpu-moe, the kTransformers configuration the HybriMoE authors measured).
 */
public final class StaticCache extends ExpertCache {
  private final String name;

  private StaticCache(String name, int layers, int experts, int slots) {
    super(layers, experts, slots, Capacity.GLOBAL);
    this.name = name;
  }

  /** The {@code slots} (layer, expert) pairs with the highest counts ([layers * experts]). */
  public static StaticCache frequency(int layers, int experts, int slots, long[] counts) {
    if (counts.length != layers * experts) {
      throw new IllegalArgumentException("counts must be layers * experts long");
    }
    StaticCache c = new StaticCache("static-frequency", layers, experts, slots);
    Integer[] keys = IntStream.range(0, counts.length).boxed().toArray(Integer[]::new);
    Arrays.sort(keys, Comparator.<Integer>comparingLong(k -> -counts[k]).thenComparingInt(k -> k));
    c.preload(Arrays.stream(keys).limit(slots).mapToInt(Integer::intValue).toArray());
    return c;
  }

  /** All experts of the first floor(slots / experts) layers. */
  public static StaticCache layers(int layers, int experts, int slots) {
    StaticCache c = new StaticCache("static-layers", layers, experts, slots);
    int full = slots / experts;
    c.preload(IntStream.range(0, full * experts).toArray());
    return c;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public boolean dynamic() {
    return false;
  }

  @Override
  protected double priority(int key) {
    return 0;
  }

  @Override
  public void observe(int layer, int[] ids, int tokens, int topK, float[] scores) {}
}
