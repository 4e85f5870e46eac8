package org.hybrimoe.policy.cost;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The MoE shape of a model, as far as cost and placement care: MoE layers, routed experts, top-k,
 * shared experts, model width, expert intermediate size, and the bytes of one routed expert in the
 * weight format simulated (int4 here: three [d_model x ff] matrices at half a byte per weight).
 *
 * @param sharedFf intermediate size of one shared expert (0 where there are none)
 */
public record ModelShape(
    String name,
    int layers,
    int experts,
    int topK,
    int sharedExperts,
    int dModel,
    int ff,
    int sharedFf,
    long expertBytes) {

  public ModelShape {
    if (layers <= 0 || experts <= 0 || topK <= 0 || topK > experts || sharedExperts < 0 || dModel <= 0
        || ff <= 0 || sharedFf < 0 || expertBytes <= 0) {
      throw new IllegalArgumentException("inconsistent model shape " + name + ": layers=" + layers
          + " experts=" + experts + " top_k=" + topK + " shared=" + sharedExperts + " d_model=" + dModel
          + " ff=" + ff + " shared_ff=" + sharedFf + " expert_bytes=" + expertBytes);
    }
  }

  /** DeepSeek-V2-Lite: 26 MoE layers, 64 routed experts (top-6), 2 shared; 4.33 MB int4 experts. */
  public static final ModelShape DEEPSEEK_V2_LITE =
      new ModelShape("deepseek-v2-lite", 26, 64, 6, 2, 2048, 1408, 1408, 4_330_000L);
  /** Qwen2-57B-A14B: 28 MoE layers, 64 experts (top-8), one shared expert of ff 20480. */
  public static final ModelShape QWEN2_57B_A14B =
      new ModelShape("qwen2-57b-a14b", 28, 64, 8, 1, 3584, 2560, 20480, int4Bytes(3584, 2560));
  /** Mixtral-8x7B: 32 MoE layers, 8 experts (top-2), no shared experts. */
  public static final ModelShape MIXTRAL_8X7B =
      new ModelShape("mixtral-8x7b", 32, 8, 2, 0, 4096, 14336, 0, int4Bytes(4096, 14336));

  /** The shapes known by name. */
  public static List<ModelShape> known() {
    return List.of(DEEPSEEK_V2_LITE, QWEN2_57B_A14B, MIXTRAL_8X7B);
  }

  /** Bytes of a gate/up/down expert at 4 bits per weight (scales ignored: under 4% at group 128). */
  public static long int4Bytes(int dModel, int ff) {
    return 3L * dModel * ff / 2;
  }

  /** Multiply-adds x 2 of one token through one routed expert. */
  public double flopsPerToken() {
    return 2.0 * 3 * dModel * ff;
  }

  /** A shared expert's cost relative to a routed one (their intermediate sizes' ratio). */
  public double sharedScale() {
    return sharedExperts == 0 ? 0 : (double) sharedFf / ff;
  }

  /** A shape by name (case-insensitive) or, when the argument is an existing file, from its JSON. */
  public static ModelShape resolve(String nameOrFile) throws IOException {
    for (ModelShape s : known()) {
      if (s.name.equalsIgnoreCase(nameOrFile)) {
        return s;
      }
    }
    Path p = Path.of(nameOrFile);
    if (Files.isRegularFile(p)) {
      return fromJson(p);
    }
    StringBuilder names = new StringBuilder();
    for (ModelShape s : known()) {
      names.append(names.length() == 0 ? "" : ", ").append(s.name);
    }
    throw new IllegalArgumentException("unknown model shape '" + nameOrFile + "': known are " + names
        + ", or give a JSON file path");
  }

  /**
   * Reads a shape from JSON: name, moe_layers, experts, top_k, shared_experts, hidden_size,
   * moe_intermediate_size, optional shared_intermediate_size (default moe_intermediate_size) and
   * expert_bytes (default int4 of the sizes).
   */
  public static ModelShape fromJson(Path file) throws IOException {
    JsonNode n = new ObjectMapper().readTree(file.toFile());
    String[] required = {"moe_layers", "experts", "top_k", "shared_experts", "hidden_size", "moe_intermediate_size"};
    for (String r : required) {
      if (n == null || !n.has(r) || !n.get(r).isIntegralNumber()) {
        throw new IllegalArgumentException(file + ": field '" + r + "' missing or not an integer");
      }
    }
    int d = n.get("hidden_size").asInt();
    int ff = n.get("moe_intermediate_size").asInt();
    String name = n.has("name") ? n.get("name").asText() : file.getFileName().toString().replace(".json", "");
    return new ModelShape(name.toLowerCase(Locale.ROOT), n.get("moe_layers").asInt(), n.get("experts").asInt(),
        n.get("top_k").asInt(), n.get("shared_experts").asInt(), d, ff,
        n.has("shared_intermediate_size") ? n.get("shared_intermediate_size").asInt() : ff,
        n.has("expert_bytes") ? n.get("expert_bytes").asLong() : int4Bytes(d, ff));
  }
}
