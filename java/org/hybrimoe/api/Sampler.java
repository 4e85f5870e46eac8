package org.hybrimoe.api;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy at temperature 0 (ties to the lower id), else
 * softmax(logits / T) restricted to the top-k tokens and then to the nucleus of probability top-p,
 * sampled with a seeded generator (the same seed and logits give the same tokens). Not
 * thread-safe: one per generation.
 */
final class Sampler {
  private final double temperature;
  private final int topK;
  private final double topP;
  private final SplittableRandom random;

  Sampler(double temperature, int topK, double topP, long seed) {
    this.temperature = temperature;
    this.topK = topK;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
  }

  int next(float[] logits) {
    if (temperature == 0) {
      return argmax(logits);
    }
    int v = logits.length;
    Integer[] order = new Integer[v];
    for (int i = 0; i < v; i++) {
      order[i] = i;
    }
    // Most likely first; ties to the lower id so that the candidate set is deterministic.
    Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
    int keep = topK > 0 ? Math.min(topK, v) : v;
    double max = logits[order[0]];
    double[] p = new double[keep];
    double sum = 0;
    for (int i = 0; i < keep; i++) {
      p[i] = Math.exp((logits[order[i]] - max) / temperature);
      sum += p[i];
    }
    if (topP < 1) {
      double cum = 0;
      int n = 0;
      while (n < keep) {
        cum += p[n] / sum;
        n++;
        if (cum >= topP) {
          break;
        }
      }
      keep = n;
      sum = 0;
      for (int i = 0; i < keep; i++) {
        sum += p[i];
      }
    }
    double u = random.nextDouble() * sum;
    for (int i = 0; i < keep; i++) {
      u -= p[i];
      if (u < 0) {
        return order[i];
      }
    }
    return order[keep - 1];
  }

  static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }
}
