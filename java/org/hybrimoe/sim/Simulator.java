package org.hybrimoe.sim;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.BeladyCache;
import org.hybrimoe.policy.cache.Caches;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cache.MrsCache;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.ModelShape;
import org.hybrimoe.policy.prefetch.ImpactPrefetcher;
import org.hybrimoe.policy.prefetch.PendingPredictions;
import org.hybrimoe.policy.prefetch.PrefetchAccuracy;
import org.hybrimoe.policy.sched.HybridScheduler;
import org.hybrimoe.policy.sched.LayerPlan;
import org.hybrimoe.policy.sched.LayerRequest;
import org.hybrimoe.policy.sched.SchedulingMode;
import org.hybrimoe.policy.sched.SlotAllocator;

/**
 * Trace-driven discrete-event simulation of one machine running a MoE model under a policy bundle.
 * Per forward pass (a prompt of n tokens, or one decode token) and per MoE layer: the layer's
 * non-MoE work occupies the GPU, then the layer's plan (section 2) runs on GPU, CPU and the PCIe
 * link; prefetches (section 3) and cache fills queue on the link behind the layer's own transfers.
 * The link is FIFO and carries work across layers; GPU and CPU are synchronised at each layer's end
 * (a layer's output is needed by the next).
 *
 * <p>Protocol: the first {@code profileTokens} of the trace are a profiling window (expert
 * frequencies for static placements, and the same frequency-ordered warm start for dynamic caches,
 * so every bundle starts from the same GPU contents); evaluation uses tokens after it. A prompt of
 * length n is n consecutive trace tokens. The trace's routing is used as-is for the given shape:
 * experts, top-k and MoE layers must match.
 *
 * <p>The oracle bundle sees what no engine can: a run knows its passes in advance, so Belady's
 * cache gets every (layer, expert)'s next use among them ({@link FutureRouting}), and its
 * look-ahead is the trace's true routing of the next layers instead of the LookaheadOracle's
 * modelled prediction.
 */
public final class Simulator {
  private static final System.Logger LOG = System.getLogger(Simulator.class.getName());

  private final Trace trace;
  private final ModelShape shape;
  private final CostModel cost;
  private final HybridScheduler scheduler;
  private final LookaheadOracle oracle;
  private final int profileTokens;
  private final long[] profileCounts; // [layers * experts]
  private final int[] warmOrder; // keys by profile frequency, highest first
  private int maxPrefetchCandidates = 12;

  public Simulator(Trace trace, ModelShape shape, CostModel cost, LookaheadOracle oracle, int profileTokens) {
    if (trace.experts() != shape.experts() || trace.topK() != shape.topK() || trace.layers() != shape.layers()) {
      throw new IllegalArgumentException("trace " + trace.model() + " (" + trace.layers() + " MoE layers, "
          + trace.experts() + " experts, top-" + trace.topK() + ") does not match model shape " + shape.name() + " ("
          + shape.layers() + " layers, " + shape.experts() + " experts, top-" + shape.topK()
          + "): use a trace of that model or --synthetic");
    }
    if (profileTokens < 1 || profileTokens >= trace.tokens()) {
      throw new IllegalArgumentException("profile window " + profileTokens + " must be in [1, " + trace.tokens() + ")");
    }
    this.trace = trace;
    this.shape = shape;
    this.cost = cost;
    this.scheduler = new HybridScheduler(cost);
    this.oracle = oracle;
    this.profileTokens = profileTokens;
    int L = trace.layers();
    int E = trace.experts();
    this.profileCounts = new long[L * E];
    int[] ids = new int[trace.topK()];
    for (int t = 0; t < profileTokens; t++) {
      for (int l = 0; l < L; l++) {
        trace.ids(t, l, ids, 0);
        for (int e : ids) {
          profileCounts[l * E + e]++;
        }
      }
    }
    Integer[] keys = IntStream.range(0, L * E).boxed().toArray(Integer[]::new);
    Arrays.sort(keys, Comparator.<Integer>comparingLong(k -> -profileCounts[k]).thenComparingInt(k -> k));
    this.warmOrder = Arrays.stream(keys).mapToInt(Integer::intValue).toArray();
  }

