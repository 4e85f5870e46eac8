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
    int m = x[0].length;
    boolean[] active = new boolean[m];
    java.util.Arrays.fill(active, true);
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
    // Gaussian elimination with partial pivoting on the normal equations (m <= 3).
    for (int col = 0; col < m; col++) {
      int piv = col;
      for (int r = col + 1; r < m; r++) {
        if (Math.abs(a[r][col]) > Math.abs(a[piv][col])) {
          piv = r;
        }
      }
      double[] t = a[col];
      a[col] = a[piv];
      a[piv] = t;
      if (Math.abs(a[col][col]) < 1e-12) {
        throw new IllegalArgumentException("samples do not determine the coefficients (singular system)");
      }
      for (int r = 0; r < m; r++) {
        if (r != col) {
          double f = a[r][col] / a[col][col];
          for (int c = col; c <= m; c++) {
            a[r][c] -= f * a[col][c];
          }
        }
      }
    }
    double[] c = new double[m];
    for (int p = 0; p < m; p++) {
      c[p] = a[p][m] / a[p][p];
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
