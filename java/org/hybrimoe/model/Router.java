package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * Top-k expert routing from router logits, in the variants the supported models use:
 *
 * <ul>
 *   <li>scores: softmax over all experts (Mixtral, Qwen, OLMoE, DeepSeek-V2) or sigmoid
 *       (DeepSeek-V3);
 *   <li>choice: greedy top-k; group-limited (DeepSeek-V2: keep the topkGroup groups with the
 *       highest max score); or V3's noaux_tc (choose on score + correction bias, groups ranked by
 *       the sum of their two best biased scores; weights are the unbiased scores);
 *   <li>weights: renormalised to sum 1 when normTopk, then times scale ({@code scaleAlways}), or
 *       times scale only when not renormalised (DeepSeek-V2's code).
 * </ul>
 *
 * Ties go to the lower expert index. Immutable; thread-safe.
 */
public final class Router {
  /** How logits become scores. */
  public enum Scoring {
    SOFTMAX,
    SIGMOID
  }

  /** How experts are chosen from scores. */
  public enum Method {
    GREEDY,
    GROUP_LIMITED_GREEDY,
    NOAUX_TC
  }

  private final int nExperts;
  private final int topK;
  private final Scoring scoring;
  private final Method method;
  private final boolean normTopk;
  private final double scale;
  private final boolean scaleAlways;
  private final int nGroup;
  private final int topkGroup;
  private final float[] correctionBias; // [nExperts] for NOAUX_TC, else null

  /**
   * A router; nGroup/topkGroup matter for the grouped methods, correctionBias (length nExperts)
   * for NOAUX_TC only.
   */
  public Router(
      int nExperts, int topK, Scoring scoring, Method method, boolean normTopk, double scale,
      boolean scaleAlways, int nGroup, int topkGroup, float[] correctionBias) {
    if (topK < 1 || topK > nExperts) {
      throw new IllegalArgumentException("topK must be in 1.." + nExperts + ", got " + topK);
    }
    if (method != Method.GREEDY) {
      if (nGroup < 1 || nExperts % nGroup != 0 || topkGroup < 1 || topkGroup > nGroup
          || (long) topkGroup * (nExperts / nGroup) < topK) {
        throw new IllegalArgumentException(
            "n_group " + nGroup + " / topk_group " + topkGroup + " do not fit " + nExperts
                + " experts with top-k " + topK);
      }
    }
    if (method == Method.NOAUX_TC && (correctionBias == null || correctionBias.length != nExperts)) {
      throw new IllegalArgumentException("noaux_tc routing needs a correction bias of " + nExperts);
    }
    this.nExperts = nExperts;
    this.topK = topK;
    this.scoring = scoring;
    this.method = method;
    this.normTopk = normTopk;
    this.scale = scale;
    this.scaleAlways = scaleAlways;
    this.nGroup = nGroup;
    this.topkGroup = topkGroup;
    this.correctionBias = correctionBias == null ? null : correctionBias.clone();
  }

  /** Softmax, greedy top-k, optional renormalisation, no scaling (Mixtral, Qwen, OLMoE). */
  public static Router softmax(int nExperts, int topK, boolean normTopk) {
    return new Router(nExperts, topK, Scoring.SOFTMAX, Method.GREEDY, normTopk, 1.0, true, 1, 1, null);
  }

  public int nExperts() {
    return nExperts;
  }

  public int topK() {
    return topK;
  }

  /**
   * Routes n tokens.
   *
   * @param logits [n, nExperts] router logits
   * @param ids [n, topK] chosen experts (out)
   * @param weights [n, topK] their weights (out)
   */
  public void route(FloatBuffer logits, int n, IntBuffer ids, FloatBuffer weights) {
    route(logits, n, ids, weights, null);
  }

  /**
   * Routes n tokens and hands out each token's routing probabilities (what the MRS cache scores).
   *
   * @param logits [n, nExperts] router logits
   * @param ids [n, topK] chosen experts (out)
   * @param weights [n, topK] their weights (out)
   * @param scores [n, nExperts] softmax or sigmoid values of every expert, before group masking,
   *     correction bias, renormalisation and scaling (out), or null
   */
  public void route(FloatBuffer logits, int n, IntBuffer ids, FloatBuffer weights, FloatBuffer scores) {
    double[] s = new double[nExperts];
    double[] choice = new double[nExperts];
    for (int t = 0; t < n; t++) {
      scores(logits, t * nExperts, s);
      if (scores != null) {
        for (int e = 0; e < nExperts; e++) {
          scores.put(t * nExperts + e, (float) s[e]);
        }
      }
      for (int e = 0; e < nExperts; e++) {
        choice[e] = method == Method.NOAUX_TC ? s[e] + correctionBias[e] : s[e];
      }
      if (method != Method.GREEDY) {
        maskGroups(choice);
      }
      double sum = 0;
      for (int j = 0; j < topK; j++) {
        int best = -1;
        for (int e = 0; e < nExperts; e++) {
          if (choice[e] != Double.NEGATIVE_INFINITY && (best < 0 || choice[e] > choice[best])) {
            best = e;
          }
        }
        choice[best] = Double.NEGATIVE_INFINITY;
        ids.put(t * topK + j, best);
        sum += s[best];
      }
      for (int j = 0; j < topK; j++) {
        double w = s[ids.get(t * topK + j)];
        if (normTopk) {
          w /= sum;
        }
        if (scaleAlways || !normTopk) {
          w *= scale;
        }
        weights.put(t * topK + j, (float) w);
      }
    }
  }

  private void scores(FloatBuffer logits, int at, double[] s) {
    if (scoring == Scoring.SIGMOID) {
      for (int e = 0; e < nExperts; e++) {
        s[e] = 1.0 / (1.0 + Math.exp(-logits.get(at + e)));
      }
      return;
    }
    double max = Double.NEGATIVE_INFINITY;
    for (int e = 0; e < nExperts; e++) {
      max = Math.max(max, logits.get(at + e));
    }
    double sum = 0;
    for (int e = 0; e < nExperts; e++) {
      s[e] = Math.exp(logits.get(at + e) - max);
      sum += s[e];
    }
    for (int e = 0; e < nExperts; e++) {
      s[e] /= sum;
    }
  }

  // Keeps the topkGroup best groups of choice (others set to -inf): a group's rank is its max
  // (GROUP_LIMITED_GREEDY) or the sum of its two largest values (NOAUX_TC).
  private void maskGroups(double[] choice) {
    int per = nExperts / nGroup;
    double[] rank = new double[nGroup];
    for (int g = 0; g < nGroup; g++) {
      double a = Double.NEGATIVE_INFINITY;
      double b = Double.NEGATIVE_INFINITY;
      for (int e = g * per; e < (g + 1) * per; e++) {
        if (choice[e] > a) {
          b = a;
          a = choice[e];
        } else if (choice[e] > b) {
          b = choice[e];
        }
      }
      rank[g] = method == Method.NOAUX_TC ? a + (per > 1 ? b : 0) : a;
    }
    boolean[] keep = new boolean[nGroup];
    for (int j = 0; j < topkGroup; j++) {
      int best = -1;
      for (int g = 0; g < nGroup; g++) {
        if (!keep[g] && (best < 0 || rank[g] > rank[best])) {
          best = g;
        }
      }
      keep[best] = true;
    }
    for (int g = 0; g < nGroup; g++) {
      if (!keep[g]) {
        for (int e = g * per; e < (g + 1) * per; e++) {
          choice[e] = Double.NEGATIVE_INFINITY;
        }
      }
    }
  }
}