  /** Heaviest predicted misses evaluated per look-ahead layer (default 12). */
  public Simulator maxPrefetchCandidates(int n) {
    this.maxPrefetchCandidates = Math.max(1, n);
    return this;
  }

  public int profileTokens() {
    return profileTokens;
  }

  public long[] profileCounts() {
    return profileCounts.clone();
  }

  public int[] warmOrder() {
    return warmOrder.clone();
  }

  public CostModel cost() {
    return cost;
  }

  /**
   * A fresh cache of the bundle's kind, warm-started from the profile window (Belady too: every
   * bundle starts from the same GPU contents; a run gives Belady its future).
   */
  public ExpertCache newCache(PolicyBundle.CacheKind kind, double ratio) {
    int L = trace.layers();
    int E = trace.experts();
    int slots = ExpertCache.slotsFor(ratio, L, E);
    if (kind == PolicyBundle.CacheKind.BELADY_GLOBAL) {
      ExpertCache c = new BeladyCache(L, E, slots, kind.capacity);
      c.preload(warmOrder);
      return c;
    }
    return Caches.create(kind, L, E, slots, profileCounts, warmOrder);
  }

  /** Decode: {@code warmup} untimed tokens, then the mean over {@code tokens} single-token passes. */
  public SimResult decode(PolicyBundle bundle, double ratio, int warmup, int tokens) {
    int start = profileTokens;
    if (start + warmup + tokens > trace.tokens()) {
      throw new IllegalArgumentException("decode needs " + (warmup + tokens) + " tokens after the profile window, trace has "
          + (trace.tokens() - start));
    }
    Run run = new Run(bundle, ratio, null, -1, consecutive(start, warmup + tokens), 1);
    for (int q = 0; q < warmup; q++) {
      run.forward(q);
    }
    run.resetStats();
    for (int q = warmup; q < warmup + tokens; q++) {
      run.forward(q);
    }
    return run.result("decode", 0, tokens);
  }

  /** Prefill: mean TTFT over {@code prompts} prompts of {@code length} consecutive tokens. */
  public SimResult prefill(PolicyBundle bundle, double ratio, int length, int prompts) {
    return prefill(bundle, ratio, length, prompts, null, -1);
  }

  /** As {@link #prefill}, recording the first {@code recordLayers} layers of the first prompt. */
  public SimResult prefill(PolicyBundle bundle, double ratio, int length, int prompts, List<TimelineEvent> timeline,
      int recordLayers) {
    int room = trace.tokens() - profileTokens - length;
    if (length < 1 || room < 0) {
      throw new IllegalArgumentException("input length " + length + " does not fit in the trace after the profile window ("
          + (trace.tokens() - profileTokens) + " tokens)");
    }
    if (prompts < 1) {
      throw new IllegalArgumentException("prompts must be >= 1");
    }
    long stride = prompts > 1 ? room / (prompts - 1) : 0;
    int[] starts = new int[prompts];
    for (int p = 0; p < prompts; p++) {
      starts[p] = (int) (profileTokens + p * stride);
    }
    Run run = new Run(bundle, ratio, timeline, recordLayers, starts, length);
    for (int p = 0; p < prompts; p++) {
      run.resetClockOnly();
      run.forward(p);
      run.recordLayers = 0;
    }
    return run.result("prefill", length, prompts);
  }

  /** Records the first layers of decode token number {@code index} after warmup, for the Gantt chart. */
  public List<TimelineEvent> decodeTimeline(PolicyBundle bundle, double ratio, int warmup, int layers) {
    List<TimelineEvent> events = new ArrayList<>();
    Run run = new Run(bundle, ratio, null, -1, consecutive(profileTokens, warmup + 1), 1);
    for (int q = 0; q < warmup; q++) {
      run.forward(q);
    }
    run.timeline = events;
    run.recordLayers = layers;
    run.timeZero = run.clock;
    run.forward(warmup);
    return events;
  }

  private static int[] consecutive(int from, int count) {
    return IntStream.range(from, from + count).toArray();
  }

