package org.hybrimoe.api;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy at temperature 0 (ties to the lower id), else
 * softmax(logits / T) restricted to the top-k tokens and then to the nucleus of probability top-p,
 * sampled with a seeded generator (the same seed and logits give the same tokens). Candidates are
 * ordered by probability, ties to the lower id.
 *
 * <p>Cost per token is O(vocab) plus a sort of the candidates only: top-k keeps k of them, and the
 * nucleus of top-p lies among the tokens with probability at least (1 - p) / vocab (the others
 * together hold at most 1 - p), so a 150k vocabulary is never sorted whole. Not thread-safe: one
 * per generation.
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
    float max = logits[argmax(logits)];
    int[] cand = topK > 0 && topK < v ? topK(logits, topK) : null;
    double total = 0; // the mass the nucleus is measured against: the candidates' or the whole softmax's
    if (cand == null) {
      double[] all = new double[v];
      for (int i = 0; i < v; i++) {
        all[i] = Math.exp((logits[i] - max) / temperature);
        total += all[i];
      }
      if (topP >= 1) { // plain temperature sampling: no order needed
        return draw(all, null, v, total);
      }
      // Only tokens that can be in the nucleus: the others hold at most 1 - topP together.
      double floor = total * (1 - topP) / v;
      int n = 0;
      int[] keep = new int[v];
      for (int i = 0; i < v; i++) {
        if (all[i] >= floor) {
          keep[n++] = i;
        }
      }
      cand = Arrays.copyOf(keep, n);
    }
    // Candidates most likely first, ties to the lower id.
    long[] keys = new long[cand.length];
    for (int i = 0; i < cand.length; i++) {
      keys[i] = orderKey(logits[cand[i]], cand[i]);
    }
    Arrays.sort(keys);
    int n = keys.length;
    int[] ids = new int[n];
    double[] p = new double[n];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      ids[i] = (int) (keys[i] & 0xFFFFFFFFL);
      p[i] = Math.exp((logits[ids[i]] - max) / temperature);
      sum += p[i];
    }
    if (topP < 1) {
      if (total == 0) { // top-k candidates: the nucleus is of their renormalised distribution
        total = sum;
      }
      double cum = 0;
      int keep = 0;
      while (keep < n) {
        cum += p[keep] / total;
        keep++;
        if (cum >= topP) {
          break;
        }
      }
      n = keep;
      sum = 0;
      for (int i = 0; i < n; i++) {
        sum += p[i];
      }
    }
    return draw(p, ids, n, sum);
  }

  // Draws index i with probability p[i] / sum over the first n; ids maps to token ids (null: itself).
  private int draw(double[] p, int[] ids, int n, double sum) {
    double u = random.nextDouble() * sum;
    for (int i = 0; i < n; i++) {
      u -= p[i];
      if (u < 0) {
        return ids == null ? i : ids[i];
      }
    }
    return ids == null ? n - 1 : ids[n - 1];
  }

  // Sorts ascending into descending logit, then ascending id: flip the float's order bits.
  private static long orderKey(float logit, int id) {
    int bits = Float.floatToIntBits(logit);
    int ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF; // monotone in the float's value
    return ((long) ~ordered << 32) | (id & 0xFFFFFFFFL); // signed compare: the high half decides
  }

  // The k most likely ids (ties to the lower id), unordered: the k-th largest by selection.
  private static int[] topK(float[] logits, int k) {
    float[] copy = logits.clone();
    float kth = select(copy, copy.length - k);
    int[] out = new int[k];
    int n = 0;
    for (int i = 0; i < logits.length && n < k; i++) {
      if (logits[i] > kth) {
        out[n++] = i;
      }
    }
    for (int i = 0; i < logits.length && n < k; i++) {
      if (logits[i] == kth) {
        out[n++] = i;
      }
    }
    return out;
  }

  // The value that would sit at index r of a sorted a (quickselect; a is reordered).
  private static float select(float[] a, int r) {
    int lo = 0;
    int hi = a.length - 1;
    SplittableRandom pivots = new SplittableRandom(r);
    while (lo < hi) {
      float pivot = a[lo + pivots.nextInt(hi - lo + 1)];
      int i = lo;
      int j = hi;
      while (i <= j) {
        while (a[i] < pivot) {
          i++;
        }
        while (a[j] > pivot) {
          j--;
        }
        if (i <= j) {
          float t = a[i];
          a[i] = a[j];
          a[j] = t;
          i++;
          j--;
        }
      }
      if (r <= j) {
        hi = j;
      } else if (r >= i) {
        lo = i;
      } else {
        return a[r];
      }
    }
    return a[r];
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
