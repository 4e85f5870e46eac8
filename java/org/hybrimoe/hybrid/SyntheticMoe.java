package org.hybrimoe.hybrid;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Engine;

/**
 * Random MoE layers for tests and bench-layer: per layer routed experts and shared experts (routed
 * shape) in bf16 or int4, and a softmax top-k router whose logits are x . W_e + b_e, the biases
 * making some experts popular as real routers do. Inputs drift slowly from layer to layer (a
 * residual stream), so that a later layer's router applied to this layer's input predicts it
 * better than chance, as the prefetcher assumes.
 *
 * <p>Owns its expert layers and the direct buffers they borrow.
 */
public final class SyntheticMoe implements AutoCloseable {
  private final int layers;
  private final int experts;
  private final int topK;
  private final int shared;
  private final int dModel;
  private final int dFf;
  private final List<ExpertLayer> routed = new ArrayList<>();
  private final List<ExpertLayer> sharedLayers = new ArrayList<>();
  private final float[][] router; // [layer][E * d]
  private final float[][] bias; // [layer][E]

  private SyntheticMoe(int layers, int experts, int topK, int shared, int dModel, int dFf) {
    this.layers = layers;
    this.experts = experts;
    this.topK = topK;
    this.shared = shared;
    this.dModel = dModel;
    this.dFf = dFf;
    this.router = new float[layers][];
    this.bias = new float[layers][];
  }

  /** Layers of random experts in {@code format} (BF16 or INT4 with groups of 32), seeded. */
  public static SyntheticMoe create(Engine engine, ExpertFormat format, int layers, int experts, int topK, int shared,
      int dModel, int dFf, long seed) {
    if (format != ExpertFormat.BF16 && format != ExpertFormat.INT4) {
      throw new IllegalArgumentException("synthetic experts are bf16 or int4 (what devices compute), not " + format);
    }
    if (layers < 1 || experts < 1 || topK < 1 || topK > experts || shared < 0 || dModel < 1 || dFf < 1) {
      throw new IllegalArgumentException("bad synthetic MoE shape: " + layers + " layers, " + experts + " experts, top-"
          + topK + ", " + shared + " shared, " + dModel + " x " + dFf);
    }
    SyntheticMoe m = new SyntheticMoe(layers, experts, topK, shared, dModel, dFf);
    SplittableRandom r = new SplittableRandom(seed);
    try {
      for (int l = 0; l < layers; l++) {
        m.routed.add(randomLayer(engine, format, experts, dModel, dFf, r));
        m.sharedLayers.add(shared == 0 ? null : randomLayer(engine, format, shared, dModel, dFf, r));
        float[] w = new float[experts * dModel];
        double s = 1 / Math.sqrt(dModel);
        for (int i = 0; i < w.length; i++) {
          w[i] = (float) (r.nextGaussian() * s);
        }
        float[] b = new float[experts];
        for (int e = 0; e < experts; e++) {
          b[e] = (float) (1.5 * r.nextGaussian());
        }
        m.router[l] = w;
        m.bias[l] = b;
      }
      return m;
    } catch (RuntimeException ex) {
      m.close();
      throw ex;
    }
  }

  private static ExpertLayer randomLayer(Engine engine, ExpertFormat format, int n, int d, int ff, SplittableRandom r) {
    ExpertLayer layer = ExpertLayer.create(format, n, d, ff, format == ExpertFormat.INT4 ? 32 : 0);
    try {
      for (int e = 0; e < n; e++) {
        ExpertLayerWeights.Expert x = new ExpertLayerWeights.Expert(
            bf16(ff * d, 1 / Math.sqrt(d), r), bf16(ff * d, 1 / Math.sqrt(d), r), bf16(d * ff, 1 / Math.sqrt(ff), r),
            null, null, null);
        if (format == ExpertFormat.BF16) {
          layer.setExpert(e, x);
        } else {
          layer.quantizeExpert(engine, e, ExpertFormat.BF16, x);
        }
      }
      return layer;
    } catch (RuntimeException ex) {
      layer.close();
      throw ex;
    }
  }

