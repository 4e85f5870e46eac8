package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.hybrimoe.api.GenerateRequest;
import org.hybrimoe.api.GenerationResult;
import org.hybrimoe.api.Model;
import org.hybrimoe.api.ModelOptions;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.model.ModelMaker;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Whole-model CPU decode against the machine's read bandwidth: the bytes one decode token must
 * read (weights, {@link DecodeTraffic}, and the KV cache its attention reads) over the median
 * time per token, divided by a bandwidth probe taken between the runs of the same command.
 * Decode of a MoE model on a CPU is bound by memory bandwidth, so the ratio says how much of the machine the whole forward pass (dense layers,
 * attention, routing, experts, LM head, sampling, and the Java between them) leaves unused.
 */
@Command(
    name = "bench-decode",
    mixinStandardHelpOptions = true,
    description = "Benchmark whole-model CPU decode (weight bytes per token / time) against a bandwidth probe.")
public final class BenchDecodeCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", description = "Model directory (default: the demo's model of --size, written to a temporary directory).")
  Path model;

  @Option(names = "--size", defaultValue = "small", description = "Demo model size without --model: tiny, small, medium.")
  String size;

  @Option(names = "--tokens", defaultValue = "64", description = "Decode tokens per run (default ${DEFAULT-VALUE}).")
  int tokens;

  @Option(names = "--runs", defaultValue = "5", description = "Runs; medians are reported (default ${DEFAULT-VALUE}).")
  int runs;

  @Option(names = "--prompt-tokens", defaultValue = "8", description = "Prompt length (default ${DEFAULT-VALUE}).")
  int promptTokens;

  @Option(names = "--threads", defaultValue = "0", description = "CPU threads (0: one per physical core).")
  int threads;

  @Option(names = "--format", defaultValue = "bf16", description = "Expert weights: bf16 or int4.")
  String format;

  @Option(names = "--group-size", defaultValue = "64", description = "int4 group size: 32, 64 or 128.")
  int groupSize;

  @Option(names = "--kv-cache", defaultValue = "f32", description = "KV cache elements: f32 or bf16.")
  String kvCache;

  @Option(names = "--probe-mib", defaultValue = "512", description = "Bandwidth probe buffer (default ${DEFAULT-VALUE} MiB).")
  long probeMib;

  @Option(names = "--json", description = "Also write the figures as JSON.")
  File json;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    if (tokens < 2 || runs < 1 || promptTokens < 1 || probeMib < 64) {
      throw new IllegalArgumentException("need --tokens >= 2, --runs >= 1, --prompt-tokens >= 1, --probe-mib >= 64");
    }
    ModelOptions.KvCacheType kv = LoadMixin.kvCacheType(kvCache); // refused before a model is written
    ExpertFormat fmt = switch (format.toLowerCase(Locale.ROOT)) {
      case "bf16" -> ExpertFormat.BF16;
      case "int4" -> ExpertFormat.INT4;
      default -> throw new IllegalArgumentException("--format must be bf16 or int4, got " + format);
    };
    Path dir = model;
    if (dir == null) {
      dir = Files.createTempDirectory("hybrimoe-bench-decode");
      ModelMaker.Spec s = DemoCommand.shape(size.toLowerCase(Locale.ROOT));
      out.printf(Locale.ROOT, "writing the demo's %s model to %s%n", size, dir);
      out.flush();
      ModelMaker.write(s, dir);
    }
    try {
      DecodeTraffic traffic = DecodeTraffic.of(dir, fmt == ExpertFormat.INT4
          ? DecodeTraffic.convertedExpertBytes(dir, ExpertShape.Format.INT4, groupSize) : 0);
      run(dir, fmt, kv, traffic, out);
    } finally {
      if (model == null) {
        DemoCommand.deleteTree(dir);
      }
    }
    return 0;
  }

  private void run(Path dir, ExpertFormat fmt, ModelOptions.KvCacheType kv, DecodeTraffic traffic, PrintWriter out)
      throws Exception {
    ModelOptions o = ModelOptions.builder().device(ModelOptions.Device.CPU).threads(threads).expertFormat(fmt)
        .groupSize(groupSize).kvCache(kv).build();
    double[] ms = new double[runs];
    double[] probe = new double[runs + 1];
    int vocab;
    String type;
    int engineThreads;
    long kvPerPosition;
    try (Model m = Model.load(dir, o); CpuMoe probeEngine = CpuMoe.create(threads)) {
      vocab = m.vocabSize();
      type = m.modelType();
      kvPerPosition = m.kvCacheBytesPerPosition();
      engineThreads = probeEngine.engine().threads();
      SplittableRandom rnd = new SplittableRandom(5);
      // A warm-up generation: page the mapped weights in and let the JIT settle.
      m.generate(GenerateRequest.builder().promptTokens(rnd.ints(promptTokens, 0, vocab).toArray())
          .maxTokens(4).ignoreEos(true).build());
      for (int r = 0; r < runs; r++) {
        probe[r] = probeEngine.bandwidthProbeGbps(probeMib << 20, 3);
        GenerationResult g = m.generate(GenerateRequest.builder()
            .promptTokens(rnd.ints(promptTokens, 0, vocab).toArray()).maxTokens(tokens).ignoreEos(true).build());
        ms[r] = g.timings().msPerToken();
      }
      probe[runs] = probeEngine.bandwidthProbeGbps(probeMib << 20, 3);
    }
    double msTok = DemoCommand.median(ms);
    double probeGbps = DemoCommand.median(probe);
    // A decode step's attention reads the whole cache: on average prompt + tokens / 2 positions.
    double kvBytes = kvPerPosition * (promptTokens + tokens / 2.0);
    double perToken = traffic.totalBytes() + kvBytes;
    double gbps = perToken / (msTok * 1e6);
    out.printf(Locale.ROOT, "model: %s, %d MoE layers of %d experts, top-%d, %s experts, %s KV cache; CPU, %d threads%n",
        type, traffic.moeLayers(), traffic.experts(), traffic.topK(), fmt.name().toLowerCase(Locale.ROOT),
        kvCache.toLowerCase(Locale.ROOT), engineThreads);
    out.printf(Locale.ROOT, "read per decode token: %.1f MB dense weights (attention, norms, routers, dense and shared "
        + "MLPs, LM head) + %.1f MB routed experts + %.1f MB KV cache (%d bytes a position, %.0f positions on "
        + "average) = %.1f MB%n", traffic.denseBytes() / 1e6, traffic.routedBytes() / 1e6, kvBytes / 1e6, kvPerPosition,
        promptTokens + tokens / 2.0, perToken / 1e6);
    out.printf(Locale.ROOT, "bandwidth probe: %.1f GB/s (median of %d, between the runs; range %.1f-%.1f)%n", probeGbps,
        probe.length, min(probe), max(probe));
    out.printf(Locale.ROOT, "decode: %.2f ms/token (median of %d runs x %d tokens; range %.2f-%.2f) = %.1f GB/s = "
        + "%.2f of the probe%n", msTok, runs, tokens, min(ms), max(ms), gbps, gbps / probeGbps);
    out.flush();
    if (json != null) {
      ObjectMapper mapper = new ObjectMapper();
      ObjectNode root = mapper.createObjectNode();
      root.put("model_type", type);
      root.put("expert_format", fmt.name().toLowerCase(Locale.ROOT));
      root.put("threads", engineThreads);
      root.put("dense_bytes_per_token", traffic.denseBytes());
      root.put("routed_bytes_per_token", traffic.routedBytes());
      root.put("kv_cache_bytes_per_token", kvBytes);
      root.put("ms_per_token", msTok);
      root.put("gbps", gbps);
      root.put("bandwidth_probe_gbps", probeGbps);
      root.put("ratio_to_probe", gbps / probeGbps);
      mapper.writerWithDefaultPrettyPrinter().writeValue(json, root);
    }
  }

  private static double min(double[] v) {
    return java.util.Arrays.stream(v).min().orElse(Double.NaN);
  }

  private static double max(double[] v) {
    return java.util.Arrays.stream(v).max().orElse(Double.NaN);
  }
}
