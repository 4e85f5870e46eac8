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

class SimulateCommandTest {
  @TempDir Path dir;

  private record Run(int code, String out, String err) {}

  private static Run run(String... args) {
    CommandLine cl = Main.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int code = cl.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void syntheticRunPrintsTablesAndWritesJsonAndSvg() throws Exception {
    Path json = dir.resolve("r.json");
    Path svg = dir.resolve("g.svg");
    Run r = run("simulate", "--synthetic", "--model-shape", "mixtral-8x7b", "--cache-ratio", "0.25,0.5",
        "--input-lengths", "16,64", "--decode-tokens", "60", "--decode-warmup", "10", "--prompts", "1",
        "--profile-tokens", "500", "--hit-rate-tokens", "300", "--json", json.toString(), "--svg", svg.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("HybriMoE speedup over kTransformers-like"), r.out());
    assertTrue(r.out().contains("Ablation"), r.out());
    assertTrue(r.out().contains("Belady"), r.out());
    assertTrue(r.out().contains("hybrimoe / oracle"), r.out());
    assertTrue(r.out().contains("average HybriMoE / oracle time: prefill"), r.out());
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    JsonNode first = root.get("results").get(0);
    for (String k : new String[] {"bundle", "cache_ratio", "phase", "input_length", "ms", "vs_oracle", "hit_rate",
        "bytes_moved"}) {
      assertTrue(first.has(k), "missing " + k);
    }
    // 10 engine bundles (gpu-only among them) and the oracle x 2 ratios x (2 prefill + 1 decode)
    assertEquals(11 * 2 * 3, root.get("results").size());
    for (JsonNode row : root.get("results")) {
      double vs = row.get("vs_oracle").asDouble();
      if (row.get("bundle").asText().equals("oracle")) {
        assertEquals(1.0, vs, 1e-12);
      } else {
        assertTrue(vs > 0 && Double.isFinite(vs), row.toString());
      }
    }
    JsonNode summary = root.get("hybrimoe_summary");
    assertTrue(summary.get("vs_oracle").get("decode").asDouble() > 0, summary.toString());
    assertTrue(summary.get("speedup_over_ktransformers").get("prefill").asDouble() > 0, summary.toString());
    assertTrue(root.get("hit_rates").get(0).has("policy"));
    assertTrue(Files.readString(svg).contains("<svg"));
    assertTrue(Files.exists(dir.resolve("g-prefill.svg")));
  }

  /** A real trace shorter than the defaults: they fit themselves to it and the run says so. */
  @Test
  void shortRealTraceRunsOnItsDefaults() {
    Path trace = org.hybrimoe.sim.SharedTraces.mixtralOrSkip();
    Run r = run("simulate", "--trace", trace.toString(), "--model-shape", "mixtral-8x7b", "--cache-ratio", "0.25",
        "--bundles", "hybrimoe", "--prompts", "1");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("defaults fitted to the trace's"), r.out());
    assertTrue(r.out().contains("HybriMoE speedup over kTransformers-like"), r.out());
    assertTrue(r.out().contains("hybrimoe / oracle"), r.out()); // the oracle runs whatever --bundles says
    r = run("simulate", "--trace", trace.toString(), "--model-shape", "mixtral-8x7b", "--profile-tokens", "100000");
    assertEquals(1, r.code());
    assertTrue(r.err().contains("--profile-tokens 100000"), r.err());
  }

  @Test
  void badInputsGiveClearErrors() {
    Run r = run("simulate", "--synthetic", "--cache-ratio", "1.5");
    assertEquals(1, r.code());
    assertTrue(r.err().contains("--cache-ratio 1.5"), r.err());
    r = run("simulate", "--synthetic", "--model-shape", "gpt-9");
    assertTrue(r.err().contains("unknown model shape 'gpt-9'"), r.err());
    r = run("simulate", "--synthetic", "--profile", "nowhere-gpu");
    assertTrue(r.err().contains("unknown hardware profile 'nowhere-gpu'"), r.err());
    r = run("simulate", "--trace", dir.resolve("missing").toString());
    assertTrue(r.err().contains("trace.json"), r.err());
    r = run("simulate", "--synthetic", "--bundles", "nope");
    assertTrue(r.err().contains("unknown bundle 'nope'"), r.err());
  }
}
