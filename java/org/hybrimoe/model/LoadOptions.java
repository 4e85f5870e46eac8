package org.hybrimoe.model;

import org.hybrimoe.expert.ExpertFormat;

/**
 * How to load a model.
 *
 * @param threads engine worker threads (0: one per physical core)
 * @param expertFormat convert routed experts to this format at load (INT8, INT4, or BF16 from
 *     f32), or null to run them in place in the checkpoint's dtype (CPU executor)
 * @param groupSize INT4 group size (32, 64 or 128)
 * @param executors creates the MoE executor; null for the CPU engine's ({@link CpuMoeExecutor})
 * @param progress told how loading goes (null: nobody)
 * @param dense where the dense linears run besides the CPU ({@link DenseOffload}); null: all on
 *     the CPU
 */
public record LoadOptions(int threads, ExpertFormat expertFormat, int groupSize, MoeExecutorFactory executors,
    LoadProgress progress, DenseOffload.Options dense) {
  /** Options with the CPU executor. */
  public LoadOptions(int threads, ExpertFormat expertFormat, int groupSize) {
    this(threads, expertFormat, groupSize, null, null, null);
  }

  /** Options with an executor factory and no progress listener. */
  public LoadOptions(int threads, ExpertFormat expertFormat, int groupSize, MoeExecutorFactory executors) {
    this(threads, expertFormat, groupSize, executors, null, null);
  }

  /** Experts in place, one thread per physical core, CPU executor. */
  public static LoadOptions defaults() {
    return new LoadOptions(0, null, 32, null, null, null);
  }

  /** The same options with another executor factory. */
  public LoadOptions withExecutors(MoeExecutorFactory factory) {
    return new LoadOptions(threads, expertFormat, groupSize, factory, progress, dense);
  }

  /** The same options with a progress listener. */
  public LoadOptions withProgress(LoadProgress p) {
    return new LoadOptions(threads, expertFormat, groupSize, executors, p, dense);
  }

  /** The same options with the dense linears on a device (null: on the CPU). */
  public LoadOptions withDense(DenseOffload.Options d) {
    return new LoadOptions(threads, expertFormat, groupSize, executors, progress, d);
  }

  /** The factory to use: the given one, else the CPU engine's. */
  MoeExecutorFactory executorFactory() {
    return executors != null ? executors : CpuMoeExecutor::create;
  }

  /** The listener to tell (never null). */
  public LoadProgress progressOrNone() {
    return progress != null ? progress : LoadProgress.NONE;
  }
}
