package org.hybrimoe.policy.cost;

/**
 * Per-device time functions for one expert shape and weight format on one machine (ALGORITHMS.md
 * section 1, the physical form), all in milliseconds:
 *
 * <pre>
 *   T_cpu(n) = cpuFirst * [first CPU expert of the layer] + cpu0 + max(cpuMem, cpuTok * n)
 *   T_gpu(n) = gpuFirst * [first GPU expert of the layer] + gpu0 + max(gpuMem, gpuTok * n)
 *   T_xfer   = xfer0 + expertBytes / bytesPerMs
 *   T_nonMoE(n) = nonMoe0 + nonMoe1 * n      (attention, norms, router, per layer, on the GPU)
 * </pre>
 *
 * where {@code *Mem} is the expert's bytes over the device's effective kernel bandwidth (the
 * memory-bound regime of few tokens) and {@code *Tok} its flops per token over the effective
 * throughput (the compute-bound regime); the fixed terms carry launch, hand-off, JNI and cold
 * caches. A purely linear model (the authors' constants) is the case {@code *Mem = 0}
 * ({@link #linear}). A shared expert runs on the GPU in {@code sharedGpu0 + max(gpuMem, gpuTok *
 * n) * sharedScale}: one kernel over its own matrices, sharedScale being its intermediate size
 * over a routed expert's.
 *
 * <p>Overlap: on a real GPU the three resources run in parallel ({@code gpuOverlap = linkOverlap =
 * 1}). Where the "GPU" and the link are host threads (the emulated device) they take cores and
 * memory bandwidth from the CPU engine: the fraction of device (link) time that still overlaps the
 * CPU's work is measured by calibration, and the rest, {@code (1 - overlap) x busy time}, delays
 * the CPU queue ({@link #cpuStallMs}); copies likewise delay the device ({@link #gpuStallMs}). Immutable; {@link OnlineCostModel} produces refined copies.
 */
