package org.hybrimoe.policy.sched;

/**
 * What the scheduler plans for one MoE layer: the activated routed experts with their loads and
 * GPU availability, the shared experts, and when the PCIe link becomes free.
 *
 * @param experts activated routed expert ids, distinct
 * @param loads tokens routed to each (>= 1), same length as experts
 * @param readyMs per expert: 0 if resident on the GPU, t > 0 if in flight and arriving t ms after the
 *     MoE block starts, {@link Double#POSITIVE_INFINITY} if only in host memory
 * @param sharedExperts shared experts, always resident, each computing every token
 * @param sharedLoad tokens of the batch (the load of every shared expert)
 * @param linkFreeMs when the link finishes transfers already queued (prefetches), from MoE start
 */
public record LayerRequest(int layer, int[] experts, int[] loads, double[] readyMs, int sharedExperts, int sharedLoad,
    double linkFreeMs) {

  public LayerRequest {
    if (experts.length != loads.length || experts.length != readyMs.length) {
      throw new IllegalArgumentException("experts, loads and readyMs differ in length: " + experts.length + ", "
          + loads.length + ", " + readyMs.length);
    }
    for (int i = 0; i < loads.length; i++) {
      if (loads[i] < 1) {
        throw new IllegalArgumentException("expert " + experts[i] + " has load " + loads[i] + " (< 1)");
      }
      if (!(readyMs[i] >= 0)) {
        throw new IllegalArgumentException("expert " + experts[i] + " readyMs must be >= 0 or +inf");
      }
    }
    if (sharedExperts < 0 || (sharedExperts > 0 && sharedLoad < 1) || !(linkFreeMs >= 0)) {
      throw new IllegalArgumentException("bad shared experts / link time");
    }
  }

  /**
   * A predicted request of a later layer: the experts with a positive predicted count (in id
   * order, the count as load), ready at once where {@code onGpu} says so and missing otherwise.
   */
  public static LayerRequest predicted(int layer, int[] counts, java.util.function.IntPredicate onGpu,
      int sharedExperts, int tokens) {
    int[] ex = java.util.stream.IntStream.range(0, counts.length).filter(e -> counts[e] > 0).toArray();
    int[] ld = new int[ex.length];
    double[] rd = new double[ex.length];
    for (int i = 0; i < ex.length; i++) {
      ld[i] = counts[ex[i]];
      rd[i] = onGpu.test(ex[i]) ? 0 : Double.POSITIVE_INFINITY;
    }
    return new LayerRequest(layer, ex, ld, rd, sharedExperts, tokens, 0);
  }

  /** Whether expert i is on the GPU or on its way there. */
  public boolean onGpu(int i) {
    return readyMs[i] != Double.POSITIVE_INFINITY;
  }
}
