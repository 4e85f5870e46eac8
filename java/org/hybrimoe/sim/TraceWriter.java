package org.hybrimoe.sim;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Writes a {@link Trace} as a trace directory that {@link TraceReader} reads back unchanged. */
public final class TraceWriter {
  private static final ObjectMapper JSON = new ObjectMapper();

  private TraceWriter() {}

  /** Writes trace.json and the raw arrays (ids.bin, weights.f32, scores.f32, predicted.bin) into dir. */
  public static void write(Trace trace, Path dir) throws IOException {
    Files.createDirectories(dir);
    String dtype = trace.idBytes() == 1 ? "uint8" : "uint16";
    ObjectNode root = JSON.createObjectNode();
    root.put("format", TraceReader.FORMAT);
    root.put("model", trace.model());
    root.put("moe_layers", trace.layers());
    root.put("first_moe_layer", trace.firstMoeLayer());
    root.put("experts", trace.experts());
    root.put("shared_experts", trace.sharedExperts());
    root.put("top_k", trace.topK());
    root.put("hidden_size", trace.hiddenSize());
    root.put("moe_intermediate_size", trace.moeIntermediateSize());
    root.put("tokens", trace.tokens());
    ObjectNode ids = root.putObject("ids");
    ids.put("file", "ids.bin");
    ids.put("dtype", dtype);
    shape(ids, trace.tokens(), trace.layers(), trace.topK());
    ids.put("slot_order", trace.slotOrder() == Trace.SlotOrder.RANK ? "rank" : "unordered");
    dump(dir.resolve("ids.bin"), trace.idsBuffer());
    if (trace.hasWeights()) {
      ObjectNode w = root.putObject("weights");
      w.put("file", "weights.f32");
      w.put("dtype", "float32");
      shape(w, trace.tokens(), trace.layers(), trace.topK());
      dump(dir.resolve("weights.f32"), trace.weightsBuffer());
    } else {
      root.putNull("weights");
    }
    if (trace.hasScores()) {
      ObjectNode s = root.putObject("scores");
      s.put("file", "scores.f32");
      s.put("dtype", "float32");
      shape(s, trace.tokens(), trace.layers(), trace.experts());
      dump(dir.resolve("scores.f32"), trace.scoresBuffer());
    } else {
      root.putNull("scores");
    }
    if (trace.hasPredicted()) {
      ObjectNode p = root.putObject("predicted");
      p.put("file", "predicted.bin");
      p.put("dtype", dtype);
      shape(p, trace.tokens(), trace.layers(), trace.predictedDepth(), trace.topK());
      dump(dir.resolve("predicted.bin"), trace.predictedBuffer());
    } else {
      root.putNull("predicted");
    }
    ArrayNode seqs = root.putArray("sequences");
    for (int i = 0; i < trace.sequenceCount(); i++) {
      ObjectNode s = seqs.addObject();
      s.put("offset", trace.sequence(i).offset());
      s.put("tokens", trace.sequence(i).tokens());
    }
    JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("trace.json").toFile(), root);
  }

  private static void shape(ObjectNode node, int... dims) {
    ArrayNode a = node.putArray("shape");
    for (int d : dims) {
      a.add(d);
    }
  }

  private static void dump(Path file, ByteBuffer data) throws IOException {
    ByteBuffer b = data.duplicate();
    b.position(0);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
  }
}
