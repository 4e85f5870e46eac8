package org.hybrimoe.model;

import java.io.IOException;
import org.hybrimoe.nativeapi.Engine;

/**
 * One model family: reads its config fields, checks the checkpoint's tensors against them and
 * assembles a {@link CausalLm}. Implementations live in one package per family and are listed in
 * {@link ModelRegistry}.
 */
public interface Architecture {
  /** The config.json model_type values this architecture runs. */
  java.util.List<String> modelTypes();

  /**
   * Builds the model. The weights are borrowed (the model closes them); the engine is the
   * caller's unless {@code ownsEngine}.
   *
   * @throws ModelFormatException when the config is incomplete or contradicts the weights
   */
  CausalLm build(ModelConfig config, ModelWeights weights, LoadOptions options, Engine engine, boolean ownsEngine)
      throws IOException;
}
