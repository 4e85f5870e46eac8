package org.hybrimoe.cli;

import java.io.PrintWriter;
import java.util.Collection;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.hybrimoe.policy.sched.SchedulerBenchmark;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code hybrimoe bench-scheduler}: runs the JMH benchmark of one scheduling decision (layer plan
 * plus look-ahead-3 prefetch ranking, 64 experts, top-8) with short settings and prints its time
 * next to the predicted time of the layer it plans: the ratio the benchmark is judged by.
 */
@Command(name = "bench-scheduler", mixinStandardHelpOptions = true,
    description = "JMH benchmark: time of one scheduling decision against the layer it plans.")
public final class BenchSchedulerCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--iterations", defaultValue = "5", description = "measurement iterations of 1 s (default: ${DEFAULT-VALUE})")
  int iterations;

  @Option(names = "--forks", defaultValue = "1", description = "JMH forks (0 runs in this JVM; default: ${DEFAULT-VALUE})")
  int forks;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    Options opt = new OptionsBuilder()
        .include(SchedulerBenchmark.class.getName() + ".decide")
        .warmupIterations(3).warmupTime(TimeValue.seconds(1))
        .measurementIterations(iterations).measurementTime(TimeValue.seconds(1))
        .forks(forks)
        .build();
    Collection<RunResult> results = new Runner(opt).run();
    out.println();
    out.println("one scheduling decision (plan + look-ahead-3 prefetch ranking), Qwen2-57B-A14B shape, paper-a6000 profile:");
    for (RunResult r : results) {
      String tokens = r.getParams().getParam("tokens");
      SchedulerBenchmark b = new SchedulerBenchmark();
      b.tokens = Integer.parseInt(tokens);
      b.setup();
      double layerMs = b.plannedLayerMs();
      double us = r.getPrimaryResult().getScore();
      out.printf(Locale.ROOT, "  tokens %4s: %9.2f us +- %.2f per decision; planned layer %.3f ms; decision / layer = %.4f%n",
          tokens, us, r.getPrimaryResult().getScoreError(), layerMs, us / 1000 / layerMs);
    }
    out.flush();
    return 0;
  }
}
