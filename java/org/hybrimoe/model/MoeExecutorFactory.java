package org.hybrimoe.model;

import java.util.Map;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Engine;

/**
 * Creates the {@link MoeLayerExecutor} of a model being loaded from where its experts' bytes are
 * (one zero-copy {@link ExpertLayerWeights} per MoE decoder layer). The CPU engine's factory is
 * {@link CpuMoeExecutor#create}; the hybrid CPU-GPU executor supplies its own through
 * {@link LoadOptions#withExecutors}.
 */
@FunctionalInterface
public interface MoeExecutorFactory {
  /**
   * @param layers decoder layer index -> its routed experts (f32 or bf16, borrowed from the mapped
   *     checkpoint; they stay valid while the model is open)
   */
  MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers, LoadOptions options);

  /**
   * As {@link #create(Engine, Map, LoadOptions)}, also offered the layers' shared experts: an
   * executor may run some itself ({@link MoeLayerExecutor#runsSharedExpert}); the model runs the
   * rest. The default declines them all.
   *
   * @param shared decoder layer index -> its shared expert, for the MoE layers that have one
   */
  default MoeLayerExecutor create(
      Engine engine, Map<Integer, ExpertLayerWeights> layers, Map<Integer, SharedExpert> shared, LoadOptions options) {
    return create(engine, layers, options);
  }
}
