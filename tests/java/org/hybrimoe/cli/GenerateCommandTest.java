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
