package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code bench-cpu}: the CPU expert engine's speed per expert shape, weight format and tokens per
 * expert, judged against a read-bandwidth probe and oneDNN's matmul measured in the same run.
 *
 * <p>Each row times one expert FFN (gate, up, down) on T tokens through the real operator
 * (hmoe_cpu_moe_run, k = 1, every token routed to the same expert), visiting several expert
 * copies in turn so that weights come from memory, not the last-level cache. GB/s counts the
 * expert's weight and scale bytes once per call; GFLOP/s counts 6 * d * ff * T.
 */
@Command(
    name = "bench-cpu",
    mixinStandardHelpOptions = true,
    description = "Benchmark the CPU expert engine against a bandwidth probe and oneDNN matmul.")
final class BenchCpuCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  /** Expert shapes of the models the issue names. */
  static final Map<String, long[]> SHAPES = new java.util.LinkedHashMap<>();

  static {
    SHAPES.put("mixtral-8x7b", new long[] {4096, 14336});
    SHAPES.put("qwen2-57b-a14b", new long[] {3584, 2560});
    SHAPES.put("deepseek-v2-lite", new long[] {2048, 1408});
  }

  @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
  Path json;

  @Option(names = "--quick", description = "Small sweep for small machines: deepseek-v2-lite, 1/16/256 tokens.")
  boolean quick;

  @Option(names = "--shapes", split = ",", description = "Shapes (default all): ${DEFAULT-VALUE}",
      defaultValue = "mixtral-8x7b,qwen2-57b-a14b,deepseek-v2-lite")
  List<String> shapes;

  @Option(names = "--formats", split = ",", defaultValue = "f32,bf16,int8,int4",
      description = "Weight formats (default ${DEFAULT-VALUE}).")
  List<String> formats;

  @Option(names = "--tokens", split = ",", defaultValue = "1,4,16,64,256,1024",
      description = "Tokens per expert (default ${DEFAULT-VALUE}).")
  List<Integer> tokens;

  @Option(names = "--threads", defaultValue = "0", description = "Engine threads (0: physical cores).")
  int threads;

  @Option(names = "--group", defaultValue = "64", description = "INT4 group size: 32, 64 or 128 (default ${DEFAULT-VALUE}).")
  int group;

  @Option(names = "--max-weight-gib", defaultValue = "6",
      description = "Memory for expert copies per (shape, format) (default ${DEFAULT-VALUE} GiB).")
  double maxWeightGib;

  @Option(names = "--min-seconds", defaultValue = "0.5", description = "Measuring time per row (default ${DEFAULT-VALUE}).")
  double minSeconds;

  @Option(names = "--probe-mib", defaultValue = "1024", description = "Bandwidth probe buffer (default ${DEFAULT-VALUE} MiB).")
  long probeMib;

  @Option(names = "--onednn-min-tokens", defaultValue = "-1",
      description = "Operator's oneDNN threshold (tokens per expert; 0 = our kernels only; -1 = engine default).")
  int onednnMinTokens;

  private double probeGbps;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    if (quick) {
      shapes = List.of("deepseek-v2-lite");
      tokens = List.of(1, 16, 256);
      minSeconds = Math.min(minSeconds, 0.3);
      probeMib = Math.min(probeMib, 512);
    }
    for (String s : shapes) {
      if (!SHAPES.containsKey(s)) {
        throw new IllegalArgumentException("unknown shape '" + s + "' (expected " + SHAPES.keySet() + ")");
      }
    }
    try (CpuMoe moe = CpuMoe.create(threads)) {
      if (onednnMinTokens >= 0) {
        moe.setOnednnMinTokens(onednnMinTokens);
      }
      double probe = moe.bandwidthProbeGbps(probeMib << 20, 5);
      probeGbps = probe;
      out.printf(Locale.ROOT, "bench-cpu: %d threads, kernels %s (%s)%n", moe.engine().threads(),
          Native.kernelVariant(), Native.kernelVariantNote());
      out.printf(Locale.ROOT, "bandwidth probe: %.1f GB/s (%d MiB streamed by %d threads)%n", probe,
          probeMib, moe.engine().threads());
      out.printf(Locale.ROOT, "%-18s %-5s %6s %10s %9s %8s %10s %9s %7s  %s%n", "shape", "fmt", "tokens",
          "ms", "GB/s", "vs.probe", "GFLOP/s", "vs.oneDNN", "experts", "note");
      out.flush();
      ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ObjectNode root = om.createObjectNode();
      root.put("bandwidth_probe_gbps", probe);
      root.put("threads", moe.engine().threads());
      root.put("kernel_variant", Native.kernelVariant().toString());
      root.put("cpu", cpuName());
      ArrayNode results = root.putArray("results");
      Map<String, Double> onednn = new HashMap<>();
      for (String shape : shapes) {
        long d = SHAPES.get(shape)[0];
        long ff = SHAPES.get(shape)[1];
        for (String f : formats) {
          ExpertFormat fmt = ExpertFormat.valueOf(f.toUpperCase(Locale.ROOT));
          benchFormat(moe, out, results, onednn, shape, d, ff, fmt);
        }
      }
      if (json != null) {
        om.writeValue(json.toFile(), root);
        out.println("wrote " + json);
      }
    }
    return 0;
  }

  private void benchFormat(CpuMoe moe, PrintWriter out, ArrayNode results, Map<String, Double> onednn,
      String shape, long d, long ff0, ExpertFormat fmt) {
    int g = fmt == ExpertFormat.INT4 ? group : 0;
    long maxBytes = (long) (maxWeightGib * (1L << 30));
    long ff = ff0;
    String note = "";
    // One f32 source expert plus at least one copy must fit; otherwise scale ff down and say so.
    while (12 * d * ff + expertBytes(fmt, d, ff, g) > maxBytes && ff > 64) {
      ff /= 2;
    }
    if (ff != ff0) {
      note = "ff scaled " + ff0 + "->" + ff + " (memory)";
    }
    long bytes = expertBytes(fmt, d, ff, g);
    // Enough copies that one sweep is >= 512 MiB (far beyond any LLC), within the memory budget.
    int copies = (int) Math.max(1, Math.min(16, Math.min((maxBytes - 12 * d * ff) / bytes, ((512L << 20) + bytes - 1) / bytes)));
    ByteBuffer src = ByteBuffer.allocateDirect(Math.toIntExact(12 * d * ff)).order(ByteOrder.LITTLE_ENDIAN);
    fillRandom(src.asFloatBuffer());
    ByteBuffer gate = src.slice(0, Math.toIntExact(4 * d * ff));
    ByteBuffer up = src.slice(Math.toIntExact(4 * d * ff), Math.toIntExact(4 * d * ff));
    ByteBuffer down = src.slice(Math.toIntExact(8 * d * ff), Math.toIntExact(4 * d * ff));
    try (ExpertLayer layer = ExpertLayer.create(fmt, copies, d, ff, g)) {
      ExpertLayerWeights.Expert e = new ExpertLayerWeights.Expert(gate, up, down, null, null, null);
      for (int c = 0; c < copies; c++) {
        layer.quantizeExpert(moe.engine(), c, ExpertFormat.F32, e);
      }
      for (int t : tokens) {
        double sec = timeOperator(moe, layer, d, t, copies);
        String rowNote = note;
        // Every format is judged against oneDNN's bf16 matmul (f32 rows against f32); where
        // oneDNN has no bf16 matmul on this CPU, against its f32 matmul, and the row says so.
        CpuMoe.InputType odt = fmt == ExpertFormat.F32 ? CpuMoe.InputType.F32 : CpuMoe.InputType.BF16;
        Double od = onednnSeconds(moe, onednn, odt, t, d, ff, copies, sec);
        if (od.isNaN() && odt == CpuMoe.InputType.BF16) {
          odt = CpuMoe.InputType.F32;
          od = onednnSeconds(moe, onednn, odt, t, d, ff, copies, sec);
          rowNote = (rowNote.isEmpty() ? "" : rowNote + "; ") + "oneDNN has no bf16 matmul here: vs f32";
        }
        double gbps = bytes / sec / 1e9;
        double gflops = 6.0 * d * ff * t / sec / 1e9;
        ObjectNode row = results.addObject();
        row.put("shape", shape + " " + d + "x" + ff);
        row.put("format", fmt.name().toLowerCase(Locale.ROOT));
        row.put("tokens", t);
        row.put("gbps", gbps);
        row.put("ratio_to_probe", gbps / probeGbps);
        row.put("gflops", gflops);
        row.put("ratio_to_onednn", Double.isNaN(od) ? null : od / sec);
        row.put("seconds", sec);
        row.put("onednn_seconds", Double.isNaN(od) ? null : od);
        row.put("onednn_dtype", odt.name().toLowerCase(Locale.ROOT));
        row.put("experts_rotated", copies);
        row.put("note", rowNote);
        row.put("group_size", g);
        out.printf(Locale.ROOT, "%-18s %-5s %6d %10.3f %9.1f %8s %10.1f %9s %7d  %s%n", shape,
            fmt.name().toLowerCase(Locale.ROOT), t, sec * 1e3, gbps,
            String.format(Locale.ROOT, "%.2f", gbps / probeGbps), gflops,
            Double.isNaN(od) ? "n/a" : String.format(Locale.ROOT, "%.2f", od / sec), copies, rowNote);
        out.flush();
      }
    }
  }

  /** oneDNN's median FFN seconds for this shape, cached; NaN where oneDNN lacks the dtype. */
  private double onednnSeconds(CpuMoe moe, Map<String, Double> cache, CpuMoe.InputType odt, int t,
      long d, long ff, int copies, double ourSeconds) {
    String key = d + "x" + ff + "/" + t + "/" + odt;
    Double od = cache.get(key);
    if (od == null) {
      try {
        int oc = Math.max(1, Math.min(copies, 4));
        int iters = Math.max(3, (int) Math.min(30, minSeconds / Math.max(ourSeconds, 1e-6)));
        od = moe.onednnFfnSeconds(odt, t, d, ff, oc, iters);
      } catch (NativeException ex) {
        od = Double.NaN;
      }
      cache.put(key, od);
    }
    return od;
  }

  /** Median seconds of one operator call on t tokens, rotating over the expert copies. */
  private double timeOperator(CpuMoe moe, ExpertLayer layer, long d, int t, int copies) {
    FloatBuffer x = ByteBuffer.allocateDirect(Math.toIntExact(4 * d * t)).order(ByteOrder.nativeOrder()).asFloatBuffer();
    fillRandom(x);
    FloatBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(4 * d * t)).order(ByteOrder.nativeOrder()).asFloatBuffer();
    IntBuffer ids = ByteBuffer.allocateDirect(4 * t).order(ByteOrder.nativeOrder()).asIntBuffer();
    FloatBuffer w = ByteBuffer.allocateDirect(4 * t).order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (int i = 0; i < t; i++) {
      w.put(i, 1.0f);
    }
    List<Double> times = new ArrayList<>();
    double total = 0;
    for (int it = 0; it < 1000 && (it < 4 || total < minSeconds); it++) {
      int e = it % copies;
      for (int i = 0; i < t; i++) {
        ids.put(i, e);
      }
      long t0 = System.nanoTime();
      moe.run(layer, x, t, 1, ids, w, null, out);
      double s = (System.nanoTime() - t0) / 1e9;
      if (it > 0) { // the first call warms up
        times.add(s);
        total += s;
      }
    }
    double[] v = times.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(v);
    return v[v.length / 2];
  }

  static long expertBytes(ExpertFormat f, long d, long ff, int g) {
    long gu = 2 * ff * (f.rowBytes(d, g) + 4 * f.scalesPerRow(d, g));
    long dn = d * (f.rowBytes(ff, g) + 4 * f.scalesPerRow(ff, g));
    return gu + dn;
  }

  static void fillRandom(FloatBuffer f) {
    long s = 0x9E3779B97F4A7C15L;
    for (int i = 0; i < f.capacity(); i++) {
      s ^= s << 13;
      s ^= s >>> 7;
      s ^= s << 17;
      f.put(i, ((s >>> 40) / (float) (1 << 24) - 0.5f) * 0.1f);
    }
  }

  static String cpuName() {
    try {
      for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          return line.substring(line.indexOf(':') + 1).trim();
        }
      }
    } catch (java.io.IOException | RuntimeException e) {
      // not Linux: leave it unnamed
    }
    return System.getProperty("os.arch");
  }
}
