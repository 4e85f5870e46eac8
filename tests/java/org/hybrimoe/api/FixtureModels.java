package org.hybrimoe.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * The tiny HuggingFace checkpoints of ../shared/fixtures/moe-tiny as model directories (config.json
 * and model.safetensors linked into a temporary folder), and their greedy references. Tests that
 * use them are skipped where ../shared is absent.
 */
final class FixtureModels {
  /** A fixture: its config, weights and reference files, and the reference's prompt and greedy ids. */
  record Fixture(String config, String weights, String reference, String promptField, String idsField) {}

  static final Fixture MIXTRAL = new Fixture("mixtral_tiny_config.json", "full_mixtral.safetensors",
      "full_mixtral_gen.json", "prompt_ids", "generated_ids");
  static final Fixture QWEN = new Fixture("qwen_moe_tiny_config.json", "qwen_moe_tiny.safetensors",
      "qwen_moe_tiny.json", "input_ids", "greedy_ids");
  static final Fixture DEEPSEEK = new Fixture("deepseek_full_config.json", "deepseek_full.safetensors",
      "deepseek_full.json", "input_ids", "greedy_ids");

  private FixtureModels() {}

  static Path root() {
    Path dir = org.hybrimoe.SharedFixtures.moeTiny();
    Assumptions.assumeTrue(dir != null, "fixtures absent (set -Dhybrimoe.shared or HYBRIMOE_SHARED)");
    return dir;
  }

  /** A model directory for the fixture inside {@code tmp}. */
  static Path dir(Fixture f, Path tmp) throws IOException {
    Path root = root();
    Path d = Files.createDirectories(tmp.resolve(f.weights().replace(".safetensors", "")));
    Files.createSymbolicLink(d.resolve("config.json"), root.resolve(f.config()));
    Files.createSymbolicLink(d.resolve("model.safetensors"), root.resolve(f.weights()));
    return d;
  }

  static JsonNode reference(Fixture f) throws IOException {
    return new ObjectMapper().readTree(root().resolve(f.reference()).toFile());
  }

  static int[] ints(JsonNode a) {
    int[] v = new int[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = a.get(i).asInt();
    }
    return v;
  }
}
