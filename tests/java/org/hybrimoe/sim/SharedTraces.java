package org.hybrimoe.sim;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/** Locates ../shared (system property hybrimoe.shared, else ../shared from the working directory). */
public final class SharedTraces {
  private SharedTraces() {}

  /** The real DeepSeek-V2-Lite trace directory; skips the calling test where it is absent. */
  public static Path deepseekOrSkip() {
    return orSkip("deepseek-v2-lite-puffin");
  }

  /** The real Mixtral-8x7B decode trace (a few hundred tokens); skips where it is absent. */
  public static Path mixtralOrSkip() {
    return orSkip("mixtral-8x7b-gsm8k");
  }

  private static Path orSkip(String name) {
    String prop = System.getProperty("hybrimoe.shared");
    Path shared = prop != null ? Path.of(prop) : Path.of(System.getProperty("user.dir")).resolve("../shared");
    Path dir = shared.resolve("traces").resolve(name);
    Assumptions.assumeTrue(Files.isRegularFile(dir.resolve("trace.json")), "real trace absent: " + dir);
    return dir;
  }
}
