package org.hybrimoe.policy.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import org.hybrimoe.policy.sched.SlotAllocator;
import org.hybrimoe.sim.HitRateSimulator;
import org.hybrimoe.sim.SharedTraces;
import org.hybrimoe.sim.SyntheticTraceGenerator;
import org.hybrimoe.sim.Trace;
import org.hybrimoe.sim.TraceReader;
import org.junit.jupiter.api.Test;

class ExpertCacheTest {
  @Test
  void mrsUpdateCountsEveryTokenOfTheBatch() {
    MrsCache c = new MrsCache(1, 4, 2, ExpertCache.Capacity.PER_LAYER, 0.5, 0);
    // two tokens, top-1: token 0 -> expert 0, token 1 -> expert 1; ids-only so m_t = 1/K = 1 on the chosen
    c.observe(0, new int[] {0, 1}, 2, 1, null);
    // m = (0.5, 0.5, 0, 0); S = 0.5 * m + 0.5 * 0
    assertEquals(0.25, c.score(0, 0), 1e-12);
    assertEquals(0.25, c.score(0, 1), 1e-12);
    assertEquals(0.0, c.score(0, 2), 1e-12);
    c.observe(0, new int[] {0, 0}, 2, 1, null);
    // m = (1, 0, 0, 0); S0 = 0.5 + 0.125, S1 = 0.125
    assertEquals(0.625, c.score(0, 0), 1e-12);
    assertEquals(0.125, c.score(0, 1), 1e-12);
  }

  @Test
  void mrsMasksAllButTheTopPProbabilities() {
    MrsCache c = new MrsCache(1, 4, 2, ExpertCache.Capacity.PER_LAYER, 0.5, 2);
    float[] scores = {0.1f, 0.5f, 0.3f, 0.1f, /* token 1 */ 0.4f, 0.0f, 0.2f, 0.4f};
    c.observe(0, new int[] {1, 0}, 2, 1, scores);
    // token 0 keeps 0.5 (e1), 0.3 (e2); token 1 keeps 0.4 (e0), 0.4 (e3); batch mean then alpha 0.5
    assertEquals(0.5 * 0.4 / 2, c.score(0, 0), 1e-6);
    assertEquals(0.5 * 0.5 / 2, c.score(0, 1), 1e-6);
    assertEquals(0.5 * 0.3 / 2, c.score(0, 2), 1e-6);
    assertEquals(0.5 * 0.4 / 2, c.score(0, 3), 1e-6);
  }

  @Test
  void mrsEvictsLowestScoreButNeverANeededOrInFlightExpert() {
    MrsCache c = new MrsCache(1, 6, 3, ExpertCache.Capacity.PER_LAYER);
    c.preload(new int[] {0, 1, 2});
    c.observe(0, new int[] {0, 0, 0, 1, 1, 2}, 6, 1, null); // S: e0 .25, e1 .167, e2 .083
    // e2 is lowest, but this layer needs it: e1 goes
    SlotAllocator.Slot s = c.allocate(0, 4, new int[] {2, 4});
    assertEquals(1, s.evicted());
    assertTrue(c.resident(0, 4));
    assertFalse(c.resident(0, 1));
    // e4 is in flight (lands at t = 5): not a victim before then, even with the lowest score
    c.setArrival(0, 4, 5.0);
    c.setNow(1.0);
    SlotAllocator.Slot s2 = c.allocate(0, 5, new int[] {5});
    assertEquals(2, s2.evicted());
    // everything resident is needed or in flight: a staging buffer, nothing evicted
    assertEquals(SlotAllocator.STAGING, c.allocate(0, 3, new int[] {0, 5, 3}));
    // a prefetch only evicts a victim scored below its value
    c.setNow(10);
    assertEquals(SlotAllocator.STAGING, c.allocate(0, 3, new int[] {3}, 11, false, 0.0));
  }

  @Test
  void perLayerCapacityKeepsLayersApartAndGlobalDoesNot() {
    LruCache per = new LruCache(2, 4, 4, ExpertCache.Capacity.PER_LAYER);
    per.preload(new int[] {0, 1, 2}); // layer 0 has 2 slots: expert 2 does not fit
    assertTrue(per.resident(0, 0) && per.resident(0, 1) && !per.resident(0, 2));
    SlotAllocator.Slot s = per.allocate(1, 3, new int[] {3});
    assertEquals(-1, s.evicted(), "layer 1 has free slots of its own");
    assertTrue(s.slot() >= 2);
    LruCache global = new LruCache(2, 4, 4, ExpertCache.Capacity.GLOBAL);
    global.preload(new int[] {0, 1, 2, 3});
    global.observe(0, new int[] {0, 1, 2}, 3, 1, null);
    SlotAllocator.Slot g = global.allocate(1, 0, new int[] {0});
    assertEquals(0, g.evictedLayer());
    assertEquals(3, g.evicted(), "global LRU evicts across layers");
  }

