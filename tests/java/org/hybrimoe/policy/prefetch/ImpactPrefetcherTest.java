package org.hybrimoe.policy.prefetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.sched.HybridScheduler;
import org.hybrimoe.policy.sched.LayerRequest;
import org.hybrimoe.policy.sched.SchedulingMode;
import org.junit.jupiter.api.Test;

class ImpactPrefetcherTest {
  private static final double INF = Double.POSITIVE_INFINITY;

  @Test
  void accuracyStartsAtOneOverDistanceThenTracksOutcomes() {
    PrefetchAccuracy a = new PrefetchAccuracy(3);
    assertEquals(1.0, a.probability(1));
    assertEquals(1.0 / 3, a.probability(3), 1e-12);
    a.record(2, 10, 7);
    assertEquals(0.7, a.probability(2), 1e-12);
  }

  @Test
  void ranksByExpectedMakespanReductionAndSkipsResidentExperts() {
    // CPU slow, GPU fast: making a miss resident shortens the static layer; the heavier the better.
    CostModel c = CostModel.linear(0.5, 1.0, 0.05, 0, 0.2, 0.001, 0, 1e7, 4_330_000L, 0, 0, 0, 0);
    HybridScheduler s = new HybridScheduler(c);
    LayerRequest near = new LayerRequest(1, new int[] {3, 5, 9}, new int[] {40, 10, 5}, new double[] {INF, INF, 0}, 0, 60, 0);
    LayerRequest far = new LayerRequest(2, new int[] {1, 2}, new int[] {40, 10}, new double[] {INF, INF}, 0, 60, 0);
    PrefetchAccuracy acc = new PrefetchAccuracy(2);
    List<ImpactPrefetcher.Candidate> r = new ImpactPrefetcher(s, SchedulingMode.STATIC, 8).rank(new LayerRequest[] {near, far}, acc);
    assertTrue(r.stream().noneMatch(x -> x.layer() == 1 && x.expert() == 9), "resident experts are not candidates");
    assertEquals(3, r.get(0).expert(), "heaviest miss of the nearest layer first");
    for (int i = 1; i < r.size(); i++) {
      assertTrue(r.get(i - 1).perLinkMs() >= r.get(i).perLinkMs());
    }
    ImpactPrefetcher.Candidate far1 = r.stream().filter(x -> x.layer() == 2 && x.expert() == 1).findFirst().orElseThrow();
    ImpactPrefetcher.Candidate near3 = r.get(0);
    assertEquals(near3.impactMs() / 2, far1.impactMs(), 1e-9, "same gain, weighted by 1/d at distance 2");
  }
}
