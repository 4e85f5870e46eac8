package org.hybrimoe.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TraceReaderTest {
  @TempDir Path dir;

  private Trace small() {
    return new SyntheticTraceGenerator().shape(16, 4, 3).tokens(50).sequenceLength(20).seed(7).generate();
  }

  private Path written() throws IOException {
    Path d = dir.resolve("t");
    TraceWriter.write(small(), d);
    return d;
  }

  private static String message(Path d) {
    return assertThrows(TraceFormatException.class, () -> TraceReader.read(d)).getMessage();
  }

  private static void editJson(Path d, String from, String to) throws IOException {
    Path j = d.resolve("trace.json");
    String s = Files.readString(j);
    assertTrue(s.contains(from), "fixture lacks " + from);
    Files.writeString(j, s.replace(from, to));
  }

  @Test
  void writeThenReadGivesTheSameRouting() throws IOException {
    Trace a = small();
    Trace b = TraceReader.read(written());
    assertEquals(a.tokens(), b.tokens());
    assertEquals(a.sequenceCount(), b.sequenceCount());
    for (int t = 0; t < a.tokens(); t++) {
      for (int l = 0; l < a.layers(); l++) {
        for (int k = 0; k < a.topK(); k++) {
          assertEquals(a.id(t, l, k), b.id(t, l, k));
        }
      }
    }
    assertEquals(0.25f, b.weight(0, 0, 0), "no weights: 1/topK");
  }

  @Test
  void rejectsTruncatedIdsNamingFileAndField() throws IOException {
    Path d = written();
    try (FileChannel ch = FileChannel.open(d.resolve("ids.bin"), StandardOpenOption.WRITE)) {
      ch.truncate(ch.size() - 1);
    }
    String m = message(d);
    assertTrue(m.contains("ids.bin") && m.contains("ids") && m.contains("truncated"), m);
  }

  @Test
  void rejectsOversizedIds() throws IOException {
    Path d = written();
    Files.write(d.resolve("ids.bin"), new byte[] {1, 2}, StandardOpenOption.APPEND);
    String m = message(d);
    assertTrue(m.contains("ids.bin") && m.contains("oversized"), m);
  }

  @Test
  void rejectsIdAtOrAboveExpertCount() throws IOException {
    Path d = written();
    byte[] b = Files.readAllBytes(d.resolve("ids.bin"));
    b[5] = 16;
    Files.write(d.resolve("ids.bin"), b);
    String m = message(d);
    assertTrue(m.contains("ids[") && m.contains(">= experts = 16"), m);
  }

  @Test
  void rejectsAnExpertChosenTwiceByOneToken() throws IOException {
    Path d = written();
    byte[] b = Files.readAllBytes(d.resolve("ids.bin"));
    b[1] = b[0];
    Files.write(d.resolve("ids.bin"), b);
    assertTrue(message(d).contains("chosen twice"));
  }

  @Test
  void rejectsShapeThatDisagreesWithHeader() throws IOException {
    Path d = written();
    editJson(d, "\"tokens\" : 50", "\"tokens\" : 51");
    String m = message(d);
    assertTrue(m.contains("trace.json") && m.contains("ids.shape"), m);
  }

  @Test
  void rejectsSequencesPastTheEndOrOverlapping() throws IOException {
    Path d = written();
    editJson(d, "\"offset\" : 40", "\"offset\" : 45");
    assertTrue(message(d).contains("sequences[2]"));
    Path d2 = dir.resolve("t2");
    TraceWriter.write(small(), d2);
    editJson(d2, "\"offset\" : 20", "\"offset\" : 10");
    assertTrue(message(d2).contains("overlaps"));
  }

  @Test
  void rejectsWrongFormatMissingFieldsAndMissingFiles() throws IOException {
    Path d = written();
    editJson(d, "moe-routing-trace/1", "moe-routing-trace/9");
    assertTrue(message(d).contains("format"));
    Path d2 = dir.resolve("t2");
    TraceWriter.write(small(), d2);
    editJson(d2, "\"top_k\" : 4,", "");
    assertTrue(message(d2).contains("top_k"));
    Path d3 = dir.resolve("t3");
    TraceWriter.write(small(), d3);
    Files.delete(d3.resolve("ids.bin"));
    assertTrue(message(d3).contains("file not found"));
    assertTrue(message(dir.resolve("nowhere")).contains("trace.json"));
    Path d4 = dir.resolve("t4");
    TraceWriter.write(small(), d4);
    editJson(d4, "\"ids.bin\"", "\"../outside.bin\"");
    assertTrue(message(d4).contains("outside"));
  }

  @Test
  void readsTheRealTrace() throws IOException {
    Trace t = TraceReader.read(SharedTraces.deepseekOrSkip());
    assertEquals(26, t.layers());
    assertEquals(64, t.experts());
    assertEquals(6, t.topK());
    assertEquals(192023, t.tokens());
    assertEquals(Trace.SlotOrder.UNORDERED, t.slotOrder());
    assertEquals(1999, t.sequenceCount());
  }
}
