package org.hybrimoe;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where ../shared/fixtures/moe-tiny is for tests: the system property hybrimoe.shared (the pom sets
 * it), else the environment variable HYBRIMOE_SHARED; null where absent (tests then skip).
 */
public final class SharedFixtures {
  private SharedFixtures() {}

  /** The moe-tiny fixtures folder, or null. */
  public static Path moeTiny() {
    for (String root : new String[] {System.getProperty("hybrimoe.shared"), System.getenv("HYBRIMOE_SHARED")}) {
      if (root != null && Files.isDirectory(Path.of(root, "fixtures", "moe-tiny"))) {
        return Path.of(root, "fixtures", "moe-tiny").toAbsolutePath();
      }
    }
    return null;
  }
}
