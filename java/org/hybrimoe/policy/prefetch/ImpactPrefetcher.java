package org.hybrimoe.policy.prefetch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.hybrimoe.policy.sched.HybridScheduler;
import org.hybrimoe.policy.sched.LayerRequest;
import org.hybrimoe.policy.sched.SchedulingMode;

/**
 * Impact-driven prefetch candidates (ALGORITHMS.md section 3): for each predicted later layer, the
 * reduction of its simulated makespan (section 2 scheduler) if one predicted miss were resident,
 * times the measured accuracy at that distance, per second of link time. The caller fills the
 * link's idle window with them in this order, after the current layer's demand transfers.
 */
public final class ImpactPrefetcher {
  /** A candidate: target layer, expert, distance, impact in ms saved (expected), and its predicted load. */
  public record Candidate(int layer, int expert, int distance, double impactMs, int load, double perLinkMs) {}

  private final HybridScheduler scheduler;
  private final SchedulingMode mode;
  private final int maxCandidatesPerLayer;

  /**
   * @param mode how the target layer will be scheduled (HYBRID for HybriMoE; STATIC when only
   *     prefetch is switched on)
   * @param maxCandidatesPerLayer heaviest predicted misses evaluated per target layer (bounds cost
   *     in long prefills where nearly every expert is a candidate)
   */
  public ImpactPrefetcher(HybridScheduler scheduler, SchedulingMode mode, int maxCandidatesPerLayer) {
    this.scheduler = scheduler;
    this.mode = mode;
    this.maxCandidatesPerLayer = maxCandidatesPerLayer;
  }

  /**
   * Ranks candidates. {@code predicted[d - 1]} is the predicted request of the layer at distance d
   * (readyMs 0 for experts already on the GPU or on their way, +inf for misses), or null.
   */
  public List<Candidate> rank(LayerRequest[] predicted, PrefetchAccuracy accuracy) {
    List<Candidate> out = new ArrayList<>();
    double xfer = scheduler.cost().xferMs();
    for (int d = 1; d <= predicted.length; d++) {
      LayerRequest r = predicted[d - 1];
      if (r == null) {
        continue;
      }
      double p = accuracy.probability(d);
      Integer[] misses = missesHeaviestFirst(r);
      int n = Math.min(misses.length, maxCandidatesPerLayer);
      int[] idx = new int[n];
      for (int c = 0; c < n; c++) {
        idx[c] = misses[c];
      }
      double[] gains = scheduler.residencyGains(r, mode, idx);
      for (int c = 0; c < n; c++) {
        int i = idx[c];
        double impact = gains[c] * p;
        if (impact > 0) {
          out.add(new Candidate(r.layer(), r.experts()[i], d, impact, r.loads()[i], impact / xfer));
        }
      }
    }
    out.sort((a, b) -> Double.compare(b.perLinkMs(), a.perLinkMs()));
    return out;
  }

  /**
   * AdapMoE's choice, without an impact test: the predicted misses of the next layer, heaviest
   * first (ties by expert id).
   */
  public static List<Candidate> nextLayer(LayerRequest next) {
    List<Candidate> out = new ArrayList<>();
    for (int i : missesHeaviestFirst(next)) {
      int load = next.loads()[i];
      out.add(new Candidate(next.layer(), next.experts()[i], 1, load, load, load));
    }
    return out;
  }

  private static Integer[] missesHeaviestFirst(LayerRequest r) {
    List<Integer> m = new ArrayList<>();
    for (int i = 0; i < r.experts().length; i++) {
      if (!r.onGpu(i)) {
        m.add(i);
      }
    }
    Integer[] a = m.toArray(new Integer[0]);
    Arrays.sort(a, (x, y) -> r.loads()[y] != r.loads()[x] ? Integer.compare(r.loads()[y], r.loads()[x])
        : Integer.compare(r.experts()[x], r.experts()[y]));
    return a;
  }
}
