package org.hybrimoe.policy.cost;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A JSON hardware profile: the section 1 coefficients of one machine in physical units, each number
 * with its source, so that one profile prices any expert shape: a device's expert time is its fixed
 * terms plus the larger of the expert's bytes over the effective kernel bandwidth and its flops over
 * the effective throughput (CostModel). Profiles shipped in the jar are found by name under
 * {@code org/hybrimoe/policy/cost/profiles}; any other is a file path. Format
 * "hybrimoe-hardware-profile/2" (see paper-a6000.json). A bandwidth of 0 means the device has no
 * memory-bound floor in this profile (a model linear in tokens, as the authors' constants are).
 */
public final class HardwareProfile {
  /** The format string written in every profile. */
  public static final String FORMAT = "hybrimoe-hardware-profile/2";
  /** Profiles shipped in the jar: the paper's machine from public specifications (the default),
   * an H100 host from figures measured on one, and the authors' constants (a sensitivity check). */
  public static final String[] BUILT_IN = {"paper-a6000", "h100-host", "paper-authors-constants"};

  private static final ObjectMapper JSON = new ObjectMapper();

  private final String name;
  private final String machine;
  private final double refDModel;
  private final double cpuFirst;
  private final double cpu0;
  private final double cpuBytesPerMs;
  private final double cpuFlopsPerMs;
  private final double gpuFirst;
  private final double gpu0;
  private final double gpuBytesPerMs;
  private final double gpuFlopsPerMs;
  private final double xfer0;
  private final double bytesPerMs;
  private final double nonMoe0;
  private final double nonMoe1;

  private HardwareProfile(String origin, JsonNode root) {
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(origin + ": not a JSON object");
    }
    if (!FORMAT.equals(root.path("format").asText())) {
      throw new IllegalArgumentException(origin + ": field 'format' must be \"" + FORMAT + "\" (got \""
          + root.path("format").asText() + "\")");
    }
    this.name = root.path("name").asText("unnamed");
    this.machine = root.path("machine").asText("");
    this.refDModel = number(origin, root, "non_moe", "reference_d_model", true);
    this.cpuFirst = number(origin, root, "cpu", "first_ms", false);
    this.cpu0 = number(origin, root, "cpu", "fixed_ms", false);
    this.cpuBytesPerMs = number(origin, root, "cpu", "bytes_per_ms", false);
    this.cpuFlopsPerMs = number(origin, root, "cpu", "flops_per_ms", true);
    this.gpuFirst = number(origin, root, "gpu", "first_ms", false);
    this.gpu0 = number(origin, root, "gpu", "fixed_ms", false);
    this.gpuBytesPerMs = number(origin, root, "gpu", "bytes_per_ms", false);
    this.gpuFlopsPerMs = number(origin, root, "gpu", "flops_per_ms", true);
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
   * naming the fit and its residuals; the key says which machine, shape and format it was
   * measured with (a later run reuses it only for the same key).
   */
  public static void write(Path file, String name, String machine, String key, LeastSquaresFit.PhysicalFit cpu,
      LeastSquaresFit.PhysicalFit gpu, LeastSquaresFit.TransferFit link, double nonMoe0, double nonMoe1,
      double refDModel) throws IOException {
    ObjectNode root = JSON.createObjectNode();
    root.put("format", FORMAT).put("name", name).put("machine", machine).put("key", key);
    putDevice(root.putObject("cpu"), cpu);
    putDevice(root.putObject("gpu"), gpu);
    String ls = String.format(java.util.Locale.ROOT, "least-squares fit of %d transfers, rms residual %.4f ms, max %.4f ms",
        link.samples(), link.rmsResidual(), link.maxResidual());
    ObjectNode x = root.putObject("pcie");
    put(x, "latency_ms", link.latency(), ls);
    put(x, "bytes_per_ms", link.bytesPerMs(), ls);
    ObjectNode nm = root.putObject("non_moe");
    put(nm, "fixed_ms", nonMoe0, "measured");
    put(nm, "per_token_ms", nonMoe1, "measured");
    put(nm, "reference_d_model", refDModel, "the model measured");
    JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), root);
  }

  private static void putDevice(ObjectNode d, LeastSquaresFit.PhysicalFit f) {
    String src = String.format(java.util.Locale.ROOT,
        "least-squares fit of %d samples (tokens %d..%d, 1..%d experts a layer), rms residual %.4f ms, max %.4f ms",
        f.samples(), f.minTokens(), f.maxTokens(), f.maxExperts(), f.rmsResidual(), f.maxResidual());
    put(d, "first_ms", f.first(), src);
    put(d, "fixed_ms", f.fixed(), src);
    put(d, "bytes_per_ms", f.bytesPerMs(), src);
    put(d, "flops_per_ms", f.flopsPerMs(), src);
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

  /**
   * The cost model for a shape: each device's memory term is the shape's expert bytes over its
   * bandwidth, its compute term the shape's flops per token over its throughput; a shared expert is
   * one kernel over sharedScale times the matrices; non-MoE times scale with d_model squared.
   */
  public CostModel costModel(ModelShape shape) {
    double bytes = shape.expertBytes();
    double flops = shape.flopsPerToken();
    double dRatio2 = Math.pow(shape.dModel() / refDModel, 2);
    return new CostModel(cpuFirst, cpu0, cpuBytesPerMs > 0 ? bytes / cpuBytesPerMs : 0, flops / cpuFlopsPerMs,
        gpuFirst, gpu0, gpuBytesPerMs > 0 ? bytes / gpuBytesPerMs : 0, flops / gpuFlopsPerMs, xfer0, bytesPerMs,
        shape.expertBytes(), nonMoe0 * dRatio2, nonMoe1 * dRatio2, shape.sharedScale(), shape.sharedExperts() == 0 ? 0 : gpu0);
  }
}
