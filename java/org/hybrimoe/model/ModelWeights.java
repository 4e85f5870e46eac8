package org.hybrimoe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.weights.SafetensorsFile;

/**
 * The tensors of a checkpoint: one safetensors file, or the shards a
 * model.safetensors.index.json names (its weight_map: tensor -> shard file). Every file is
 * validated when opened ({@link SafetensorsFile}); tensors are handed out as mapped slices, never
 * copied, except small ones converted to f32 on request (norm weights, biases) and FP8
 * block-quantized weights, which {@link #weight} dequantizes to BF16 copies when the config
 * declares them ({@link Fp8BlockDequant}). Errors name the file and the tensor. Thread-safe after
 * opening; close to release the files.
 */
public final class ModelWeights implements AutoCloseable {
  /** A weight as the engine reads it: the bytes (mapped, or a dequantized copy) and their type. */
  public record Weight(ByteBuffer bytes, WeightType type) {}

  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> byTensor; // tensor name -> its file
  private final ModelConfig config; // for FP8 quantization_config and its messages; null: none given
  private final Fp8BlockDequant fp8; // null: the config declares no FP8 quantization

  private ModelWeights(
      List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor, ModelConfig config, Fp8BlockDequant fp8) {
    this.files = files;
    this.byTensor = byTensor;
    this.config = config;
    this.fp8 = fp8;
  }

  // Read before any file is opened, so that a refused quantization_config leaves nothing open.
  private static Fp8BlockDequant fp8Of(ModelConfig config) {
    return config == null ? null : Fp8BlockDequant.of(config);
  }

  /** Opens one safetensors file (no config: FP8 tensors are refused). */
  public static ModelWeights single(Path file) throws IOException {
    return single(file, null);
  }

  /** Opens one checkpoint file; a file that breaks the format is this model's format error. */
  private static SafetensorsFile openFile(Path file) throws IOException {
    try {
      return SafetensorsFile.open(file);
    } catch (org.hybrimoe.weights.SafetensorsFormatException e) {
      throw new ModelFormatException(e.getMessage(), e);
    }
  }

  /** Opens one safetensors file of a model with this config (its quantization_config applies). */
  public static ModelWeights single(Path file, ModelConfig config) throws IOException {
    Fp8BlockDequant fp8 = fp8Of(config);
    SafetensorsFile f = openFile(file);
    Map<String, SafetensorsFile> map = new LinkedHashMap<>();
    for (String name : f.tensors().keySet()) {
      map.put(name, f);
    }
    return new ModelWeights(List.of(f), map, config, fp8);
  }

  /** As {@link #open(Path, ModelConfig)} without a config (FP8 tensors are refused). */
  public static ModelWeights open(Path dir) throws IOException {
    return open(dir, null);
  }

  /**
   * Opens a model directory's weights: model.safetensors, or the shards listed by
   * model.safetensors.index.json (each shard must exist and hold the tensors mapped to it).
   * The config's quantization_config, if any, says how FP8 weights are scaled; one this loader
   * cannot read is refused here, naming the field.
   */
  public static ModelWeights open(Path dir, ModelConfig config) throws IOException {
    Path single = dir.resolve("model.safetensors");
    Path index = dir.resolve("model.safetensors.index.json");
    if (Files.isRegularFile(index)) {
      return sharded(index, config);
    }
    if (Files.isRegularFile(single)) {
      return single(single, config);
    }
    throw new ModelFormatException(
        dir + ": neither model.safetensors nor model.safetensors.index.json is present");
  }

  /** Opens the shards an index file names (no config: FP8 tensors are refused). */
  public static ModelWeights sharded(Path index) throws IOException {
    return sharded(index, null);
  }