  /** The state of one simulated engine: cache, link, clock and counters, over known passes. */
  private final class Run {
    final PolicyBundle bundle;
    final ExpertCache cache;
    final int[] starts; // first trace token of each forward pass
    final int tokens; // tokens of every pass
    final FutureRouting future; // Belady's view of the passes ahead, or null
    int pass; // the pass running
    final ImpactPrefetcher prefetcher;
    final PrefetchAccuracy accuracy;
    final double[] staged; // [L*E] arrival of a staging-buffer prefetch, NaN if none
    final int L = trace.layers();
    final int E = trace.experts();
    final int K = trace.topK();
    List<TimelineEvent> timeline;
    int recordLayers;
    double timeZero;
    double clock;
    double linkBusy;
    final PendingPredictions pending;
    // stats
    double gpuBusy, cpuBusy, linkBusyTime, bytes;
    long activations, hits, stagedUsed, stagedWasted;
    double timed;

    final double ratio;

    Run(PolicyBundle bundle, double ratio, List<TimelineEvent> timeline, int recordLayers, int[] starts, int tokens) {
      this.bundle = bundle;
      this.ratio = ratio;
      this.cache = newCache(bundle.cache(), ratio);
      this.starts = starts;
      this.tokens = tokens;
      if (cache instanceof BeladyCache belady) {
        this.future = new FutureRouting(trace, starts, tokens);
        for (int l = 0; l < L; l++) {
          for (int e = 0; e < E; e++) {
            belady.setNextUse(l, e, future.nextUseAfter(l, e, -1));
          }
        }
      } else {
        this.future = null;
      }
      this.accuracy = new PrefetchAccuracy(Math.max(1, bundle.lookahead()));
      SchedulingMode target = bundle.mode();
      this.prefetcher = new ImpactPrefetcher(scheduler, target, maxPrefetchCandidates);
      this.staged = new double[L * E];
      Arrays.fill(staged, Double.NaN);
      this.timeline = timeline;
      this.recordLayers = recordLayers;
      this.pending = new PendingPredictions(Math.max(1, bundle.lookahead()), L);
    }

    void resetStats() {
      gpuBusy = cpuBusy = linkBusyTime = bytes = 0;
      activations = hits = 0;
      timed = 0;
    }

    void resetClockOnly() {
      // A new prompt starts when the previous one's transfers are done (the link is idle).
      clock = Math.max(clock, linkBusy);
    }

    SimResult result(String phase, int length, int passes) {
      cache.closeAccounting();
      LOG.log(System.Logger.Level.DEBUG, () -> String.format("%s ratio %.2f %s n=%d: %.3f ms, hits %d/%d",
          bundle.name(), ratio, phase, length, timed / passes, hits, activations));
      double[] acc = new double[bundle.lookahead()];
      for (int d = 1; d <= acc.length; d++) {
        acc[d - 1] = accuracy.predicted(d) == 0 ? Double.NaN : accuracy.probability(d);
      }
      return new SimResult(bundle.name(), ratio, phase, length, timed / passes,
          activations == 0 ? 0 : (double) hits / activations, bytes / passes, cache.prefetchUsed() + stagedUsed,
          cache.prefetchWasted() + stagedWasted, gpuBusy / passes, cpuBusy / passes, linkBusyTime / passes, acc);
    }

    boolean recording(int layer) {
      return timeline != null && layer < recordLayers;
    }

    void event(String lane, double s, double e, String label, boolean pf) {
      timeline.add(new TimelineEvent(lane, s - timeZero, e - timeZero, label, pf));
    }

