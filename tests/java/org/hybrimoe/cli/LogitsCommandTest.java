package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code logits} on the Mixtral fixture laid out as a model directory, and its errors. */
class LogitsCommandTest {
  static Path fixtures() {
    return org.hybrimoe.SharedFixtures.moeTiny();
  }

  @Test
  void jsonLogitsOfAModelDirectoryMatchHuggingFace(@TempDir Path tmp) throws Exception {
    Path fx = fixtures();
    Assumptions.assumeTrue(fx != null, "fixtures absent");
    Files.copy(fx.resolve("mixtral_tiny_config.json"), tmp.resolve("config.json"));
    Files.createSymbolicLink(tmp.resolve("model.safetensors"), fx.resolve("full_mixtral.safetensors").toAbsolutePath());
    JsonNode ref = new ObjectMapper().readTree(fx.resolve("full_mixtral.json").toFile());
    CommandLine cl = Main.commandLine();
    StringWriter out = new StringWriter();
    cl.setOut(new PrintWriter(out));
    assertEquals(0, cl.execute("logits", "--model", tmp.toString(), "--tokens", "22,25,29,38,36", "--json", "--threads", "1"));
    JsonNode logits = new ObjectMapper().readTree(out.toString()).get("logits");
    assertEquals(5, logits.size());
    double err = 0;
    for (int t = 0; t < 5; t++) {
      assertEquals(48, logits.get(t).size());
      for (int i = 0; i < 48; i++) {
        err = Math.max(err, Math.abs(logits.get(t).get(i).asDouble() - ref.get("hf_logits").get(t * 48 + i).asDouble()));
      }
    }
    assertTrue(err < 1e-4, "max error " + err);
  }

  @Test
  void missingDirectoryIsAnErrorNotACrash(@TempDir Path tmp) {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setErr(new PrintWriter(err));
    assertNotEquals(0, cl.execute("logits", "--model", tmp.toString(), "--tokens", "1,2"));
    assertTrue(err.toString().contains("config.json"), err.toString());
  }

  @Test
  void makeModelWritesADirectoryThatLogitsRuns(@TempDir Path tmp) throws Exception {
    Path dir = tmp.resolve("m");
    CommandLine mk = Main.commandLine();
    mk.setOut(new PrintWriter(new StringWriter()));
    assertEquals(0, mk.execute("make-model", "--arch", "qwen3_moe", "--layers", "2", "--hidden", "32",
        "--experts", "4", "--top-k", "2", "--vocab", "40", "--seed", "5", "--dtype", "bf16",
        "--layout", "classic", "--shards", "2", "--out", dir.toString()));
    assertTrue(Files.exists(dir.resolve("config.json")));
    assertTrue(Files.exists(dir.resolve("model.safetensors.index.json")));
    CommandLine cl = Main.commandLine();
    StringWriter out = new StringWriter();
    cl.setOut(new PrintWriter(out));
    assertEquals(0, cl.execute("logits", "--model", dir.toString(), "--tokens", "1,2,3", "--json", "--threads", "1"));
    JsonNode logits = new ObjectMapper().readTree(out.toString()).get("logits");
    assertEquals(3, logits.size());
    assertEquals(40, logits.get(2).size());
    // Experts converted to int8 at load: close to, but not equal to, the bf16 run.
    StringWriter q = new StringWriter();
    CommandLine cq = Main.commandLine();
    cq.setOut(new PrintWriter(q));
    assertEquals(0, cq.execute("logits", "--model", dir.toString(), "--tokens", "1,2,3", "--json", "--threads", "1",
        "--experts", "int8"));
    JsonNode ql = new ObjectMapper().readTree(q.toString()).get("logits");
    double diff = 0;
    for (int i = 0; i < 40; i++) {
      diff = Math.max(diff, Math.abs(ql.get(2).get(i).asDouble() - logits.get(2).get(i).asDouble()));
    }
    assertTrue(diff > 0 && diff < 0.05, "int8 vs bf16 experts: " + diff);
    // Same seed, same model: deterministic output.
    Path dir2 = tmp.resolve("m2");
    assertEquals(0, mk.execute("make-model", "--arch", "qwen3_moe", "--layers", "2", "--hidden", "32",
        "--experts", "4", "--top-k", "2", "--vocab", "40", "--seed", "5", "--dtype", "bf16",
        "--layout", "classic", "--shards", "2", "--out", dir2.toString()));
    assertEquals(-1L, Files.mismatch(dir.resolve("model-00001-of-00002.safetensors"),
        dir2.resolve("model-00001-of-00002.safetensors")));
  }

