package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.File;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.hybrimoe.device.Device;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.runtime.CudaDevice;
import org.hybrimoe.runtime.CudaDiscovery;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code bench-gpu}: the GPU side judged against the device's own ceilings, measured in the same
 * run: expert-sized pinned host-to-device copies against one large copy (the link), the decode
 * expert kernel's weight-read rate against a device-to-device copy, and prefill TFLOP/s.
 */
@Command(
    name = "bench-gpu",
    mixinStandardHelpOptions = true,
    description = "Measure PCIe copies, decode GB/s and prefill TFLOP/s of the expert kernels.")
final class BenchGpuCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--json", description = "Also write the results as JSON to FILE.")
  File json;

  @Option(names = "--device", defaultValue = "0", description = "CUDA device index (default 0).")
  int device;

  @Option(names = "--reps", defaultValue = "20", description = "Timed repetitions; medians reported.")
  int reps;

  /** The paper's three model shapes: name, d_model, d_ff, experts used per token. */
  record Shape(String name, int d, int ff, int topK) {}

  static final List<Shape> SHAPES =
      List.of(
          new Shape("deepseek-v2-lite", 2048, 1408, 6),
          new Shape("qwen2-57b-a14b", 3584, 2560, 8),
          new Shape("mixtral-8x7b", 4096, 14336, 2));

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    CudaDiscovery.Result found = CudaDiscovery.discover();
    if (found.devices().size() <= device) {
      out.println("bench-gpu: no CUDA device " + device + " (" + found.note() + "); no GPU figures measured.");
      out.flush();
      return 3;
    }
    CudaDevice gpu = found.devices().get(device);
    Map<String, Object> report = new LinkedHashMap<>();
    report.put("device", gpu.name());
    report.put("compute_capability", gpu.computeCapability());

    long big = 1L << 30;
    double link = h2d(big, big);
    double d2d = d2d(big);
    report.put("h2d_large_copy_gbps", link);
    report.put("d2d_copy_gbps", d2d);
    out.printf("%s (cc %s): pinned H2D 1 GiB copy %.1f GB/s; D2D copy %.0f GB/s (read+write)%n",
        gpu.name(), gpu.computeCapability(), link, d2d);

    List<Map<String, Object>> rows = new ArrayList<>();
    out.printf("%-23s %-8s %8s %10s %8s%n", "shape/format", "what", "tokens", "rate", "ratio");
    for (Shape s : SHAPES) {
      for (ExpertShape shape : List.of(ExpertShape.bf16(s.d(), s.ff()), ExpertShape.int4(s.d(), s.ff(), 64))) {
        measure(out, s, shape, link, d2d, big, rows);
      }
    }
    report.put("results", rows);
    if (json != null) {
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json, report);
      out.println("wrote " + json);
    }
    out.flush();
    return 0;
  }

  private void measure(
      PrintWriter out, Shape s, ExpertShape shape, double link, double d2d, long big, List<Map<String, Object>> rows) {
    String name = s.name() + "/" + shape.format().name().toLowerCase(java.util.Locale.ROOT);
    {
      long expert = shape.bytes();
      double copy = h2d(expert * Math.max(4, (int) Math.ceil((double) big / expert)), expert);
      rows.add(row(name, "h2d_expert_copy", 0, copy, copy / link, "GB/s"));
      out.printf("%-23s %-8s %8s %7.1f GB/s %8.2f of link%n", name, "copy", "-", copy, copy / link);
      int slots = Math.min(8, Device.cudaMaxSlots(device, shape, 4L << 30));
      if (slots < s.topK()) {
        out.printf("%-23s skipped: %d slots fit, %d needed%n", name, slots, s.topK());
        return;
      }
      try (Device dev = Device.cuda(device, shape, slots)) {
        long most = Math.max(shape.rows(0) * shape.rowBytes(0), shape.rows(2) * shape.rowBytes(2));
        ByteBuffer w =
            shape.format() == ExpertShape.Format.BF16 ? randomBf16(most, 1) : randomBytes(most, 1);
        FloatBuffer sc = null;
        if (shape.format() == ExpertShape.Format.INT4) {
          long scales = Math.max(shape.rows(0) * shape.scalesPerRow(0), shape.rows(2) * shape.scalesPerRow(2));
          sc = DenseOps.floats(Math.toIntExact(scales));
          for (int i = 0; i < sc.capacity(); i++) {
            sc.put(i, 0.01f);
          }
        }
        for (int i = 0; i < slots; i++) {
          dev.load(i, w, w, w, sc, sc, sc, Device.Stream.COPY);
        }
        dev.await();
        for (int tokens : new int[] {1, 4, 16, 64, 256, 1024}) {
          float ms = time(dev, s, tokens);
          double bytes = (double) expert * s.topK();
          double gbps = bytes / (ms * 1e6);
          double tflops = 2.0 * 3 * s.d() * (double) s.ff() * tokens * s.topK() / (ms * 1e9);
          if (tokens <= 16) {
            rows.add(row(name, "decode_weight_read", tokens, gbps, gbps / d2d, "GB/s"));
            out.printf("%-23s %-8s %8d %7.0f GB/s %8.2f of D2D (%.3f ms)%n", name, "decode", tokens, gbps,
                gbps / d2d, ms);
          } else {
            rows.add(row(name, "prefill", tokens, tflops, Double.NaN, "TFLOP/s"));
            out.printf("%-23s %-8s %8d %6.1f TFLOP/s %7s (%.3f ms)%n", name, "prefill", tokens, tflops, "", ms);
          }
        }
      }
    }
  }

  private float time(Device dev, Shape s, int tokens) {
    int k = s.topK();
    FloatBuffer x = DenseOps.floats(tokens * s.d());
    SplittableRandom r = new SplittableRandom(3);
    for (int i = 0; i < x.capacity(); i++) {
      x.put(i, (float) r.nextDouble(-1, 1));
    }
    IntBuffer ids = DenseOps.ints(tokens * k);
    FloatBuffer wts = DenseOps.floats(tokens * k);
    for (int t = 0; t < tokens; t++) {
      for (int j = 0; j < k; j++) {
        ids.put(t * k + j, j); // every token to the same k experts: tokens per expert = tokens
        wts.put(t * k + j, 1f / k);
      }
    }
    IntBuffer slotOf = DenseOps.ints(k);
    for (int j = 0; j < k; j++) {
      slotOf.put(j, j);
    }
    return dev.timeMoe(x, tokens, ids, wts, k, slotOf, k, reps);
  }

  private double h2d(long total, long chunk) {
    double[] g = new double[1];
    Native.check("hmoe_cuda_bench_h2d", HmoeNative.hmoe_cuda_bench_h2d(device, total, chunk, Math.max(3, reps / 4), g));
    return g[0];
  }

  private double d2d(long bytes) {
    double[] g = new double[1];
    Native.check("hmoe_cuda_bench_d2d", HmoeNative.hmoe_cuda_bench_d2d(device, bytes, reps, g));
    return g[0];
  }

  private static Map<String, Object> row(String shape, String what, int tokens, double value, double ratio, String unit) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("shape", shape);
    m.put("what", what);
    m.put("tokens", tokens);
    m.put("value", value);
    m.put("unit", unit);
    m.put("ratio", Double.isNaN(ratio) ? null : ratio);
    return m;
  }

  /** Random bf16 values in [-0.05, 0.05): never zeros, which can time faster than real data. */
  static ByteBuffer randomBf16(long bytes, long seed) {
    ByteBuffer b = ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
    SplittableRandom r = new SplittableRandom(seed);
    for (int i = 0; i + 1 < bytes; i += 2) {
      float f = (float) r.nextDouble(-0.05, 0.05);
      b.putShort(i, (short) (Float.floatToRawIntBits(f) >>> 16));
    }
    return b;
  }

  /** Random bytes (int4 nibbles of every value). */
  static ByteBuffer randomBytes(long bytes, long seed) {
    ByteBuffer b = ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
    SplittableRandom r = new SplittableRandom(seed);
    for (int i = 0; i < bytes; i++) {
      b.put(i, (byte) r.nextInt(256));
    }
    return b;
  }
}
