package org.hybrimoe.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cache.MrsCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The optional arrays (weights, scores, predicted) of an engine-written trace. */
class TraceArraysTest {
  @TempDir Path dir;

  // 3 tokens, 2 layers, 4 experts, top-2, uint16 ids, look-ahead depth 1
  private static Trace full() {
    int T = 3, L = 2, E = 4, K = 2, D = 1;
    ByteBuffer ids = ByteBuffer.allocate(T * L * K * 2).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer w = ByteBuffer.allocate(T * L * K * 4).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer s = ByteBuffer.allocate(T * L * E * 4).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer p = ByteBuffer.allocate(T * L * D * K * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int t = 0; t < T; t++) {
      for (int l = 0; l < L; l++) {
        int a = (t + l) % E;
        int b = (t + l + 1) % E;
        int i = (t * L + l) * K;
        ids.putShort(2 * i, (short) a).putShort(2 * i + 2, (short) b);
        w.putFloat(4 * i, 0.7f).putFloat(4 * i + 4, 0.3f);
        for (int e = 0; e < E; e++) {
          s.putFloat(4 * ((t * L + l) * E + e), e == a ? 0.6f : e == b ? 0.3f : 0.05f);
        }
        p.putShort(2 * i, (short) b).putShort(2 * i + 2, (short) ((b + 1) % E));
      }
    }
    return new Trace("engine", L, 0, E, 0, K, 8, 8, T, Trace.SlotOrder.RANK, 2, ids, w, s, p, D,
        new Trace.Sequence[] {new Trace.Sequence(0, T)});
  }

  @Test
  void weightsScoresAndPredictionsRoundTrip() throws IOException {
    Path d = dir.resolve("full");
    TraceWriter.write(full(), d);
    Trace t = TraceReader.read(d);
    assertEquals(2, t.idBytes());
    assertEquals(0.7f, t.weight(1, 1, 0));
    assertEquals(0.6f, t.score(2, 0, t.id(2, 0, 0)));
    assertEquals(0.05f, t.score(2, 0, (t.id(2, 0, 1) + 1) % 4));
    assertEquals(1, t.predictedDepth());
    assertEquals(t.id(1, 0, 1), t.predicted(1, 0, 1, 0));
    // MRS uses the real probabilities when the trace has them (top-P = 2 * topK = all 4 here)
    MrsCache m = new MrsCache(2, 4, 4, ExpertCache.Capacity.PER_LAYER, 0.5, 0);
    float[] row = new float[4];
    for (int e = 0; e < 4; e++) {
      row[e] = t.score(0, 0, e);
    }
    m.observe(0, new int[] {t.id(0, 0, 0), t.id(0, 0, 1)}, 1, 2, row);
    assertEquals(0.3, m.score(0, t.id(0, 0, 0)), 1e-6);
  }

  @Test
  void rejectsTruncatedScoresAndOutOfRangePredictions() throws IOException {
    Path d = dir.resolve("a");
    TraceWriter.write(full(), d);
    byte[] sc = Files.readAllBytes(d.resolve("scores.f32"));
    Files.write(d.resolve("scores.f32"), java.util.Arrays.copyOf(sc, sc.length - 4));
    String m = assertThrows(TraceFormatException.class, () -> TraceReader.read(d)).getMessage();
    assertTrue(m.contains("scores.f32") && m.contains("scores") && m.contains("truncated"), m);

    Path d2 = dir.resolve("b");
    TraceWriter.write(full(), d2);
    ByteBuffer p = ByteBuffer.wrap(Files.readAllBytes(d2.resolve("predicted.bin"))).order(ByteOrder.LITTLE_ENDIAN);
    p.putShort(6, (short) 9);
    Files.write(d2.resolve("predicted.bin"), p.array());
    m = assertThrows(TraceFormatException.class, () -> TraceReader.read(d2)).getMessage();
    assertTrue(m.contains("predicted[3]") && m.contains("9 >= experts = 4"), m);

    Path d3 = dir.resolve("c");
    TraceWriter.write(full(), d3);
    Path j = d3.resolve("trace.json");
    Files.writeString(j, Files.readString(j).replaceFirst("\"float32\"", "\"float16\""));
    m = assertThrows(TraceFormatException.class, () -> TraceReader.read(d3)).getMessage();
    assertTrue(m.contains("weights.dtype") && m.contains("float16"), m);
  }
}