    /** Forward pass number q (tokens [starts[q], starts[q] + tokens)) through every MoE layer. */
    void forward(int q) {
      pass = q;
      int t0 = starts[q];
      int n = tokens;
      double passStart = clock;
      int[] ids = new int[n * K];
      int[] count = new int[E];
      int[] pred = new int[K];
      double xfer = cost.xferMs();
      for (int l = 0; l < L; l++) {
        Arrays.fill(count, 0);
        for (int i = 0; i < n; i++) {
          trace.ids(t0 + i, l, ids, i * K);
        }
        for (int x : ids) {
          count[x]++;
        }
        int[] experts = IntStream.range(0, E).filter(e -> count[e] > 0).toArray();
        int[] loads = Arrays.stream(experts).map(e -> count[e]).toArray();
        double nm = cost.nonMoeMs(n);
        if (recording(l)) {
          event("GPU", clock, clock + nm, "L" + l + " attn", false);
        }
        gpuBusy += nm;
        double moeStart = clock + nm;
        cache.setNow(moeStart);
        cache.observe(l, ids, n, K, scoresOf(t0, n, l));
        pending.settle(l, count, accuracy); // accuracy of earlier look-aheads at this layer
        double[] ready = new double[experts.length];
        for (int i = 0; i < experts.length; i++) {
          int e = experts[i];
          int key = l * E + e;
          activations++;
          if (cache.resident(l, e)) {
            ready[i] = Math.max(0, cache.arrival(l, e) - moeStart);
            hits++;
            cache.used(l, e);
          } else if (!Double.isNaN(staged[key])) {
            ready[i] = Math.max(0, staged[key] - moeStart);
            hits++;
          } else {
            ready[i] = Double.POSITIVE_INFINITY;
          }
        }
        if (future != null) { // Belady: this layer's experts are next needed in a later pass
          for (int e : experts) {
            ((BeladyCache) cache).setNextUse(l, e, future.nextUseAfter(l, e, q));
          }
        }
        cache.setBusy(l, experts);
        LayerRequest req = new LayerRequest(l, experts, loads, ready, shape.sharedExperts(), n,
            Math.max(0, linkBusy - moeStart));
        SlotAllocator alloc = cache.dynamic() ? cache : (layer, e, needed) -> SlotAllocator.STAGING;
        LayerPlan plan = scheduler.plan(req, bundle.mode(), alloc);
        for (int j = 0; j < plan.transfers(); j++) {
          double end = moeStart + plan.transferEnd(j);
          if (plan.transferSlot(j) >= 0) {
            cache.setArrival(l, plan.transferExpert(j), end);
          }
          linkBusy = Math.max(linkBusy, end);
          linkBusyTime += xfer;
          bytes += cost.expertBytes();
          if (recording(l)) {
            event("PCIe", moeStart + plan.transferStart(j), end, "L" + l + " e" + plan.transferExpert(j), false);
          }
        }
        cpuBusy += plan.busy(LayerPlan.CPU);
        gpuBusy += plan.busy(LayerPlan.GPU);
        if (recording(l)) {
          for (int i = 0; i < plan.size(); i++) {
            int id = plan.expert(i);
            String label = id >= 0 ? "L" + l + " e" + id + (plan.load(i) > 1 ? " x" + plan.load(i) : "") : "L" + l + " shared" + (-1 - id);
            event(plan.device(i) == LayerPlan.GPU ? "GPU" : "CPU", moeStart + plan.start(i), moeStart + plan.end(i), label, false);
          }
        }
        double layerEnd = moeStart + plan.makespan();
        // staging-buffer prefetches serve one execution of their layer
        for (int e = 0; e < E; e++) {
          int key = l * E + e;
          if (!Double.isNaN(staged[key])) {
            if (count[e] > 0) {
              stagedUsed++;
            } else {
              stagedWasted++;
            }
            staged[key] = Double.NaN;
          }
        }
        if (bundle.prefetch() != PolicyBundle.PrefetchKind.NONE) {
          prefetch(t0, n, l, moeStart, layerEnd, pred, xfer);
        }
        if (bundle.fillOnMiss() && cache.dynamic()) {
          fill(l, experts, plan, moeStart, layerEnd + cost.nonMoeMs(n), xfer);
        }
        clock = layerEnd;
      }
      timed += clock - passStart;
    }

    private float[] scoresOf(int t0, int n, int l) {
      if (!trace.hasScores()) {
        return null;
      }
      float[] s = new float[n * E];
      for (int i = 0; i < n; i++) {
        for (int e = 0; e < E; e++) {
          s[i * E + e] = trace.score(t0 + i, l, e);
        }
      }
      return s;
    }

