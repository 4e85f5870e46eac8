package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.ops.DenseOps;
import org.junit.jupiter.api.Test;

/** Routing variants on hand-computed cases (no fixture covers V3 or group-limited routing). */
class RouterTest {
  static int[] ids;
  static float[] weights;

  static void route(Router r, float... logits) {
    FloatBuffer l = DenseOps.floats(logits.length);
    l.put(logits).flip();
    IntBuffer i = DenseOps.ints(r.topK());
    FloatBuffer w = DenseOps.floats(r.topK());
    r.route(l, 1, i, w);
    ids = new int[r.topK()];
    weights = new float[r.topK()];
    i.get(0, ids);
    w.get(0, weights);
  }

  static double sigmoid(double x) {
    return 1 / (1 + Math.exp(-x));
  }

  @Test
  void softmaxTopKWithAndWithoutRenormalisation() {
    float[] logits = {0.1f, 2.0f, -1.0f, 1.0f};
    double z = Math.exp(0.1) + Math.exp(2) + Math.exp(-1) + Math.exp(1);
    route(Router.softmax(4, 2, false), logits);
    assertArrayEquals(new int[] {1, 3}, ids);
    assertEquals(Math.exp(2) / z, weights[0], 1e-6);
    assertEquals(Math.exp(1) / z, weights[1], 1e-6);
    route(Router.softmax(4, 2, true), logits);
    assertEquals(Math.exp(2) / (Math.exp(2) + Math.exp(1)), weights[0], 1e-6);
    assertEquals(1.0, weights[0] + weights[1], 1e-6);
  }

  @Test
  void deepseekV2ScalesOnlyWithoutRenormalisation() {
    float[] logits = {0f, 1f, 2f, 3f};
    double z = 1 + Math.E + Math.exp(2) + Math.exp(3);
    route(new Router(4, 2, Router.Scoring.SOFTMAX, Router.Method.GREEDY, false, 2.5, false, 1, 1, null), logits);
    assertArrayEquals(new int[] {3, 2}, ids);
    assertEquals(2.5 * Math.exp(3) / z, weights[0], 1e-6);
    route(new Router(4, 2, Router.Scoring.SOFTMAX, Router.Method.GREEDY, true, 2.5, false, 1, 1, null), logits);
    assertEquals(Math.exp(3) / (Math.exp(3) + Math.exp(2)), weights[0], 1e-6);
  }

  @Test
  void groupLimitedGreedyKeepsTheGroupsWithTheBestMax() {
    // 3 groups of 2: maxima g0 2.5, g1 3.0, g2 2.6; keep 2 -> g0 dropped although greedy top-3
    // would take its expert 0 (2.5) before expert 3 (-2).
    float[] logits = {2.5f, 2.4f, 3.0f, -2f, 2.6f, -3f};
    route(new Router(6, 3, Router.Scoring.SOFTMAX, Router.Method.GREEDY, false, 1, false, 1, 1, null), logits);
    assertArrayEquals(new int[] {2, 4, 0}, ids);
    route(new Router(6, 3, Router.Scoring.SOFTMAX, Router.Method.GROUP_LIMITED_GREEDY, false, 1, false, 3, 2, null), logits);
    assertArrayEquals(new int[] {2, 4, 3}, ids);
  }

  @Test
  void v3NoauxTcChoosesOnBiasedScoresAndWeighsUnbiased() {
    // 4 experts in 2 groups; bias lifts expert 0 above expert 1 for the choice.
    float[] logits = {0.0f, 0.5f, -1.0f, 0.2f};
    float[] bias = {1.0f, 0.0f, 0.0f, 0.0f};
    // biased: 0.5+1=1.5, 0.622, 0.269, 0.550; groups (top-2 sums): g0 2.122, g1 0.819 -> keep g0
    route(new Router(4, 2, Router.Scoring.SIGMOID, Router.Method.NOAUX_TC, true, 2.0, true, 2, 1, bias), logits);
    assertArrayEquals(new int[] {0, 1}, ids);
    double s0 = sigmoid(0.0);
    double s1 = sigmoid(0.5);
    assertEquals(2.0 * s0 / (s0 + s1), weights[0], 1e-6);
    assertEquals(2.0 * s1 / (s0 + s1), weights[1], 1e-6);
    // Without renormalisation: unbiased sigmoid scores times the scale.
    route(new Router(4, 2, Router.Scoring.SIGMOID, Router.Method.NOAUX_TC, false, 2.0, true, 2, 1, bias), logits);
    assertEquals(2.0 * s0, weights[0], 1e-6);
  }

  @Test
  void scoresAreEveryExpertsProbabilityBeforeMaskingAndBias() {
    float[] logits = {0.0f, 0.5f, -1.0f, 0.2f};
    float[] bias = {1.0f, 0.0f, 0.0f, 0.0f};
    Router v3 = new Router(4, 2, Router.Scoring.SIGMOID, Router.Method.NOAUX_TC, true, 2.0, true, 2, 1, bias);
    FloatBuffer l = DenseOps.floats(8);
    l.put(logits).put(logits).flip(); // two tokens
    FloatBuffer s = DenseOps.floats(8);
    v3.route(l, 2, DenseOps.ints(4), DenseOps.floats(4), s);
    for (int t = 0; t < 2; t++) {
      for (int e = 0; e < 4; e++) { // group 1 was masked and expert 0 biased: neither shows here
        assertEquals(sigmoid(logits[e]), s.get(4 * t + e), 1e-6);
      }
    }
    Router soft = Router.softmax(4, 1, true);
    l.rewind();
    soft.route(l, 1, DenseOps.ints(1), DenseOps.floats(1), s);
    double z = 0;
    for (float x : logits) {
      z += Math.exp(x);
    }
    assertEquals(Math.exp(0.5) / z, s.get(1), 1e-6);
    route(soft, logits); // the 4-argument form routes the same without scores
    assertArrayEquals(new int[] {1}, ids);
  }

  @Test
  void invalidGroupingIsRejected() {
    assertThrows(IllegalArgumentException.class,
        () -> new Router(6, 2, Router.Scoring.SOFTMAX, Router.Method.GROUP_LIMITED_GREEDY, false, 1, false, 4, 2, null));
    assertThrows(IllegalArgumentException.class,
        () -> new Router(4, 2, Router.Scoring.SIGMOID, Router.Method.NOAUX_TC, false, 1, true, 2, 1, null));
    assertThrows(IllegalArgumentException.class, () -> Router.softmax(4, 5, false));
  }
}
