package org.hybrimoe.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The sampler against a naive one (sort the whole vocabulary, cut to top-k, then to the nucleus):
 * every draw lies in the naive candidate set, frequencies follow the naive probabilities, and the
 * same seed gives the same tokens.
 */
class SamplerTest {
  // The naive candidate ids and their probabilities, most likely first (ties to the lower id).
  static List<double[]> naive(float[] logits, double t, int topK, double topP) {
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < logits.length; i++) {
      order.add(i);
    }
    order.sort(Comparator.<Integer>comparingDouble(i -> -logits[i]).thenComparingInt(i -> i));
    int k = topK > 0 ? Math.min(topK, logits.length) : logits.length;
    double max = logits[order.get(0)];
    double sum = 0;
    double[] p = new double[k];
    for (int i = 0; i < k; i++) {
      p[i] = Math.exp((logits[order.get(i)] - max) / t);
      sum += p[i];
    }
    List<double[]> out = new ArrayList<>();
    double cum = 0;
    for (int i = 0; i < k; i++) {
      out.add(new double[] {order.get(i), p[i] / sum});
      cum += p[i] / sum;
      if (topP < 1 && cum >= topP) {
        break;
      }
    }
    double kept = out.stream().mapToDouble(x -> x[1]).sum();
    out.forEach(x -> x[1] /= kept);
    return out;
  }

  static float[] logits(Random r, int v) {
    float[] l = new float[v];
    for (int i = 0; i < v; i++) {
      l[i] = (float) Math.round(r.nextGaussian() * 8) / 4; // coarse: many ties
    }
    return l;
  }

  @Test
  void drawsStayInTheNaiveCandidateSet() {
    Random r = new Random(5);
    for (int trial = 0; trial < 200; trial++) {
      int v = 1 + r.nextInt(300);
      float[] l = logits(r, v);
      double t = 0.3 + r.nextDouble() * 1.5;
      int k = r.nextInt(4) == 0 ? 0 : 1 + r.nextInt(v + 3);
      double p = r.nextInt(3) == 0 ? 1 : 0.05 + 0.9 * r.nextDouble();
      Set<Integer> allowed = new HashSet<>();
      for (double[] c : naive(l, t, k, p)) {
        allowed.add((int) c[0]);
      }
      Sampler s = new Sampler(t, k, p, trial);
      for (int d = 0; d < 50; d++) {
        int id = s.next(l);
        assertTrue(allowed.contains(id), "trial " + trial + ": " + id + " not in " + allowed);
      }
    }
  }

  @Test
  void frequenciesFollowTheNaiveProbabilities() {
    Random r = new Random(9);
    float[] l = logits(r, 40);
    for (int[] kp : new int[][] {{0, 100}, {5, 100}, {0, 80}, {12, 60}}) {
      double topP = kp[1] / 100.0;
      List<double[]> want = naive(l, 0.8, kp[0], topP);
      Sampler s = new Sampler(0.8, kp[0], topP, 77);
      int draws = 40_000;
      double[] count = new double[l.length];
      for (int d = 0; d < draws; d++) {
        count[s.next(l)]++;
      }
      for (double[] c : want) {
        double expected = c[1] * draws;
        double sd = Math.sqrt(draws * c[1] * (1 - c[1])) + 1;
        assertEquals(expected, count[(int) c[0]], 6 * sd, "token " + (int) c[0] + " k " + kp[0] + " p " + topP);
      }
    }
  }

  @Test
  void greedyAndSeedsAreDeterministic() {
    float[] l = {0.5f, 2f, 2f, -1f};
    assertEquals(1, new Sampler(0, 0, 1, 1).next(l), "ties to the lower id");
    assertEquals(1, new Sampler(1.0, 1, 1, 1).next(l), "top-1 is greedy");
    Random r = new Random(3);
    float[] big = logits(r, 150_000);
    Sampler a = new Sampler(0.9, 0, 0.9, 42);
    Sampler b = new Sampler(0.9, 0, 0.9, 42);
    for (int i = 0; i < 20; i++) {
      assertEquals(a.next(big), b.next(big));
    }
  }
}