public record CostModel(
    double cpuFirst,
    double cpu0,
    double cpuMem,
    double cpuTok,
    double gpuFirst,
    double gpu0,
    double gpuMem,
    double gpuTok,
    double xfer0,
    double bytesPerMs,
    long expertBytes,
    double nonMoe0,
    double nonMoe1,
    double sharedScale,
    double sharedGpu0,
    double gpuOverlap,
    double linkOverlap,
    double linkGpuOverlap) {

  /** A model of three independent resources (a real GPU and a DMA link): full overlap. */
  public CostModel(double cpuFirst, double cpu0, double cpuMem, double cpuTok, double gpuFirst, double gpu0,
      double gpuMem, double gpuTok, double xfer0, double bytesPerMs, long expertBytes, double nonMoe0, double nonMoe1,
      double sharedScale, double sharedGpu0) {
    this(cpuFirst, cpu0, cpuMem, cpuTok, gpuFirst, gpu0, gpuMem, gpuTok, xfer0, bytesPerMs, expertBytes, nonMoe0, nonMoe1,
        sharedScale, sharedGpu0, 1, 1, 1);
  }

  public CostModel {
    double[] all = {cpuFirst, cpu0, cpuMem, cpuTok, gpuFirst, gpu0, gpuMem, gpuTok, xfer0, nonMoe0, nonMoe1, sharedScale,
        sharedGpu0};
    for (double v : all) {
      if (!(v >= 0) || Double.isInfinite(v)) {
        throw new IllegalArgumentException("cost coefficients must be finite and >= 0: " + java.util.Arrays.toString(all));
      }
    }
    if (!(bytesPerMs > 0) || Double.isInfinite(bytesPerMs) || expertBytes <= 0) {
      throw new IllegalArgumentException("bandwidth and expert bytes must be positive");
    }
    if (!(gpuOverlap >= 0 && gpuOverlap <= 1) || !(linkOverlap >= 0 && linkOverlap <= 1)
        || !(linkGpuOverlap >= 0 && linkGpuOverlap <= 1)) {
      throw new IllegalArgumentException("overlaps must be in [0, 1]: gpu " + gpuOverlap + ", link " + linkOverlap
          + ", link with gpu " + linkGpuOverlap);
    }
  }

  /**
   * CPU time lost to the other resources sharing its host: (1 - overlap) of the GPU's and the
   * link's busy time in the same window (0 on a real GPU).
   */
  public double cpuStallMs(double gpuBusyMs, double linkBusyMs) {
    return (1 - gpuOverlap) * gpuBusyMs + (1 - linkOverlap) * linkBusyMs;
  }

  /** Device time lost to copies sharing its host: (1 - linkGpuOverlap) of the link's busy time. */
  public double gpuStallMs(double linkBusyMs) {
    return (1 - linkGpuOverlap) * linkBusyMs;
  }

  /** Whether any resource shares another's host (an overlap below 1): the timeline adds stalls. */
  public boolean sharesHost() {
    return gpuOverlap < 1 || linkOverlap < 1 || linkGpuOverlap < 1;
  }

  /** A copy with measured overlaps (calibration on a device that shares the host). */
  public CostModel withOverlap(double gpu, double link, double linkGpu) {
    return new CostModel(cpuFirst, cpu0, cpuMem, cpuTok, gpuFirst, gpu0, gpuMem, gpuTok, xfer0, bytesPerMs, expertBytes,
        nonMoe0, nonMoe1, sharedScale, sharedGpu0, gpu, link, linkGpu);
  }

  /**
   * A model linear in tokens, {@code first + fixed + perToken * n} per device (no memory-bound
   * floor): the authors' constants, and tests that want exact arithmetic.
   */
  public static CostModel linear(double cpuFirst, double cpu0, double cpu1, double gpuFirst, double gpu0, double gpu1,
      double xfer0, double bytesPerMs, long expertBytes, double nonMoe0, double nonMoe1, double sharedScale,
      double sharedGpu0) {
    return new CostModel(cpuFirst, cpu0, 0, cpu1, gpuFirst, gpu0, 0, gpu1, xfer0, bytesPerMs, expertBytes, nonMoe0,
        nonMoe1, sharedScale, sharedGpu0);
  }

  /** CPU time of one expert with n tokens. */
  public double cpuMs(int n, boolean first) {
    return (first ? cpuFirst : 0) + cpu0 + Math.max(cpuMem, cpuTok * n);
  }

  /** GPU time of one expert with n tokens. */
  public double gpuMs(int n, boolean first) {
    return (first ? gpuFirst : 0) + gpu0 + Math.max(gpuMem, gpuTok * n);
  }

  /** GPU time of one shared expert over n tokens. */
  public double sharedGpuMs(int n) {
    return sharedGpu0 + Math.max(gpuMem, gpuTok * n) * sharedScale;
  }

  /** Host-to-device time of one expert's weights. */
  public double xferMs() {
    return xfer0 + expertBytes / bytesPerMs;
  }

  /** Non-MoE time of one layer over n tokens. */
  public double nonMoeMs(int n) {
    return nonMoe0 + nonMoe1 * n;
  }

  /** Tokens from which the CPU is compute-bound (its two regimes cross), or 0 for a linear model. */
  public double cpuCrossover() {
    return cpuTok > 0 ? cpuMem / cpuTok : 0;
  }

  /** A copy with each device's times multiplied (online refinement). */
  public CostModel scaled(double cpu, double gpu, double link) {
    return new CostModel(cpuFirst * cpu, cpu0 * cpu, cpuMem * cpu, cpuTok * cpu, gpuFirst * gpu, gpu0 * gpu,
        gpuMem * gpu, gpuTok * gpu, xfer0 * link, bytesPerMs / link, expertBytes, nonMoe0, nonMoe1, sharedScale,
        sharedGpu0 * gpu, gpuOverlap, linkOverlap, linkGpuOverlap);
  }

  /** A copy with another non-MoE time per layer (measured between MoE layers). */
  public CostModel withNonMoe(double n0, double n1) {
    return new CostModel(cpuFirst, cpu0, cpuMem, cpuTok, gpuFirst, gpu0, gpuMem, gpuTok, xfer0, bytesPerMs, expertBytes,
        n0, n1, sharedScale, sharedGpu0, gpuOverlap, linkOverlap, linkGpuOverlap);
  }

  /** A copy with other fixed terms (online refinement of the per-layer and per-expert constants). */
  public CostModel withFixed(double cpuFirstMs, double cpu0Ms, double gpuFirstMs, double gpu0Ms, double xfer0Ms) {
    return new CostModel(cpuFirstMs, cpu0Ms, cpuMem, cpuTok, gpuFirstMs, gpu0Ms, gpuMem, gpuTok, xfer0Ms, bytesPerMs,
        expertBytes, nonMoe0, nonMoe1, sharedScale, sharedGpu0, gpuOverlap, linkOverlap, linkGpuOverlap);
  }
}
