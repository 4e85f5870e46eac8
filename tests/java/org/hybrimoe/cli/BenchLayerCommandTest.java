package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** bench-layer end to end at a tiny size: a row per bundle, ratio and phase, JSON and the SVG. */
class BenchLayerCommandTest {
  @Test
  void measuresAndPredictsEveryConfiguration(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("layer.json");
    Path svg = dir.resolve("layer.svg");
    StringWriter text = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setOut(new PrintWriter(text));
    int rc = cl.execute("bench-layer", "--emulated", "--shapes", "mixtral-8x7b,deepseek-v2-lite", "--bundles",
        "hybrimoe,ktransformers-like,adapmoe-like", "--ratios", "0.25,0.75", "--layers", "2", "--budget-mb", "2",
        "--decode", "3", "--prompt", "5", "--json", json.toString(), "--timeline", svg.toString());
    assertEquals(0, rc, text.toString());
    assertTrue(text.toString().contains("scaled: d_model 4096->"), text.toString());
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertEquals(2 * 3 * 2 * 2, root.path("results").size());
    for (JsonNode r : root.path("results")) {
      assertTrue(r.path("measured_ms_median").asDouble() > 0, r.toString());
      assertTrue(r.path("predicted_ms_median").asDouble() > 0, r.toString());
      assertTrue(r.has("mean_abs_error_pct"));
    }
    String picture = Files.readString(svg);
    assertTrue(picture.contains("GPU measured") && picture.contains("PCIe predicted"));
  }

  @Test
  void impossibleOptionsAreNamed() {
    StringWriter err = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setErr(new PrintWriter(err));
    int rc = cl.execute("bench-layer", "--emulated", "--ratios", "1.5");
    assertTrue(rc != 0);
    assertTrue(err.toString().contains("1.5"), err.toString());
  }
}
