package org.hybrimoe.sim;

import java.util.SplittableRandom;

/**
 * What a router look-ahead from layer l predicts for layer l + d. Where the trace carries the
 * predicted array (an engine-recorded trace) that is used. Ids-only traces have none, so the
 * prediction is modelled: each of the token's true top-k experts at l + d is kept with probability
 * {@code accuracy[d - 1]} and otherwise replaced by a uniformly drawn expert outside the true set.
 * The default accuracies (0.85, 0.75, 0.65 for d = 1, 2, 3) are an assumption, decaying with
 * distance as look-ahead accuracy does in the HybriMoE and AdapMoE papers' figures; they are not
 * measured on this trace. Deterministic: the draw depends only on (seed, token, layer, distance).
 */
public final class LookaheadOracle {
  /** Default keep probability per distance 1, 2, 3 (further distances reuse the last). */
  public static final double[] DEFAULT_ACCURACY = {0.85, 0.75, 0.65};

  private final Trace trace;
  private final double[] accuracy;
  private final long seed;
  private final boolean[] used;

  public LookaheadOracle(Trace trace, double[] accuracy, long seed) {
    for (double a : accuracy) {
      if (!(a >= 0 && a <= 1)) {
        throw new IllegalArgumentException("look-ahead accuracy must be in [0, 1]: " + a);
      }
    }
    if (accuracy.length == 0) {
      throw new IllegalArgumentException("at least one look-ahead accuracy is needed");
    }
    this.trace = trace;
    this.accuracy = accuracy.clone();
    this.seed = seed;
    this.used = new boolean[trace.experts()];
  }

  /** The accuracy modelled at distance d. */
  public double accuracy(int d) {
    return accuracy[Math.min(d, accuracy.length) - 1];
  }

  /** Writes the topK experts predicted for token t at layer {@code target} from {@code target - d}. */
  public void predict(int t, int target, int d, int[] out) {
    int k = trace.topK();
    if (trace.hasPredicted() && d <= trace.predictedDepth()) {
      for (int s = 0; s < k; s++) {
        out[s] = trace.predicted(t, target - d, d, s);
      }
      return;
    }
    trace.ids(t, target, out, 0);
    java.util.Arrays.fill(used, false);
    for (int s = 0; s < k; s++) {
      used[out[s]] = true;
    }
    SplittableRandom rnd = new SplittableRandom(seed ^ (t * 0x9E3779B97F4A7C15L) ^ (target * 0xC2B2AE3D27D4EB4FL) ^ d);
    double keep = accuracy(d);
    int experts = trace.experts();
    for (int s = 0; s < k; s++) {
      if (rnd.nextDouble() >= keep && k < experts) {
        int e;
        do {
          e = rnd.nextInt(experts);
        } while (used[e]);
        used[e] = true;
        out[s] = e;
      }
    }
  }
}
