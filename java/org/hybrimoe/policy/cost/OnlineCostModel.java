package org.hybrimoe.policy.cost;

/**
 * Online refinement of a {@link CostModel} from measured timings, every term included
 * (ALGORITHMS.md section 1): per device, each term of the physical form (first-expert, per-expert
 * fixed, memory-bound, compute-bound) gets its own multiplier, fitted by exponentially weighted
 * least squares on relative errors over the observations, with a prior that pulls each multiplier
 * towards the device's common scale (the exponential average of measured / predicted). So a
 * profile off by one factor converges as before, a term the measurements pin down (a first-expert
 * cost the profile missed, a fixed cost that is larger than thought) converges to its own value,
 * and a term never exercised follows the device's common scale. The link refines its latency and
 * bandwidth the same way; non-MoE time is measured directly. Not thread-safe: one per engine thread.
 */
public final class OnlineCostModel {
  /**
   * Weight of the prior towards the common scale: as many observations, of an expert whose whole
   * time is the term, as the exponential average holds in total times this; small, so that a term
   * the measurements pin down reaches its own value, while one never exercised follows the scale.
   */
  static final double PRIOR = 1e-3;

  private final CostModel base;
  private final double alpha;
  private final Terms cpu;
  private final Terms gpu;
  private final Terms link;
  private CostModel current;
  private double oneToken = Double.NaN; // measured non-MoE time per layer with one token
  private double perToken = Double.NaN; // and per further token

  /** @param alpha weight of a new observation in the exponential averages, in (0, 1] */
  public OnlineCostModel(CostModel base, double alpha) {
    if (!(alpha > 0 && alpha <= 1)) {
      throw new IllegalArgumentException("alpha must be in (0, 1]: " + alpha);
    }
    this.base = base;
    this.alpha = alpha;
    this.current = base;
    this.cpu = new Terms(new double[] {base.cpuFirst(), base.cpu0(), base.cpuMem(), base.cpuTok()});
    this.gpu = new Terms(new double[] {base.gpuFirst(), base.gpu0(), base.gpuMem(), base.gpuTok()});
    this.link = new Terms(new double[] {base.xfer0(), 1 / base.bytesPerMs()});
  }

  /**
   * Exponentially weighted least squares for the terms theta (ms, or ms per token / per byte) of
   * one resource: each observation is y = sum_i theta_i x_i, weighted by 1 / y^2 (relative error),
   * with a ridge towards the profile's terms times the resource's common scale.
   */
  private final class Terms {
    final double[] profile;
    final int m;
    final double[][] a;
    final double[] b;
    double wbar; // exponential average of the weights
    double scale = 1; // the resource's common scale: exponential average of measured / predicted
    final double[] theta;

    Terms(double[] profile) {
      this.profile = profile;
      this.m = profile.length;
      this.a = new double[m][m];
      this.b = new double[m];
      this.theta = profile.clone();
    }

