package org.hybrimoe.sim;

import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.BeladyCache;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cache.LfuCache;
import org.hybrimoe.policy.cache.LruCache;
import org.hybrimoe.policy.cache.MrsCache;
import org.hybrimoe.policy.cache.StaticCache;

/**
 * The paper's comparison over one trace and model shape: every bundle at every cache ratio, decode
 * time per token and TTFT per input length, plus hit rates of the cache policies. What the
 * {@code simulate} command runs and prints.
 */
public final class Experiment {
  /** One hit-rate row: policy, cache ratio, hit rate. */
  public record HitRow(String policy, double cacheRatio, double hitRate) {}

  /** Sizes of the run (tokens simulated), so tests can run a small one and the CLI a larger one. */
  public record Sizes(int decodeWarmup, int decodeTokens, int prompts, int hitRateTokens) {
    public Sizes {
      if (decodeWarmup < 0 || decodeTokens < 1 || prompts < 1 || hitRateTokens < 1) {
        throw new IllegalArgumentException("experiment sizes must be positive");
      }
    }
  }

  private final Simulator sim;
  private final Trace trace;

  public Experiment(Simulator sim, Trace trace) {
    this.sim = sim;
    this.trace = trace;
  }

  /** Decode and prefill rows for every bundle, ratio and input length. */
  public List<SimResult> run(List<PolicyBundle> bundles, double[] ratios, int[] inputLengths, Sizes sizes) {
    List<SimResult> out = new ArrayList<>();
    for (double r : ratios) {
      for (PolicyBundle b : bundles) {
        for (int n : inputLengths) {
          out.add(sim.prefill(b, r, n, sizes.prompts()));
        }
        out.add(sim.decode(b, r, sizes.decodeWarmup(), sizes.decodeTokens()));
      }
    }
    return out;
  }

  /** Hit rates of MRS, LRU, LFU (per layer and global), the static placements and Belady. */
  public List<HitRow> hitRates(double[] ratios, int tokens) {
    int from = sim.profileTokens();
    int to = Math.min(trace.tokens(), from + tokens);
    int L = trace.layers();
    int E = trace.experts();
    List<HitRow> out = new ArrayList<>();
    for (double r : ratios) {
      int slots = ExpertCache.slotsFor(r, L, E);
      List<ExpertCache> caches = new ArrayList<>();
      for (ExpertCache.Capacity c : ExpertCache.Capacity.values()) {
        caches.add(warm(new MrsCache(L, E, slots, c)));
        caches.add(warm(new LruCache(L, E, slots, c)));
        caches.add(warm(new LfuCache(L, E, slots, c)));
      }
      caches.add(StaticCache.frequency(L, E, slots, sim.profileCounts()));
      caches.add(StaticCache.layers(L, E, slots));
      caches.add(new BeladyCache(L, E, slots, ExpertCache.Capacity.PER_LAYER));
      caches.add(new BeladyCache(L, E, slots, ExpertCache.Capacity.GLOBAL));
      for (ExpertCache c : caches) {
        out.add(new HitRow(c.name(), r, HitRateSimulator.run(trace, c, from, to)));
      }
    }
    return out;
  }

  /**
   * MRS variants against LRU, per layer and global, over the same tokens as {@link #hitRates}: the
   * decay alpha of the score average and the top-P entries each token keeps (P in multiples of
   * top-k), labelled "MRS a=ALPHA P=Pxk" ("-global" for the one pool). What chooses the default.
   */
  public List<HitRow> mrsVariants(double[] ratios, int tokens, double[] alphas, int[] pTimesK) {
    int from = sim.profileTokens();
    int to = Math.min(trace.tokens(), from + tokens);
    int L = trace.layers();
    int E = trace.experts();
    int K = trace.topK();
    List<HitRow> out = new ArrayList<>();
    for (double r : ratios) {
      int slots = ExpertCache.slotsFor(r, L, E);
      for (ExpertCache.Capacity c : ExpertCache.Capacity.values()) {
        String pool = c == ExpertCache.Capacity.GLOBAL ? "-global" : "";
        out.add(new HitRow("LRU" + pool, r, HitRateSimulator.run(trace, warm(new LruCache(L, E, slots, c)), from, to)));
        for (double a : alphas) {
          for (int p : pTimesK) {
            MrsCache m = new MrsCache(L, E, slots, c, a, Math.min(E, p * K));
            out.add(new HitRow(String.format(java.util.Locale.ROOT, "MRS a=%.2f P=%dk%s", a, p, pool), r,
                HitRateSimulator.run(trace, warm(m), from, to)));
          }
        }
      }
    }
    return out;
  }

  private ExpertCache warm(ExpertCache c) {
    c.preload(sim.warmOrder());
    return c;
  }
}
