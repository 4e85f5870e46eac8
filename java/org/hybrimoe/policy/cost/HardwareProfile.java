package org.hybrimoe.policy.cost;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A JSON hardware profile: the section 1 coefficients measured (or derived) for one machine and one
 * reference expert shape, each number with its source, and the rule that scales them to other
 * shapes. Profiles shipped in the jar are found by name under {@code org/hybrimoe/policy/cost/profiles};
 * any other is a file path. Format "hybrimoe-hardware-profile/1" (see paper-a6000.json).
 */
public final class HardwareProfile {
  /** The format string written in every profile. */
  public static final String FORMAT = "hybrimoe-hardware-profile/1";
  /** Profiles shipped in the jar. */
  public static final String[] BUILT_IN = {"paper-a6000"};

  private static final ObjectMapper JSON = new ObjectMapper();

  private final String name;
  private final String machine;
  private final double refBytes;
  private final double refFlops;
  private final double refDModel;
  private final double cpuFirst;
  private final double cpu0;
  private final double cpu1;
  private final double gpuFirst;
  private final double gpu0;
  private final double gpu1;
  private final double gpuMemBytesPerMs;
  private final double xfer0;
  private final double bytesPerMs;
  private final double nonMoe0;
  private final double nonMoe1;

  private HardwareProfile(String origin, JsonNode root) {
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(origin + ": not a JSON object");
    }
    if (!FORMAT.equals(root.path("format").asText())) {
      throw new IllegalArgumentException(origin + ": field 'format' must be \"" + FORMAT + "\"");
    }
    this.name = root.path("name").asText("unnamed");
    this.machine = root.path("machine").asText("");
    this.refBytes = number(origin, root, "reference", "expert_bytes", true);
    this.refFlops = number(origin, root, "reference", "flops_per_token", true);
    this.refDModel = number(origin, root, "reference", "d_model", true);
    this.cpuFirst = number(origin, root, "cpu", "first_ms", false);
    this.cpu0 = number(origin, root, "cpu", "fixed_ms", false);
    this.cpu1 = number(origin, root, "cpu", "per_token_ms", false);
    this.gpuFirst = number(origin, root, "gpu", "first_ms", false);
    this.gpu0 = number(origin, root, "gpu", "fixed_ms", false);
    this.gpu1 = number(origin, root, "gpu", "per_token_ms", false);
    this.gpuMemBytesPerMs = number(origin, root, "gpu", "memory_bytes_per_ms", true);
    this.xfer0 = number(origin, root, "pcie", "latency_ms", false);
    this.bytesPerMs = number(origin, root, "pcie", "bytes_per_ms", true);
    this.nonMoe0 = number(origin, root, "non_moe", "fixed_ms", false);
    this.nonMoe1 = number(origin, root, "non_moe", "per_token_ms", false);
  }

  // Every number is {"value": v, "source": "..."}: a number without its source is refused.
  private static double number(String origin, JsonNode root, String group, String key, boolean positive) {
    JsonNode n = root.path(group).path(key);
    String field = group + "." + key;
    if (!n.isObject() || !n.path("value").isNumber()) {
      throw new IllegalArgumentException(origin + ": field '" + field + "' missing (expected {\"value\": number, \"source\": text})");
    }
    if (!n.path("source").isTextual() || n.path("source").asText().isBlank()) {
      throw new IllegalArgumentException(origin + ": field '" + field + ".source' missing: every number needs its source");
    }
    double v = n.path("value").asDouble();
    if (!(positive ? v > 0 : v >= 0) || Double.isInfinite(v)) {
      throw new IllegalArgumentException(origin + ": field '" + field + "' = " + v + " must be " + (positive ? "> 0" : ">= 0"));
    }
    return v;
  }

  /** A built-in profile by name, or a profile file by path. */
  public static HardwareProfile load(String nameOrFile) throws IOException {
    for (String b : BUILT_IN) {
      if (b.equalsIgnoreCase(nameOrFile)) {
        String res = "profiles/" + b + ".json";
        try (InputStream in = HardwareProfile.class.getResourceAsStream(res)) {
          if (in == null) {
            throw new IOException("built-in profile resource missing from the jar: " + res);
          }
          return new HardwareProfile(b, JSON.readTree(in));
        }
      }
    }
    Path p = Path.of(nameOrFile);
    if (!Files.isRegularFile(p)) {
      throw new IllegalArgumentException("unknown hardware profile '" + nameOrFile + "': built-in are "
          + String.join(", ", BUILT_IN) + ", or give a JSON file path");
    }
    return new HardwareProfile(p.toString(), JSON.readTree(p.toFile()));
  }

  /** Parses a profile from JSON text (origin names it in errors). */
  public static HardwareProfile parse(String origin, String json) throws IOException {
    return new HardwareProfile(origin, JSON.readTree(json));
  }

  /**
   * Writes a profile measured on this machine from fitted coefficients, each number's source
   * naming the fit and its residuals.
   */
  public static void write(Path file, String name, String machine, ModelShape reference,
      LeastSquaresFit.ComputeFit cpu, LeastSquaresFit.ComputeFit gpu, double gpuMemBytesPerMs,
      LeastSquaresFit.TransferFit link, double nonMoe0, double nonMoe1) throws IOException {
    ObjectNode root = JSON.createObjectNode();
    root.put("format", FORMAT).put("name", name).put("machine", machine);
    ObjectNode ref = root.putObject("reference");
    ref.put("shape", reference.name());
    put(ref, "expert_bytes", reference.expertBytes(), "model shape");
    put(ref, "flops_per_token", reference.flopsPerToken(), "model shape");
    put(ref, "d_model", reference.dModel(), "model shape");
    String cs = String.format("least-squares fit of %d samples, rms residual %.4f ms, max %.4f ms", cpu.samples(), cpu.rmsResidual(), cpu.maxResidual());
    ObjectNode c = root.putObject("cpu");
    put(c, "first_ms", cpu.first(), cs);
    put(c, "fixed_ms", cpu.fixed(), cs);
    put(c, "per_token_ms", cpu.perToken(), cs);
    String gs = String.format("least-squares fit of %d samples, rms residual %.4f ms, max %.4f ms", gpu.samples(), gpu.rmsResidual(), gpu.maxResidual());
    ObjectNode g = root.putObject("gpu");
    put(g, "first_ms", gpu.first(), gs);
    put(g, "fixed_ms", gpu.fixed(), gs);
    put(g, "per_token_ms", gpu.perToken(), gs);
    put(g, "memory_bytes_per_ms", gpuMemBytesPerMs, "device query");
    String ls = String.format("least-squares fit of %d transfers, rms residual %.4f ms, max %.4f ms", link.samples(), link.rmsResidual(), link.maxResidual());
    ObjectNode x = root.putObject("pcie");
    put(x, "latency_ms", link.latency(), ls);
    put(x, "bytes_per_ms", link.bytesPerMs(), ls);
    ObjectNode nm = root.putObject("non_moe");
    put(nm, "fixed_ms", nonMoe0, "measured");
    put(nm, "per_token_ms", nonMoe1, "measured");
    root.putObject("scaling").put("source", "measured for the reference shape only; other shapes scale as in paper-a6000.json");
    JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), root);
  }

  private static void put(ObjectNode parent, String key, double value, String source) {
    parent.putObject(key).put("value", value).put("source", source);
  }

  public String name() {
    return name;
  }

  public String machine() {
    return machine;
  }

  /** The cost model for a shape, scaled from the reference as the profile's "scaling" states. */
  public CostModel costModel(ModelShape shape) {
    double bytes = shape.expertBytes();
    double byteRatio = bytes / refBytes;
    double flopRatio = shape.flopsPerToken() / refFlops;
    double dRatio2 = Math.pow(shape.dModel() / refDModel, 2);
    double g0 = Math.max(gpu0 * 0.1, gpu0 + (bytes - refBytes) / gpuMemBytesPerMs);
    double sharedBytes = bytes * shape.sharedScale();
    double sg0 = shape.sharedExperts() == 0 ? 0 : Math.max(gpu0 * 0.1, gpu0 + (sharedBytes - refBytes) / gpuMemBytesPerMs);
    return new CostModel(cpuFirst, cpu0 * byteRatio, cpu1 * flopRatio, gpuFirst, g0, gpu1 * flopRatio,
        xfer0, bytesPerMs, shape.expertBytes(), nonMoe0 * dRatio2, nonMoe1 * dRatio2, shape.sharedScale(), sg0);
  }
}
