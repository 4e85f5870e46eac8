package org.hybrimoe.policy.cost;

import java.util.List;

/**
 * Least-squares fit of the section 1 time functions from measured samples, with residuals, so a
 * profile run (sweep n = 1, 2, 4, ..., 1024 and 1..k experts per layer) becomes coefficients.
 */
public final class LeastSquaresFit {
  private LeastSquaresFit() {}

  /** One measured expert time: tokens n, whether it was the layer's first on its device, ms. */
  public record Sample(int tokens, boolean first, double ms) {}

  /** One measured transfer: bytes moved and ms. */
  public record TransferSample(long bytes, double ms) {}

  /**
   * Fitted T(n) = first * [first] + fixed + perToken * n, with the root-mean-square and largest
   * absolute residual in ms over the samples.
   */
  public record ComputeFit(double first, double fixed, double perToken, double rmsResidual, double maxResidual, int samples) {}

  /** Fitted T = latency + bytes / bytesPerMs, with residuals. */
  public record TransferFit(double latency, double bytesPerMs, double rmsResidual, double maxResidual, int samples) {}

  /**
   * Fits a device's compute time. Needs at least three samples spanning two token counts and both
   * first and non-first experts; a coefficient that comes out negative is clamped to 0 and the rest
   * refitted, since negative times have no meaning.
   */
  public static ComputeFit fitCompute(List<Sample> samples) {
    boolean anyFirst = samples.stream().anyMatch(Sample::first);
    boolean anyOther = samples.stream().anyMatch(s -> !s.first());
    long distinctN = samples.stream().mapToInt(Sample::tokens).distinct().count();
    if (samples.size() < 3 || !anyFirst || !anyOther || distinctN < 2) {
      throw new IllegalArgumentException("need >= 3 samples with first and non-first experts and >= 2 token counts, got "
          + samples.size());
    }
    double[][] x = new double[samples.size()][];
    double[] y = new double[samples.size()];
    for (int i = 0; i < samples.size(); i++) {
      Sample s = samples.get(i);
      x[i] = new double[] {s.first() ? 1 : 0, 1, s.tokens()};
      y[i] = s.ms();
    }
    double[] c = nonNegative(x, y);
    double[] r = residuals(x, y, c);
    return new ComputeFit(c[0], c[1], c[2], r[0], r[1], samples.size());
  }

  /**
   * One measured layer call on one device: {@code experts} experts with {@code tokens} tokens each,
   * {@code ms} for the whole call (the first expert's extra cost once, then each expert's).
   */
  public record LayerSample(int tokens, int experts, double ms) {}

  /**
   * The physical form fitted: a call of k experts with n tokens each takes {@code first + k *
   * (fixed + max(memMs, tokMs * n))}; bytesPerMs and flopsPerMs are the expert's bytes over memMs
   * and flops per token over tokMs (0 bytesPerMs: no memory-bound regime was seen, memMs 0).
   */
  public record PhysicalFit(double first, double fixed, double memMs, double tokMs, double bytesPerMs,
      double flopsPerMs, double rmsResidual, double maxResidual, int samples, int minTokens, int maxTokens,
      int maxExperts) {
    /** Predicted ms of a call of k experts with n tokens each. */
    public double predict(int n, int k) {
      return first + k * (fixed + Math.max(memMs, tokMs * n));
    }
  }

