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
 * copied, except small ones converted to f32 on request (norm weights, biases). Errors name the
 * file and the tensor. Thread-safe after opening; close to release the files.
 */
public final class ModelWeights implements AutoCloseable {
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> byTensor; // tensor name -> its file

  private ModelWeights(List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor) {
    this.files = files;
    this.byTensor = byTensor;
  }

  /** Opens one safetensors file. */
  public static ModelWeights single(Path file) throws IOException {
    SafetensorsFile f = SafetensorsFile.open(file);
    Map<String, SafetensorsFile> map = new LinkedHashMap<>();
    for (String name : f.tensors().keySet()) {
      map.put(name, f);
    }
    return new ModelWeights(List.of(f), map);
  }

  /**
   * Opens a model directory's weights: model.safetensors, or the shards listed by
   * model.safetensors.index.json (each shard must exist and hold the tensors mapped to it).
   */
  public static ModelWeights open(Path dir) throws IOException {
    Path single = dir.resolve("model.safetensors");
    Path index = dir.resolve("model.safetensors.index.json");
    if (Files.isRegularFile(index)) {
      return sharded(index);
    }
    if (Files.isRegularFile(single)) {
      return single(single);
    }
    throw new ModelFormatException(
        dir + ": neither model.safetensors nor model.safetensors.index.json is present");
  }

  /** Opens the shards an index file names. */
  public static ModelWeights sharded(Path index) throws IOException {
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
          f = SafetensorsFile.open(p);
          opened.add(f);
          shards.put(shard, f);
        }
        if (!f.has(e.getKey())) {
          throw new ModelFormatException(
              f.path() + ": no tensor '" + e.getKey() + "', which " + index.getFileName() + " maps to it");
        }
        byTensor.put(e.getKey(), f);
      }
      return new ModelWeights(List.copyOf(opened), byTensor);
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
    SafetensorsFile.Tensor t = tensor(name);
    if (!Arrays.equals(t.shape(), shape)) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape()) + " but "
              + why + " implies " + Arrays.toString(shape));
    }
    WeightType type = WeightType.ofSafetensors(t.dtype());
    if (type == null) {
      throw new ModelFormatException(
          fileOf(name) + ": tensor '" + name + "' has dtype " + t.dtype() + "; expected F32, BF16 or F16");
    }
    return type;
  }

  /** The tensor's bytes: a read-only little-endian mapping, no copy. */
  public ByteBuffer bytes(String name) throws IOException {
    tensor(name);
    return byTensor.get(name).bytes(name);
  }

  /** A linear layer's weight [out, in] (and optional bias [out], read as f32) after checks. */
  public Linear linear(String weight, String bias, int out, int in, String why) throws IOException {
    WeightType type = check(weight, why, out, in);
    FloatBuffer b = bias == null ? null : vector(bias, out, why);
    return new Linear(bytes(weight), type, out, in, b);
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
