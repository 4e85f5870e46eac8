package org.hybrimoe.api;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.hybrimoe.model.ModelMaker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's Java example, compiled and run here, and checked to be the README's own lines. */
class ReadmeExampleTest {
  // The README's lines, verbatim (between the markers).
  static void example(Path dir) throws IOException {
    // --- README ---
    try (Model model = Model.load(dir, ModelOptions.builder().cacheRatio(0.25).bundle("hybrimoe").build())) {
      GenerateRequest request = GenerateRequest.builder()
          .message("user", "Name three prime numbers.").maxTokens(64).temperature(0.7).seed(1).build();
      GenerationResult r = model.generate(request, token -> System.out.print(token.text()));
      System.out.printf("%n%s after %d tokens, %.1f tok/s, TTFT %.0f ms, cache hit rate %.0f%%%n",
          r.finishReason(), r.tokens().length, r.timings().tokensPerSecond(), r.timings().ttftMs(),
          100 * r.stats().hitRate());
    }
    // --- end ---
  }

  @Test
  void readmeExampleRuns(@TempDir Path tmp) throws IOException {
    Path dir = tmp.resolve("m");
    ModelMaker.write(ModelMaker.Spec.defaults("qwen2_moe").withVocab(400).withLayers(2), dir);
    example(dir);
  }

  @Test
  void readmeShowsTheseLines() throws IOException {
    String source = Files.readString(Path.of("tests/java/org/hybrimoe/api/ReadmeExampleTest.java"));
    String begin = "// --- README ---";
    String block = source.substring(source.indexOf(begin) + begin.length(), source.indexOf("    // --- end ---"));
    String readme = Files.readString(Path.of("README.md"));
    List<String> lines = block.lines().filter(l -> !l.isBlank()).toList();
    assertTrue(lines.size() >= 6);
    for (String line : lines) {
      assertTrue(readme.contains(line.substring(4)), "README.md lacks: " + line.strip());
    }
  }
}