  /**
   * Fits the physical form to layer calls swept over token counts (1, 2, 4, ...) and expert counts
   * (1..k). For each candidate crossover (the token counts at or below it memory-bound, those above
   * compute-bound) the form is linear in (first, fixed, memMs, tokMs) and is solved by non-negative
   * least squares on relative residuals (each call weighted by 1 / its time: the sweep spans three
   * orders of magnitude, and a 1% jitter at 1024 tokens must not drown the microseconds of the fixed
   * terms); the crossover with the smallest weighted squared residual wins. Without a compute-bound
   * point the memory term takes the whole constant (fixed 0); without a memory-bound one, memMs is
   * 0. Needs calls with at least two expert counts and two token counts.
   */
  public static PhysicalFit fitPhysical(List<LayerSample> samples, double expertBytes, double flopsPerToken) {
    long ks = samples.stream().mapToInt(LayerSample::experts).distinct().count();
    int[] ns = samples.stream().mapToInt(LayerSample::tokens).distinct().sorted().toArray();
    if (samples.size() < 4 || ks < 2 || ns.length < 2) {
      throw new IllegalArgumentException("need >= 4 layer calls over >= 2 expert counts and >= 2 token counts, got "
          + samples.size() + " calls, " + ks + " expert counts, " + ns.length + " token counts");
    }
    double[] y = new double[samples.size()];
    double[] wt = new double[samples.size()];
    for (int i = 0; i < y.length; i++) {
      double ms = samples.get(i).ms();
      if (!(ms > 0) || Double.isInfinite(ms)) {
        throw new IllegalArgumentException("a layer call's time must be positive and finite: " + samples.get(i));
      }
      wt[i] = 1 / ms;
      y[i] = 1; // ms * wt
    }
    double bestSs = Double.POSITIVE_INFINITY;
    double[] best = null;
    for (int cut = -1; cut < ns.length; cut++) { // tokens <= ns[cut] memory-bound (cut -1: none)
      int nCut = cut < 0 ? 0 : ns[cut];
      boolean anyMem = cut >= 0;
      boolean anyTok = cut < ns.length - 1;
      double[][] x = new double[y.length][];
      for (int i = 0; i < y.length; i++) {
        LayerSample s = samples.get(i);
        boolean mem = s.tokens() <= nCut;
        x[i] = new double[] {wt[i], wt[i] * s.experts(), mem ? wt[i] * s.experts() : 0,
            mem ? 0 : wt[i] * s.experts() * s.tokens()};
      }
      boolean[] active = {true, anyTok, anyMem, anyTok};
      double[] c;
      try {
        c = nonNegative(x, y, active);
      } catch (IllegalArgumentException singular) {
        continue;
      }
      // The regimes must be consistent with the cut: memory-bound points below the crossover.
      if (anyMem && anyTok && c[3] > 0 && c[2] / c[3] < nCut * 0.5) {
        continue;
      }
      double ss = 0;
      for (int i = 0; i < y.length; i++) {
        double r = y[i] - dot(x[i], c);
        ss += r * r;
      }
      if (ss < bestSs) {
        bestSs = ss;
        best = c;
      }
    }
    if (best == null) {
      throw new IllegalArgumentException("samples do not determine the coefficients (singular system)");
    }
    double first = best[0];
    double fixed = best[1];
    double mem = best[2];
    double tok = best[3];
    double ss = 0;
    double max = 0;
    int kmax = 0;
    for (LayerSample s : samples) {
      double r = s.ms() - (first + s.experts() * (fixed + Math.max(mem, tok * s.tokens())));
      ss += r * r;
      max = Math.max(max, Math.abs(r));
      kmax = Math.max(kmax, s.experts());
    }
    if (!(tok > 0)) { // time never grew with tokens: the throughput is beyond what was swept
      tok = Math.max(mem, fixed) * 1e-3 / ns[ns.length - 1];
    }
    return new PhysicalFit(first, fixed, mem, tok, mem > 0 ? expertBytes / mem : 0, flopsPerToken / tok,
        Math.sqrt(ss / samples.size()), max, samples.size(), ns[0], ns[ns.length - 1], kmax);
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int j = 0; j < a.length; j++) {
      s += a[j] * b[j];
    }
    return s;
  }

  /** Fits transfer latency and bandwidth; needs two distinct sizes. */
  public static TransferFit fitTransfer(List<TransferSample> samples) {
    if (samples.size() < 2 || samples.stream().mapToLong(TransferSample::bytes).distinct().count() < 2) {
      throw new IllegalArgumentException("need transfers of at least two distinct sizes");
    }
    double[][] x = new double[samples.size()][];
    double[] y = new double[samples.size()];
    for (int i = 0; i < samples.size(); i++) {
      x[i] = new double[] {1, samples.get(i).bytes()};
      y[i] = samples.get(i).ms();
    }
    double[] c = nonNegative(x, y);
    if (!(c[1] > 0)) {
      throw new IllegalArgumentException("transfer time does not grow with bytes: cannot fit a bandwidth");
    }
    double[] r = residuals(x, y, c);
    return new TransferFit(c[0], 1 / c[1], r[0], r[1], samples.size());
  }

  // Ordinary least squares; columns whose coefficient comes out negative are dropped and refitted.
  private static double[] nonNegative(double[][] x, double[] y) {
    boolean[] active = new boolean[x[0].length];
    java.util.Arrays.fill(active, true);
    return nonNegative(x, y, active);
  }

  // As above over the columns marked active (the others stay 0).
  private static double[] nonNegative(double[][] x, double[] y, boolean[] active) {
    int m = x[0].length;
    for (int round = 0; round < m; round++) {
      double[] c = solve(x, y, active);
      int worst = -1;
      for (int j = 0; j < m; j++) {
        if (active[j] && c[j] < 0 && (worst < 0 || c[j] < c[worst])) {
          worst = j;
        }
      }
      if (worst < 0) {
        return c;
      }
      active[worst] = false;
    }
    return new double[m];
  }

  private static double[] solve(double[][] x, double[] y, boolean[] active) {
    int m = active.length;
    double[][] a = new double[m][m + 1];
    for (int i = 0; i < x.length; i++) {
      for (int p = 0; p < m; p++) {
        if (!active[p]) {
          continue;
        }
        for (int q = 0; q < m; q++) {
          if (active[q]) {
            a[p][q] += x[i][p] * x[i][q];
          }
        }
        a[p][m] += x[i][p] * y[i];
      }
    }
    for (int p = 0; p < m; p++) {
      if (!active[p]) {
        a[p][p] = 1; // pins the dropped coefficient at 0
      }
    }
    double[] c = gauss(a, 1e-12);
    if (c == null) {
      throw new IllegalArgumentException("samples do not determine the coefficients (singular system)");
    }
    return c;
  }

  /**
   * Solves the augmented m x (m + 1) system q in place by Gaussian elimination with partial
   * pivoting (the normal equations here: m <= 4); null when a pivot is at most minPivot in
   * magnitude or a coefficient comes out non-finite. Shared with OnlineCostModel.
   */
  static double[] gauss(double[][] q, double minPivot) {
    int m = q.length;
    for (int col = 0; col < m; col++) {
      int piv = col;
      for (int r = col + 1; r < m; r++) {
        if (Math.abs(q[r][col]) > Math.abs(q[piv][col])) {
          piv = r;
        }
      }
      double[] t = q[col];
      q[col] = q[piv];
      q[piv] = t;
      if (!(Math.abs(q[col][col]) > minPivot)) {
        return null;
      }
      for (int r = 0; r < m; r++) {
        if (r != col) {
          double f = q[r][col] / q[col][col];
          for (int c = col; c <= m; c++) {
            q[r][c] -= f * q[col][c];
          }
        }
      }
    }
    double[] c = new double[m];
    for (int p = 0; p < m; p++) {
      c[p] = q[p][m] / q[p][p];
      if (!Double.isFinite(c[p])) {
        return null;
      }
    }
    return c;
  }

  private static double[] residuals(double[][] x, double[] y, double[] c) {
    double ss = 0;
    double max = 0;
    for (int i = 0; i < y.length; i++) {
      double pred = 0;
      for (int j = 0; j < c.length; j++) {
        pred += x[i][j] * c[j];
      }
      double r = y[i] - pred;
      ss += r * r;
      max = Math.max(max, Math.abs(r));
    }
    return new double[] {Math.sqrt(ss / y.length), max};
  }
}
