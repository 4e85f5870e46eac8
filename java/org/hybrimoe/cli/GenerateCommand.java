package org.hybrimoe.cli;

import java.io.File;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.hybrimoe.api.GenerateRequest;
import org.hybrimoe.api.GenerationResult;
import org.hybrimoe.api.Model;
import org.hybrimoe.api.ModelOptions;
import org.hybrimoe.hybrid.LayerTimeline;
import org.hybrimoe.sim.LookaheadAccuracy;
import org.hybrimoe.sim.Trace;
import org.hybrimoe.sim.TraceRecorder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code generate}: loads a model directory with the hybrid executor and streams the text of one
 * request to stdout; the summary (timings, statistics) and the loading progress go to stderr.
 */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = "Generate text from a prompt with hybrid CPU-GPU MoE execution.")
final class GenerateCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "Model directory in HuggingFace layout.")
  Path model;

  @Option(names = "--prompt", description = "The prompt text.")
  String prompt;

  @Option(names = "--chat", description = "Send the prompt as a user message through the model's chat template.")
  boolean chat;

  @Option(names = "--system", description = "A system message (with --chat).")
  String system;

  @Option(names = "--tokens", split = ",", description = "The prompt as token ids (instead of --prompt).")
  int[] tokens;

  @Option(names = "--max-tokens", defaultValue = "128", description = "New tokens at most (default ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0: greedy (default).")
  double temperature;

  @Option(names = "--top-k", defaultValue = "0", description = "Sample among the k most likely (0: off).")
  int topK;

  @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling threshold (1: off).")
  double topP;

  @Option(names = "--seed", description = "Sampling seed.")
  Long seed;

  @Option(names = "--stop", description = "Stop string (repeatable).")
  List<String> stop = List.of();

  @Option(names = "--ignore-eos", description = "Keep generating past end-of-sequence tokens.")
  boolean ignoreEos;

  @Mixin LoadMixin load;

  @Option(names = "--timeline", description = "Write one MoE layer's measured and predicted timeline (SVG).")
  File timeline;

  @Option(names = "--trace", paramLabel = "DIR", description = "Record the routing (ids, weights, every expert's "
      + "probability, the look-ahead's predictions for the next 3 MoE layers) as a moe-routing-trace/1 directory "
      + "that simulate reads.")
  Path trace;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    GenerateRequest.Builder rb = GenerateRequest.builder().maxTokens(maxTokens).temperature(temperature).topK(topK)
        .topP(topP).ignoreEos(ignoreEos).stop(stop.toArray(String[]::new));
    if (seed != null) {
      rb.seed(seed);
    }
    if ((prompt == null) == (tokens == null)) {
      throw new IllegalArgumentException("give exactly one of --prompt or --tokens");
    }
    if (tokens != null) {
      rb.promptTokens(tokens);
    } else if (chat) {
      if (system != null) {
        rb.message("system", system);
      }
      rb.message("user", prompt);
    } else {
      rb.prompt(prompt);
    }
    GenerateRequest request = rb.build();
    TraceRecorder recorder = trace == null ? null
        : new TraceRecorder(model.toAbsolutePath().getFileName().toString(), Model.TRACE_LOOKAHEAD);
    ModelOptions options = load.toOptions(new ProgressBar(err), recorder);
    try (Model m = Model.load(model, options)) {
      err.printf("%s, %d layers, bundle %s, device %s%n", m.modelType(), m.numLayers(), m.bundle().name(),
          m.device().name().toLowerCase(Locale.ROOT));
      m.densePlacement().ifPresent(p -> err.printf(Locale.ROOT,
          "dense linears: %d on the device (%.1f MiB), %d on the CPU (%.1f MiB); attention %s%n", p.deviceLinears(),
          p.deviceBytes() / 1048576.0, p.cpuLinears(), p.cpuBytes() / 1048576.0,
          p.attention() ? "and its KV cache on the device" : "on the CPU"));
      err.flush();
      GenerationResult r = m.generate(request, t -> {
        out.print(t.text());
        out.flush();
      });
      out.println();
      out.flush();
      Summary.print(err, r);
      if (timeline != null) {
        writeTimeline(m.recentTimelines(), m.numLayers(), timeline.toPath(), err);
      }
      if (recorder != null) {
        recorder.write(trace);
        Trace t = recorder.trace();
        double[] acc = LookaheadAccuracy.measure(t);
        StringBuilder a = new StringBuilder();
        for (int d = 1; d <= acc.length; d++) {
          a.append(String.format(Locale.ROOT, "%s d=%d %.3f", d == 1 ? "" : ",", d, acc[d - 1]));
        }
        err.printf("routing trace written to %s: %d tokens, %d MoE layers; look-ahead accuracy measured:%s%n", trace,
            t.tokens(), t.layers(), a);
      }
    }
    return 0;
  }

  /** Writes the middle MoE layer of the last step, measured above predicted. */
  static void writeTimeline(List<LayerTimeline> recent, int layers, Path file, PrintWriter err) throws Exception {
    if (recent.isEmpty()) {
      err.println("no timeline: the model ran no MoE layer");
      return;
    }
    List<LayerTimeline> lastStep = recent.subList(Math.max(0, recent.size() - layers), recent.size());
    LayerTimeline tl = lastStep.get(lastStep.size() / 2);
    Files.writeString(file, tl.toSvg(String.format(Locale.ROOT,
        "MoE layer %d, last step: measured %.3f ms, predicted %.3f ms", tl.plan().layer(), tl.measuredMs(),
        tl.predictedMs())));
    err.printf("timeline written to %s%n", file);
  }
}
