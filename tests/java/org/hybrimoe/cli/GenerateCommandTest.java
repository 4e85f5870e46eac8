package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.hybrimoe.model.ModelMaker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** generate and demo end to end at tiny sizes: text on stdout, the summary and progress on stderr. */
class GenerateCommandTest {
  record Run(int rc, String out, String err) {}

  static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int rc = cl.execute(args);
    return new Run(rc, out.toString(), err.toString());
  }

  /**
   * generate --trace records the routing as the model made it (ids, weights, probabilities, the
   * look-ahead's predictions), the trace reads back, its ids are the routing the model would make
   * (the same tokens again give the same trace), and simulate runs on it, using its predictions.
   */
  @Test
  void generateTraceRoundTripsIntoSimulate(@TempDir Path dir) throws Exception {
    Path model = dir.resolve("m");
    ModelMaker.write(ModelMaker.Spec.defaults("mixtral").withVocab(600).withLayers(4), model);
    Path trace = dir.resolve("trace");
    Run r = run("generate", "--model", model.toString(), "--tokens", "5,17,3,40,22,9,31,8", "--max-tokens", "40",
        "--ignore-eos", "--device", "cpu", "--threads", "1", "--trace", trace.toString());
    assertEquals(0, r.rc(), r.err());
    assertTrue(r.err().contains("routing trace written to"), r.err());
    assertTrue(r.err().contains("look-ahead accuracy measured: d=1"), r.err());
    org.hybrimoe.sim.Trace t = org.hybrimoe.sim.TraceReader.read(trace);
    assertEquals(8 + 39, t.tokens(), "prompt + every generated token but the last, which is never fed back");
    assertEquals(4, t.layers());
    assertTrue(t.hasWeights() && t.hasScores() && t.hasPredicted());
    assertEquals(3, t.predictedDepth());
    assertEquals(1, t.sequenceCount());
    int[] ids = new int[t.topK()];
    float sum = 0;
    for (int e = 0; e < t.experts(); e++) {
      sum += t.score(0, 0, e);
    }
    assertEquals(1.0, sum, 1e-4, "a token's probabilities over the experts sum to 1 (softmax router)");
    t.ids(0, 0, ids, 0);
    assertTrue(t.score(0, 0, ids[0]) >= t.score(0, 0, ids[1]), "slots in rank order");
    double[] acc = org.hybrimoe.sim.LookaheadAccuracy.measure(t);
    assertEquals(3, acc.length);
    for (double a : acc) {
      assertTrue(a >= 0 && a <= 1, "accuracy " + a);
    }
    Path again = dir.resolve("again");
    assertEquals(0, run("generate", "--model", model.toString(), "--tokens", "5,17,3,40,22,9,31,8", "--max-tokens",
        "40", "--ignore-eos", "--device", "cpu", "--threads", "1", "--trace", again.toString()).rc());
    assertTrue(java.util.Arrays.equals(Files.readAllBytes(trace.resolve("ids.bin")),
        Files.readAllBytes(again.resolve("ids.bin"))), "the same greedy run records the same routing");
    Path shape = dir.resolve("shape.json"); // the recorded model's own MoE shape
    Files.writeString(shape, String.format("{\"name\":\"tiny\",\"moe_layers\":%d,\"experts\":%d,\"top_k\":%d,"
        + "\"shared_experts\":0,\"hidden_size\":%d,\"moe_intermediate_size\":%d}", t.layers(), t.experts(), t.topK(),
        t.hiddenSize(), t.moeIntermediateSize()));
    Run s = run("simulate", "--trace", trace.toString(), "--model-shape", shape.toString(), "--cache-ratio", "0.5",
        "--bundles", "hybrimoe", "--prompts", "1");
    assertEquals(0, s.rc(), s.err());
    assertTrue(s.out().contains("HybriMoE speedup over kTransformers-like"), s.out());
  }

  @Test
  void generateStreamsTextThenASummary(@TempDir Path dir) throws Exception {
    Path model = dir.resolve("m");
    ModelMaker.write(ModelMaker.Spec.defaults("mixtral").withVocab(600).withLayers(3), model);
    Path svg = dir.resolve("t.svg");
    Run r = run("generate", "--model", model.toString(), "--prompt", "Once upon a time", "--max-tokens", "6",
        "--ignore-eos", "--device", "emulated", "--cache-ratio", "0.5", "--bundle", "hybrimoe", "--threads", "1",
        "--timeline", svg.toString(), "--dense", "device");
    assertEquals(0, r.rc(), r.err());
    // 3 layers x (q, k, v, o) and the LM head on the emulated dense device
    assertTrue(r.err().contains("dense linears: 13 on the device"), r.err());
    assertTrue(r.err().contains("finish: max_tokens after 6 new tokens"), r.err());
    assertTrue(r.err().contains("ms/token") && r.err().contains("cache hit rate"), r.err());
    assertTrue(r.err().contains("loading:"), "progress while loading: " + r.err());
    assertTrue(Files.readString(svg).contains("GPU measured"));
  }

  @Test
  void badOptionsAreNamed(@TempDir Path dir) throws Exception {
    Path model = dir.resolve("m");
    ModelMaker.write(ModelMaker.Spec.defaults("mixtral").withVocab(600).withLayers(2), model);
    Run r = run("generate", "--model", model.toString(), "--prompt", "x", "--gpu-memory", "lots");
    assertTrue(r.rc() != 0 && r.err().contains("--gpu-memory"), r.err());
    r = run("generate", "--model", model.toString(), "--prompt", "x", "--dense", "tpu");
    assertTrue(r.rc() != 0 && r.err().contains("--dense"), r.err());
    r = run("generate", "--model", model.toString(), "--prompt", "x", "--device", "cpu", "--dense", "device");
    assertTrue(r.rc() != 0 && r.err().contains("dense"), r.err());
    r = run("generate", "--model", model.toString(), "--prompt", "x", "--bundle", "fastest");
    assertTrue(r.rc() != 0 && r.err().contains("fastest"), r.err());
    r = run("generate", "--model", dir.resolve("missing").toString(), "--prompt", "x");
    assertTrue(r.rc() != 0 && r.err().contains("config.json"), r.err());
    r = run("generate", "--model", model.toString(), "--prompt", "x", "--device", "emulated", "--gpu-memory", "1K");
    assertTrue(r.rc() != 0 && r.err().contains("GPU budget"), r.err());
  }

  @Test
  void parseBytesUnderstandsUnits() {
    assertEquals(8L << 30, LoadMixin.parseBytes("8G"));
    assertEquals(512L << 20, LoadMixin.parseBytes("512MiB"));
    assertEquals(3L << 29, LoadMixin.parseBytes("1.5GB"));
    assertEquals(1000, LoadMixin.parseBytes("1000"));
  }

  @Test
  void demoComparesBundlesAndDrawsATimeline(@TempDir Path dir) throws Exception {
    Path svg = dir.resolve("demo.svg");
    Run r = run("demo", "--size", "tiny", "--device", "emulated", "--bundles", "ktransformers,hybrimoe",
        "--prompt-tokens", "4", "--decode-tokens", "3", "--runs", "1", "--threads", "1", "--timeline", svg.toString());
    assertEquals(0, r.rc(), r.out() + r.err());
    assertTrue(r.out().contains("ktransformers-like") && r.out().contains("hybrimoe"), r.out());
    assertTrue(r.out().contains("1.00x"), "the baseline's own speedup: " + r.out());
    assertTrue(r.out().contains("no GPU here"), r.out());
    assertTrue(Files.readString(svg).contains("PCIe predicted"));
  }
}
