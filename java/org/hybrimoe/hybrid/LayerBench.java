package org.hybrimoe.hybrid;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.hybrimoe.device.Device;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.ModelShape;

/**
 * The measurement behind {@code bench-layer}: a paper model shape scaled to fit the machine, its
 * cost model calibrated on this machine in the same run, then every bundle at a cache ratio run
 * through the real hybrid executor, each layer's measured latency next to the section 2
 * simulation's prediction for the same routing and cache state.
 */
public final class LayerBench {
  /** A model shape scaled down: how, and the synthetic layers' sizes. */
  public record Scaled(ModelShape paper, int layers, int dModel, int dFf, int divisor, int shared) {
    public String how() {
      return String.format("d_model %d->%d, d_ff %d->%d (1/%d), %d MoE layers->%d, %d experts top-%d, %d shared (d_ff pieces)",
          paper.dModel(), dModel, paper.ff(), dFf, divisor, paper.layers(), layers, paper.experts(), paper.topK(), shared);
    }
  }

  /** One configuration's result: medians over layer calls (ms) and the mean relative prediction error. */
  public record Row(String shape, String bundle, double ratio, String phase, int tokens, double measuredMs,
      double predictedMs, double meanAbsErrorPct, double hitRate, double gpuShare, long transfers, long prefetches) {}

  private LayerBench() {}

  /**
   * The largest power-of-two reduction of d_model and d_ff (at least 1/1, multiples of 32 kept)
   * that puts {@code layers} layers of routed and shared experts within {@code budgetBytes}.
   */
  public static Scaled scale(ModelShape s, int layers, long budgetBytes, ExpertFormat format) {
    int shared = s.sharedExperts() == 0 ? 0 : (int) Math.ceil((double) s.sharedExperts() * s.sharedFf() / s.ff());
    for (int div = 1; div <= 1024; div *= 2) {
      int d = Math.max(32, s.dModel() / div / 32 * 32);
      int ff = Math.max(32, s.ff() / div / 32 * 32);
      double perWeight = format == ExpertFormat.INT4 ? 0.5 + 4.0 / 32 : 2;
      double bytes = (double) layers * (s.experts() + shared) * 3.0 * d * ff * perWeight;
      if (bytes <= budgetBytes || (d == 32 && ff == 32)) {
        return new Scaled(s, layers, d, ff, div, shared);
      }
    }
    throw new IllegalStateException("unreachable");
  }

  /**
   * Section 1's coefficients measured here for this shape (calibrate's sweep over one layer's
   * experts), as a cost model.
   */
  public static CostModel calibrate(Engine engine, Device device, SyntheticMoe m, int reps) {
    return calibrate(engine, device, m.routed().get(0), reps);
  }

  /** As above for one layer's experts; device null: CPU only. */
  public static CostModel calibrate(Engine engine, Device device, org.hybrimoe.expert.ExpertLayer layer, int reps) {
    return Calibration.measure(engine, device, layer, reps, Calibration.DEFAULT_MAX_TOKENS).cost();
  }

  /**
   * Runs one bundle at one cache ratio: {@code warm} untimed decode tokens, then {@code decode}
   * single tokens and one prompt of {@code prompt} tokens through every layer.
   */
  public static List<Row> run(Engine engine, SyntheticMoe m, Scaled s, CostModel cost, PolicyBundle b, double ratio,
      boolean cuda, int warm, int decode, int prompt, List<LayerTimeline> keep) {
    int cacheSlots = ExpertCache.slotsFor(ratio, m.layers(), m.experts());
    int staging = Math.max(2, 2 * m.topK());
    int slots = HybridMoe.deviceSlots(cacheSlots, staging, m.layers() * m.sharedExperts());
    ExpertShape shape = m.routed().get(0).format() == ExpertFormat.INT4
        ? ExpertShape.int4(m.dModel(), m.dFf(), 32) : ExpertShape.bf16(m.dModel(), m.dFf());
    List<Row> rows = new ArrayList<>();
    try (Device dev = cuda ? Device.cuda(0, shape, slots) : Device.emulated(1, shape, slots);
        HybridMoe h = new HybridMoe(engine, dev, new HybridMoe.Config(b, cost, cacheSlots, staging, null, 0.2, 12),
            m.routed(), m.shared(), range(m.layers()), m.topK())) {
      h.setPredictor(m.predictor());
      SplittableRandom r = new SplittableRandom(42);
      pass(h, m, 1, warm, r, null);
      h.resetStats();
      List<LayerTimeline> dec = new ArrayList<>();
      pass(h, m, 1, decode, r, dec);
      rows.add(row(s, b, ratio, "decode", 1, dec, h.hybridStats()));
      h.resetStats();
      List<LayerTimeline> pre = new ArrayList<>();
      pass(h, m, prompt, 1, r, pre);
      rows.add(row(s, b, ratio, "prefill", prompt, pre, h.hybridStats()));
      if (keep != null) {
        keep.addAll(dec);
      }
      h.sync();
    }
    return rows;
  }

  private static void pass(HybridMoe h, SyntheticMoe m, int n, int times, SplittableRandom r, List<LayerTimeline> out) {
    int k = m.topK();
    IntBuffer ids = ByteBuffer.allocateDirect(4 * n * k).order(ByteOrder.nativeOrder()).asIntBuffer();
    FloatBuffer w = ByteBuffer.allocateDirect(4 * n * k).order(ByteOrder.nativeOrder()).asFloatBuffer();
    FloatBuffer sc = ByteBuffer.allocateDirect(4 * n * m.experts()).order(ByteOrder.nativeOrder()).asFloatBuffer();
    FloatBuffer y = ByteBuffer.allocateDirect(4 * n * m.dModel()).order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (int i = 0; i < times; i++) {
      FloatBuffer x = SyntheticMoe.randomInput(n, m.dModel(), r);
      for (int l = 0; l < m.layers(); l++) {
        m.route(l, x, n, ids, w, sc);
        LayerTimeline tl = h.runLayer(l, x, n, ids, w, sc, null, y);
        if (out != null) {
          out.add(tl);
        }
        SyntheticMoe.drift(x, n * m.dModel(), 0.3, r);
      }
    }
  }

  private static Row row(Scaled s, PolicyBundle b, double ratio, String phase, int tokens, List<LayerTimeline> tls,
      HybridMoe.Stats st) {
    double[] meas = tls.stream().mapToDouble(LayerTimeline::measuredMs).toArray();
    double[] pred = tls.stream().mapToDouble(LayerTimeline::predictedMs).toArray();
    double err = 0;
    for (int i = 0; i < meas.length; i++) {
      err += Math.abs(meas[i] - pred[i]) / Math.max(meas[i], 1e-9);
    }
    long gpu = st.gpuExperts();
    return new Row(s.paper().name(), b.name(), ratio, phase, tokens, median(meas), median(pred),
        100 * err / Math.max(1, meas.length), st.hitRate(), gpu / (double) Math.max(1, gpu + st.cpuExperts()),
        st.demandTransfers(), st.prefetches() + st.fills()); // every copy ahead of need: look-ahead and MRS fill
  }

  static int[] range(int n) {
    int[] r = new int[n];
    for (int i = 0; i < n; i++) {
      r[i] = i;
    }
    return r;
  }

  static double median(double[] v) {
    if (v.length == 0) {
      return Double.NaN;
    }
    double[] c = v.clone();
    Arrays.sort(c);
    return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
  }
}
