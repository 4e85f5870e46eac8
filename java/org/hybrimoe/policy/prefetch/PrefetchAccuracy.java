package org.hybrimoe.policy.prefetch;

/**
 * The measured probability that a router look-ahead at distance d names an expert the layer then
 * uses, tracked online per distance (ALGORITHMS.md section 3, step 3); 1/d before any outcome.
 */
public final class PrefetchAccuracy {
  private final long[] predicted;
  private final long[] correct;

  public PrefetchAccuracy(int maxDistance) {
    this.predicted = new long[maxDistance + 1];
    this.correct = new long[maxDistance + 1];
  }

  /** Records that {@code n} experts were predicted at distance d, of which {@code right} were used. */
  public void record(int d, int n, int right) {
    predicted[d] += n;
    correct[d] += right;
  }

  /** Current estimate for distance d. */
  public double probability(int d) {
    return predicted[d] == 0 ? 1.0 / d : (double) correct[d] / predicted[d];
  }

  public long predicted(int d) {
    return predicted[d];
  }

  public long correct(int d) {
    return correct[d];
  }

  public int maxDistance() {
    return predicted.length - 1;
  }
}