  /** Opens the shards an index file names, for a model with this config. */
  public static ModelWeights sharded(Path index, ModelConfig config) throws IOException {
    Fp8BlockDequant fp8 = fp8Of(config);
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(index.toFile());
    } catch (IOException e) {
      throw new IOException(index + ": not a readable JSON index: " + e.getMessage(), e);
    }
    JsonNode map = root == null ? null : root.get("weight_map");
    if (map == null || !map.isObject() || map.isEmpty()) {
      throw new ModelFormatException(index + ": 'weight_map' is missing, empty or not an object");
    }
    Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
    Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        String shard = e.getValue().asText();
        if (!e.getValue().isTextual() || shard.contains("/") || shard.contains("\\") || shard.startsWith(".")) {
          throw new ModelFormatException(
              index + ": weight_map entry for tensor '" + e.getKey() + "' is not a file name in the folder: "
                  + e.getValue());
        }
        SafetensorsFile f = shards.get(shard);
        if (f == null) {
          Path p = index.resolveSibling(shard);
          if (!Files.isRegularFile(p)) {
            throw new ModelFormatException(
                index + ": shard '" + shard + "' (tensor '" + e.getKey() + "') does not exist");
          }
          f = openFile(p);
          opened.add(f);
          shards.put(shard, f);
        }
        if (!f.has(e.getKey())) {
          throw new ModelFormatException(
              f.path() + ": no tensor '" + e.getKey() + "', which " + index.getFileName() + " maps to it");
        }
        byTensor.put(e.getKey(), f);
      }
      return new ModelWeights(List.copyOf(opened), byTensor, config, fp8);
    } catch (IOException | RuntimeException ex) {
      for (SafetensorsFile f : opened) {
        f.close();
      }
      throw ex;
    }
  }

  /** True when the checkpoint has this tensor. */
  public boolean has(String name) {
    return byTensor.containsKey(name);
  }

  /** The tensor's header entry; throws naming the files when absent. */
  public SafetensorsFile.Tensor tensor(String name) {
    SafetensorsFile f = byTensor.get(name);
    if (f == null) {
      throw new ModelFormatException(source() + ": missing tensor '" + name + "'");
    }
    return f.tensor(name);
  }

  /** The file holding a tensor. */
  public Path fileOf(String name) {
    tensor(name);
    return byTensor.get(name).path();
  }

  /**
   * Checks a tensor's shape and that its dtype is F32, BF16 or F16; {@code why} says which config
   * fields imply the shape (for the message).
   */
  public WeightType check(String name, String why, long... shape) {
    SafetensorsFile.Tensor t = checkShape(name, why, shape);
    WeightType type = WeightType.ofSafetensors(t.dtype());
    if (type == null) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has dtype " + t.dtype() + "; expected F32, BF16 or F16");
    }
    return type;
  }

  private SafetensorsFile.Tensor checkShape(String name, String why, long... shape) {
    SafetensorsFile.Tensor t = tensor(name);
    if (!Arrays.equals(t.shape(), shape)) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape()) + " but "
              + why + " implies " + Arrays.toString(shape));
    }
    return t;
  }

  /**
   * A linear or expert weight of this shape ([out, in], or [E, out, in] packed) after checks:
   * F32, BF16 and F16 are the mapped bytes (no copy); F8_E4M3 with its {@code <name>_scale_inv}
   * under the config's FP8 quantization_config is dequantized to a new BF16 direct buffer (a copy
   * of twice the checkpoint's bytes, owned by the returned Weight, not the page cache).
   */
  public Weight weight(String name, String why, long... shape) throws IOException {
    SafetensorsFile.Tensor t = tensor(name);
    if (!t.dtype().startsWith("F8_")) {
      return new Weight(bytes(name), check(name, why, shape));
    }
    checkShape(name, why, shape);
    if (!t.dtype().equals("F8_E4M3")) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has dtype " + t.dtype()
              + "; FP8 weights must be F8_E4M3 (block-quantized, quantization_config quant_method fp8)");
    }
    if (fp8 == null) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' is F8_E4M3 but "
              + (config == null ? "no config was given" : config.path() + " has no quantization_config")
              + "; FP8 weights need {\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", \"weight_block_size\": [rows, cols]}");
    }
    return new Weight(dequantize(name, t), WeightType.BF16);
  }

  // The BF16 copy of an F8_E4M3 tensor [rows, cols], or [E, rows, cols] packed experts (the
  // callers' shapes, already checked).
  private ByteBuffer dequantize(String name, SafetensorsFile.Tensor t) throws IOException {
    String scaleName = name + Fp8BlockDequant.SCALE_SUFFIX;
    long[] shape = t.shape();
    if (!has(scaleName)) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' is F8_E4M3 but its scales '" + scaleName + "' are missing");
    }
    SafetensorsFile.Tensor s = tensor(scaleName);
    long[] want = fp8.scaleShape(shape);
    if (!Arrays.equals(s.shape(), want)) {
      throw new ModelFormatException(
          fileOf(scaleName) + ": tensor '" + scaleName + "' has shape " + Arrays.toString(s.shape()) + " but '"
              + name + "' " + Arrays.toString(shape) + " in blocks of weight_block_size [" + fp8.blockRows() + ", "
              + fp8.blockCols() + "] (" + config.path().getFileName() + " quantization_config) implies "
              + Arrays.toString(want));
    }
    WeightType scaleType = WeightType.ofSafetensors(s.dtype());
    if (scaleType != WeightType.F32 && scaleType != WeightType.BF16) {
      throw new ModelFormatException(
          fileOf(scaleName) + ": tensor '" + scaleName + "' has dtype " + s.dtype() + "; FP8 scales must be F32 or BF16");
    }
    int count = shape.length == 3 ? Math.toIntExact(shape[0]) : 1;
    int rows = Math.toIntExact(shape[shape.length - 2]);
    int cols = Math.toIntExact(shape[shape.length - 1]);
    long outBytes = 2 * t.elements();
    if (outBytes > Integer.MAX_VALUE) {
      throw new ModelFormatException(
          fileOf(name) + ": FP8 tensor '" + name + "' would dequantize to " + outBytes + " bytes, above 2 GiB");
    }
    ByteBuffer out;
    try {
      out = ByteBuffer.allocateDirect((int) outBytes).order(ByteOrder.LITTLE_ENDIAN);
    } catch (OutOfMemoryError e) {
      // Direct memory is capped by -XX:MaxDirectMemorySize (default: the heap's maximum).
      OutOfMemoryError more = new OutOfMemoryError(
          fileOf(name) + ": no direct memory for the " + outBytes + "-byte BF16 copy of FP8 tensor '" + name
              + "' (raise -XX:MaxDirectMemorySize): " + e.getMessage());
      more.initCause(e);
      throw more;
    }
    try {
      fp8.toBf16(bytes(name), bytes(scaleName), scaleType, count, rows, cols, out);
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(
          fileOf(name) + ": FP8 tensor '" + name + "' (scales '" + scaleName + "'): " + e.getMessage(), e);
    }
    return out;
  }

  /** The tensor's bytes: a read-only little-endian mapping, no copy. */
  public ByteBuffer bytes(String name) throws IOException {
    tensor(name);
    return byTensor.get(name).bytes(name);
  }

  /**
   * A linear layer's weight [out, in] (and optional bias [out], read as f32) after checks; FP8
   * weights become BF16 copies ({@link #weight}).
   */
  public Linear linear(String weight, String bias, int out, int in, String why) throws IOException {
    Weight wt = weight(weight, why, out, in);
    FloatBuffer b = bias == null ? null : vector(bias, out, why);
    return new Linear(wt.bytes(), wt.type(), out, in, b);
  }

  /**
   * A small tensor of {@code n} elements (any of the shapes [n] or [1, n]... with n elements)
   * converted to f32 in a new direct buffer: norm weights and biases.
   */
  public FloatBuffer vector(String name, int n, String why) throws IOException {
    SafetensorsFile.Tensor t = tensor(name);
    if (t.elements() != n) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape()) + " but "
              + why + " implies " + n + " elements");
    }
    WeightType type = WeightType.ofSafetensors(t.dtype());
    if (type == null) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has dtype " + t.dtype() + "; expected F32, BF16 or F16");
    }
    return toF32(bytes(name), type, n);
  }

  /** n values of type from b's position, widened to f32 in a new direct buffer. */
  public static FloatBuffer toF32(ByteBuffer b, WeightType type, int n) {
    FloatBuffer out = DenseOps.floats(n);
    toF32(b, type, n, out);
    return out;
  }

  /** n values of type from b's position, widened to f32 into out[0, n). */
  public static void toF32(ByteBuffer b, WeightType type, int n, FloatBuffer out) {
    ByteBuffer src = b.slice().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      out.put(i, switch (type) {
        case F32 -> src.getFloat(4 * i);
        case BF16 -> Float.intBitsToFloat((src.getShort(2 * i) & 0xffff) << 16);
        case F16 -> halfToFloat(src.getShort(2 * i));
      });
    }
  }

  /** IEEE binary16 bits to float, exactly (subnormals, infinities and NaN included). */
  public static float halfToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exp = (h >> 10) & 0x1f;
    int man = h & 0x3ff;
    if (exp == 0) {
      return (sign != 0 ? -1f : 1f) * man * 0x1p-24f; // zero and subnormals: man * 2^-24
    }
    if (exp == 31) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (man << 13));
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (man << 13));
  }

  /** The file, or the shards' folder, for messages. */
  public String source() {
    if (files.size() == 1) {
      return files.get(0).path().toString();
    }
    return files.size() + " shards in " + files.get(0).path().getParent();
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
