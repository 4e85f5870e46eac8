package org.hybrimoe.policy.cache;

/**
 * MRS, the score-based cache of ALGORITHMS.md section 4: per (layer, expert) a score
 * {@code S = alpha * m + (1 - alpha) * S}, where m is the batch mean (every token counts, unlike
 * the authors' code that used the first token only) of each token's routing probabilities with all
 * but the top P set to 0. The victim is the evictable resident with the lowest S; with a global
 * pool scores are compared across layers (they are probabilities).
 *
 * <p>Ids-only traces carry no probabilities: there each chosen expert gets 1/topK and the rest 0
 * (P then equals topK, not 2 * topK). Stated here and in docs/BENCHMARKS.md.
 */
public final class MrsCache extends ExpertCache {
  private final double alpha;
  private final int topP; // 0: 2 * topK
  private final double[] score; // [layers * experts]
  private final double[] m; // scratch [experts]
  private final float[] row; // scratch [experts]

  public MrsCache(int layers, int experts, int slots, Capacity capacity, double alpha, int topP) {
    super(layers, experts, slots, capacity);
    if (!(alpha > 0 && alpha <= 1)) {
      throw new IllegalArgumentException("MRS alpha must be in (0, 1]: " + alpha);
    }
    this.alpha = alpha;
    this.topP = topP;
    this.score = new double[layers * experts];
    this.m = new double[experts];
    this.row = new float[experts];
  }

  /**
   * The default decay, chosen by measurement (simulate --mrs-variants, docs/BENCHMARKS.md): on the
   * real DeepSeek-V2-Lite and Mixtral-8x7B traces alpha 0.05 holds 2.5-2.6 points more hits than
   * LRU at 25-50% cache (DeepSeek) where the paper's 0.5 holds 0.1-0.3; 0.02-0.1 are within a
   * point of it. A long memory of routing probability, not the last few tokens, predicts reuse.
   */
  public static final double DEFAULT_ALPHA = 0.05;

  /** MRS with the measured default decay ({@link #DEFAULT_ALPHA}) and P = 2 * topK. */
  public MrsCache(int layers, int experts, int slots, Capacity capacity) {
    this(layers, experts, slots, capacity, DEFAULT_ALPHA, 0);
  }

  @Override
  public String name() {
    return "MRS" + (capacity() == Capacity.GLOBAL ? "-global" : "");
  }

  public double score(int layer, int expert) {
    return score[layer * experts + expert];
  }

  @Override
  protected double priority(int key) {
    return score[key];
  }

  @Override
  public void observe(int layer, int[] ids, int tokens, int topK, float[] scores) {
    java.util.Arrays.fill(m, 0);
    int p = topP > 0 ? topP : 2 * topK;
    for (int t = 0; t < tokens; t++) {
      if (scores == null) {
        for (int k = 0; k < topK; k++) {
          m[ids[t * topK + k]] += 1.0 / topK;
        }
      } else {
        System.arraycopy(scores, t * experts, row, 0, experts);
        // keep the top-P entries of this token: those above the P-th largest value, then ties at
        // it while fewer than P are kept (a tie at 0 adds nothing). Counting the entries in index
        // order instead would drop high-numbered experts whenever ties at the threshold, such as
        // the zeros of a token with fewer than P nonzero scores, come first.
        float thr = kthLargest(row.clone(), Math.min(p, experts));
        int kept = 0;
        for (int e = 0; e < experts; e++) {
          if (row[e] > thr) {
            m[e] += row[e];
            kept++;
          }
        }
        for (int e = 0; e < experts && kept < p && thr > 0; e++) {
          if (row[e] == thr) {
            m[e] += row[e];
            kept++;
          }
        }
      }
    }
    int base = layer * experts;
    for (int e = 0; e < experts; e++) {
      score[base + e] = alpha * (m[e] / tokens) + (1 - alpha) * score[base + e];
    }
  }

  private static float kthLargest(float[] a, int k) {
    java.util.Arrays.sort(a);
    return a[a.length - k];
  }

  /**
   * MRS's own fill candidates after a layer: the plan entries of routed experts computed on the
   * CPU and not resident, highest score first.
   */
  public int[] fillOrder(int layer, org.hybrimoe.policy.sched.LayerPlan plan) {
    return java.util.stream.IntStream.range(0, plan.size())
        .filter(i -> plan.device(i) == org.hybrimoe.policy.sched.LayerPlan.CPU && plan.expert(i) >= 0
            && !resident(layer, plan.expert(i)))
        .boxed()
        .sorted((a, b) -> Double.compare(score(layer, plan.expert(b)), score(layer, plan.expert(a))))
        .mapToInt(Integer::intValue)
        .toArray();
  }
}
