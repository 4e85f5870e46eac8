package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.ops.DenseOps;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What the model hands its executor besides the routing: every token's routing probabilities
 * (probability vectors whose chosen entries are the weights before renormalisation and scaling),
 * a look-ahead whose prediction for a layer from that layer's own input is its routing, and the
 * CPU executor's per-layer statistics.
 */
class ExecutorPlumbingTest {
  /** A make-model checkpoint: {@code layers} layers, the first {@code dense} of them dense (DeepSeek, Qwen). */
  static Path model(Path dir, String arch, int layers, int dense) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults(arch);
    ModelMaker.write(new ModelMaker.Spec(s.arch(), layers, s.hidden(), s.experts(), s.topK(), s.expertFf(), s.heads(),
        s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), dense, s.kvLoraRank(), s.qLoraRank(), s.rope(), s.nope(),
        s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), false, s.seed(), "BF16", true, 1), dir);
    return dir;
  }

  /** One MoE call as the executor saw it: copies of scores, ids and weights, and the look-ahead's prediction. */
  record Call(int layer, int n, int k, int experts, float[] scores, int[] ids, float[] weights, int[] predicted) {}

  /** The CPU executor behind a recorder of everything the model hands over. */
  static final class Recording implements MoeLayerExecutor {
    final CpuMoeExecutor cpu;
    final List<Call> calls = new ArrayList<>();
    final List<Lookahead> lookaheads = new ArrayList<>();
    boolean oldRunCalled;

    Recording(CpuMoeExecutor cpu) {
      this.cpu = cpu;
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer out) {
      oldRunCalled = true;
      cpu.run(layer, x, n, k, ids, w, out);
    }

    @Override
    public void run(int layer, FloatBuffer x, int n, int k, IntBuffer ids, FloatBuffer w, FloatBuffer scores,
        FloatBuffer out) {
      assertNotNull(scores, "the model passes scores");
      assertTrue(scores.isDirect());
      int e = scores.capacity() / n;
      float[] s = new float[n * e];
      scores.get(0, s);
      int[] i = new int[n * k];
      ids.get(0, i);
      float[] wt = new float[n * k];
      w.get(0, wt);
      int[] pred = new int[n * k];
      Lookahead la = lookaheads.get(lookaheads.size() - 1);
      assertEquals(k, la.topK(layer));
      la.predict(layer, x, n, pred); // mid-forward: must not disturb the scratch in use
      calls.add(new Call(layer, n, k, e, s, i, wt, pred));
      cpu.run(layer, x, n, k, ids, w, out);
    }

    @Override
    public void setLookahead(Lookahead lookahead) {
      lookaheads.add(lookahead);
    }

    @Override
    public ExecutorStats stats() {
      return cpu.stats();
    }

    @Override
    public void resetStats() {
      cpu.resetStats();
    }

    @Override
    public void close() {
      cpu.close();
    }
  }

  static float[][] run(CausalLm m, int[] prompt, int... next) {
    try (Session s = m.newSession(prompt.length + next.length)) {
      float[][] out = new float[1 + next.length][];
      out[0] = s.forwardLast(prompt);
      for (int i = 0; i < next.length; i++) {
        out[1 + i] = s.forwardLast(next[i]);
      }
      return out;
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen2_moe", "deepseek_v2", "deepseek_v3"})
  void executorGetsRoutingProbabilitiesAndALookaheadThatReproducesTheRouting(String arch, @TempDir Path dir)
      throws IOException {
    model(dir, arch, 3, 1);
    Recording[] rec = new Recording[1];
    LoadOptions o = new LoadOptions(1, null, 32).withExecutors((engine, layers, options) ->
        rec[0] = new Recording(CpuMoeExecutor.create(engine, layers, options)));
    int[] prompt = {4, 8, 15, 16, 23};
    float[][] plugged;
    try (CausalLm m = ModelRegistry.load(dir, o)) {
      assertEquals(1, rec[0].lookaheads.size(), "handed the look-ahead once, at assembly");
      assertSame(m.lookahead(), rec[0].lookaheads.get(0));
      plugged = run(m, prompt, 42, 7);
    }
    float[][] plain;
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32))) {
      plain = run(m, prompt, 42, 7);
    }
    for (int t = 0; t < plain.length; t++) {
      assertArrayEquals(plain[t], plugged[t], 0f, "the look-ahead leaves the forward pass alone");
    }
    assertTrue(!rec[0].oldRunCalled, "the model calls the run that takes scores");
    assertTrue(rec[0].calls.size() >= 3, "MoE calls: " + rec[0].calls.size());
    boolean sigmoid = arch.equals("deepseek_v3");
    for (Call c : rec[0].calls) {
      assertArrayEquals(c.ids(), c.predicted(), arch + " layer " + c.layer() + ": its own router on its own input");
      for (int t = 0; t < c.n(); t++) {
        double sum = 0;
        for (int e = 0; e < c.experts(); e++) {
          float p = c.scores()[t * c.experts() + e];
          assertTrue(p > 0 && p < 1, "a probability: " + p);
          sum += p;
        }
        if (!sigmoid) {
          assertEquals(1.0, sum, 1e-5, arch + " softmax row sums to 1");
        }
        // The chosen experts' scores are the weights before renormalisation (and scaling).
        double chosen = 0;
        for (int j = 0; j < c.k(); j++) {
          chosen += c.scores()[t * c.experts() + c.ids()[t * c.k() + j]];
        }
        double[] ratio = new double[c.k()];
        for (int j = 0; j < c.k(); j++) {
          double s = c.scores()[t * c.experts() + c.ids()[t * c.k() + j]];
          ratio[j] = c.weights()[t * c.k() + j] / s;
          if (arch.equals("mixtral")) { // renormalised, no scale
            assertEquals(s / chosen, c.weights()[t * c.k() + j], 1e-6);
          } else if (arch.equals("qwen2_moe")) { // norm_topk_prob false: the probability itself
            assertEquals(s, c.weights()[t * c.k() + j], 1e-6);
          }
        }
        for (int j = 1; j < c.k(); j++) { // any model: one factor (renormalisation, scale) for all
          assertEquals(ratio[0], ratio[j], 1e-4 * ratio[0]);
        }
      }
    }
  }

  @Test
  void cpuExecutorStatsCountDistinctExpertsPerLayerAndReset(@TempDir Path dir) throws IOException {
    model(dir, "deepseek_v2", 4, 2); // layers 0, 1 dense; 2, 3 MoE
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32))) {
      ExecutorStats zero = m.experts().stats();
      assertEquals(4, zero.layers());
      assertEquals(0, zero.activations());
      run(m, new int[] {4, 8, 15, 16, 23, 42}, 5, 9);
      ExecutorStats s = m.experts().stats();
      assertEquals(0, s.cpuExperts()[0]);
      assertEquals(0, s.cpuExperts()[1]);
      assertTrue(s.cpuExperts()[2] >= 2 + 2 + 2, "at least top-k per call: " + s); // prefill and two decodes
      assertEquals(s.activations(), s.cpuTotal());
      assertEquals(0, s.gpuTotal());
      assertEquals(0, s.hitRate());
      assertEquals(0, s.prefetches() + s.demandTransfers() + s.bytesMoved());
      m.experts().resetStats();
      ExecutorStats r = m.experts().stats();
      assertEquals(0, r.activations());
      assertEquals(0, r.cpuTotal());
      assertEquals(4, r.layers());
    }
  }

  @Test
  void lookaheadRefusesLayersWithoutExperts(@TempDir Path dir) throws IOException {
    model(dir, "deepseek_v2", 3, 1);
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32))) {
      Lookahead la = m.lookahead();
      FloatBuffer x = DenseOps.floats(m.hiddenSize());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> la.predict(0, x, 1, new int[2]));
      assertTrue(e.getMessage().contains("not a MoE layer"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> la.topK(0));
      assertThrows(IllegalArgumentException.class, () -> la.topK(3));
      assertThrows(IllegalArgumentException.class, () -> la.predict(-1, x, 1, new int[2]));
      assertThrows(IllegalArgumentException.class, () -> la.predict(1, x, 1, new int[1]), "ids too short");
      assertEquals(2, la.topK(1));
      int[] ids = new int[2];
      la.predict(2, x, 1, ids);
      assertTrue(ids[0] != ids[1] && ids[0] >= 0 && ids[1] < 8);
    }
  }

  @Test
  void executorStatsCopiesItsArraysAndChecksTheirLengths() {
    long[] cpu = {0, 3};
    ExecutorStats s = new ExecutorStats(cpu, new long[] {0, 1}, 4, 1, 0, 0, 0, 0, 0);
    cpu[1] = 99;
    s.cpuExperts()[1] = 77;
    assertEquals(3, s.cpuExperts()[1]);
    assertEquals(3, s.cpuTotal());
    assertEquals(1, s.gpuTotal());
    assertEquals(0.25, s.hitRate());
    assertEquals(0, s.fills());
    assertEquals(s, new ExecutorStats(new long[] {0, 3}, new long[] {0, 1}, 4, 1, 0, 0, 0, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> new ExecutorStats(new long[1], new long[2], 0, 0, 0, 0, 0, 0, 0));
  }
}
