package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** bench-dense end to end on the emulated device (one layer, a small head), and refused options. */
class BenchDenseCommandTest {
  @Test
  void measuresOneLayerOnTheEmulatedDevice(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("dense.json");
    StringWriter text = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setOut(new PrintWriter(text));
    int rc = cl.execute("bench-dense", "--device", "emulated", "--layers", "1", "--vocab", "1000", "--reps", "2",
        "--prefill-tokens", "3", "--threads", "1", "--context", "40", "--json", json.toString());
    assertEquals(0, rc, text.toString());
    assertTrue(text.toString().contains("device over CPU"), text.toString());
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    // deepseek-v2-lite: q_proj 3072 x 2048, kv_a 576 x 2048, o_proj 2048 x 2048, head 1000 x 2048, bf16
    assertEquals(2L * 2048 * (3072 + 576 + 2048 + 1000), root.path("dense_bytes_per_token").asLong());
    assertTrue(root.path("device_over_cpu").asDouble() > 0 && root.path("probe_gbps").asDouble() > 0, root.toString());
    assertEquals("MLA", root.path("attention_form").asText());
    assertEquals(40, root.path("attention_context").asInt());
    assertTrue(root.path("attention_device_over_cpu").asDouble() > 0, root.toString());
  }

  @Test
  void impossibleOptionsAreNamed() {
    for (String[] args : new String[][] {{"--shape", "llama"}, {"--device", "tpu"}, {"--layers", "0"}, {"--context", "-1"}}) {
      StringWriter err = new StringWriter();
      CommandLine cl = Main.commandLine();
      cl.setErr(new PrintWriter(err));
      String[] full = new String[args.length + 1];
      full[0] = "bench-dense";
      System.arraycopy(args, 0, full, 1, args.length);
      assertNotEquals(0, cl.execute(full));
      assertTrue(err.toString().contains(args[0].substring(2)), err.toString());
    }
  }
}
