package org.hybrimoe.model;

import java.util.Arrays;

/**
 * What a {@link MoeLayerExecutor} did since it was created or its stats were reset. The arrays are
 * indexed by decoder layer up to the last MoE layer (dense layers hold 0) and count the distinct
 * routed experts computed on each side, summed over calls; per layer, CPU plus GPU is that layer's
 * share of {@code activations}. Shared experts are not counted.
 *
 * @param cpuExperts [decoder layers] routed experts computed on the CPU
 * @param gpuExperts [decoder layers] routed experts computed on the GPU
 * @param activations distinct routed experts per layer call, summed
 * @param hits activations whose expert was on the device (cached or prefetched) when its layer ran
 * @param demandTransfers experts copied to the device because the running layer needed them
 * @param prefetches experts copied ahead of their layer on a router look-ahead's prediction
 * @param prefetchUsed prefetched experts that were used before eviction
 * @param prefetchWasted prefetched experts evicted or dropped unused
 * @param bytesMoved host-to-device expert bytes of every kind of transfer
 * @param fills CPU-computed misses copied into the cache afterwards because their routing score
 *     outranked a resident's (MRS's own fill; neither demand nor prefetch)
 */
public record ExecutorStats(long[] cpuExperts, long[] gpuExperts, long activations, long hits, long demandTransfers,
    long prefetches, long prefetchUsed, long prefetchWasted, long bytesMoved, long fills) {

  public ExecutorStats {
    if (cpuExperts.length != gpuExperts.length) {
      throw new IllegalArgumentException(
          "per-layer arrays differ in length: " + cpuExperts.length + " and " + gpuExperts.length);
    }
    cpuExperts = cpuExperts.clone();
    gpuExperts = gpuExperts.clone();
  }

  /** Stats without fills (executors that never fill). */
  public ExecutorStats(long[] cpuExperts, long[] gpuExperts, long activations, long hits, long demandTransfers,
      long prefetches, long prefetchUsed, long prefetchWasted, long bytesMoved) {
    this(cpuExperts, gpuExperts, activations, hits, demandTransfers, prefetches, prefetchUsed, prefetchWasted,
        bytesMoved, 0);
  }

  /** A copy: [decoder layers] routed experts computed on the CPU. */
  @Override
  public long[] cpuExperts() {
    return cpuExperts.clone();
  }

  /** A copy: [decoder layers] routed experts computed on the GPU. */
  @Override
  public long[] gpuExperts() {
    return gpuExperts.clone();
  }

  /** Decoder layers the arrays cover. */
  public int layers() {
    return cpuExperts.length;
  }

  /** The counts of this less those of {@code earlier} (the same executor's): what happened in between. */
  public ExecutorStats minus(ExecutorStats earlier) {
    return combine(earlier, -1);
  }

  /** The counts of both summed (per-layer arrays as long as the longer). */
  public ExecutorStats plus(ExecutorStats other) {
    return combine(other, 1);
  }

  private ExecutorStats combine(ExecutorStats o, int sign) {
    int n = Math.max(layers(), o.layers());
    long[] cpu = Arrays.copyOf(cpuExperts, n);
    long[] gpu = Arrays.copyOf(gpuExperts, n);
    for (int l = 0; l < o.layers(); l++) {
      cpu[l] += sign * o.cpuExperts[l];
      gpu[l] += sign * o.gpuExperts[l];
    }
    return new ExecutorStats(cpu, gpu, activations + sign * o.activations, hits + sign * o.hits,
        demandTransfers + sign * o.demandTransfers, prefetches + sign * o.prefetches,
        prefetchUsed + sign * o.prefetchUsed, prefetchWasted + sign * o.prefetchWasted,
        bytesMoved + sign * o.bytesMoved, fills + sign * o.fills);
  }

  /** hits / activations (0 before any activation). */
  public double hitRate() {
    return activations == 0 ? 0 : (double) hits / activations;
  }

  /** Routed experts computed on the CPU, all layers. */
  public long cpuTotal() {
    return Arrays.stream(cpuExperts).sum();
  }

  /** Routed experts computed on the GPU, all layers. */
  public long gpuTotal() {
    return Arrays.stream(gpuExperts).sum();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ExecutorStats s && Arrays.equals(cpuExperts, s.cpuExperts)
        && Arrays.equals(gpuExperts, s.gpuExperts) && activations == s.activations && hits == s.hits
        && demandTransfers == s.demandTransfers && prefetches == s.prefetches && prefetchUsed == s.prefetchUsed
        && prefetchWasted == s.prefetchWasted && bytesMoved == s.bytesMoved && fills == s.fills;
  }

  @Override
  public int hashCode() {
    return 31 * (31 * Arrays.hashCode(cpuExperts) + Arrays.hashCode(gpuExperts))
        + Long.hashCode(activations + 7 * hits + 13 * prefetches + 17 * bytesMoved);
  }

  @Override
  public String toString() {
    return "ExecutorStats[cpu=" + Arrays.toString(cpuExperts) + ", gpu=" + Arrays.toString(gpuExperts)
        + ", activations=" + activations + ", hits=" + hits + ", demandTransfers=" + demandTransfers
        + ", prefetches=" + prefetches + ", prefetchUsed=" + prefetchUsed + ", prefetchWasted=" + prefetchWasted
        + ", bytesMoved=" + bytesMoved + ", fills=" + fills + "]";
  }
}
