package org.hybrimoe.hybrid;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.hybrimoe.device.Device;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.LeastSquaresFit;

/**
 * The calibration sweep of ALGORITHMS.md section 1 on this machine: one layer's experts timed as
 * the executor runs them, on the CPU engine and on the device (CUDA or emulated), over token
 * counts 1, 2, 4, ... and 1, 2, 4 experts a call, each call's wall time from the caller (hand-off
 * and JNI included, as a layer sees them); host-to-device copies of 1, 2 and 4 experts for the
 * link. Each device's calls are fitted to the physical form (fixed terms, first-expert term, memory
 * and compute regimes) by least squares, with residuals. Last, how much of the device's and the
 * link's work overlaps the CPU's: a CPU call run while the device computes (or copies) the same
 * amount, the wall time against the two alone; about 1 on a real GPU, less where the "GPU" and
 * the link are host threads on the CPU's own cores.
 *
 * @param cost the cost model of the fits (non-MoE terms 0: the executor measures them online)
 * @param cpu the CPU fit
 * @param gpu the device's fit, null without a device
 * @param link the transfer fit, null without a device
 * @param gpuOverlap fraction of device time overlapping CPU work (1 without a device)
 * @param linkOverlap fraction of copy time overlapping CPU work (1 without a device)
 * @param linkGpuOverlap fraction of copy time overlapping device work (1 without a device)
 */
