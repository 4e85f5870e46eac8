package org.hybrimoe.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class SyntheticTraceGeneratorTest {
  private static Trace gen(double skew, double reuse, double cross) {
    return new SyntheticTraceGenerator().shape(64, 6, 4).tokens(4000).skew(skew).reuse(reuse).crossLayer(cross).seed(3)
        .generate();
  }

  // share of assignments taken by each layer's 8 most used experts
  private static double top8Share(Trace t) {
    double s = 0;
    for (int l = 0; l < t.layers(); l++) {
      long[] c = new long[t.experts()];
      for (int i = 0; i < t.tokens(); i++) {
        for (int k = 0; k < t.topK(); k++) {
          c[t.id(i, l, k)]++;
        }
      }
      Arrays.sort(c);
      long top = 0;
      for (int i = 0; i < 8; i++) {
        top += c[c.length - 1 - i];
      }
      s += (double) top / ((long) t.tokens() * t.topK());
    }
    return s / t.layers();
  }

  private static double adjacentReuse(Trace t) {
    long same = 0;
    long total = 0;
    for (int i = 1; i < t.tokens(); i++) {
      for (int l = 0; l < t.layers(); l++) {
        for (int k = 0; k < t.topK(); k++) {
          int e = t.id(i, l, k);
          for (int j = 0; j < t.topK(); j++) {
            if (t.id(i - 1, l, j) == e) {
              same++;
            }
          }
          total++;
        }
      }
    }
    return (double) same / total;
  }

  @Test
  void skewConcentratesRouting() {
    assertTrue(top8Share(gen(1.2, 0, 0)) > top8Share(gen(0, 0, 0)) + 0.2);
    assertEquals(8.0 / 64, top8Share(gen(0, 0, 0)), 0.03);
  }

  @Test
  void reuseRaisesAdjacentTokenReuse() {
    assertTrue(adjacentReuse(gen(0, 0.5, 0)) > adjacentReuse(gen(0, 0, 0)) + 0.3);
  }

  @Test
  void deterministicForASeedAndValidPerToken() {
    Trace a = gen(0.8, 0.3, 0.3);
    Trace b = gen(0.8, 0.3, 0.3);
    for (int i = 0; i < a.tokens(); i++) {
      for (int l = 0; l < a.layers(); l++) {
        boolean[] seen = new boolean[64];
        for (int k = 0; k < a.topK(); k++) {
          assertEquals(a.id(i, l, k), b.id(i, l, k));
          assertTrue(!seen[a.id(i, l, k)], "distinct experts per token");
          seen[a.id(i, l, k)] = true;
        }
      }
    }
  }

  @Test
  void rejectsImpossibleKnobs() {
    assertThrows(IllegalArgumentException.class, () -> new SyntheticTraceGenerator().reuse(1.5));
    assertThrows(IllegalArgumentException.class, () -> new SyntheticTraceGenerator().shape(4, 5, 1));
  }
}
