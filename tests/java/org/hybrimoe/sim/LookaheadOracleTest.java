package org.hybrimoe.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LookaheadOracleTest {
  @Test
  void modelledPredictionsKeepTheTrueExpertsAtTheGivenRate() {
    Trace t = new SyntheticTraceGenerator().shape(64, 6, 5).tokens(2000).seed(4).generate();
    LookaheadOracle o = new LookaheadOracle(t, new double[] {0.9, 0.6}, 3);
    int[] pred = new int[6];
    int[] truth = new int[6];
    for (int d = 1; d <= 3; d++) {
      long kept = 0;
      long total = 0;
      for (int tok = 0; tok < t.tokens(); tok++) {
        o.predict(tok, 4, d, pred);
        t.ids(tok, 4, truth, 0);
        boolean[] seen = new boolean[64];
        for (int e : pred) {
          assertTrue(!seen[e], "a prediction names distinct experts");
          seen[e] = true;
        }
        for (int e : truth) {
          if (seen[e]) {
            kept++;
          }
          total++;
        }
      }
      double expect = d == 1 ? 0.9 : 0.6; // distances past the table reuse its last entry
      assertEquals(expect, (double) kept / total, 0.02, "distance " + d);
    }
    assertThrows(IllegalArgumentException.class, () -> new LookaheadOracle(t, new double[] {1.2}, 1));
  }
}
