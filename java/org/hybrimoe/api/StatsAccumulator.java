package org.hybrimoe.api;

import org.hybrimoe.model.ExecutorStats;

/** Sums the executor's counters over a request's own forward steps (deltas taken under the lock). */
final class StatsAccumulator {
  private long[] cpu = new long[0];
  private long[] gpu = new long[0];
  private long activations, hits, demand, prefetches, used, wasted, bytes;
  private boolean any;

  void add(ExecutorStats after, ExecutorStats before) {
    if (after == null || before == null) {
      return;
    }
    any = true;
    cpu = addDelta(cpu, after.cpuExperts(), before.cpuExperts());
    gpu = addDelta(gpu, after.gpuExperts(), before.gpuExperts());
    activations += after.activations() - before.activations();
    hits += after.hits() - before.hits();
    demand += after.demandTransfers() - before.demandTransfers();
    prefetches += after.prefetches() - before.prefetches();
    used += after.prefetchUsed() - before.prefetchUsed();
    wasted += after.prefetchWasted() - before.prefetchWasted();
    bytes += after.bytesMoved() - before.bytesMoved();
  }

  private static long[] addDelta(long[] sum, long[] after, long[] before) {
    long[] s = sum.length >= after.length ? sum : java.util.Arrays.copyOf(sum, after.length);
    for (int i = 0; i < after.length; i++) {
      s[i] += after[i] - (i < before.length ? before[i] : 0);
    }
    return s;
  }

  /** The sums, or null when the executor keeps no statistics. */
  ExecutorStats build() {
    return any ? new ExecutorStats(cpu.clone(), gpu.clone(), activations, hits, demand, prefetches, used, wasted, bytes)
        : null;
  }
}