  @Test
  void makeModelWritesAnFp8ModelWithTheGivenBlockThatLogitsRuns(@TempDir Path tmp) throws Exception {
    Path dir = tmp.resolve("fp8");
    CommandLine mk = Main.commandLine();
    mk.setOut(new PrintWriter(new StringWriter()));
    assertEquals(0, mk.execute("make-model", "--arch", "deepseek_v3", "--layers", "2", "--vocab", "40",
        "--dtype", "fp8", "--fp8-block", "16,8", "--out", dir.toString()));
    JsonNode q = new ObjectMapper().readTree(dir.resolve("config.json").toFile()).get("quantization_config");
    assertEquals("[16,8]", q.get("weight_block_size").toString());
    CommandLine cl = Main.commandLine();
    StringWriter out = new StringWriter();
    cl.setOut(new PrintWriter(out));
    assertEquals(0, cl.execute("logits", "--model", dir.toString(), "--tokens", "1,2,3", "--json", "--threads", "1"));
    JsonNode logits = new ObjectMapper().readTree(out.toString()).get("logits");
    assertEquals(40, logits.get(2).size());
    for (JsonNode v : logits.get(2)) {
      assertTrue(Double.isFinite(v.asDouble()), "logit " + v);
    }
    StringWriter err = new StringWriter();
    CommandLine bad = Main.commandLine();
    bad.setErr(new PrintWriter(err));
    assertNotEquals(0, bad.execute("make-model", "--arch", "mixtral", "--dtype", "fp8", "--fp8-block", "16",
        "--out", tmp.resolve("bad").toString()));
    assertTrue(err.toString().contains("--fp8-block must be ROWS,COLS"), err.toString());
  }

  @Test
  void makeModelTakesMlaSizesAndTheContextLength(@TempDir Path tmp) throws Exception {
    Path dir = tmp.resolve("mla");
    CommandLine mk = Main.commandLine();
    mk.setOut(new PrintWriter(new StringWriter()));
    assertEquals(0, mk.execute("make-model", "--arch", "deepseek_v2", "--layers", "2", "--heads", "2", "--vocab", "40",
        "--kv-lora-rank", "24", "--rope-dim", "6", "--nope-dim", "10", "--v-dim", "12", "--max-positions", "1000",
        "--out", dir.toString()));
    JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    assertEquals(24, c.get("kv_lora_rank").asInt());
    assertEquals(6, c.get("qk_rope_head_dim").asInt());
    assertEquals(10, c.get("qk_nope_head_dim").asInt());
    assertEquals(12, c.get("v_head_dim").asInt());
    assertEquals(1000, c.get("max_position_embeddings").asInt());
    CommandLine cl = Main.commandLine();
    StringWriter out = new StringWriter();
    cl.setOut(new PrintWriter(out));
    assertEquals(0, cl.execute("logits", "--model", dir.toString(), "--tokens", "1,2,3", "--json", "--threads", "1"));
    assertEquals(40, new ObjectMapper().readTree(out.toString()).get("logits").get(2).size());
  }

  @Test
  void makeModelRejectsAnUnknownArchitecture(@TempDir Path tmp) {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setErr(new PrintWriter(err));
    assertNotEquals(0, cl.execute("make-model", "--arch", "gpt2", "--out", tmp.toString()));
    assertTrue(err.toString().contains("arch must be one of"), err.toString());
  }
}
