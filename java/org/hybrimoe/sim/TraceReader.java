package org.hybrimoe.sim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a trace directory (trace.json plus raw arrays) and validates all of it before handing out
 * a {@link Trace}: header fields, every array's dtype and shape against the header, each file's
 * size against its shape (a short file is "truncated", a long one "oversized"; nothing is read
 * past a file's end because arrays are mapped only after their size is checked), every id below
 * the expert count, no expert twice in one token's top-k, and sequences inside the token range
 * without overlap. Any failure is a {@link TraceFormatException} naming the file and the field.
 */
public final class TraceReader {
  /** The format string this reader understands. */
  public static final String FORMAT = "moe-routing-trace/1";

  private static final ObjectMapper JSON = new ObjectMapper();

  private TraceReader() {}

  /** Reads and validates the trace in {@code dir}. */
  public static Trace read(Path dir) throws IOException {
    Path header = dir.resolve("trace.json");
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(header));
    } catch (NoSuchFileException e) {
      throw new TraceFormatException(header, "file", "not found (is " + dir + " a trace directory?)");
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new TraceFormatException(header, "json", "not valid JSON: " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) {
      throw new TraceFormatException(header, "json", "not a JSON object");
    }
    String format = text(header, root, "format");
    if (!FORMAT.equals(format)) {
      throw new TraceFormatException(header, "format", "'" + format + "', expected '" + FORMAT + "'");
    }
    String model = root.hasNonNull("model") ? root.get("model").asText() : "unknown";
    int layers = positive(header, root, "moe_layers");
    int firstMoe = nonNegative(header, root, "first_moe_layer");
    int experts = positive(header, root, "experts");
    int shared = nonNegative(header, root, "shared_experts");
    int topK = positive(header, root, "top_k");
    int hidden = nonNegative(header, root, "hidden_size");
    int ff = nonNegative(header, root, "moe_intermediate_size");
    int tokens = positive(header, root, "tokens");
    if (topK > experts) {
      throw new TraceFormatException(header, "top_k", topK + " exceeds experts = " + experts);
    }

    JsonNode idsNode = root.get("ids");
    if (idsNode == null || !idsNode.isObject()) {
      throw new TraceFormatException(header, "ids", "missing (an object with file, dtype, shape)");
    }
    String idType = text(header, idsNode, "ids.dtype", "dtype");
    int idBytes;
    if ("uint8".equals(idType)) {
      idBytes = 1;
    } else if ("uint16".equals(idType)) {
      idBytes = 2;
    } else {
      throw new TraceFormatException(header, "ids.dtype", "'" + idType + "', expected uint8 or uint16");
    }
    if (experts > (idBytes == 1 ? 256 : 65536)) {
      throw new TraceFormatException(header, "ids.dtype", idType + " cannot hold " + experts + " experts");
    }
    checkShape(header, idsNode, "ids", new long[] {tokens, layers, topK});
    Trace.SlotOrder order = Trace.SlotOrder.RANK;
    if (idsNode.hasNonNull("slot_order")) {
      String so = idsNode.get("slot_order").asText();
      if ("unordered".equals(so)) {
        order = Trace.SlotOrder.UNORDERED;
      } else if (!"rank".equals(so)) {
        throw new TraceFormatException(header, "ids.slot_order", "'" + so + "', expected rank or unordered");
      }
    }
    ByteBuffer ids = map(dir, header, idsNode, "ids", (long) tokens * layers * topK * idBytes);
    validateIds(dir.resolve(idsNode.get("file").asText()), ids, idBytes, tokens, layers, topK, experts);

    ByteBuffer weights = null;
    JsonNode w = root.get("weights");
    if (w != null && !w.isNull()) {
      requireDtype(header, w, "weights", "float32");
      checkShape(header, w, "weights", new long[] {tokens, layers, topK});
      weights = map(dir, header, w, "weights", (long) tokens * layers * topK * 4);
    }
    ByteBuffer scores = null;
    JsonNode s = root.get("scores");
    if (s != null && !s.isNull()) {
      requireDtype(header, s, "scores", "float32");
      checkShape(header, s, "scores", new long[] {tokens, layers, experts});
      scores = map(dir, header, s, "scores", (long) tokens * layers * experts * 4);
    }
    ByteBuffer predicted = null;
    int depth = 0;
    JsonNode p = root.get("predicted");
    if (p != null && !p.isNull()) {
      requireDtype(header, p, "predicted", idType);
      JsonNode shape = p.get("shape");
      if (shape == null || !shape.isArray() || shape.size() != 4) {
        throw new TraceFormatException(header, "predicted.shape", "expected [tokens, layers, depth, top_k]");
      }
      depth = shape.get(2).asInt();
      if (depth <= 0) {
        throw new TraceFormatException(header, "predicted.shape", "depth must be positive, got " + depth);
      }
      checkShape(header, p, "predicted", new long[] {tokens, layers, depth, topK});
      predicted = map(dir, header, p, "predicted", (long) tokens * layers * depth * topK * idBytes);
      Path pf = dir.resolve(p.get("file").asText());
      for (long i = 0, n = (long) tokens * layers * depth * topK; i < n; i++) {
        int id = idBytes == 1 ? predicted.get((int) i) & 0xff : predicted.getShort((int) (2 * i)) & 0xffff;
        if (id >= experts) {
          throw new TraceFormatException(pf, "predicted[" + i + "]", "expert id " + id + " >= experts = " + experts);
        }
      }
    }
    Trace.Sequence[] seqs = sequences(header, root, tokens);
    return new Trace(model, layers, firstMoe, experts, shared, topK, hidden, ff, tokens, order,
        idBytes, ids, weights, scores, predicted, depth, seqs);
  }

  private static void validateIds(Path file, ByteBuffer ids, int idBytes, int tokens, int layers, int topK, int experts)
      throws TraceFormatException {
    long[] seen = new long[(experts + 63) / 64];
    int i = 0;
    for (int t = 0; t < tokens; t++) {
      for (int l = 0; l < layers; l++) {
        java.util.Arrays.fill(seen, 0L);
        for (int k = 0; k < topK; k++, i++) {
          int id = idBytes == 1 ? ids.get(i) & 0xff : ids.getShort(2 * i) & 0xffff;
          if (id >= experts) {
            throw new TraceFormatException(file, "ids[" + t + "][" + l + "][" + k + "]",
                "expert id " + id + " >= experts = " + experts);
          }
          if ((seen[id >>> 6] & (1L << id)) != 0) {
            throw new TraceFormatException(file, "ids[" + t + "][" + l + "]",
                "expert " + id + " chosen twice in one token's top-k");
          }
          seen[id >>> 6] |= 1L << id;
        }
      }
    }
  }

  private static Trace.Sequence[] sequences(Path header, JsonNode root, int tokens) throws TraceFormatException {
    JsonNode arr = root.get("sequences");
    if (arr == null || arr.isNull()) {
      return new Trace.Sequence[] {new Trace.Sequence(0, tokens)};
    }
    if (!arr.isArray() || arr.isEmpty()) {
      throw new TraceFormatException(header, "sequences", "expected a non-empty array");
    }
    List<Trace.Sequence> out = new ArrayList<>(arr.size());
    long end = 0;
    for (int i = 0; i < arr.size(); i++) {
      JsonNode s = arr.get(i);
      String f = "sequences[" + i + "]";
      if (!s.has("offset") || !s.get("offset").canConvertToLong() || !s.has("tokens") || !s.get("tokens").canConvertToLong()) {
        throw new TraceFormatException(header, f, "needs integer offset and tokens");
      }
      long off = s.get("offset").asLong();
      long n = s.get("tokens").asLong();
      if (n <= 0) {
        throw new TraceFormatException(header, f + ".tokens", "must be positive, got " + n);
      }
      if (off < end) {
        throw new TraceFormatException(header, f + ".offset", off + " overlaps the previous sequence (ends at " + end + ")");
      }
      if (off + n > tokens) {
        throw new TraceFormatException(header, f, "[" + off + ", " + (off + n) + ") runs past tokens = " + tokens);
      }
      end = off + n;
      out.add(new Trace.Sequence((int) off, (int) n));
    }
    return out.toArray(new Trace.Sequence[0]);
  }

  private static ByteBuffer map(Path dir, Path header, JsonNode node, String field, long expected) throws IOException {
    String name = text(header, node, field + ".file", "file");
    Path file = dir.resolve(name);
    if (!file.normalize().startsWith(dir.normalize())) {
      throw new TraceFormatException(header, field + ".file", "'" + name + "' points outside the trace directory");
    }
    if (!Files.isRegularFile(file)) {
      throw new TraceFormatException(file, field, "file not found");
    }
    long size = Files.size(file);
    if (size < expected) {
      throw new TraceFormatException(file, field, "truncated: " + size + " bytes, shape needs " + expected);
    }
    if (size > expected) {
      throw new TraceFormatException(file, field, "oversized: " + size + " bytes, shape needs " + expected);
    }
    if (expected > Integer.MAX_VALUE) {
      throw new TraceFormatException(file, field, "larger than 2 GiB is not supported (" + expected + " bytes)");
    }
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      return ch.map(FileChannel.MapMode.READ_ONLY, 0, expected).order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  private static void checkShape(Path header, JsonNode node, String field, long[] expected) throws TraceFormatException {
    JsonNode shape = node.get("shape");
    if (shape == null || !shape.isArray()) {
      throw new TraceFormatException(header, field + ".shape", "missing");
    }
    boolean ok = shape.size() == expected.length;
    for (int i = 0; ok && i < expected.length; i++) {
      ok = shape.get(i).canConvertToLong() && shape.get(i).asLong() == expected[i];
    }
    if (!ok) {
      throw new TraceFormatException(header, field + ".shape",
          shape + " does not match the header, expected " + java.util.Arrays.toString(expected));
    }
  }

  private static void requireDtype(Path header, JsonNode node, String field, String dtype) throws TraceFormatException {
    String got = text(header, node, field + ".dtype", "dtype");
    if (!dtype.equals(got)) {
      throw new TraceFormatException(header, field + ".dtype", "'" + got + "', expected " + dtype);
    }
  }

  private static String text(Path header, JsonNode node, String field) throws TraceFormatException {
    return text(header, node, field, field);
  }

  private static String text(Path header, JsonNode node, String field, String key) throws TraceFormatException {
    JsonNode v = node.get(key);
    if (v == null || !v.isTextual()) {
      throw new TraceFormatException(header, field, "missing or not a string");
    }
    return v.asText();
  }

  private static int positive(Path header, JsonNode root, String key) throws TraceFormatException {
    int v = integer(header, root, key);
    if (v <= 0) {
      throw new TraceFormatException(header, key, "must be positive, got " + v);
    }
    return v;
  }

  private static int nonNegative(Path header, JsonNode root, String key) throws TraceFormatException {
    int v = integer(header, root, key);
    if (v < 0) {
      throw new TraceFormatException(header, key, "must not be negative, got " + v);
    }
    return v;
  }

  private static int integer(Path header, JsonNode root, String key) throws TraceFormatException {
    JsonNode v = root.get(key);
    if (v == null || !v.canConvertToInt() || !v.isIntegralNumber()) {
      throw new TraceFormatException(header, key, "missing or not an integer");
    }
    return v.asInt();
  }
}
