package org.hybrimoe.sim;

/**
 * How often a trace's recorded look-ahead predictions were right: at distance d, the fraction of
 * the true top-k experts of layer l + d (over every token and every source layer l with a layer
 * l + d) that the prediction made from layer l's input contains. What simulate uses instead of the
 * modelled accuracies when a trace carries predictions (LookaheadOracle reads them directly).
 */
public final class LookaheadAccuracy {
  private LookaheadAccuracy() {}

  /** Accuracy per distance 1..depth; empty when the trace has no predictions. */
  public static double[] measure(Trace t) {
    if (!t.hasPredicted()) {
      return new double[0];
    }
    int depth = t.predictedDepth();
    int k = t.topK();
    double[] acc = new double[depth];
    int[] truth = new int[k];
    for (int d = 1; d <= depth; d++) {
      long hit = 0;
      long all = 0;
      for (int tok = 0; tok < t.tokens(); tok++) {
        for (int l = 0; l + d < t.layers(); l++) {
          t.ids(tok, l + d, truth, 0);
          for (int s = 0; s < k; s++) {
            int p = t.predicted(tok, l, d, s);
            for (int e : truth) {
              if (e == p) {
                hit++;
                break;
              }
            }
          }
          all += k;
        }
      }
      acc[d - 1] = all == 0 ? Double.NaN : (double) hit / all;
    }
    return acc;
  }
}
