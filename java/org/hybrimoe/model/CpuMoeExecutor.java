package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import org.hybrimoe.expert.CpuMoe;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Engine;

/**
 * Every MoE layer's experts on the CPU engine ({@code hmoe_cpu_moe_run}): one {@link ExpertLayer}
 * per decoder layer index, borrowed from the checkpoint or converted at load. Owns the layers
 * (closes them), not the engine. Keeps {@link #stats}: every routed expert counts as a CPU expert.
 */
public final class CpuMoeExecutor implements MoeLayerExecutor {
  private final CpuMoe moe;
  private final TreeMap<Integer, ExpertLayer> layers = new TreeMap<>();
  private long[] cpuExperts = new long[0]; // per decoder layer
  private long activations;

  /** An executor on a caller-owned engine, with no layers yet. */
  public CpuMoeExecutor(Engine engine) {
    this.moe = CpuMoe.on(engine);
  }

  /**
   * The {@link MoeExecutorFactory} of the CPU engine: every layer borrowed in place, or converted
   * by the engine to options.expertFormat() when that differs from the checkpoint's.
   */
  public static CpuMoeExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers, LoadOptions options) {
    CpuMoeExecutor ex = new CpuMoeExecutor(engine);
    try {
      ExpertFormat target = options.expertFormat();
      for (Map.Entry<Integer, ExpertLayerWeights> e : layers.entrySet()) {
        ExpertLayerWeights w = e.getValue();
        ex.add(e.getKey(), target == null || target == w.format()
            ? ExpertLayer.borrow(w)
            : ExpertLayer.quantize(engine, target, options.groupSize(), w));
      }
      return ex;
    } catch (RuntimeException e) {
      ex.close();
      throw e;
    }
  }

  /** Adds (and takes ownership of) decoder layer {@code layer}'s experts. */
  public void add(int layer, ExpertLayer experts) {
    ExpertLayer old = layers.put(layer, experts);
    if (old != null) {
      old.close();
    }
  }

  /** The experts of one layer, or null. */
  public ExpertLayer layer(int layer) {
    return layers.get(layer);
  }

  @Override
  public void run(
      int layer, FloatBuffer x, int nTokens, int topK, IntBuffer ids, FloatBuffer weights, FloatBuffer out) {
    ExpertLayer l = layers.get(layer);
    if (l == null) {
      throw new IllegalArgumentException("layer " + layer + " has no experts in this executor");
    }
    moe.run(l, x, nTokens, topK, ids, weights, null, out);
    count(layer, l.nExperts(), ids, nTokens * topK);
  }

  // Distinct experts of one call, counted after it succeeded.
  private void count(int layer, int nExperts, IntBuffer ids, int n) {
    if (layer >= cpuExperts.length) {
      cpuExperts = Arrays.copyOf(cpuExperts, layer + 1);
    }
    boolean[] seen = new boolean[nExperts];
    int distinct = 0;
    for (int i = 0; i < n; i++) {
      int e = ids.get(ids.position() + i);
      if (e >= 0 && e < nExperts && !seen[e]) {
        seen[e] = true;
        distinct++;
      }
    }
    cpuExperts[layer] += distinct;
    activations += distinct;
  }

  /** Every routed expert on the CPU: no GPU experts, hits or transfers. */
  @Override
  public ExecutorStats stats() {
    int n = Math.max(cpuExperts.length, layers.isEmpty() ? 0 : layers.lastKey() + 1);
    return new ExecutorStats(Arrays.copyOf(cpuExperts, n), new long[n], activations, 0, 0, 0, 0, 0, 0);
  }

  @Override
  public void resetStats() {
    Arrays.fill(cpuExperts, 0);
    activations = 0;
  }

  @Override
  public void close() {
    for (ExpertLayer l : layers.values()) {
      l.close();
    }
    layers.clear();
  }
}
