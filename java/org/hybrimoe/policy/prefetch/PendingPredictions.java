package org.hybrimoe.policy.prefetch;

/**
 * The look-ahead predictions waiting for their layer to run, so that the accuracy at each distance
 * is measured online (ALGORITHMS.md section 3, step 3): the first prediction of a layer at a
 * distance counts; when the layer runs, its real routing settles it. Not thread-safe.
 */
public final class PendingPredictions {
  private final boolean[][][] pending; // [distance][layer] predicted experts, or null

  public PendingPredictions(int maxDistance, int layers) {
    this.pending = new boolean[maxDistance + 1][layers][];
  }

  /** Remembers the experts with a positive predicted count for {@code layer} at distance d. */
  public void remember(int d, int layer, int[] counts) {
    if (pending[d][layer] != null) {
      return;
    }
    boolean[] p = new boolean[counts.length];
    for (int e = 0; e < counts.length; e++) {
      p[e] = counts[e] > 0;
    }
    pending[d][layer] = p;
  }

  /** The layer ran with these per-expert token counts: records every distance's hits. */
  public void settle(int layer, int[] counts, PrefetchAccuracy accuracy) {
    for (int d = 1; d < pending.length; d++) {
      boolean[] p = pending[d][layer];
      if (p == null) {
        continue;
      }
      int predicted = 0;
      int right = 0;
      for (int e = 0; e < p.length; e++) {
        if (p[e]) {
          predicted++;
          if (counts[e] > 0) {
            right++;
          }
        }
      }
      accuracy.record(d, predicted, right);
      pending[d][layer] = null;
    }
  }
}
