package org.hybrimoe.sim;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * Generates routing traces with controllable statistics, for tests and for model shapes without a
 * real trace. Three knobs, each in [0, 1] or a Zipf exponent:
 *
 * <ul>
 *   <li>skew: per-layer expert popularity follows Zipf(skew) over a random permutation (0 = uniform);
 *   <li>reuse: probability that a slot repeats one of the previous token's experts at the same layer
 *       (temporal locality, what MRS and LRU exploit);
 *   <li>crossLayer: probability that a slot is the image, under a fixed per-layer permutation, of an
 *       expert the same token chose at the previous layer (what router look-ahead exploits).
 * </ul>
 *
 * Deterministic for a given seed. Produces ids only (slot order RANK by construction).
 */
public final class SyntheticTraceGenerator {
  private int experts = 64;
  private int topK = 6;
  private int layers = 26;
  private int tokens = 10_000;
  private int sequenceLength = 0;
  private double skew = 0.8;
  private double reuse = 0.3;
  private double crossLayer = 0.3;
  private long seed = 1;
  private String model = "synthetic";

  /** Sets experts per layer and top-k. */
  public SyntheticTraceGenerator shape(int experts, int topK, int layers) {
    if (experts <= 0 || topK <= 0 || topK > experts || layers <= 0 || experts > 65536) {
      throw new IllegalArgumentException("bad shape: experts=" + experts + " topK=" + topK + " layers=" + layers);
    }
    this.experts = experts;
    this.topK = topK;
    this.layers = layers;
    return this;
  }

  public SyntheticTraceGenerator tokens(int tokens) {
    if (tokens <= 0) {
      throw new IllegalArgumentException("tokens must be positive: " + tokens);
    }
    this.tokens = tokens;
    return this;
  }

  /** Cuts the token stream into sequences of this length (0: one sequence). */
  public SyntheticTraceGenerator sequenceLength(int n) {
    this.sequenceLength = Math.max(0, n);
    return this;
  }

  public SyntheticTraceGenerator skew(double zipfExponent) {
    if (zipfExponent < 0) {
      throw new IllegalArgumentException("skew must be >= 0: " + zipfExponent);
    }
    this.skew = zipfExponent;
    return this;
  }

  public SyntheticTraceGenerator reuse(double p) {
    this.reuse = probability("reuse", p);
    return this;
  }

  public SyntheticTraceGenerator crossLayer(double p) {
    this.crossLayer = probability("crossLayer", p);
    return this;
  }

  public SyntheticTraceGenerator seed(long seed) {
    this.seed = seed;
    return this;
  }

  public SyntheticTraceGenerator model(String name) {
    this.model = name;
    return this;
  }

  private static double probability(String name, double p) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException(name + " must be in [0, 1]: " + p);
    }
    return p;
  }

  /** Generates the trace in memory. */
  public Trace generate() {
    SplittableRandom rnd = new SplittableRandom(seed);
    int idBytes = experts <= 256 ? 1 : 2;
    // Per-layer popularity: Zipf weights over a random permutation, as a cumulative table.
    double[][] cdf = new double[layers][experts];
    int[][] perm = new int[layers][];
    int[][] crossMap = new int[layers][];
    for (int l = 0; l < layers; l++) {
      perm[l] = permutation(rnd, experts);
      crossMap[l] = permutation(rnd, experts);
      double sum = 0;
      for (int r = 0; r < experts; r++) {
        sum += 1.0 / Math.pow(r + 1, skew);
        cdf[l][perm[l][r]] = 1.0 / Math.pow(r + 1, skew);
      }
      double acc = 0;
      for (int e = 0; e < experts; e++) {
        acc += cdf[l][e] / sum;
        cdf[l][e] = acc;
      }
      cdf[l][experts - 1] = 1.0;
    }
    ByteBuffer ids = ByteBuffer.allocate(tokens * layers * topK * idBytes).order(ByteOrder.LITTLE_ENDIAN);
    int[] prev = new int[layers * topK]; // previous token's choice per layer
    int[] cur = new int[layers * topK];
    boolean[] used = new boolean[experts];
    for (int t = 0; t < tokens; t++) {
      boolean first = t == 0 || (sequenceLength > 0 && t % sequenceLength == 0);
      for (int l = 0; l < layers; l++) {
        java.util.Arrays.fill(used, false);
        for (int k = 0; k < topK; k++) {
          int e = -1;
          for (int attempt = 0; attempt < 16 && e < 0; attempt++) {
            double u = rnd.nextDouble();
            int cand;
            if (!first && u < reuse) {
              cand = prev[l * topK + rnd.nextInt(topK)];
            } else if (l > 0 && u < reuse + crossLayer * (1 - reuse)) {
              cand = crossMap[l][cur[(l - 1) * topK + rnd.nextInt(topK)]];
            } else {
              cand = sample(cdf[l], rnd.nextDouble());
            }
            if (!used[cand]) {
              e = cand;
            }
          }
          if (e < 0) { // fall back to the first free expert after a popular draw
            e = sample(cdf[l], rnd.nextDouble());
            while (used[e]) {
              e = (e + 1) % experts;
            }
          }
          used[e] = true;
          cur[l * topK + k] = e;
          int i = (t * layers + l) * topK + k;
          if (idBytes == 1) {
            ids.put(i, (byte) e);
          } else {
            ids.putShort(2 * i, (short) e);
          }
        }
      }
      int[] tmp = prev;
      prev = cur;
      cur = tmp;
    }
    Trace.Sequence[] seqs;
    if (sequenceLength <= 0 || sequenceLength >= tokens) {
      seqs = new Trace.Sequence[] {new Trace.Sequence(0, tokens)};
    } else {
      int n = (tokens + sequenceLength - 1) / sequenceLength;
      seqs = new Trace.Sequence[n];
      for (int i = 0; i < n; i++) {
        seqs[i] = new Trace.Sequence(i * sequenceLength, Math.min(sequenceLength, tokens - i * sequenceLength));
      }
    }
    return new Trace(model, layers, 0, experts, 0, topK, 0, 0, tokens, Trace.SlotOrder.RANK, idBytes,
        ids, null, null, null, 0, seqs);
  }

  private static int sample(double[] cdf, double u) {
    int lo = 0;
    int hi = cdf.length - 1;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  private static int[] permutation(SplittableRandom rnd, int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = rnd.nextInt(i + 1);
      int x = p[i];
      p[i] = p[j];
      p[j] = x;
    }
    return p;
  }
}
