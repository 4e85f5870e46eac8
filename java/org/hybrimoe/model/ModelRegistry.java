package org.hybrimoe.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.hybrimoe.model.deepseek.DeepseekArchitecture;
import org.hybrimoe.model.mixtral.MixtralArchitecture;
import org.hybrimoe.model.olmoe.OlmoeArchitecture;
import org.hybrimoe.model.qwen2moe.Qwen2MoeArchitecture;
import org.hybrimoe.model.qwen3moe.Qwen3MoeArchitecture;
import org.hybrimoe.nativeapi.Engine;

/**
 * The one place where model_type values map to architectures, and the entry point that loads a
 * HuggingFace model directory (config.json + model.safetensors or sharded shards with
 * model.safetensors.index.json).
 */
public final class ModelRegistry {
  private static final List<Architecture> ARCHITECTURES =
      List.of(
          new MixtralArchitecture(),
          new Qwen2MoeArchitecture(),
          new Qwen3MoeArchitecture(),
          new OlmoeArchitecture(),
          new DeepseekArchitecture());

  private static final Map<String, Architecture> BY_TYPE = new LinkedHashMap<>();

  static {
    for (Architecture a : ARCHITECTURES) {
      for (String t : a.modelTypes()) {
        BY_TYPE.put(t, a);
      }
    }
  }

  private ModelRegistry() {}

  /** The supported model_type values. */
  public static List<String> modelTypes() {
    return List.copyOf(BY_TYPE.keySet());
  }

  /** The architecture of a config; throws naming model_type when unknown. */
  public static Architecture architecture(ModelConfig config) {
    String type = config.modelType();
    Architecture a = BY_TYPE.get(type);
    if (a == null) {
      throw config.bad("model_type", "is '" + type + "', not one of " + modelTypes());
    }
    return a;
  }

  /** Loads a model directory in HuggingFace layout. */
  public static CausalLm load(Path dir, LoadOptions options) throws IOException {
    Path config = dir.resolve("config.json");
    if (!java.nio.file.Files.isRegularFile(config)) {
      throw new ModelFormatException(dir + ": no config.json");
    }
    ModelConfig cfg = ModelConfig.read(config);
    Architecture a = architecture(cfg);
    options.progressOrNone().progress("mapping weights", 0, 1);
    ModelWeights w = ModelWeights.open(dir, cfg);
    options.progressOrNone().progress("mapping weights", 1, 1);
    return build(a, cfg, w, options);
  }

  /** Loads a config file and one safetensors file (fixtures keep them side by side). */
  public static CausalLm load(Path config, Path safetensors, LoadOptions options) throws IOException {
    ModelConfig cfg = ModelConfig.read(config);
    Architecture a = architecture(cfg);
    return build(a, cfg, ModelWeights.single(safetensors, cfg), options);
  }

  private static CausalLm build(Architecture a, ModelConfig cfg, ModelWeights w, LoadOptions options)
      throws IOException {
    Engine engine = null;
    try {
      engine = Engine.create(options.threads());
      return a.build(cfg, w, options, engine, true);
    } catch (IOException | RuntimeException e) {
      if (engine != null) {
        engine.close();
      }
      w.close();
      throw e;
    }
  }
}
