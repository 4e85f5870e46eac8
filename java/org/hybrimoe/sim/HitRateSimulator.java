package org.hybrimoe.sim;

import java.util.Arrays;
import org.hybrimoe.policy.cache.BeladyCache;
import org.hybrimoe.policy.cache.ExpertCache;

/**
 * Cache hit rate of a replacement policy over a token stream, independent of timing: token by
 * token, layer by layer, the router's choice is shown to the policy (every token counts), then each
 * chosen expert is a hit if resident, else a miss that the policy may cache (evicting a victim that
 * this step does not need). Belady sees the future through next-use positions in request order.
 */
public final class HitRateSimulator {
  private HitRateSimulator() {}

  /** Hit rate of {@code cache} over tokens [from, to) of the trace. */
  public static double run(Trace trace, ExpertCache cache, int from, int to) {
    if (from < 0 || to > trace.tokens() || from >= to) {
      throw new IllegalArgumentException("token range [" + from + ", " + to + ") outside the trace");
    }
    int L = trace.layers();
    int K = trace.topK();
    int E = trace.experts();
    long[] next = null;
    BeladyCache belady = cache instanceof BeladyCache b ? b : null;
    if (belady != null) {
      next = nextUse(trace, from, to);
      // the first use of every key inside the window, for the initial contents
      long[] first = new long[L * E];
      Arrays.fill(first, Long.MAX_VALUE);
      for (int t = to - 1; t >= from; t--) {
        for (int l = 0; l < L; l++) {
          for (int k = 0; k < K; k++) {
            first[l * E + trace.id(t, l, k)] = position(t - from, l, k, L, K);
          }
        }
      }
      for (int key = 0; key < L * E; key++) {
        belady.setNextUse(key / E, key % E, first[key]);
      }
      // optimal initial contents: the keys used soonest (so the bound also covers pre-filled caches)
      Integer[] keys = new Integer[L * E];
      for (int i = 0; i < keys.length; i++) {
        keys[i] = i;
      }
      final long[] f = first;
      Arrays.sort(keys, (a, b) -> Long.compare(f[a], f[b]));
      belady.preload(Arrays.stream(keys).filter(k -> f[k] != Long.MAX_VALUE).mapToInt(Integer::intValue).toArray());
    }
    int[] ids = new int[K];
    long hits = 0;
    long total = 0;
    for (int t = from; t < to; t++) {
      for (int l = 0; l < L; l++) {
        trace.ids(t, l, ids, 0);
        cache.observe(l, ids, 1, K, trace.hasScores() || trace.hasWeights() ? scores(trace, t, l) : null);
        for (int k = 0; k < K; k++) {
          int e = ids[k];
          boolean hit = cache.resident(l, e);
          if (belady != null) {
            belady.setNextUse(l, e, next[(int) position(t - from, l, k, L, K)]);
          }
          if (hit) {
            hits++;
          } else if (cache.dynamic()) {
            // Belady may evict experts this step already used (their next use is in the future);
            // the others keep the whole step protected. Both are online paging over the same
            // request order, so Belady's bypass-MIN bounds them.
            cache.allocate(l, e, belady != null ? Arrays.copyOfRange(ids, k + 1, K) : ids);
          }
          total++;
        }
      }
    }
    return (double) hits / total;
  }

  private static long position(int t, int l, int k, int L, int K) {
    return ((long) t * L + l) * K + k;
  }

  // next[p] = position of the next request for the same (layer, expert) after p, or MAX
  private static long[] nextUse(Trace trace, int from, int to) {
    int L = trace.layers();
    int K = trace.topK();
    int E = trace.experts();
    long n = (long) (to - from) * L * K;
    if (n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("window too long for Belady: " + (to - from) + " tokens");
    }
    long[] next = new long[(int) n];
    long[] last = new long[L * E];
    Arrays.fill(last, Long.MAX_VALUE);
    for (int t = to - 1; t >= from; t--) {
      for (int l = L - 1; l >= 0; l--) {
        for (int k = K - 1; k >= 0; k--) {
          int key = l * E + trace.id(t, l, k);
          int p = (int) position(t - from, l, k, L, K);
          next[p] = last[key];
          last[key] = p;
        }
      }
    }
    return next;
  }

  private static float[] scores(Trace trace, int t, int l) {
    float[] s = new float[trace.experts()];
    for (int e = 0; e < s.length; e++) {
      s[e] = trace.score(t, l, e);
    }
    return s;
  }
}