    /** Queue prefetches for layers l+1..l+D in the link's idle time before the next layer starts. */
    private void prefetch(int t0, int n, int l, double moeStart, double layerEnd, int[] pred, double xfer) {
      int D = Math.min(bundle.lookahead(), L - 1 - l);
      if (D <= 0) {
        return;
      }
      double layerDur = layerEnd - clock;
      LayerRequest[] reqs = new LayerRequest[D];
      int[][] predCount = new int[D][E];
      for (int d = 1; d <= D; d++) {
        int target = l + d;
        int[] c = predCount[d - 1];
        for (int i = 0; i < n; i++) {
          if (bundle.prefetch() == PolicyBundle.PrefetchKind.IMPACT_PERFECT) {
            trace.ids(t0 + i, target, pred, 0); // the true routing: a perfect look-ahead
          } else {
            oracle.predict(t0 + i, target, d, pred);
          }
          for (int e : pred) {
            c[e]++;
          }
        }
        pending.remember(d, target, c);
        reqs[d - 1] = LayerRequest.predicted(target, c,
            e -> cache.resident(target, e) || !Double.isNaN(staged[target * E + e]), shape.sharedExperts(), n);
      }
      List<ImpactPrefetcher.Candidate> cands;
      if (bundle.prefetch() == PolicyBundle.PrefetchKind.IMPACT
          || bundle.prefetch() == PolicyBundle.PrefetchKind.IMPACT_PERFECT) {
        cands = prefetcher.rank(reqs, accuracy);
      } else { // next layer, heaviest predicted miss first, no impact test
        cands = ImpactPrefetcher.nextLayer(reqs[0]);
      }
      for (ImpactPrefetcher.Candidate c : cands) {
        // Demand before prefetch, for every later layer too: a prefetch must land before the next
        // layer's MoE block starts, so that layer's own transfers find the link free. Candidates
        // for l+2, l+3 compete for the same idle window by impact; more windows follow each layer.
        double windowEnd = clock + layerDur + cost.nonMoeMs(n);
        double startX = Math.max(linkBusy, moeStart);
        double arrival = startX + xfer;
        if (arrival > windowEnd) {
          continue;
        }
        int key = c.layer() * E + c.expert();
        if (cache.resident(c.layer(), c.expert()) || !Double.isNaN(staged[key])) {
          continue;
        }
        if (cache.dynamic()) {
          int[] needed = reqs[c.distance() - 1].experts();
          double value = cache instanceof MrsCache
              ? accuracy.probability(c.distance()) * c.load() / ((double) n * K) : Double.NaN;
          SlotAllocator.Slot s = cache.allocate(c.layer(), c.expert(), needed, arrival, false, value);
          if (s.slot() < 0) {
            continue;
          }
          cache.markPrefetched(c.layer(), c.expert());
        } else {
          staged[key] = arrival;
        }
        linkBusy = arrival;
        linkBusyTime += xfer;
        bytes += cost.expertBytes();
        if (recording(l)) {
          event("PCIe", startX, arrival, "pf L" + c.layer() + " e" + c.expert(), true);
        }
      }
    }

    /**
     * The cache's own fill: misses computed on the CPU that the cache values above a resident (MRS:
     * a higher score; Belady: a sooner next use), copied while the link idles, best first.
     */
    private void fill(int l, int[] experts, LayerPlan plan, double moeStart, double deadline, double xfer) {
      int[] order;
      if (cache instanceof MrsCache mrs) {
        order = mrs.fillOrder(l, plan);
      } else if (future != null) {
        order = IntStream.range(0, plan.size())
            .filter(i -> plan.device(i) == LayerPlan.CPU && plan.expert(i) >= 0 && !cache.resident(l, plan.expert(i)))
            .boxed()
            .sorted(Comparator.comparingLong(i -> future.nextUseAfter(l, plan.expert(i), pass)))
            .mapToInt(Integer::intValue)
            .toArray();
      } else {
        return;
      }
      for (int i : order) {
        int e = plan.expert(i);
        double startX = Math.max(linkBusy, moeStart);
        double arrival = startX + xfer;
        if (arrival > deadline) {
          break;
        }
        double value = cache instanceof MrsCache mrs ? mrs.score(l, e) : Double.NaN; // Belady admits by next use
        SlotAllocator.Slot s = cache.allocate(l, e, experts, arrival, false, value);
        if (s.slot() < 0) {
          continue;
        }
        linkBusy = arrival;
        linkBusyTime += xfer;
        bytes += cost.expertBytes();
        if (recording(l)) {
          event("PCIe", startX, arrival, "fill L" + l + " e" + e, true);
        }
      }
    }
  }
}
