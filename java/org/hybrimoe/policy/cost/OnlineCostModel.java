package org.hybrimoe.policy.cost;

/**
 * Online refinement of a {@link CostModel} from measured per-expert timings: for each resource an
 * exponential average of measured/predicted, applied as a multiplier, so that a profile that is off
 * by a constant factor converges (ALGORITHMS.md section 1). Not thread-safe: one per engine thread.
 */
public final class OnlineCostModel {
  private final CostModel base;
  private final double alpha;
  private double cpuScale = 1;
  private double gpuScale = 1;
  private double linkScale = 1;
  private CostModel current;
  private double oneToken = Double.NaN; // measured non-MoE time per layer with one token
  private double perToken = Double.NaN; // and per further token

  /** @param alpha weight of a new observation in the exponential average, in (0, 1] */
  public OnlineCostModel(CostModel base, double alpha) {
    if (!(alpha > 0 && alpha <= 1)) {
      throw new IllegalArgumentException("alpha must be in (0, 1]: " + alpha);
    }
    this.base = base;
    this.alpha = alpha;
    this.current = base;
  }

  /** The refined model (rebuilt after observations, cached otherwise). */
  public CostModel current() {
    if (current == null) {
      current = base.scaled(cpuScale, gpuScale, linkScale);
      if (!Double.isNaN(oneToken)) { // T(n) = n0 + n1 n through T(1) = oneToken with slope perToken
        double n1 = Double.isNaN(perToken) ? base.nonMoe1() : perToken;
        current = current.withNonMoe(Math.max(0, oneToken - n1), n1);
      }
    }
    return current;
  }

  /** A measured CPU expert time (ms) for n tokens. */
  public void observeCpu(int n, boolean first, double ms) {
    cpuScale = update(cpuScale, ms / base.cpuMs(n, first));
  }

  /** A measured GPU expert time (ms) for n tokens. */
  public void observeGpu(int n, boolean first, double ms) {
    gpuScale = update(gpuScale, ms / base.gpuMs(n, first));
  }

  /**
   * A measured GPU time (ms) for several experts at once (one kernel launch over them, as CUDA
   * measures it): loads[i] tokens each, the first one including the layer's first-expert cost
   * when {@code first}.
   */
  public void observeGpuBatch(int[] loads, boolean first, double ms) {
    double predicted = 0;
    for (int i = 0; i < loads.length; i++) {
      predicted += base.gpuMs(loads[i], first && i == 0);
    }
    if (predicted > 0) {
      gpuScale = update(gpuScale, ms / predicted);
    }
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
    linkScale = update(linkScale, ms / base.xferMs());
  }

  private double update(double scale, double ratio) {
    if (!(ratio > 0) || Double.isInfinite(ratio)) {
      throw new IllegalArgumentException("measured time must be positive and finite");
    }
    double s = alpha * ratio + (1 - alpha) * scale;
    current = null;
    return s;
  }

  /** Multipliers now applied (cpu, gpu, link). */
  public double[] scales() {
    return new double[] {cpuScale, gpuScale, linkScale};
  }

}
