package org.hybrimoe.weights;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file, memory-mapped: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}), then the
 * tensor data, offsets relative to its start. Every field is validated when the file is opened:
 * the header lies inside the file, offsets inside the data, shape x element size equals the byte
 * length, no two tensors overlap, and, as the format requires, the tensors cover the data section
 * exactly (contiguous from byte 0 to its end: a header length that cuts into the JSON's trailing
 * padding would otherwise shift every tensor); errors ({@link SafetensorsFormatException}) name
 * the file and the tensor.
 *
 * <p>Tensor bytes are returned as read-only little-endian slices of the mapping: no copy. Files
 * above 2 GiB are mapped per tensor (each tensor below 2 GiB). Thread-safe after opening.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** One tensor's entry in the header. */
  public record Tensor(String name, String dtype, long[] shape, long begin, long end) {
    /** Number of elements (product of the shape; 1 for a scalar). */
    public long elements() {
      long n = 1;
      for (long s : shape) {
        n = Math.multiplyExact(n, s);
      }
      return n;
    }

    /** Bytes of data. */
    public long bytes() {
      return end - begin;
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Map<String, Integer> DTYPE_BYTES =
      Map.ofEntries(
          Map.entry("F64", 8), Map.entry("F32", 4), Map.entry("F16", 2), Map.entry("BF16", 2),
          Map.entry("I64", 8), Map.entry("I32", 4), Map.entry("I16", 2), Map.entry("I8", 1),
          Map.entry("U64", 8), Map.entry("U32", 4), Map.entry("U16", 2), Map.entry("U8", 1),
          Map.entry("BOOL", 1), Map.entry("F8_E4M3", 1), Map.entry("F8_E5M2", 1));

  private final Path path;
  private final FileChannel channel;
  private final long dataStart;
  private final Map<String, Tensor> tensors; // header order
  private final Map<String, String> metadata;

  private SafetensorsFile(
      Path path, FileChannel channel, long dataStart, Map<String, Tensor> tensors, Map<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /**
   * Opens and validates a file.
   *
   * @throws IOException when the file cannot be read or its header is malformed (the message
   *     names the file and, where one is at fault, the tensor)
   */
  public static SafetensorsFile open(Path path) throws IOException {
    FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
    try {
      long size = ch.size();
      if (size < 8) {
        throw bad(path, "file is " + size + " bytes, shorter than the 8-byte header length");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0);
      long n = lenBuf.getLong(0);
      if (n < 2 || n > size - 8 || n > 100_000_000L) {
        throw bad(path, "header length " + n + " does not fit a file of " + size + " bytes");
      }
      ByteBuffer hdr = ByteBuffer.allocate((int) n);
      readFully(ch, hdr, 8);
      JsonNode root;
      try {
        root = JSON.readTree(new String(hdr.array(), StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw bad(path, "header is not valid JSON: " + e.getMessage());
      }
      if (root == null || !root.isObject()) {
        throw bad(path, "header is not a JSON object");
      }
      long dataStart = 8 + n;
      long dataSize = size - dataStart;
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      Map<String, String> meta = new LinkedHashMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> f = it.next();
        if (f.getKey().equals("__metadata__")) {
          if (!f.getValue().isObject()) {
            throw bad(path, "__metadata__ is not an object");
          }
          f.getValue().fields().forEachRemaining(m -> meta.put(m.getKey(), m.getValue().asText()));
          continue;
        }
        tensors.put(f.getKey(), parseTensor(path, f.getKey(), f.getValue(), dataSize));
      }
      List<Tensor> byOffset = new ArrayList<>(tensors.values());
      byOffset.sort(Comparator.comparingLong(Tensor::begin).thenComparingLong(Tensor::end));
      for (int i = 1; i < byOffset.size(); i++) {
        Tensor a = byOffset.get(i - 1);
        Tensor b = byOffset.get(i);
        if (b.begin() < a.end()) {
          throw bad(path, "tensors '" + a.name() + "' and '" + b.name() + "' overlap");
        }
      }
      long covered = 0; // the data section must be indexed whole, without holes
      for (Tensor t : byOffset) {
        if (t.begin() != covered) {
          throw bad(path, "bytes [" + covered + ", " + t.begin() + ") of the data section belong to no tensor (before '"
              + t.name() + "'): the tensors must cover it contiguously");
        }
        covered = t.end();
      }
      if (covered != dataSize) {
        throw bad(path, "the tensors end at byte " + covered + " of a data section of " + dataSize
            + " bytes (header length " + n + "): the header length or the offsets are wrong");
      }
      return new SafetensorsFile(
          path, ch, dataStart, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(meta));
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  private static Tensor parseTensor(Path path, String name, JsonNode t, long dataSize) throws IOException {
    if (!t.isObject()) {
      throw bad(path, "tensor '" + name + "': entry is not an object");
    }
    JsonNode dt = t.get("dtype");
    JsonNode shape = t.get("shape");
    JsonNode offs = t.get("data_offsets");
    if (dt == null || !dt.isTextual() || !DTYPE_BYTES.containsKey(dt.asText())) {
      throw bad(path, "tensor '" + name + "': unknown or missing dtype " + dt);
    }
    if (shape == null || !shape.isArray()) {
      throw bad(path, "tensor '" + name + "': shape missing or not an array");
    }
    long[] dims = new long[shape.size()];
    for (int i = 0; i < dims.length; i++) {
      JsonNode s = shape.get(i);
      if (!s.canConvertToLong() || !s.isIntegralNumber() || s.asLong() < 0) {
        throw bad(path, "tensor '" + name + "': shape entry " + s + " is not a non-negative integer");
      }
      dims[i] = s.asLong();
    }
    if (offs == null || !offs.isArray() || offs.size() != 2
        || !offs.get(0).isIntegralNumber() || !offs.get(1).isIntegralNumber()) {
      throw bad(path, "tensor '" + name + "': data_offsets must be [begin, end]");
    }
    long begin = offs.get(0).asLong();
    long end = offs.get(1).asLong();
    if (begin < 0 || end < begin || end > dataSize) {
      throw bad(
          path,
          "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] outside the "
              + dataSize + " data bytes");
    }
    Tensor tensor = new Tensor(name, dt.asText(), dims, begin, end);
    long expect;
    try {
      expect = Math.multiplyExact(tensor.elements(), DTYPE_BYTES.get(dt.asText()));
    } catch (ArithmeticException e) {
      throw bad(path, "tensor '" + name + "': shape overflows");
    }
    if (expect != end - begin) {
      throw bad(
          path,
          "tensor '" + name + "': shape " + java.util.Arrays.toString(dims) + " x " + dt.asText()
              + " is " + expect + " bytes but data_offsets span " + (end - begin));
    }
    return tensor;
  }

  private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
    while (b.hasRemaining()) {
      int r = ch.read(b, at + b.position());
      if (r < 0) {
        throw new IOException("unexpected end of file");
      }
    }
  }

  private static SafetensorsFormatException bad(Path path, String what) {
    return new SafetensorsFormatException(path + ": " + what);
  }

  /** The file this was opened from. */
  public Path path() {
    return path;
  }

  /** All tensors in header order. */
  public Map<String, Tensor> tensors() {
    return tensors;
  }

  /** The __metadata__ strings (empty if none). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** A tensor's entry, or throws naming the file and the missing tensor. */
  public Tensor tensor(String name) {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new IllegalArgumentException(path + ": no tensor '" + name + "'");
    }
    return t;
  }

  /** True if the file has a tensor of this name. */
  public boolean has(String name) {
    return tensors.containsKey(name);
  }

  /** The tensor's bytes: a read-only, little-endian, direct mapping (no copy). */
  public ByteBuffer bytes(String name) throws IOException {
    Tensor t = tensor(name);
    if (t.bytes() > Integer.MAX_VALUE) {
      throw new IOException(path + ": tensor '" + name + "' is larger than 2 GiB, map it in parts");
    }
    return channel
        .map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin(), t.bytes())
        .order(ByteOrder.LITTLE_ENDIAN);
  }

  /** An F32 tensor copied into a float array (for small tensors and tests). */
  public float[] readF32(String name) throws IOException {
    Tensor t = tensor(name);
    if (!t.dtype().equals("F32")) {
      throw new IllegalArgumentException(path + ": tensor '" + name + "' is " + t.dtype() + ", not F32");
    }
    float[] out = new float[Math.toIntExact(t.elements())];
    bytes(name).asFloatBuffer().get(out);
    return out;
  }

  @Override
  public void close() throws IOException {
    channel.close(); // mappings stay valid until collected, as NIO defines
  }
}
