package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.model.ModelMaker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** bench-decode's byte count against the model's shapes, and the command end to end (tiny). */
class BenchDecodeCommandTest {
  @Test
  void trafficCountsEveryWeightOnceAndTopKExperts(@TempDir Path dir) throws Exception {
    // mixtral: 2 layers, hidden 64, 8 experts of 32, top-2, 4 heads / 2 kv heads, vocab 96, f32
    ModelMaker.Spec s = ModelMaker.Spec.defaults("mixtral");
    ModelMaker.write(s, dir);
    int d = s.hidden();
    int hd = d / s.heads();
    long attention = (long) d * (s.heads() * hd) * 2 + (long) d * (s.kvHeads() * hd) * 2; // q, o; k, v
    long perLayerDense = attention + 2L * d + (long) s.experts() * d; // two norms, router
    long dense = 4 * (s.layers() * perLayerDense + d + (long) s.vocab() * d + d); // + final norm, LM head, 1 row
    long expert = 4L * 3 * d * s.expertFf();
    DecodeTraffic t = DecodeTraffic.of(dir, 0);
    assertEquals(dense, t.denseBytes());
    assertEquals(s.layers() * s.topK() * expert, t.routedBytes());
    assertEquals(s.layers(), t.moeLayers());
    long int4 = DecodeTraffic.convertedExpertBytes(dir, ExpertShape.Format.INT4, 32);
    assertEquals(new ExpertShape(ExpertShape.Format.INT4, d, s.expertFf(), 32).bytes(), int4);
    assertEquals(s.layers() * s.topK() * int4, DecodeTraffic.of(dir, int4).routedBytes());
  }

  @Test
  void measuresTheTinyDemoModel(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("decode.json");
    StringWriter text = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setOut(new PrintWriter(text));
    int rc = cl.execute("bench-decode", "--size", "tiny", "--tokens", "4", "--runs", "1", "--probe-mib", "64",
        "--threads", "1", "--json", json.toString());
    assertEquals(0, rc, text.toString());
    assertTrue(text.toString().contains("of the probe"), text.toString());
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertEquals("deepseek_v2", root.path("model_type").asText());
    assertTrue(root.path("ms_per_token").asDouble() > 0 && root.path("ratio_to_probe").asDouble() > 0, root.toString());
    // tiny demo model: 4 layers of one latent head of kv_lora_rank 64 + rope 16 floats; prompt 8, 4 tokens
    assertEquals(4 * (64 + 16) * 4 * (8 + 4 / 2.0), root.path("kv_cache_bytes_per_token").asDouble(), 1e-9);
  }

  @Test
  void impossibleOptionsAreNamed() {
    StringWriter err = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setErr(new PrintWriter(err));
    assertTrue(cl.execute("bench-decode", "--size", "tiny", "--format", "fp4") != 0);
    assertTrue(err.toString().contains("fp4"), err.toString());
  }
}