public record Calibration(CostModel cost, LeastSquaresFit.PhysicalFit cpu, LeastSquaresFit.PhysicalFit gpu,
    LeastSquaresFit.TransferFit link, double gpuOverlap, double linkOverlap, double linkGpuOverlap) {

  /** Largest token count swept by default: past a few per expert both devices are compute-bound. */
  public static final int DEFAULT_MAX_TOKENS = 64;

  /** Experts a call in the sweep (at most the layer's). */
  static final int[] EXPERTS = {1, 2, 4};

  /** Sweeps and fits; reps timed calls per point (after one untimed), medians. */
  public static Calibration measure(Engine engine, Device device, ExpertLayer layer, int reps, int maxTokens) {
    if (reps < 1 || maxTokens < 2) {
      throw new IllegalArgumentException("calibration needs reps >= 1 and max tokens >= 2, got " + reps + ", " + maxTokens);
    }
    CpuMoe cpuMoe = CpuMoe.on(engine);
    int d = (int) layer.dModel();
    int nExperts = layer.nExperts();
    long expertBytes = device != null ? device.shape().bytes() : layer.format().rowBytes(d, layer.groupSize())
        * (2 * layer.dFf()) + layer.format().rowBytes(layer.dFf(), layer.groupSize()) * d;
    double flops = 6.0 * d * layer.dFf();
    List<LeastSquaresFit.LayerSample> cpu = new ArrayList<>();
    List<LeastSquaresFit.LayerSample> gpu = new ArrayList<>();
    int kMax = Math.min(nExperts, EXPERTS[EXPERTS.length - 1]);
    if (device != null) {
      kMax = Math.min(kMax, device.slots());
    }
    if (kMax < 2) {
      throw new IllegalArgumentException("calibration needs a layer of >= 2 experts and a device of >= 2 slots");
    }
    HybridEngine probe = null;
    try {
      IntBuffer slotOf = null;
      if (device != null) {
        probe = HybridEngine.create(engine, device, 1, nExperts);
        probe.setLayer(0, layer, null, null);
        for (int e = 0; e < kMax; e++) {
          probe.preload(0, e, e);
        }
        probe.sync();
        slotOf = ByteBuffer.allocateDirect(4 * nExperts).order(ByteOrder.nativeOrder()).asIntBuffer();
        for (int e = 0; e < nExperts; e++) {
          slotOf.put(e, e < kMax ? e : -1);
        }
      }
      SplittableRandom r = new SplittableRandom(7);
      for (int n = 1; n <= maxTokens; n *= 2) {
        for (int k : EXPERTS) {
          if (k > kMax) {
            continue;
          }
          FloatBuffer x = SyntheticMoe.randomInput(n, d, r);
          IntBuffer ids = ByteBuffer.allocateDirect(4 * n * k).order(ByteOrder.nativeOrder()).asIntBuffer();
          FloatBuffer w = ByteBuffer.allocateDirect(4 * n * k).order(ByteOrder.nativeOrder()).asFloatBuffer();
          FloatBuffer out = ByteBuffer.allocateDirect(4 * n * d).order(ByteOrder.nativeOrder()).asFloatBuffer();
          for (int t = 0; t < n; t++) {
            for (int j = 0; j < k; j++) {
              ids.put(t * k + j, j); // every token to experts 0..k-1: k experts of n tokens each
              w.put(t * k + j, 1f / k);
            }
          }
          double[] ms = new double[reps];
          for (int q = -1; q < reps; q++) {
            long t0 = System.nanoTime();
            cpuMoe.run(layer, x, n, k, ids, w, null, out);
            if (q >= 0) {
              ms[q] = (System.nanoTime() - t0) / 1e6;
            }
          }
          cpu.add(new LeastSquaresFit.LayerSample(n, k, median(ms)));
          if (device != null) {
            for (int q = -1; q < reps; q++) {
              long t0 = System.nanoTime();
              device.moeRun(x, n, ids, w, k, slotOf, nExperts, out);
              device.await();
              if (q >= 0) {
                ms[q] = (System.nanoTime() - t0) / 1e6;
              }
            }
            gpu.add(new LeastSquaresFit.LayerSample(n, k, median(ms)));
          }
        }
      }
      LeastSquaresFit.PhysicalFit cf = LeastSquaresFit.fitPhysical(cpu, expertBytes, flops);
      if (device == null) {
        CostModel c = new CostModel(cf.first(), cf.fixed(), cf.memMs(), cf.tokMs(), 0, 1e-4, 0, 1e-6, 0, 1e6,
            Math.max(1, expertBytes), 0, 0, 1, 1e-4);
        return new Calibration(c, cf, null, null, 1, 1, 1);
      }
      LeastSquaresFit.PhysicalFit gf = LeastSquaresFit.fitPhysical(gpu, expertBytes, flops);
      List<LeastSquaresFit.TransferSample> xs = new ArrayList<>();
      for (int copies : new int[] {1, 2, 4}) {
        int c = Math.min(copies, nExperts);
        double[] ms = new double[reps];
        for (int q = -1; q < reps; q++) {
          double t0 = HybridEngine.clockMs();
          for (int e = 0; e < c; e++) {
            probe.preload(0, e, e);
          }
          probe.sync();
          if (q >= 0) {
            ms[q] = HybridEngine.clockMs() - t0;
          }
        }
        xs.add(new LeastSquaresFit.TransferSample(c * expertBytes, median(ms)));
      }
      LeastSquaresFit.TransferFit lf;
      try {
        lf = LeastSquaresFit.fitTransfer(xs);
      } catch (IllegalArgumentException flat) { // a layer of one expert, or copies too fast to tell apart
        double ms = xs.get(0).ms();
        lf = new LeastSquaresFit.TransferFit(0, expertBytes / Math.max(ms, 1e-4), 0, 0, xs.size());
      }
      double[] overlaps = overlaps(cpuMoe, device, probe, layer, slotOf, kMax, reps, r);
      if (device.kind() == Device.Kind.EMULATED) { // measured, and bounded by the cores there are
        double[] bound = emulatedOverlapBound(physicalCores(), engine.threads());
        for (int i = 0; i < 3; i++) {
          overlaps[i] = Math.min(overlaps[i], bound[i]);
        }
      }
      CostModel c = new CostModel(cf.first(), cf.fixed(), cf.memMs(), cf.tokMs(), gf.first(), gf.fixed(), gf.memMs(),
          gf.tokMs(), lf.latency(), lf.bytesPerMs(), expertBytes, 0, 0, 1, gf.fixed(), overlaps[0], overlaps[1],
          overlaps[2]);
      return new Calibration(c, cf, gf, lf, overlaps[0], overlaps[1], overlaps[2]);
    } finally {
      if (probe != null) {
        probe.close();
      }
    }
  }

  /**
   * {gpu with CPU, link with CPU, link with gpu} overlaps: a CPU call of kMax experts with 16
   * tokens each, the same device call and kMax expert copies, each alone and in pairs started
   * together; overlap = (alone + alone - together) / the shorter alone, clamped to [0, 1], median
   * over reps.
   */
  private static double[] overlaps(CpuMoe cpuMoe, Device device, HybridEngine probe, ExpertLayer layer, IntBuffer slotOf,
      int k, int reps, SplittableRandom r) {
    int d = (int) layer.dModel();
    int n = 16; // long enough calls that a core's scheduling jitter does not decide the ratio
    reps = Math.max(reps, 9);
    FloatBuffer x = SyntheticMoe.randomInput(n, d, r);
    IntBuffer ids = ByteBuffer.allocateDirect(4 * n * k).order(ByteOrder.nativeOrder()).asIntBuffer();
    FloatBuffer w = ByteBuffer.allocateDirect(4 * n * k).order(ByteOrder.nativeOrder()).asFloatBuffer();
    FloatBuffer outC = ByteBuffer.allocateDirect(4 * n * d).order(ByteOrder.nativeOrder()).asFloatBuffer();
    FloatBuffer outG = ByteBuffer.allocateDirect(4 * n * d).order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < k; j++) {
        ids.put(t * k + j, j);
        w.put(t * k + j, 1f / k);
      }
    }
    double[] gpu = new double[reps];
    double[] link = new double[reps];
    double[] linkGpu = new double[reps];
    for (int q = -1; q < reps; q++) {
      long t0 = System.nanoTime();
      cpuMoe.run(layer, x, n, k, ids, w, null, outC);
      double cpuMs = (System.nanoTime() - t0) / 1e6;
      t0 = System.nanoTime();
      device.moeRun(x, n, ids, w, k, slotOf, layer.nExperts(), outG);
      device.await();
      double devMs = (System.nanoTime() - t0) / 1e6;
      t0 = System.nanoTime();
      device.moeRun(x, n, ids, w, k, slotOf, layer.nExperts(), outG);
      cpuMoe.run(layer, x, n, k, ids, w, null, outC);
      device.await();
      double both = (System.nanoTime() - t0) / 1e6;
      t0 = System.nanoTime();
      for (int e = 0; e < k; e++) {
        probe.preload(0, e, e);
      }
      probe.sync();
      double copyMs = (System.nanoTime() - t0) / 1e6;
      t0 = System.nanoTime();
      for (int e = 0; e < k; e++) {
        probe.preload(0, e, e);
      }
      cpuMoe.run(layer, x, n, k, ids, w, null, outC);
      probe.sync();
      double bothCopy = (System.nanoTime() - t0) / 1e6;
      // Copies into slots the run does not read (else the device orders the run after them).
      int m = Math.min(k, Math.min(device.slots() - k, layer.nExperts() - k));
      double lg = 1;
      if (m > 0) {
        t0 = System.nanoTime();
        for (int e = 0; e < m; e++) {
          probe.preload(0, k + e, k + e);
        }
        probe.sync();
        double copyOther = (System.nanoTime() - t0) / 1e6;
        t0 = System.nanoTime();
        for (int e = 0; e < m; e++) {
          probe.preload(0, k + e, k + e);
        }
        device.moeRun(x, n, ids, w, k, slotOf, layer.nExperts(), outG);
        device.await();
        probe.sync();
        lg = overlap(devMs, copyOther, (System.nanoTime() - t0) / 1e6);
      }
      if (q >= 0) {
        gpu[q] = overlap(cpuMs, devMs, both);
        link[q] = overlap(cpuMs, copyMs, bothCopy);
        linkGpu[q] = lg;
      }
    }
    return new double[] {median(gpu), median(link), median(linkGpu)};
  }

  /**
   * What the cores allow the host-emulated device: its compute worker and its copy worker are
   * host threads, so they overlap the CPU engine's threads only on cores the engine leaves free,
   * and each other only on a core beyond that: {device with CPU, link with CPU, link with device}
   * = clamp(cores - engine threads), clamp(cores - engine threads), clamp(cores - engine threads -
   * 1), each clamped to [0, 1]. A timing alone cannot tell this on a shared machine: a short trial
   * can catch the engine's threads parked and measure an overlap the steady state never has.
   */
  static double[] emulatedOverlapBound(int cores, int engineThreads) {
    double free = Math.max(0, Math.min(1, cores - engineThreads));
    double second = Math.max(0, Math.min(1, cores - engineThreads - 1));
    return new double[] {free, free, second};
  }

  private static int physicalCores() {
    int[] cores = new int[1];
    org.hybrimoe.nativeapi.Native.check("hmoe_cpu_physical_cores",
        org.hybrimoe.nativeapi.HmoeNative.hmoe_cpu_physical_cores(cores));
    return Math.max(1, cores[0]);
  }

  private static double overlap(double a, double b, double together) {
    double o = (a + b - together) / Math.min(a, b);
    return Math.max(0, Math.min(1, o));
  }

  /** One line per device for reports: the fitted terms and residuals. */
  public String describe() {
    StringBuilder b = new StringBuilder(describe("CPU", cpu));
    if (gpu != null) {
      b.append('\n').append(describe("device", gpu));
      b.append('\n').append(String.format(Locale.ROOT, "link: %.4f ms + bytes / %.2f GB/s (rms residual %.4f ms)",
          link.latency(), link.bytesPerMs() / 1e6, link.rmsResidual()));
      b.append('\n').append(String.format(Locale.ROOT,
          "overlaps: device with CPU %.2f, link with CPU %.2f, link with device %.2f (1: independent resources; less: they"
              + " share the host's cores and memory)", gpuOverlap, linkOverlap, linkGpuOverlap));
    }
    return b.toString();
  }

  private static String describe(String what, LeastSquaresFit.PhysicalFit f) {
    return String.format(Locale.ROOT,
        "%s: first %.4f ms + per expert %.4f ms + max(%.4f ms, %.5f ms x tokens) (%.1f GB/s, %.1f GFLOP/s; crossover %.1f tokens; rms residual %.4f ms over %d calls)",
        what, f.first(), f.fixed(), f.memMs(), f.tokMs(), f.bytesPerMs() / 1e6, f.flopsPerMs() / 1e6,
        f.tokMs() > 0 ? f.memMs() / f.tokMs() : 0, f.rmsResidual(), f.samples());
  }

  static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
  }
}
