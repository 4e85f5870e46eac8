package org.hybrimoe.policy.sched;

/** How a layer's experts are split between devices (ALGORITHMS.md sections 2 and 5). */
public enum SchedulingMode {
  /**
   * HybriMoE: simulate GPU, CPU and link; the queue rules (transfer the heaviest misses while the GPU
   * would win), improved by local search on the same timeline.
   */
  HYBRID,
  /**
   * HYBRID checked against every split of the layer (exhaustive up to
   * {@link HybridScheduler#EXHAUSTIVE_LIMIT} activated experts, else HYBRID's plan): the optimum of
   * the timeline, for the simulator's oracle bundle; 2^n makespans are too slow for an engine.
   */
  ORACLE,
  /** Resident experts on the GPU, misses on the CPU, nothing moves (llama.cpp-, kTransformers-like). */
  STATIC,
  /** Every miss transferred on demand and computed on the GPU (AdapMoE-like). */
  GPU_ONLY,
  /**
   * Per miss, the CPU if the latency model says it beats a copy plus GPU compute for this expert's
   * tokens, else a copy for this use (Fiddler-like).
   */
  FIDDLER
}
