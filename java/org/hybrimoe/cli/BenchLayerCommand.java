package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.File;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.hybrimoe.device.Device;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.hybrid.LayerBench;
import org.hybrimoe.hybrid.LayerTimeline;
import org.hybrimoe.hybrid.SyntheticMoe;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.ModelShape;
import org.hybrimoe.runtime.CudaDiscovery;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code bench-layer}: per-layer latency of every policy bundle through the real hybrid executor,
 * on synthetic layers of the paper's three model shapes scaled to fit the machine, next to the
 * section 2 simulation's prediction for the same routing and cache state, with the prediction
 * error; the cost model is calibrated on this machine in the same run.
 */
@Command(
    name = "bench-layer",
    mixinStandardHelpOptions = true,
    description = "Measure hybrid MoE layers per bundle and cache ratio, next to the simulator's prediction.")
final class BenchLayerCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--json", description = "Also write the results as JSON to FILE.")
  File json;

  @Option(names = "--timeline", description = "Write the measured and predicted timeline of one decode layer (hybrimoe, "
      + "first shape, lowest ratio) as an SVG Gantt chart to FILE.")
  File timeline;

  @Option(names = "--shapes", split = ",", defaultValue = "deepseek-v2-lite,qwen2-57b-a14b,mixtral-8x7b",
      description = "Paper model shapes (default: all three).")
  List<String> shapes;

  @Option(names = "--bundles", split = ",", description = "Bundles (default: every bundle).")
  List<String> bundles;

  @Option(names = "--ratios", split = ",", defaultValue = "0.25,0.5,0.75", description = "Cache ratios.")
  List<Double> ratios;

  @Option(names = "--layers", defaultValue = "4", description = "MoE layers per shape (default 4).")
  int layers;

  @Option(names = "--budget-mb", defaultValue = "96", description = "Host memory for one shape's experts (MiB).")
  long budgetMb;

  @Option(names = "--format", defaultValue = "bf16", description = "Expert format: bf16 or int4.")
  String format;

  @Option(names = "--decode", defaultValue = "12", description = "Timed decode tokens.")
  int decode;

  @Option(names = "--prompt", defaultValue = "32", description = "Prompt length of the timed prefill.")
  int prompt;

  @Option(names = "--threads", defaultValue = "0", description = "CPU engine threads (0: physical cores, less one "
      + "for the emulated device's worker where there is no GPU).")
  int threads;

  @Option(names = "--emulated", description = "Use the host-emulated device even where a GPU exists.")
  boolean emulated;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    ExpertFormat fmt = switch (format.toLowerCase(java.util.Locale.ROOT)) {
      case "bf16" -> ExpertFormat.BF16;
      case "int4" -> ExpertFormat.INT4;
      default -> throw new IllegalArgumentException("--format must be bf16 or int4, got " + format);
    };
    List<PolicyBundle> bs = bundles == null ? PolicyBundle.all() : bundles.stream().map(PolicyBundle::byName).toList();
    for (double r : ratios) {
      if (!(r >= 0 && r <= 1)) {
        throw new IllegalArgumentException("cache ratio " + r + " outside [0, 1]");
      }
    }
    if (layers < 1 || decode < 1 || prompt < 1 || budgetMb < 1) {
      throw new IllegalArgumentException("--layers, --decode, --prompt and --budget-mb must be >= 1");
    }
    boolean cuda = !emulated && !CudaDiscovery.discover().devices().isEmpty();
    int cores = Math.max(1, Runtime.getRuntime().availableProcessors());
    int t = threads > 0 ? threads : Math.max(1, cuda ? cores : cores - 1);
    out.printf("device: %s; CPU engine: %d threads%n", cuda ? "CUDA device 0" : "host-emulated (no GPU: its 'GPU' is a "
        + "host thread, so the figures test the pipeline and the model's predictions, not a speed claim)", t);
    List<Map<String, Object>> results = new ArrayList<>();
    boolean wroteTimeline = false;
    try (Engine engine = Engine.create(t)) {
      for (String name : shapes) {
        ModelShape paper = ModelShape.resolve(name);
        LayerBench.Scaled s = LayerBench.scale(paper, layers, budgetMb << 20, fmt);
        out.printf("%n%s scaled: %s%n", paper.name(), s.how());
        try (SyntheticMoe m = SyntheticMoe.create(engine, fmt, s.layers(), paper.experts(), paper.topK(), s.shared(),
            s.dModel(), s.dFf(), 7)) {
          CostModel cost;
          ExpertShape shape = fmt == ExpertFormat.INT4 ? ExpertShape.int4(s.dModel(), s.dFf(), 32)
              : ExpertShape.bf16(s.dModel(), s.dFf());
          try (Device probe = cuda ? Device.cuda(0, shape, 8) : Device.emulated(1, shape, 8)) {
            org.hybrimoe.hybrid.Calibration cal =
                org.hybrimoe.hybrid.Calibration.measure(engine, probe, m.routed().get(0), 9, 64);
            cost = cal.cost();
            out.println("calibrated (physical form, least squares over a sweep of 1..64 tokens, 1/2/4 experts a call):");
            out.println(cal.describe());
          }
          out.printf("%-24s %5s %8s %6s %12s %12s %8s %6s %6s %6s %6s%n", "bundle", "ratio", "phase", "tokens",
              "measured ms", "predicted ms", "err %", "hits", "gpu", "moved", "pf");
          Map<String, LayerBench.Row> byKey = new LinkedHashMap<>();
          for (double ratio : ratios) {
            for (PolicyBundle b : bs) {
              List<LayerTimeline> keep = !wroteTimeline && timeline != null && b == PolicyBundle.HYBRIMOE
                  ? new ArrayList<>() : null;
              for (LayerBench.Row r : LayerBench.run(engine, m, s, cost, b, ratio, cuda, 4, decode, prompt, keep)) {
                byKey.put(r.bundle() + "/" + r.ratio() + "/" + r.phase(), r);
                out.printf("%-24s %5.2f %8s %6d %12.3f %12.3f %8.1f %6.2f %6.2f %6d %6d%n", r.bundle(), r.ratio(),
                    r.phase(), r.tokens(), r.measuredMs(), r.predictedMs(), r.meanAbsErrorPct(), r.hitRate(),
                    r.gpuShare(), r.transfers(), r.prefetches());
                Map<String, Object> j = new LinkedHashMap<>();
                j.put("shape", r.shape());
                j.put("scaled", s.how());
                j.put("bundle", r.bundle());
                j.put("cache_ratio", r.ratio());
                j.put("phase", r.phase());
                j.put("tokens", r.tokens());
                j.put("measured_ms_median", r.measuredMs());
                j.put("predicted_ms_median", r.predictedMs());
                j.put("mean_abs_error_pct", r.meanAbsErrorPct());
                j.put("hit_rate", r.hitRate());
                j.put("gpu_expert_share", r.gpuShare());
                j.put("demand_transfers", r.transfers());
                j.put("prefetches", r.prefetches());
                j.put("device", cuda ? "cuda" : "emulated");
                results.add(j);
              }
              if (keep != null && !keep.isEmpty()) {
                LayerTimeline tl = keep.get(keep.size() / 2);
                Files.writeString(timeline.toPath(), tl.toSvg(
                    String.format("%s, hybrimoe, cache ratio %.2f, decode layer %d: measured %.3f ms, predicted %.3f ms",
                        paper.name(), ratio, tl.plan().layer(), tl.measuredMs(), tl.predictedMs())));
                out.printf("timeline written to %s%n", timeline);
                wroteTimeline = true;
              }
            }
          }
          // The headline ratio, measured in this run: hybrimoe's layer time over kTransformers-like's.
          for (double ratio : ratios) {
            for (String phase : List.of("decode", "prefill")) {
              LayerBench.Row h = byKey.get(PolicyBundle.HYBRIMOE.name() + "/" + ratio + "/" + phase);
              LayerBench.Row k = byKey.get(PolicyBundle.KTRANSFORMERS.name() + "/" + ratio + "/" + phase);
              if (h != null && k != null) {
                out.printf("speedup of hybrimoe over ktransformers-like, ratio %.2f %s: measured %.2fx, predicted %.2fx%n",
                    ratio, phase, k.measuredMs() / h.measuredMs(), k.predictedMs() / h.predictedMs());
              }
            }
          }
        }
      }
    }
    if (json != null) {
      Map<String, Object> root = new LinkedHashMap<>();
      root.put("benchmark", "bench-layer");
      root.put("device", cuda ? "cuda" : "emulated");
      root.put("results", results);
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json, root);
      out.printf("%nJSON written to %s%n", json);
    }
    return 0;
  }
}