  @Test
  void staticCachesNeverMoveAndRatiosAreValidated() {
    long[] counts = {5, 1, 9, 0, 2, 8, 3, 7};
    StaticCache f = StaticCache.frequency(2, 4, 3, counts);
    assertTrue(f.resident(0, 2) && f.resident(1, 1) && f.resident(1, 3) && !f.resident(0, 0));
    assertEquals(SlotAllocator.STAGING, f.allocate(0, 0, new int[] {0}));
    StaticCache l = StaticCache.layers(2, 4, 5);
    assertTrue(l.resident(0, 3) && !l.resident(1, 0));
    assertThrows(IllegalArgumentException.class, () -> ExpertCache.slotsFor(1.5, 2, 4));
    assertThrows(IllegalArgumentException.class, () -> new LruCache(2, 4, 9, ExpertCache.Capacity.GLOBAL));
  }

  private static void assertBeladyBoundsAll(Trace t, int from, int to, double ratio) {
    int L = t.layers();
    int E = t.experts();
    int slots = ExpertCache.slotsFor(ratio, L, E);
    long[] counts = new long[L * E];
    for (int i = 0; i < from; i++) {
      for (int l = 0; l < L; l++) {
        for (int k = 0; k < t.topK(); k++) {
          counts[l * E + t.id(i, l, k)]++;
        }
      }
    }
    for (ExpertCache.Capacity cap : ExpertCache.Capacity.values()) {
      double belady = HitRateSimulator.run(t, new BeladyCache(L, E, slots, cap), from, to);
      ExpertCache[] others = {
        new MrsCache(L, E, slots, cap), new LruCache(L, E, slots, cap), new LfuCache(L, E, slots, cap),
        StaticCache.frequency(L, E, slots, counts), StaticCache.layers(L, E, slots)
      };
      for (ExpertCache o : others) {
        double h = HitRateSimulator.run(t, o, from, to);
        assertTrue(belady >= h - 1e-12, o.name() + " " + h + " beats Belady " + belady + " at ratio " + ratio + " " + cap);
      }
    }
  }

  @Test
  void beladyIsAtOrAboveEveryPolicyOnSyntheticTraces() {
    for (long seed = 1; seed <= 4; seed++) {
      Trace t = new SyntheticTraceGenerator().shape(16, 2, 3).tokens(1500).skew(seed * 0.3).reuse(0.1 * seed)
          .crossLayer(0.2).seed(seed).generate();
      for (double r : new double[] {0.125, 0.25, 0.5, 0.75}) {
        assertBeladyBoundsAll(t, 300, 1500, r);
      }
    }
  }

  @Test
  void beladyIsAtOrAboveEveryPolicyOnTheRealTrace() throws IOException {
    Trace t = TraceReader.read(SharedTraces.deepseekOrSkip());
    for (double r : new double[] {0.25, 0.5}) {
      assertBeladyBoundsAll(t, 1000, 2500, r);
    }
  }

  @Test
  void mrsBeatsLruOnTheRealTrace() throws IOException {
    Trace t = TraceReader.read(SharedTraces.deepseekOrSkip());
    int slots = ExpertCache.slotsFor(0.25, t.layers(), t.experts());
    double mrs = HitRateSimulator.run(t, new MrsCache(t.layers(), t.experts(), slots, ExpertCache.Capacity.PER_LAYER), 0, 3000);
    double lru = HitRateSimulator.run(t, new LruCache(t.layers(), t.experts(), slots, ExpertCache.Capacity.PER_LAYER), 0, 3000);
    assertTrue(mrs > 0.3 && lru > 0.2, "hit rates " + mrs + " " + lru);
    assertTrue(mrs >= lru, "MRS " + mrs + " < LRU " + lru);
  }

  /**
   * MRS keeps every token's top-P scores: a token with fewer than P nonzero scores (a Mixtral gate
   * with top-2 and P = 4) still credits its chosen experts however high their ids, not the first P
   * entries by index (a bug that left expert 7 with no score at all).
   */
  @org.junit.jupiter.api.Test
  void mrsCreditsTheChosenExpertsWhateverTheirIds() {
    MrsCache c = new MrsCache(1, 8, 2, ExpertCache.Capacity.PER_LAYER, 0.5, 4);
    float[] scores = new float[8];
    scores[6] = 0.7f;
    scores[7] = 0.3f;
    c.observe(0, new int[] {6, 7}, 1, 2, scores);
    org.junit.jupiter.api.Assertions.assertEquals(0.35, c.score(0, 6), 1e-6);
    org.junit.jupiter.api.Assertions.assertEquals(0.15, c.score(0, 7), 1e-6);
    org.junit.jupiter.api.Assertions.assertEquals(0, c.score(0, 0), 0);
  }
}
