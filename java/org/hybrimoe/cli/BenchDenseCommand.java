package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.File;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.device.Device;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.model.AttentionBench;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The dense linears one decode token of a real model's shape reads (each layer's whole-weight
 * attention projections and the LM head, bf16, random), timed on the CPU and on a dense device in
 * the same run: milliseconds per token on each and their ratio, the device's weight-read rate
 * against its own bandwidth probe (CUDA: a device-to-device copy), and a prefill-sized call.
 * Device times include moving the activations in and out of host memory, as the model does.
 * Last, one layer's whole attention sublayer (MLA or GQA) for a decode token at a context
 * ({@code --context}), on the CPU path and on the device with its cache there.
 */
@Command(
    name = "bench-dense",
    mixinStandardHelpOptions = true,
    description = "Benchmark a model shape's dense linears on a dense device against the CPU.")
public final class BenchDenseCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--shape", defaultValue = "deepseek-v2-lite",
      description = "deepseek-v2-lite, mixtral-8x7b or qwen2-57b-a14b (default ${DEFAULT-VALUE}).")
  String shape;

  @Option(names = "--layers", description = "Decoder layers (default: the model's).")
  Integer layers;

  @Option(names = "--vocab", description = "LM head rows (default: the model's vocabulary).")
  Integer vocab;

  @Option(names = "--device", defaultValue = "cuda", description = "cuda or emulated (no speed claim).")
  String device;

  @Option(names = "--threads", defaultValue = "0", description = "CPU threads (0: one per physical core).")
  int threads;

  @Option(names = "--reps", defaultValue = "7", description = "Timed tokens per side; medians reported.")
  int reps;

  @Option(names = "--prefill-tokens", defaultValue = "512", description = "Tokens of the prefill-sized call.")
  int prefillTokens;

  @Option(names = "--context", defaultValue = "1024",
      description = "Context of the attention sublayer's timed decode steps (0: skip that part; default ${DEFAULT-VALUE}).")
  int context;

  @Option(names = "--json", description = "Also write the figures as JSON.")
  File json;

  /** A model's dense linears of one decoder layer ([out, in] each; groups share their input) and its head. */
  record Shape(String name, int layers, int d, int vocab, int[][][] groups) {}

  static Shape shape(String name) {
    return switch (name.toLowerCase(Locale.ROOT)) {
      // MLA: q_proj [16 x 192, d] with kv_a_proj_with_mqa [512 + 64, d], then o_proj [d, 16 x 128].
      case "deepseek-v2-lite" -> new Shape("deepseek-v2-lite", 27, 2048, 102400,
          new int[][][] {{{3072, 2048}, {576, 2048}}, {{2048, 2048}}});
      // GQA: q [4096, d], k and v [1024, d], o [d, 4096].
      case "mixtral-8x7b" -> new Shape("mixtral-8x7b", 32, 4096, 32000,
          new int[][][] {{{4096, 4096}, {1024, 4096}, {1024, 4096}}, {{4096, 4096}}});
      case "qwen2-57b-a14b" -> new Shape("qwen2-57b-a14b", 28, 3584, 151936,
          new int[][][] {{{3584, 3584}, {512, 3584}, {512, 3584}}, {{3584, 3584}}});
      default -> throw new IllegalArgumentException(
          "--shape must be deepseek-v2-lite, mixtral-8x7b or qwen2-57b-a14b, got '" + name + "'");
    };
  }

  // One linear: bf16 weights on both sides.
  private record Lin(ByteBuffer w, int out, int in, DenseDevice.Weight onDevice) {}

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    Shape s = shape(shape);
    int nLayers = layers != null ? layers : s.layers();
    int headRows = vocab != null ? vocab : s.vocab();
    if (nLayers < 1 || headRows < 1 || reps < 1 || prefillTokens < 1 || context < 0) {
      throw new IllegalArgumentException(
          "need --layers >= 1, --vocab >= 1, --reps >= 1, --prefill-tokens >= 1, --context >= 0");
    }
    boolean cuda = switch (device.toLowerCase(Locale.ROOT)) {
      case "cuda", "gpu" -> true;
      case "emulated" -> false;
      default -> throw new IllegalArgumentException("--device must be cuda or emulated, got '" + device + "'");
    };
    try (DenseDevice dev = cuda ? DenseDevice.cuda(0) : DenseDevice.emulated(threads);
        CpuMoe cpu = CpuMoe.create(threads)) {
      // Layers share their weights' host bytes (one random set per distinct shape); the device holds
      // a copy per layer, so that its reads come from memory as a whole model's would.
      List<List<Lin>> perLayer = new ArrayList<>();
      Map<String, ByteBuffer> host = new LinkedHashMap<>();
      long bytes = 0;
      for (int l = 0; l < nLayers; l++) {
        for (int[][] g : s.groups()) {
          List<Lin> group = new ArrayList<>();
          for (int[] w : g) {
            ByteBuffer b = host.computeIfAbsent(w[0] + "x" + w[1], k -> BenchGpuCommand.randomBf16(2L * w[0] * w[1], 7));
            group.add(new Lin(b, w[0], w[1], dev.upload(b, WeightType.BF16, w[0], w[1], null)));
            bytes += 2L * w[0] * w[1];
          }
          perLayer.add(group);
        }
      }
      ByteBuffer headW = BenchGpuCommand.randomBf16(2L * headRows * s.d(), 8);
      perLayer.add(List.of(new Lin(headW, headRows, s.d(), dev.upload(headW, WeightType.BF16, headRows, s.d(), null))));
      bytes += 2L * headRows * s.d();

      double[] cpuMs = new double[reps];
      double[] devMs = new double[reps];
      FloatBuffer[] one = buffers(perLayer, 1);
      token(perLayer, cpu, dev, 1, one, false); // warm-up both sides
      token(perLayer, cpu, dev, 1, one, true);
      for (int r = 0; r < reps; r++) { // alternating, so that both sides see the same machine
        cpuMs[r] = token(perLayer, cpu, dev, 1, one, false);
        devMs[r] = token(perLayer, cpu, dev, 1, one, true);
      }
      double cpuMed = DemoCommand.median(cpuMs);
      double devMed = DemoCommand.median(devMs);
      double devGbps = bytes / (devMed * 1e6);
      double cpuGbps = bytes / (cpuMed * 1e6);
      double probe = cuda ? d2d() : cpu.bandwidthProbeGbps(512L << 20, 3);
      int calls = perLayer.size();
      out.printf(Locale.ROOT, "%s, %d layers: %.1f MB of bf16 dense weights a token in %d calls (%s dense device, "
          + "CPU %d threads)%n", s.name(), nLayers, bytes / 1e6, calls, cuda ? "CUDA" : "emulated",
          cpu.engine().threads());
      out.printf(Locale.ROOT, "decode, CPU:    %.3f ms/token (range %.3f-%.3f) = %.1f GB/s%n", cpuMed, min(cpuMs),
          max(cpuMs), cpuGbps);
      out.printf(Locale.ROOT, "decode, device: %.3f ms/token (range %.3f-%.3f) = %.1f GB/s = %.2f of its %s probe "
          + "(%.0f GB/s)%n", devMed, min(devMs), max(devMs), devGbps, devGbps / probe,
          cuda ? "D2D copy" : "CPU read", probe);
      out.printf(Locale.ROOT, "device over CPU: %.2fx (median CPU ms / median device ms, %d tokens each)%n",
          cpuMed / devMed, reps);
      if (!cuda) {
        out.println("(emulated device: the CPU's kernels on a thread of its own; no speed claim)");
      }
      double preMs = token(perLayer, cpu, dev, prefillTokens, buffers(perLayer, prefillTokens), true);
      double tflops = 2.0 * bytes / 2 * prefillTokens / (preMs * 1e9);
      out.printf(Locale.ROOT, "prefill, device: %d tokens in %.1f ms = %.2f TFLOP/s (one run)%n", prefillTokens, preMs,
          tflops);
      AttentionBench.Result att = context > 0 ? AttentionBench.run(s.name(), context, reps, cpu.engine(), dev) : null;
      if (att != null) {
        double c = DemoCommand.median(att.cpuMs());
        double g = DemoCommand.median(att.deviceMs());
        out.printf(Locale.ROOT, "attention sublayer (%s, one layer, bf16 cache, 1 token at context %d): CPU %.3f ms "
            + "(range %.3f-%.3f), device %.3f ms (range %.3f-%.3f); device over CPU %.2fx, x %d layers = %.2f ms a "
            + "token saved%n", att.form(), context, c, min(att.cpuMs()), max(att.cpuMs()), g, min(att.deviceMs()),
            max(att.deviceMs()), c / g, nLayers, (c - g) * nLayers);
      }
      out.flush();
      if (json != null) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("shape", s.name());
        m.put("layers", nLayers);
        m.put("device", cuda ? "cuda" : "emulated");
        m.put("dense_bytes_per_token", bytes);
        m.put("cpu_ms_per_token", cpuMed);
        m.put("device_ms_per_token", devMed);
        m.put("device_over_cpu", cpuMed / devMed);
        m.put("device_gbps", devGbps);
        m.put("probe_gbps", probe);
        m.put("device_ratio_to_probe", devGbps / probe);
        m.put("prefill_tokens", prefillTokens);
        m.put("prefill_tflops", tflops);
        if (att != null) {
          m.put("attention_form", att.form());
          m.put("attention_context", context);
          m.put("attention_cpu_ms", DemoCommand.median(att.cpuMs()));
          m.put("attention_device_ms", DemoCommand.median(att.deviceMs()));
          m.put("attention_device_over_cpu", DemoCommand.median(att.cpuMs()) / DemoCommand.median(att.deviceMs()));
        }
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json, m);
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return 0;
  }

  // Input and output buffers for n tokens through any group: [n, widest in] and [n, widest sum of outs].
  private static FloatBuffer[] buffers(List<List<Lin>> groups, int n) {
    int widest = 0;
    int in = 0;
    for (List<Lin> g : groups) {
      widest = Math.max(widest, g.stream().mapToInt(Lin::out).sum());
      in = Math.max(in, g.get(0).in());
    }
    return new FloatBuffer[] {DenseOps.floats((long) n * in), DenseOps.floats((long) n * widest)};
  }

  // Milliseconds for one pass over every group with n tokens (xy from buffers), on the device or the CPU.
  private static double token(List<List<Lin>> groups, CpuMoe cpu, DenseDevice dev, int n, FloatBuffer[] xy,
      boolean onDevice) {
    FloatBuffer x = xy[0];
    FloatBuffer y = xy[1];
    long t0 = System.nanoTime();
    for (List<Lin> g : groups) {
      if (onDevice) {
        dev.linears(x, n, y, g.stream().map(Lin::onDevice).toArray(DenseDevice.Weight[]::new));
      } else {
        int at = 0;
        for (Lin l : g) {
          DenseOps.linear(cpu.engine(), x, n, l.in(), l.w(), WeightType.BF16, l.out(), null, y.slice(at, n * l.out()));
          at += n * l.out();
        }
      }
    }
    return (System.nanoTime() - t0) / 1e6;
  }

  private static double d2d() {
    double[] g = new double[1];
    Native.check("hmoe_cuda_bench_d2d", HmoeNative.hmoe_cuda_bench_d2d(0, 1L << 30, 10, g));
    return g[0];
  }

  private static double min(double[] v) {
    return java.util.Arrays.stream(v).min().orElse(Double.NaN);
  }

  private static double max(double[] v) {
    return java.util.Arrays.stream(v).max().orElse(Double.NaN);
  }
}
