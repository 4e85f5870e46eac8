package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.HardwareProfile;
import org.hybrimoe.policy.cost.ModelShape;
import org.hybrimoe.sim.Experiment;
import org.hybrimoe.sim.GanttSvg;
import org.hybrimoe.sim.LookaheadOracle;
import org.hybrimoe.sim.SimResult;
import org.hybrimoe.sim.Simulator;
import org.hybrimoe.sim.SyntheticTraceGenerator;
import org.hybrimoe.sim.TimelineEvent;
import org.hybrimoe.sim.Trace;
import org.hybrimoe.sim.TraceReader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code hybrimoe simulate}: replays a routing trace through every policy bundle on a hardware
 * profile and prints the paper's comparisons (TTFT and decode time per bundle, HybriMoE's speedup
 * over kTransformers-like, the ablation table, cache hit rates) and HybriMoE's distance to the
 * oracle bundle (its time over the oracle's), optionally as JSON and an SVG Gantt chart.
 */
@Command(name = "simulate", mixinStandardHelpOptions = true,
    description = "Simulate HybriMoE and the baselines over a routing trace on a hardware profile.")
public final class SimulateCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--trace", paramLabel = "DIR", description = "trace directory (trace.json + arrays)")
  Path trace;

  @Option(names = "--synthetic", description = "use a synthetic trace for the model shape instead of --trace")
  boolean synthetic;

  @Option(names = "--profile", paramLabel = "NAME|FILE", defaultValue = "paper-a6000",
      description = "hardware profile: built-in name or JSON file (default: ${DEFAULT-VALUE})")
  String profile;

  @Option(names = "--model-shape", paramLabel = "NAME|FILE", defaultValue = "deepseek-v2-lite",
      description = "deepseek-v2-lite, qwen2-57b-a14b, mixtral-8x7b, or a JSON file (default: ${DEFAULT-VALUE})")
  String modelShape;

  @Option(names = "--cache-ratio", split = ",", defaultValue = "0.25,0.5,0.75",
      description = "fractions of all routed experts the GPU caches (default: ${DEFAULT-VALUE})")
  double[] cacheRatios;

  @Option(names = "--input-lengths", split = ",",
      description = "prompt lengths for TTFT (default: 32,128,512,1024, those that fit the trace)")
  int[] inputLengths;

  @Option(names = "--bundles", split = ",",
      description = "bundles to run (default: all; kTransformers-like and the oracle are always run)")
  List<String> bundles;

  @Option(names = "--decode-tokens", description = "timed decode tokens (default: 1000, or what the trace holds)")
  Integer decodeTokensOption;

  @Option(names = "--decode-warmup", description = "untimed decode tokens first (default: 100, or a tenth of what the trace holds)")
  Integer decodeWarmupOption;

  @Option(names = "--prompts", defaultValue = "3", description = "prompts per input length (default: ${DEFAULT-VALUE})")
  int prompts;

  @Option(names = "--profile-tokens",
      description = "leading trace tokens used as the profiling window (default: 10000, at most a quarter of the trace)")
  Integer profileTokensOption;

  @Option(names = "--hit-rate-tokens",
      description = "tokens replayed for the hit-rate table (default: 20000, or what the trace holds)")
  Integer hitRateTokensOption;

  // The protocol as fitted to the trace (TraceProtocol), set in call().
  int profileTokens;
  int decodeTokens;
  int decodeWarmup;
  int hitRateTokens;

  @Option(names = "--lookahead-accuracy", split = ",", defaultValue = "0.85,0.75,0.65",
      description = "modelled router look-ahead accuracy at distance 1,2,3 for traces without predictions")
  double[] lookaheadAccuracy;

  @Option(names = "--mrs-variants", description = "also compare MRS variants (alpha 0.02-0.5, top-P 1-2 x top-k, "
      + "per layer and global) with LRU on the hit-rate tokens")
  boolean mrsVariants;

  @Option(names = "--seed", defaultValue = "1", description = "seed for modelled predictions and synthetic traces")
  long seed;

  @Option(names = "--json", paramLabel = "FILE", description = "write results as JSON")
  Path json;

  @Option(names = "--svg", paramLabel = "FILE", description = "write a Gantt chart (GPU, CPU, PCIe) of a few HybriMoE layers")
  Path svg;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    ModelShape shape = ModelShape.resolve(modelShape);
    HardwareProfile hw = HardwareProfile.load(profile);
    CostModel cost = hw.costModel(shape);
    for (double r : cacheRatios) {
      if (!(r >= 0 && r <= 1)) {
        throw new IllegalArgumentException("--cache-ratio " + r + " is impossible: a ratio must be in [0, 1]");
      }
    }
    Trace tr;
    if (synthetic && trace != null) {
      throw new IllegalArgumentException("give either --trace DIR or --synthetic, not both");
    }
    if (synthetic) {
      tr = new SyntheticTraceGenerator().shape(shape.experts(), shape.topK(), shape.layers())
          .tokens(TraceProtocol.syntheticTokens(profileTokensOption, decodeWarmupOption, decodeTokensOption,
              hitRateTokensOption, inputLengths))
          .skew(0.8).reuse(0.3).crossLayer(0.3).seed(seed).model("synthetic-" + shape.name()).generate();
    } else if (trace != null) {
      tr = TraceReader.read(trace);
    } else {
      throw new IllegalArgumentException("give --trace DIR (or --synthetic)");
    }
    TraceProtocol protocol = TraceProtocol.fit(tr.tokens(), profileTokensOption, decodeWarmupOption, decodeTokensOption,
        hitRateTokensOption, inputLengths);
    profileTokens = protocol.profileTokens();
    decodeWarmup = protocol.decodeWarmup();
    decodeTokens = protocol.decodeTokens();
    hitRateTokens = protocol.hitRateTokens();
    inputLengths = protocol.inputLengths();
    List<PolicyBundle> chosen = new ArrayList<>();
    if (bundles == null || bundles.isEmpty()) {
      chosen.addAll(PolicyBundle.simulated());
    } else {
      // the references every table divides by: kTransformers-like first, the oracle last
      chosen.add(PolicyBundle.KTRANSFORMERS);
      for (String b : bundles) {
        PolicyBundle pb = PolicyBundle.byName(b);
        if (!chosen.contains(pb) && pb != PolicyBundle.ORACLE) {
          chosen.add(pb);
        }
      }
      chosen.add(PolicyBundle.ORACLE);
    }
    Simulator sim = new Simulator(tr, shape, cost, new LookaheadOracle(tr, lookaheadAccuracy, seed), profileTokens);
    Experiment exp = new Experiment(sim, tr);
    out.printf(Locale.ROOT, "Simulated: model shape %s, profile %s (%s)%ntrace %s: %s%n", shape.name(), hw.name(),
        hw.machine(), synthetic ? "synthetic" : trace, tr);
    out.printf(Locale.ROOT, "cost model: %s%n", cost);
    out.printf(Locale.ROOT, "protocol: first %d tokens profile; decode %d tokens after %d warm-up; %d prompt(s) per input length%n%n",
        profileTokens, decodeTokens, decodeWarmup, prompts);
    String fitted = protocol.adaptedLine(tr.tokens());
    if (fitted != null) {
      out.println(fitted);
      out.println();
    }
    out.flush();
    List<SimResult> rows = exp.run(chosen, cacheRatios, inputLengths, new Experiment.Sizes(decodeWarmup, decodeTokens,
        prompts, hitRateTokens));
    printMain(out, shape, rows, chosen);
    printAblation(out, rows, chosen);
    List<Experiment.HitRow> hits = exp.hitRates(cacheRatios, hitRateTokens);
    printHits(out, hits);
    if (mrsVariants) {
      out.printf(Locale.ROOT, "%n== MRS variants against LRU over the same %d tokens (alpha: score decay; P: top-P kept) ==%n",
          hitRateTokens);
      printHitTable(out, exp.mrsVariants(cacheRatios, hitRateTokens, new double[] {0.02, 0.05, 0.1, 0.2, 0.5},
          new int[] {1, 2}));
    }
    if (json != null) {
      writeJson(shape, hw, rows, hits);
      out.println("wrote " + json);
    }
    if (svg != null) {
      PolicyBundle b = chosen.contains(PolicyBundle.HYBRIMOE) ? PolicyBundle.HYBRIMOE : chosen.get(chosen.size() - 1);
      List<TimelineEvent> ev = sim.decodeTimeline(b, cacheRatios[0], decodeWarmup, 3);
      List<TimelineEvent> pf = new ArrayList<>();
      sim.prefill(b, cacheRatios[0], Arrays.stream(inputLengths).min().getAsInt(), 1, pf, 2);
      String title = String.format(Locale.ROOT, "%s, %s, %s, cache %.0f%%: one decode token, first 3 MoE layers",
          b.name(), shape.name(), hw.name(), 100 * cacheRatios[0]);
      Files.writeString(svg, GanttSvg.render(title, ev));
      Path pfSvg = svg.resolveSibling(svg.getFileName().toString().replaceFirst("(\\.svg)?$", "-prefill.svg"));
      Files.writeString(pfSvg, GanttSvg.render(String.format(Locale.ROOT, "%s, %s, cache %.0f%%: prefill of %d tokens, first 2 MoE layers",
          b.name(), shape.name(), 100 * cacheRatios[0], Arrays.stream(inputLengths).min().getAsInt()), pf));
      out.println("wrote " + svg + " and " + pfSvg);
    }
    out.flush();
    return 0;
  }

  private static SimResult find(List<SimResult> rows, String bundle, double ratio, String phase, int n) {
    for (SimResult r : rows) {
      if (r.bundle().equals(bundle) && r.cacheRatio() == ratio && r.phase().equals(phase)
          && (phase.equals("decode") || r.inputLength() == n)) {
        return r;
      }
    }
    return null;
  }

  private void printMain(PrintWriter out, ModelShape shape, List<SimResult> rows, List<PolicyBundle> chosen) {
    out.printf(Locale.ROOT, "== %s: TTFT (ms) per input length, decode time per token (ms) ==%n", shape.name());
    StringBuilder h = new StringBuilder(String.format(Locale.ROOT, "%-6s %-24s", "cache", "bundle"));
    for (int n : inputLengths) {
      h.append(String.format(Locale.ROOT, " %10s", "TTFT@" + n));
    }
    h.append(String.format(Locale.ROOT, " %10s %8s %10s %10s", "decode", "hit", "MB/token", "pf used/wasted"));
    out.println(h);
    for (double r : cacheRatios) {
      for (PolicyBundle b : chosen) {
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-6.2f %-24s", r, b.name()));
        for (int n : inputLengths) {
          line.append(String.format(Locale.ROOT, " %10.1f", find(rows, b.name(), r, "prefill", n).ms()));
        }
        SimResult d = find(rows, b.name(), r, "decode", 0);
        line.append(String.format(Locale.ROOT, " %10.2f %8.3f %10.2f %7d/%d", d.ms(), d.hitRate(), d.bytesMoved() / 1e6,
            d.prefetchUsed(), d.prefetchWasted()));
        out.println(line);
      }
      if (chosen.contains(PolicyBundle.HYBRIMOE)) {
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-6.2f %-24s", r, "hybrimoe / oracle"));
        for (int n : inputLengths) {
          line.append(String.format(Locale.ROOT, " %9.3fx", vsOracle(rows, PolicyBundle.HYBRIMOE.name(), r, "prefill", n)));
        }
        line.append(String.format(Locale.ROOT, " %9.3fx", vsOracle(rows, PolicyBundle.HYBRIMOE.name(), r, "decode", 0)));
        out.println(line);
      }
    }
    if (chosen.contains(PolicyBundle.HYBRIMOE)) {
      out.println();
      out.println("HybriMoE speedup over kTransformers-like (paper, on its machine: 1.33x prefill, 1.70x decode on average);"
          + " vs oracle: HybriMoE's time over the oracle's (1 = as fast as the oracle)");
      StringBuilder sh = new StringBuilder(String.format(Locale.ROOT, "%-6s", "cache"));
      for (int n : inputLengths) {
        sh.append(String.format(Locale.ROOT, " %10s", "prefill@" + n));
      }
      sh.append(String.format(Locale.ROOT, " %10s %17s %16s", "decode", "vs oracle prefill", "vs oracle decode"));
      out.println(sh);
      double sumP = 0;
      double sumD = 0;
      double sumOp = 0;
      double sumOd = 0;
      int np = 0;
      for (double r : cacheRatios) {
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-6.2f", r));
        for (int n : inputLengths) {
          double s = find(rows, PolicyBundle.KTRANSFORMERS.name(), r, "prefill", n).ms()
              / find(rows, PolicyBundle.HYBRIMOE.name(), r, "prefill", n).ms();
          sumP += s;
          np++;
          line.append(String.format(Locale.ROOT, " %9.2fx", s));
        }
        double s = find(rows, PolicyBundle.KTRANSFORMERS.name(), r, "decode", 0).ms()
            / find(rows, PolicyBundle.HYBRIMOE.name(), r, "decode", 0).ms();
        sumD += s;
        double op = 0;
        for (int n : inputLengths) {
          op += vsOracle(rows, PolicyBundle.HYBRIMOE.name(), r, "prefill", n);
        }
        op /= inputLengths.length;
        double od = vsOracle(rows, PolicyBundle.HYBRIMOE.name(), r, "decode", 0);
        sumOp += op;
        sumOd += od;
        line.append(String.format(Locale.ROOT, " %9.2fx %17.3f %16.3f", s, op, od));
        out.println(line);
      }
      out.printf(Locale.ROOT, "average: prefill %.2fx, decode %.2fx%n", sumP / np, sumD / cacheRatios.length);
      out.printf(Locale.ROOT, "average HybriMoE / oracle time: prefill %.3f, decode %.3f%n", sumOp / cacheRatios.length,
          sumOd / cacheRatios.length);
    }
    out.println();
  }

  private void printAblation(PrintWriter out, List<SimResult> rows, List<PolicyBundle> chosen) {
    if (!chosen.containsAll(PolicyBundle.ablations())) {
      return;
    }
    out.println("== Ablation over kTransformers-like (like the paper's Table III): mean TTFT over input lengths, decode;"
        + " p/d vs oracle = prefill/decode time over the oracle's ==");
    out.printf(Locale.ROOT, "%-6s %-24s %12s %9s %10s %9s %11s %11s%n", "cache", "bundle", "prefill ms", "speedup", "decode ms",
        "speedup", "p vs oracle", "d vs oracle");
    for (double r : cacheRatios) {
      double baseP = meanPrefill(rows, PolicyBundle.KTRANSFORMERS.name(), r);
      double baseD = find(rows, PolicyBundle.KTRANSFORMERS.name(), r, "decode", 0).ms();
      double oracleP = meanPrefill(rows, PolicyBundle.ORACLE.name(), r);
      double oracleD = find(rows, PolicyBundle.ORACLE.name(), r, "decode", 0).ms();
      for (PolicyBundle b : PolicyBundle.ablations()) {
        double p = meanPrefill(rows, b.name(), r);
        double d = find(rows, b.name(), r, "decode", 0).ms();
        out.printf(Locale.ROOT, "%-6.2f %-24s %12.1f %8.2fx %10.2f %8.2fx %11.3f %11.3f%n", r, b.name(), p, baseP / p, d,
            baseD / d, p / oracleP, d / oracleD);
      }
    }
    out.println();
  }

  /** A bundle's time over the oracle's in the same cell (cache ratio, phase, input length). */
  private static double vsOracle(List<SimResult> rows, String bundle, double ratio, String phase, int n) {
    return find(rows, bundle, ratio, phase, n).ms() / find(rows, PolicyBundle.ORACLE.name(), ratio, phase, n).ms();
  }

  private double meanPrefill(List<SimResult> rows, String bundle, double r) {
    double s = 0;
    for (int n : inputLengths) {
      s += find(rows, bundle, r, "prefill", n).ms();
    }
    return s / inputLengths.length;
  }

  private void printHits(PrintWriter out, List<Experiment.HitRow> hits) {
    out.printf(Locale.ROOT, "== Cache hit rate over %d decode-order tokens (MRS against LRU, LFU, static and Belady) ==%n", hitRateTokens);
    printHitTable(out, hits);
  }

  private void printHitTable(PrintWriter out, List<Experiment.HitRow> hits) {
    List<String> policies = new ArrayList<>();
    for (Experiment.HitRow h : hits) {
      if (!policies.contains(h.policy())) {
        policies.add(h.policy());
      }
    }
    StringBuilder hdr = new StringBuilder(String.format(Locale.ROOT, "%-22s", "policy"));
    for (double r : cacheRatios) {
      hdr.append(String.format(Locale.ROOT, " %8.2f", r));
    }
    out.println(hdr);
    for (String p : policies) {
      StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-22s", p));
      for (double r : cacheRatios) {
        for (Experiment.HitRow h : hits) {
          if (h.policy().equals(p) && h.cacheRatio() == r) {
            line.append(String.format(Locale.ROOT, " %8.3f", h.hitRate()));
          }
        }
      }
      out.println(line);
    }
    out.println();
  }

  private void writeJson(ModelShape shape, HardwareProfile hw, List<SimResult> rows, List<Experiment.HitRow> hits)
      throws java.io.IOException {
    ObjectMapper m = new ObjectMapper();
    ObjectNode root = m.createObjectNode();
    root.put("model_shape", shape.name());
    root.put("profile", hw.name());
    root.put("trace", synthetic ? "synthetic" : String.valueOf(trace));
    ArrayNode res = root.putArray("results");
    for (SimResult r : rows) {
      ObjectNode o = res.addObject();
      o.put("bundle", r.bundle());
      o.put("cache_ratio", r.cacheRatio());
      o.put("phase", r.phase());
      if (r.phase().equals("prefill")) {
        o.put("input_length", r.inputLength());
      }
      o.put("ms", r.ms());
      o.put("vs_oracle", vsOracle(rows, r.bundle(), r.cacheRatio(), r.phase(), r.inputLength()));
      o.put("hit_rate", r.hitRate());
      o.put("bytes_moved", r.bytesMoved());
      o.put("prefetch_used", r.prefetchUsed());
      o.put("prefetch_wasted", r.prefetchWasted());
      o.put("gpu_busy_ms", r.gpuBusyMs());
      o.put("cpu_busy_ms", r.cpuBusyMs());
      o.put("link_busy_ms", r.linkBusyMs());
      ArrayNode acc = o.putArray("lookahead_accuracy");
      for (double a : r.accuracy()) {
        if (Double.isNaN(a)) {
          acc.addNull();
        } else {
          acc.add(a);
        }
      }
    }
    if (rows.stream().anyMatch(r -> r.bundle().equals(PolicyBundle.HYBRIMOE.name()))) {
      // HybriMoE's averages over cache ratios (prefill: over input lengths too), as the tables print them
      ObjectNode sum = root.putObject("hybrimoe_summary");
      double[] speed = new double[2];
      double[] oracle = new double[2];
      int np = 0;
      for (double r : cacheRatios) {
        for (int n : inputLengths) {
          speed[0] += find(rows, PolicyBundle.KTRANSFORMERS.name(), r, "prefill", n).ms()
              / find(rows, PolicyBundle.HYBRIMOE.name(), r, "prefill", n).ms();
          oracle[0] += vsOracle(rows, PolicyBundle.HYBRIMOE.name(), r, "prefill", n);
          np++;
        }
        speed[1] += find(rows, PolicyBundle.KTRANSFORMERS.name(), r, "decode", 0).ms()
            / find(rows, PolicyBundle.HYBRIMOE.name(), r, "decode", 0).ms();
        oracle[1] += vsOracle(rows, PolicyBundle.HYBRIMOE.name(), r, "decode", 0);
      }
      sum.putObject("speedup_over_ktransformers").put("prefill", speed[0] / np).put("decode", speed[1] / cacheRatios.length);
      sum.putObject("vs_oracle").put("prefill", oracle[0] / np).put("decode", oracle[1] / cacheRatios.length);
    }
    ArrayNode hr = root.putArray("hit_rates");
    for (Experiment.HitRow h : hits) {
      hr.addObject().put("policy", h.policy()).put("cache_ratio", h.cacheRatio()).put("hit_rate", h.hitRate());
    }
    m.writerWithDefaultPrettyPrinter().writeValue(json.toFile(), root);
  }
}
