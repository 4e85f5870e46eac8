package org.hybrimoe.cli;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.sched.SchedulerBenchmark;
import org.junit.jupiter.api.Test;

class BenchSchedulerCommandTest {
  @Test
  void jmhBenchmarkListIsGeneratedForTheJar() throws Exception {
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("META-INF/BenchmarkList")) {
      assertNotNull(in, "JMH annotation processor did not run: no META-INF/BenchmarkList");
      String list = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(list.contains(SchedulerBenchmark.class.getName()), list);
    }
  }

  @Test
  void benchmarkStatePlansALayerThatTakesTime() {
    SchedulerBenchmark b = new SchedulerBenchmark();
    b.tokens = 1;
    b.setup();
    assertTrue(b.plannedLayerMs() > 0.5);
    assertNotNull(b.decide());
  }

  @Test
  void bundlesAreFoundByNameAndUnknownOnesNamed() {
    assertTrue(PolicyBundle.byName("HybriMoE") == PolicyBundle.HYBRIMOE);
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> PolicyBundle.byName("vllm"));
    assertTrue(e.getMessage().contains("ktransformers-like"));
  }
}