    void observe(double[] x, double ms) {
      if (!(ms > 0) || Double.isInfinite(ms)) {
        throw new IllegalArgumentException("measured time must be positive and finite");
      }
      double predicted = 0;
      for (int i = 0; i < m; i++) {
        predicted += profile[i] * x[i];
      }
      if (predicted > 0) {
        scale = alpha * (ms / predicted) + (1 - alpha) * scale;
      }
      double w = 1 / (ms * ms);
      wbar = alpha * w + (1 - alpha) * wbar;
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < m; j++) {
          a[i][j] = (1 - alpha) * a[i][j] + alpha * w * x[i] * x[j];
        }
        b[i] = (1 - alpha) * b[i] + alpha * w * x[i] * ms;
      }
      solve();
      current = null;
    }

    // (A + mu I) theta = b + mu * scale * profile, mu = PRIOR * wbar; non-negative by dropping a
    // negative term to its prior and solving again (at most m rounds).
    private void solve() {
      double mu = PRIOR * wbar;
      boolean[] pinned = new boolean[m];
      for (int round = 0; round <= m; round++) {
        double[][] q = new double[m][m + 1];
        for (int i = 0; i < m; i++) {
          double prior = scale * profile[i];
          if (pinned[i]) {
            q[i][i] = 1;
            q[i][m] = prior;
            continue;
          }
          for (int j = 0; j < m; j++) {
            q[i][j] = pinned[j] ? 0 : a[i][j] + (i == j ? mu : 0);
          }
          q[i][m] = b[i] + mu * prior;
          for (int j = 0; j < m; j++) {
            if (pinned[j]) {
              q[i][m] -= a[i][j] * scale * profile[j];
            }
          }
        }
        double[] t = gauss(q);
        if (t == null) {
          return; // singular: keep the last terms
        }
        int worst = -1;
        for (int i = 0; i < m; i++) {
          if (!pinned[i] && t[i] < 0 && (worst < 0 || t[i] < t[worst])) {
            worst = i;
          }
        }
        if (worst < 0) {
          System.arraycopy(t, 0, theta, 0, m);
          return;
        }
        pinned[worst] = true;
      }
    }

    private double[] gauss(double[][] q) {
      return LeastSquaresFit.gauss(q, 0);
    }
  }

  /** The refined model (rebuilt after observations, cached otherwise). */
  public CostModel current() {
    if (current == null) {
      double[] c = cpu.theta;
      double[] g = gpu.theta;
      double[] x = link.theta;
      double sharedRatio = base.gpu0() > 0 ? g[1] / base.gpu0() : gpu.scale;
      current = new CostModel(c[0], c[1], c[2], c[3], g[0], g[1], g[2], g[3], x[0], 1 / Math.max(x[1], 1e-30),
          base.expertBytes(), base.nonMoe0(), base.nonMoe1(), base.sharedScale(), base.sharedGpu0() * sharedRatio,
          base.gpuOverlap(), base.linkOverlap(), base.linkGpuOverlap());
      if (!Double.isNaN(oneToken)) { // T(n) = n0 + n1 n through T(1) = oneToken with slope perToken
        double n1 = Double.isNaN(perToken) ? base.nonMoe1() : perToken;
        current = current.withNonMoe(Math.max(0, oneToken - n1), n1);
      }
    }
    return current;
  }

  // The features of one expert with n tokens: {first, 1, memory-bound, n if compute-bound}, the
  // regime being the one the profile puts n in.
  private static double[] features(double mem, double tok, int n, boolean isFirst) {
    boolean memoryBound = mem >= tok * n;
    return new double[] {isFirst ? 1 : 0, 1, memoryBound ? 1 : 0, memoryBound ? 0 : n};
  }

  /** A measured CPU expert time (ms) for n tokens. */
  public void observeCpu(int n, boolean first, double ms) {
    cpu.observe(features(base.cpuMem(), base.cpuTok(), n, first), ms);
  }

  /** A measured GPU expert time (ms) for n tokens. */
  public void observeGpu(int n, boolean first, double ms) {
    gpu.observe(features(base.gpuMem(), base.gpuTok(), n, first), ms);
  }

  /**
   * A measured GPU time (ms) for several experts at once (one kernel launch over them, as CUDA
   * measures it): loads[i] tokens each, the first one including the layer's first-expert cost
   * when {@code first}.
   */
  public void observeGpuBatch(int[] loads, boolean first, double ms) {
    double[] sum = new double[4];
    for (int i = 0; i < loads.length; i++) {
      double[] t = features(base.gpuMem(), base.gpuTok(), loads[i], first && i == 0);
      for (int k = 0; k < 4; k++) {
        sum[k] += t[k];
      }
    }
    gpu.observe(sum, ms);
  }

  /**
   * The measured time (ms) between one MoE layer's end and the next one's start in the same forward
   * pass with n tokens: attention, norms, router (what a prefetch can overlap beyond the layer). One
   * token's time sets the constant term, more tokens the per-token term; replaces the profile's.
   */
  public void observeNonMoe(int n, double ms) {
    if (!(ms >= 0) || Double.isInfinite(ms) || n < 1) {
      throw new IllegalArgumentException("non-MoE time must be finite and >= 0 with n >= 1: " + ms + " ms, n " + n);
    }
    if (n == 1) {
      oneToken = Double.isNaN(oneToken) ? ms : alpha * ms + (1 - alpha) * oneToken;
    } else {
      double one = Double.isNaN(oneToken) ? 0 : oneToken;
      double per = Math.max(0, (ms - one) / (n - 1));
      perToken = Double.isNaN(perToken) ? per : alpha * per + (1 - alpha) * perToken;
      if (Double.isNaN(oneToken)) {
        oneToken = Math.max(0, ms - per * (n - 1));
      }
    }
    current = null;
  }

  /** A measured transfer time (ms) of one expert. */
  public void observeTransfer(double ms) {
    link.observe(new double[] {1, base.expertBytes()}, ms);
  }

  /** The resources' common scales now (cpu, gpu, link): measured over predicted, averaged. */
  public double[] scales() {
    return new double[] {cpu.scale, gpu.scale, link.scale};
  }

  /** Refined terms now: cpu and gpu {first, fixed, memory ms, compute ms per token}, link {latency, ms per byte}. */
  public double[][] terms() {
    return new double[][] {cpu.theta.clone(), gpu.theta.clone(), link.theta.clone()};
  }
}
