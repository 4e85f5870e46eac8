package org.hybrimoe.policy.cost;

/**
 * Per-device time functions for one expert shape and weight format on one machine (ALGORITHMS.md
 * section 1), all in milliseconds:
 *
 * <pre>
 *   T_cpu(n) = cpuFirst * [first CPU expert of the layer] + cpu0 + cpu1 * n
 *   T_gpu(n) = gpuFirst * [first GPU expert of the layer] + gpu0 + gpu1 * n
 *   T_xfer   = xfer0 + expertBytes / bytesPerMs
 *   T_nonMoE(n) = nonMoe0 + nonMoe1 * n      (attention, norms, router, per layer, on the GPU)
 * </pre>
 *
 * A shared expert runs on the GPU in {@code sharedGpu0 + gpu1 * sharedScale * n}: one kernel over
 * its own (often larger) matrices, sharedScale being its intermediate size over a routed expert's.
 * Immutable; {@link OnlineCostModel} produces refined copies.
 */
public record CostModel(
    double cpuFirst,
    double cpu0,
    double cpu1,
    double gpuFirst,
    double gpu0,
    double gpu1,
    double xfer0,
    double bytesPerMs,
    long expertBytes,
    double nonMoe0,
    double nonMoe1,
    double sharedScale,
    double sharedGpu0) {

  public CostModel {
    double[] all = {cpuFirst, cpu0, cpu1, gpuFirst, gpu0, gpu1, xfer0, nonMoe0, nonMoe1, sharedScale, sharedGpu0};
    for (double v : all) {
      if (!(v >= 0) || Double.isInfinite(v)) {
        throw new IllegalArgumentException("cost coefficients must be finite and >= 0: " + java.util.Arrays.toString(all));
      }
    }
    if (!(bytesPerMs > 0) || expertBytes <= 0) {
      throw new IllegalArgumentException("bandwidth and expert bytes must be positive");
    }
  }

  /** CPU time of one expert with n tokens. */
  public double cpuMs(int n, boolean first) {
    return (first ? cpuFirst : 0) + cpu0 + cpu1 * n;
  }

  /** GPU time of one expert with n tokens. */
  public double gpuMs(int n, boolean first) {
    return (first ? gpuFirst : 0) + gpu0 + gpu1 * n;
  }

  /** GPU time of one shared expert over n tokens. */
  public double sharedGpuMs(int n) {
    return sharedGpu0 + gpu1 * sharedScale * n;
  }

  /** Host-to-device time of one expert's weights. */
  public double xferMs() {
    return xfer0 + expertBytes / bytesPerMs;
  }

  /** Non-MoE time of one layer over n tokens. */
  public double nonMoeMs(int n) {
    return nonMoe0 + nonMoe1 * n;
  }

  /** A copy with each device's times multiplied (online refinement). */
  public CostModel scaled(double cpu, double gpu, double link) {
    return new CostModel(cpuFirst * cpu, cpu0 * cpu, cpu1 * cpu, gpuFirst * gpu, gpu0 * gpu, gpu1 * gpu,
        xfer0 * link, bytesPerMs / link, expertBytes, nonMoe0, nonMoe1, sharedScale, sharedGpu0 * gpu);
  }

  /** A copy with another non-MoE time per layer (measured between MoE layers). */
  public CostModel withNonMoe(double n0, double n1) {
    return new CostModel(cpuFirst, cpu0, cpu1, gpuFirst, gpu0, gpu1, xfer0, bytesPerMs, expertBytes, n0, n1, sharedScale,
        sharedGpu0);
  }
}
