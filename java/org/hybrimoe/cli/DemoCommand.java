package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.hybrimoe.api.GenerateRequest;
import org.hybrimoe.api.GenerationResult;
import org.hybrimoe.api.Model;
import org.hybrimoe.api.ModelOptions;
import org.hybrimoe.hybrid.HybridExecutors;
import org.hybrimoe.model.ExecutorStats;
import org.hybrimoe.model.ModelMaker;
import org.hybrimoe.policy.PolicyBundle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code demo}, the main job: writes a random-weight DeepSeek-V2-Lite-like model sized to this
 * machine (make-model), runs the same prefill and greedy decode under each policy bundle on the
 * GPU (or, without one, the emulated device), and prints TTFT, time per token and the speedup over
 * kTransformers-like, plus one MoE layer's measured-versus-predicted timeline as an SVG.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    description = "Run a random-weight MoE model sized to this machine under each policy bundle and compare.")
final class DemoCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--size", defaultValue = "auto", description = "Model size: auto (from this machine), tiny, small, medium.")
  String size;

  @Option(names = "--bundles", split = ",", defaultValue = "llamacpp,ktransformers,gpu-only,hybrimoe",
      description = "Bundles to compare (default ${DEFAULT-VALUE}); ktransformers is the baseline.")
  List<String> bundles;

  @Option(names = "--prompt-tokens", defaultValue = "32", description = "Prompt length (default ${DEFAULT-VALUE}).")
  int promptTokens;

  @Option(names = "--decode-tokens", defaultValue = "16", description = "New tokens per run (default ${DEFAULT-VALUE}).")
  int decodeTokens;

  @Option(names = "--runs", defaultValue = "3", description = "Runs per bundle; medians are reported (default ${DEFAULT-VALUE}).")
  int runs;

  @Option(names = "--cache-ratio", defaultValue = "0.25", description = "Fraction of experts cached on the GPU.")
  double cacheRatio;

  @Option(names = "--device", defaultValue = "auto", description = "auto (the GPU, else emulated), cuda, emulated.")
  String device;

  @Option(names = "--threads", defaultValue = "0", description = "CPU threads (0: one per physical core).")
  int threads;

  @Option(names = "--model-dir", description = "Write (and keep) the model here; default a temporary directory.")
  Path modelDir;

  @Option(names = "--timeline", defaultValue = "hybrimoe-demo-timeline.svg",
      description = "Where the timeline picture goes (default ${DEFAULT-VALUE}; 'none' to skip).")
  File timeline;

  @Option(names = "--json", description = "Also write the table as JSON.")
  File json;

  /** One bundle's medians. */
  record Row(String bundle, double ttftMs, double msPerToken, double hitRate, double gpuShare, long prefetches,
      int[] tokens) {}

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    if (promptTokens < 1 || decodeTokens < 1 || runs < 1) {
      throw new IllegalArgumentException("--prompt-tokens, --decode-tokens and --runs must be >= 1");
    }
    ModelOptions.Device dev = switch (device.toLowerCase(Locale.ROOT)) {
      case "auto" -> HybridExecutors.resolve(HybridExecutors.DeviceKind.AUTO) == HybridExecutors.DeviceKind.CUDA
          ? ModelOptions.Device.CUDA : ModelOptions.Device.EMULATED;
      case "cuda", "gpu" -> ModelOptions.Device.CUDA;
      case "emulated" -> ModelOptions.Device.EMULATED;
      default -> throw new IllegalArgumentException("--device must be auto, cuda or emulated, got " + device);
    };
    List<PolicyBundle> list = bundles.stream().map(ModelOptions::bundleNamed).toList();
    String tier = size.equalsIgnoreCase("auto") ? autoSize(dev) : size.toLowerCase(Locale.ROOT);
    ModelMaker.Spec spec = shape(tier);
    Path dir = modelDir != null ? modelDir : Files.createTempDirectory("hybrimoe-demo");
    try {
      out.printf(Locale.ROOT, "machine: %d cores, %.0f GiB memory, device %s%n", Runtime.getRuntime().availableProcessors(),
          totalMemory() / (double) (1L << 30), dev.name().toLowerCase(Locale.ROOT));
      out.printf(Locale.ROOT, "model (%s): DeepSeek-V2-Lite-like, %d layers (%d MoE), hidden %d, %d experts of %d, top-%d, "
          + "%d shared; %.2f GiB of bf16 experts, random weights%n", tier, spec.layers(), spec.layers() - spec.denseLayers(),
          spec.hidden(), spec.experts(), spec.expertFf(), spec.topK(), spec.nShared(),
          expertBytes(spec) / (double) (1L << 30));
      out.flush();
      long t = System.nanoTime();
      ModelMaker.write(spec, dir);
      out.printf(Locale.ROOT, "wrote %s in %.1f s%n", dir, (System.nanoTime() - t) / 1e9);
      out.printf(Locale.ROOT, "each bundle: %d runs of a %d-token prompt then %d greedy tokens, cache ratio %.2f; medians%n%n",
          runs, promptTokens, decodeTokens, cacheRatio);
      out.flush();
      List<Row> rows = new ArrayList<>();
      for (PolicyBundle b : list) {
        rows.add(run(dir, b, dev, spec.vocab(), out));
      }
      print(rows, out, dev);
      if (json != null) {
        writeJson(rows, tier, dev);
      }
    } finally {
      if (modelDir == null) {
        deleteTree(dir);
      }
    }
    return 0;
  }

  private Row run(Path dir, PolicyBundle b, ModelOptions.Device dev, int vocab, PrintWriter out) throws Exception {
    ModelOptions o = ModelOptions.builder().device(dev).bundle(b).cacheRatio(cacheRatio).threads(threads).build();
    try (Model m = Model.load(dir, o)) {
      SplittableRandom rnd = new SplittableRandom(17); // the same prompts for every bundle
      double[] ttft = new double[runs];
      double[] tpot = new double[runs];
      int[] first = null;
      long act = 0;
      long hits = 0;
      long gpu = 0;
      long prefetches = 0;
      for (int r = 0; r < runs; r++) {
        int[] prompt = rnd.ints(promptTokens, 0, vocab).toArray();
        GenerationResult g = m.generate(GenerateRequest.builder().promptTokens(prompt).maxTokens(decodeTokens)
            .ignoreEos(true).build());
        ttft[r] = g.timings().ttftMs();
        tpot[r] = decodeTokens > 1 ? g.timings().msPerToken() : Double.NaN;
        if (first == null) {
          first = g.tokens();
        }
        ExecutorStats s = g.stats();
        if (s != null) {
          act += s.activations();
          hits += s.hits();
          gpu += s.gpuTotal();
          prefetches += s.prefetches();
        }
      }
      Row row = new Row(b.name(), median(ttft), median(tpot), act == 0 ? 0 : (double) hits / act,
          act == 0 ? 0 : (double) gpu / act, prefetches, first);
      out.printf(Locale.ROOT, "  %-20s TTFT %8.1f ms   %8.2f ms/token%n", b.name(), row.ttftMs(), row.msPerToken());
      out.flush();
      if (b == PolicyBundle.HYBRIMOE && timeline != null && !timeline.getName().equals("none")) {
        GenerateCommand.writeTimeline(m.recentTimelines(), m.numLayers(), timeline.toPath(), out);
      }
      return row;
    }
  }

  private void print(List<Row> rows, PrintWriter out, ModelOptions.Device dev) {
    Row base = rows.stream().filter(r -> r.bundle().equals(PolicyBundle.KTRANSFORMERS.name())).findFirst().orElse(null);
    out.println();
    out.printf("%-20s %10s %10s %9s %9s %9s %10s %10s%n", "bundle", "TTFT ms", "ms/token", "tok/s", "hit rate",
        "GPU share", "prefill x", "decode x");
    for (Row r : rows) {
      out.printf(Locale.ROOT, "%-20s %10.1f %10.2f %9.2f %8.0f%% %8.0f%% %10s %10s%n", r.bundle(), r.ttftMs(),
          r.msPerToken(), 1000 / r.msPerToken(), 100 * r.hitRate(), 100 * r.gpuShare(),
          base == null ? "-" : String.format(Locale.ROOT, "%.2fx", base.ttftMs() / r.ttftMs()),
          base == null ? "-" : String.format(Locale.ROOT, "%.2fx", base.msPerToken() / r.msPerToken()));
    }
    out.println("(x: speedup over ktransformers-like, its time over the bundle's, measured in this run)");
    boolean same = rows.stream().allMatch(r -> Arrays.equals(r.tokens(), rows.get(0).tokens()));
    out.println("same greedy tokens under every bundle: " + (same ? "yes" : "no (bf16 sums in another order)"));
    if (dev == ModelOptions.Device.EMULATED) {
      out.println("note: no GPU here; host threads on the same cores play the GPU, so the table shows the hybrid "
          + "pipeline at work, not HybriMoE's speedup (docs/BENCHMARKS.md has GPU figures).");
    }
    out.flush();
  }

  private void writeJson(List<Row> rows, String tier, ModelOptions.Device dev) throws IOException {
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode root = mapper.createObjectNode();
    root.put("size", tier);
    root.put("device", dev.name().toLowerCase(Locale.ROOT));
    ArrayNode arr = root.putArray("bundles");
    for (Row r : rows) {
      ObjectNode j = arr.addObject();
      j.put("bundle", r.bundle());
      j.put("ttft_ms", r.ttftMs());
      j.put("ms_per_token", r.msPerToken());
      j.put("hit_rate", r.hitRate());
      j.put("gpu_share", r.gpuShare());
      j.put("prefetches", r.prefetches());
    }
    mapper.writerWithDefaultPrettyPrinter().writeValue(json, root);
  }

  /** tiny for tests, small for laptops and this kind of box, medium with a GPU and a big host. */
  private static String autoSize(ModelOptions.Device dev) {
    int cores = Runtime.getRuntime().availableProcessors();
    long mem = totalMemory();
    long heap = Runtime.getRuntime().maxMemory();
    return dev == ModelOptions.Device.CUDA && cores >= 8 && mem >= (64L << 30) && heap >= (12L << 30) ? "medium" : "small";
  }

  /** DeepSeek-V2-Lite's structure (MLA, 64 routed experts, top-6, 2 shared, a dense first layer), scaled. */
  static ModelMaker.Spec shape(String tier) {
    return switch (tier) {
      // arch, layers, hidden, experts, topK, expertFf, heads, kvHeads, vocab, sharedFf, denseFf, denseLayers,
      // kvLoraRank, qLoraRank, rope, nope, vDim, nShared, routedScale, normTopk, yarn, seed, dtype, packed, shards
      case "tiny" -> new ModelMaker.Spec("deepseek_v2", 4, 128, 16, 4, 64, 4, 4, 512, 0, 256, 1, 64, 0, 16, 32, 32, 2,
          1.0, false, false, 7, "BF16", false, 1);
      case "small" -> new ModelMaker.Spec("deepseek_v2", 6, 1024, 64, 6, 256, 8, 8, 4096, 0, 2048, 1, 256, 0, 32, 64, 64,
          2, 1.0, false, false, 7, "BF16", false, 1);
      case "medium" -> new ModelMaker.Spec("deepseek_v2", 8, 2048, 64, 6, 512, 16, 16, 8192, 0, 4096, 1, 512, 0, 64, 128,
          128, 2, 1.0, false, false, 7, "BF16", false, 1);
      default -> throw new IllegalArgumentException("--size must be auto, tiny, small or medium, got " + tier);
    };
  }

  private static long expertBytes(ModelMaker.Spec s) {
    return 3L * s.hidden() * s.expertFf() * 2 * s.experts() * (s.layers() - s.denseLayers());
  }

  private static long totalMemory() {
    if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
      return os.getTotalMemorySize();
    }
    return Runtime.getRuntime().maxMemory();
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