  private static ByteBuffer bf16(int n, double scale, SplittableRandom r) {
    ByteBuffer b = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.nativeOrder());
    for (int i = 0; i < n; i++) {
      b.putShort(2 * i, (short) (Float.floatToRawIntBits((float) (r.nextGaussian() * scale)) >>> 16));
    }
    return b;
  }

  public int layers() {
    return layers;
  }

  public int experts() {
    return experts;
  }

  public int topK() {
    return topK;
  }

  public int sharedExperts() {
    return shared;
  }

  public int dModel() {
    return dModel;
  }

  public int dFf() {
    return dFf;
  }

  /** Routed experts per layer (owned here). */
  public List<ExpertLayer> routed() {
    return routed;
  }

  /** Shared experts per layer (owned here), or null when there are none. */
  public List<ExpertLayer> shared() {
    return shared == 0 ? null : sharedLayers;
  }

  /** Softmax routing of n tokens: ids and renormalised weights [n, topK], probabilities [n, E] (may be null). */
  public void route(int layer, FloatBuffer x, int n, IntBuffer ids, FloatBuffer weights, FloatBuffer scores) {
    double[] p = new double[experts];
    for (int t = 0; t < n; t++) {
      probabilities(layer, x, t, p);
      if (scores != null) {
        for (int e = 0; e < experts; e++) {
          scores.put(t * experts + e, (float) p[e]);
        }
      }
      double sum = 0;
      int[] chosen = top(p);
      for (int e : chosen) {
        sum += p[e];
      }
      for (int j = 0; j < topK; j++) {
        ids.put(t * topK + j, chosen[j]);
        weights.put(t * topK + j, (float) (p[chosen[j]] / sum));
      }
    }
  }

  /** The prefetcher's look-ahead: layer target's router on the given input. */
  public RoutePredictor predictor() {
    return (target, x, n, out) -> {
      double[] p = new double[experts];
      for (int t = 0; t < n; t++) {
        probabilities(target, x, t, p);
        int[] chosen = top(p);
        System.arraycopy(chosen, 0, out, t * topK, topK);
      }
    };
  }

  private void probabilities(int layer, FloatBuffer x, int t, double[] p) {
    float[] w = router[layer];
    double max = Double.NEGATIVE_INFINITY;
    for (int e = 0; e < experts; e++) {
      double a = bias[layer][e];
      for (int c = 0; c < dModel; c++) {
        a += w[e * dModel + c] * x.get(t * dModel + c);
      }
      p[e] = a;
      max = Math.max(max, a);
    }
    double sum = 0;
    for (int e = 0; e < experts; e++) {
      p[e] = Math.exp(p[e] - max);
      sum += p[e];
    }
    for (int e = 0; e < experts; e++) {
      p[e] /= sum;
    }
  }

  private int[] top(double[] p) {
    int[] out = new int[topK];
    boolean[] taken = new boolean[experts];
    for (int j = 0; j < topK; j++) {
      int best = -1;
      for (int e = 0; e < experts; e++) {
        if (!taken[e] && (best < 0 || p[e] > p[best])) {
          best = e;
        }
      }
      taken[best] = true;
      out[j] = best;
    }
    return out;
  }

  /** Random inputs [n, dModel] (unit Gaussian). */
  public static FloatBuffer randomInput(int n, int dModel, SplittableRandom r) {
    FloatBuffer b = ByteBuffer.allocateDirect(4 * n * dModel).order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (int i = 0; i < n * dModel; i++) {
      b.put(i, (float) r.nextGaussian());
    }
    return b;
  }

  /** The next layer's input: x drifted by a little noise (in place). */
  public static void drift(FloatBuffer x, int elements, double amount, SplittableRandom r) {
    double keep = Math.sqrt(1 - amount * amount);
    for (int i = 0; i < elements; i++) {
      x.put(i, (float) (keep * x.get(i) + amount * r.nextGaussian()));
    }
  }

  /** The all-CPU result of one layer: out += routed experts + every shared expert with weight 1. */
  public void allCpu(CpuMoe cpu, int layer, FloatBuffer x, int n, IntBuffer ids, FloatBuffer weights, FloatBuffer out) {
    cpu.run(routed.get(layer), x, n, topK, ids, weights, null, out);
    if (shared > 0) {
      IntBuffer sid = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asIntBuffer();
      FloatBuffer sw = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asFloatBuffer();
      for (int s = 0; s < shared; s++) {
        for (int t = 0; t < n; t++) {
          sid.put(t, s);
          sw.put(t, 1f);
        }
        cpu.run(sharedLayers.get(layer), x, n, 1, sid, sw, null, out);
      }
    }
  }

  @Override
  public void close() {
    for (ExpertLayer l : routed) {
      l.close();
    }
    for (ExpertLayer l : sharedLayers) {
      if (l != null) {
        l.close();
      }
    }
    routed.clear();
    sharedLayers.clear();
  }
}
