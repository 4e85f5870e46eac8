package org.hybrimoe.hybrid;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.hybrimoe.device.Device;
import org.hybrimoe.expert.ExpertLayer;
import org.hybrimoe.model.ExecutorStats;
import org.hybrimoe.model.Lookahead;
import org.hybrimoe.model.MoeLayerExecutor;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.policy.cache.Caches;
import org.hybrimoe.policy.cache.ExpertCache;
import org.hybrimoe.policy.cache.MrsCache;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.OnlineCostModel;
import org.hybrimoe.policy.prefetch.ImpactPrefetcher;
import org.hybrimoe.policy.prefetch.PendingPredictions;
import org.hybrimoe.policy.prefetch.PrefetchAccuracy;
import org.hybrimoe.policy.sched.HybridScheduler;
import org.hybrimoe.policy.sched.LayerPlan;
import org.hybrimoe.policy.sched.LayerRequest;
import org.hybrimoe.policy.sched.SlotAllocator;

/**
 * The hybrid MoE executor: per MoE layer the Java policies of a {@link PolicyBundle} (cache,
 * scheduler, prefetcher) make the plan, {@link HybridEngine} runs it in one native call, and the
 * measured timeline comes back to refine the cost model ({@link OnlineCostModel}). The same layer
 * logic as the simulator's ({@link org.hybrimoe.sim.Simulator}), on the real clock.
 *
 * <p>Device slots: {@code [0, cacheSlots)} the expert cache, then {@code stagingSlots} staging
 * slots (misses moved for one use, and the staged prefetches of static placements), then one
 * pinned slot per shared expert ({@link #deviceSlots}). Without a device every expert runs on the
 * CPU. MoE layers are numbered 0..L-1 here; what it does as a {@link MoeLayerExecutor} ({@link #run},
 * {@link #setLookahead}, {@link #stats}) is by decoder layer index, mapped.
 *
 * <p>Owns nothing it is given (engine, device, expert layers); owns its native executor. Not
 * thread-safe: one forward pass at a time.
 */
public final class HybridMoe implements MoeLayerExecutor {
  /**
   * Configuration.
   *
   * @param cacheSlots device slots of the expert cache (0 with no device)
   * @param stagingSlots device slots for experts moved for one use (>= 1 with a device)
   * @param profileCounts [layers * experts] activation counts for static placements and the warm
   *     start (null: every count equal)
   * @param costAlpha weight of a new measurement in the online cost refinement (0: no refinement)
   * @param maxPrefetchCandidates heaviest predicted misses evaluated per look-ahead layer
   */
  public record Config(PolicyBundle bundle, CostModel cost, int cacheSlots, int stagingSlots, long[] profileCounts,
      double costAlpha, int maxPrefetchCandidates) {
    public Config {
      if (cacheSlots < 0 || stagingSlots < 0 || costAlpha < 0 || costAlpha > 1 || maxPrefetchCandidates < 1) {
        throw new IllegalArgumentException("bad hybrid config: cache slots " + cacheSlots + ", staging " + stagingSlots
            + ", alpha " + costAlpha + ", prefetch candidates " + maxPrefetchCandidates);
      }
    }

    /** Defaults: refinement weight 0.2, 12 prefetch candidates, no profile. */
    public static Config of(PolicyBundle bundle, CostModel cost, int cacheSlots, int stagingSlots) {
      return new Config(bundle, cost, cacheSlots, stagingSlots, null, 0.2, 12);
    }
  }

  /**
   * Counters since creation (or {@link #resetStats}). Routed experts only; {@code prefetches} are
   * the look-ahead's, {@code fills} MRS's copies of CPU-computed misses; per-layer arrays are
   * indexed by MoE layer.
   */
  public record Stats(long layers, long activations, long hits, long cpuExperts, long gpuExperts, long demandTransfers,
      long prefetches, long prefetchUsed, long prefetchWasted, long bytesMoved, double measuredMs, double predictedMs,
      long fills, long[] cpuByLayer, long[] gpuByLayer) {
    public Stats {
      cpuByLayer = cpuByLayer.clone();
      gpuByLayer = gpuByLayer.clone();
    }

    public double hitRate() {
      return activations == 0 ? 0 : (double) hits / activations;
    }

    /** A copy: [MoE layers] routed experts computed on the CPU. */
    @Override
    public long[] cpuByLayer() {
      return cpuByLayer.clone();
    }

    /** A copy: [MoE layers] routed experts computed on the GPU. */
    @Override
    public long[] gpuByLayer() {
      return gpuByLayer.clone();
    }
  }

  private static final int RECENT = 256;

  /** A prefetch whose measured times arrive after its layer: where to put them. */
  private record LateTransfer(LayerTimeline timeline, int transfer) {}

  /** A prefetch or fill appended to a plan: times predicted from the MoE block's start. */
  private record Move(int layer, int expert, int slot, int evictedLayer, int evicted, float start, float end) {}

  private final PolicyBundle bundle;
  private final Config config;
  private final int layers;
  private final int experts;
  private int topK; // 0 until the first call when constructed without it
  private final int dModel;
  private final int[] moeOf; // decoder layer -> MoE layer, -1
  private final int[] decoderOf; // MoE layer -> decoder layer
  private final Device device;
  private final HybridEngine engine;
  private final ExpertCache cache; // null without a device
  private final int stagingFrom;
  private final int staging;
  private final int[] sharedCount; // per MoE layer
  private final boolean[] sharedOnDevice;
  private final double[] sharedScale; // per MoE layer: shared expert time over a routed one's
  private final OnlineCostModel online;
  private final PrefetchAccuracy accuracy;
  private final PendingPredictions pending;
  private final long expertBytes;
  private RoutePredictor predictor;
  // Staging ring: which key a staging slot is reserved for (a staged prefetch), -1 free.
  private final int[] stagingReserved;
  private final int[] stagedSlot; // [L * E] staging slot holding a staged prefetch, -1
  private final double[] stagedArrival;
  private int stagingNext;
  private double linkBusy;
  private int lastLayer = -1; // the MoE layer run last and when it ended, for the non-MoE gap
  private double lastEnd;
  // Flat plan and timeline buffers, grown as needed.
  private IntBuffer planBuf = direct(64).asIntBuffer();
  private DoubleBuffer timelineBuf = direct(8 * 256).asDoubleBuffer();
  // Prefetches whose measured times arrive later: sequence number -> (timeline, transfer index).
  private final Map<Long, LateTransfer> latePending = new HashMap<>();
  private final ArrayDeque<LayerTimeline> recent = new ArrayDeque<>();
  // Stats.
  private long nLayers, activations, hits, cpuExperts, gpuExperts, demand, prefetches, fills, stagedUsed, stagedWasted,
      bytes;
  private final long[] cpuByLayer;
  private final long[] gpuByLayer;
  private long prefetchUsedBase, prefetchWastedBase;
  private double measuredMs, predictedMs;

  /**
   * An executor over MoE layers 0..routed.size()-1.
   *
   * @param device the expert device, or null (CPU only)
   * @param routed per MoE layer its routed experts (on a device, in the device's shape and format)
   * @param shared per MoE layer its shared experts (null entries or list: none), routed shape
   * @param sharedScale per MoE layer the cost of one shared expert over a routed one (its
   *     intermediate size over the routed one's; 1 when split into routed-shaped pieces)
   * @param decoderLayers per MoE layer its decoder layer index (what {@link #run} receives)
   * @param topK experts per token (0: taken from the first {@link #run})
   */
  public HybridMoe(Engine cpu, Device device, Config config, List<ExpertLayer> routed, List<ExpertLayer> shared,
      int[] decoderLayers, int topK) {
    this.config = config;
    this.bundle = config.bundle();
    this.layers = routed.size();
    if (layers == 0 || decoderLayers.length != layers) {
      throw new IllegalArgumentException("need one decoder layer index per MoE layer: " + decoderLayers.length + " for "
          + layers + " MoE layers");
    }
    this.experts = routed.get(0).nExperts();
    this.dModel = (int) routed.get(0).dModel();
    this.topK = topK;
    if (topK < 0 || topK > experts) {
      throw new IllegalArgumentException("top-k " + topK + " outside [1, " + experts + "] (or 0: from the first call)");
    }
    int maxDecoder = Arrays.stream(decoderLayers).max().getAsInt();
    this.moeOf = new int[maxDecoder + 1];
    this.decoderOf = decoderLayers.clone();
    Arrays.fill(moeOf, -1);
    for (int m = 0; m < layers; m++) {
      if (decoderLayers[m] < 0 || moeOf[decoderLayers[m]] >= 0) {
        throw new IllegalArgumentException("decoder layer indices must be distinct and >= 0: "
            + Arrays.toString(decoderLayers));
      }
      moeOf[decoderLayers[m]] = m;
    }
    this.device = device;
    this.sharedCount = new int[layers];
    this.sharedOnDevice = new boolean[layers];
    this.sharedScale = new double[layers];
    this.cpuByLayer = new long[layers];
    this.gpuByLayer = new long[layers];
    int totalShared = 0;
    for (int m = 0; m < layers; m++) {
      ExpertLayer s = shared == null ? null : shared.get(m);
      sharedCount[m] = s == null ? 0 : s.nExperts();
      sharedScale[m] = 1;
      totalShared += sharedCount[m];
    }
    if (device == null && (config.cacheSlots() > 0 || config.stagingSlots() > 0)) {
      throw new IllegalArgumentException("cache and staging slots need a device");
    }
    if (device != null) {
      int need = deviceSlots(config.cacheSlots(), config.stagingSlots(), totalShared);
      if (config.stagingSlots() < 1) {
        throw new IllegalArgumentException("a device needs at least one staging slot");
      }
      if (device.slots() < need) {
        throw new IllegalArgumentException("device has " + device.slots() + " slots; cache " + config.cacheSlots()
            + " + staging " + config.stagingSlots() + " + shared " + totalShared + " need " + need);
      }
    }
    this.staging = device == null ? 0 : config.stagingSlots();
    this.stagingFrom = config.cacheSlots();
    this.stagingReserved = new int[staging];
    Arrays.fill(stagingReserved, -1);
    this.stagedSlot = new int[layers * experts];
    Arrays.fill(stagedSlot, -1);
    this.stagedArrival = new double[layers * experts];
    this.online = new OnlineCostModel(config.cost(), Math.max(config.costAlpha(), 1e-9));
    this.accuracy = new PrefetchAccuracy(Math.max(1, bundle.lookahead()));
    this.pending = new PendingPredictions(Math.max(1, bundle.lookahead()), layers);
    this.expertBytes = config.cost().expertBytes();
    this.cache = device == null ? null : newCache(config);
    this.engine = HybridEngine.create(cpu, device, layers, experts);
    try {
      int pin = stagingFrom + staging;
      for (int m = 0; m < layers; m++) {
        ExpertLayer s = shared == null ? null : shared.get(m);
        int[] slots = null;
        if (s != null && device != null) {
          slots = IntStream.range(pin, pin + s.nExperts()).toArray();
          pin += s.nExperts();
          sharedOnDevice[m] = true;
        }
        engine.setLayer(m, routed.get(m), s, slots);
      }
      if (cache != null) {
        for (int m = 0; m < layers; m++) {
          for (int e = 0; e < experts; e++) {
            if (cache.resident(m, e)) {
              engine.preload(m, e, cache.slotOf(m, e));
            }
          }
        }
        engine.sync();
      }
    } catch (RuntimeException ex) {
      engine.close();
      throw ex;
    }
  }

  /** Device slots an executor needs: cache, staging, one per shared expert. */
  public static int deviceSlots(int cacheSlots, int stagingSlots, int sharedExperts) {
    return cacheSlots + stagingSlots + sharedExperts;
  }

  private ExpertCache newCache(Config c) {
    long[] counts = c.profileCounts();
    if (counts != null && counts.length != layers * experts) {
      throw new IllegalArgumentException("profile counts must have layers * experts = " + layers * experts + " entries");
    }
    int slots = Math.min(c.cacheSlots(), layers * experts);
    long[] cnt = counts != null ? counts : new long[layers * experts];
    Integer[] keys = IntStream.range(0, layers * experts).boxed().toArray(Integer[]::new);
    Arrays.sort(keys, (a, b) -> cnt[a] != cnt[b] ? Long.compare(cnt[b], cnt[a]) : Integer.compare(a, b));
    int[] warm = Arrays.stream(keys).mapToInt(Integer::intValue).toArray();
    return Caches.create(c.bundle().cache(), layers, experts, slots, cnt, warm);
  }

  /** Sets the look-ahead the prefetcher uses (null: no prefetch). */
  public void setPredictor(RoutePredictor predictor) {
    this.predictor = predictor;
  }

  /**
   * The model's look-ahead as this executor's predictor (null: no prefetch): MoE layer m's
   * prediction is decoder layer {@code decoderLayers[m]}'s router on the current input.
   */
  @Override
  public void setLookahead(Lookahead lookahead) {
    setPredictor(lookahead == null ? null : (target, x, n, ids) -> {
      int layer = decoderOf[target];
      if (ids.length != (long) n * lookahead.topK(layer)) {
        throw new IllegalStateException("look-ahead routes " + lookahead.topK(layer) + " experts per token at decoder"
            + " layer " + layer + " but this executor routes " + topK);
      }
      lookahead.predict(layer, x, n, ids);
    });
  }

  public PolicyBundle bundle() {
    return bundle;
  }

  public int layers() {
    return layers;
  }

  /** The cost model as refined by measurements so far. */
  public CostModel costModel() {
    return online.current();
  }

  /** Multipliers the online refinement applies (cpu, gpu, link). */
  public double[] costScales() {
    return online.scales();
  }

  /** The last timelines (up to 256), oldest first. */
  public List<LayerTimeline> recentTimelines() {
    return new ArrayList<>(recent);
  }

  @Override
  public void run(int layer, FloatBuffer x, int nTokens, int k, IntBuffer ids, FloatBuffer weights, FloatBuffer out) {
    run(layer, x, nTokens, k, ids, weights, null, out);
  }

  /** {@link #runLayer} by decoder layer index, with the routing probabilities for the MRS cache. */
  @Override
  public void run(int layer, FloatBuffer x, int nTokens, int k, IntBuffer ids, FloatBuffer weights, FloatBuffer scores,
      FloatBuffer out) {
    runLayer(moeLayer(layer, k), x, nTokens, ids, weights, scores, null, out);
  }

  /**
   * The MoE layer of decoder layer {@code layer}, checking top-k against this executor's (set
   * from the first call when constructed without it).
   */
  int moeLayer(int layer, int k) {
    if (layer < 0 || layer >= moeOf.length || moeOf[layer] < 0) {
      throw new IllegalArgumentException("decoder layer " + layer + " is not a MoE layer of this executor");
    }
    if (topK == 0 && k >= 1 && k <= experts) {
      topK = k;
    }
    if (k != topK) {
      throw new IllegalArgumentException("top-k " + k + " but this executor routes " + topK + " experts per token");
    }
    return moeOf[layer];
  }

  /**
   * Plans and runs MoE layer {@code l}: out += routed experts (and shared experts, when the layer
   * has them, weighted by {@code sharedWeights} [n, shared] or 1).
   *
   * @param scores [n, experts] routing probabilities for the MRS cache, or null
   */
  public LayerTimeline runLayer(int l, FloatBuffer x, int n, IntBuffer ids, FloatBuffer weights, FloatBuffer scores,
      FloatBuffer sharedWeights, FloatBuffer out) {
    if (l < 0 || l >= layers) {
      throw new IllegalArgumentException("MoE layer " + l + " outside [0, " + layers + ")");
    }
    if (n < 1) {
      throw new IllegalArgumentException("need at least one token, got " + n);
    }
    if (topK == 0) {
      throw new IllegalStateException("top-k unknown: construct with it or call run() first");
    }
    Native.requireDirect("x", x, (long) n * dModel);
    Native.requireDirect("ids", ids, (long) n * topK);
    Native.requireDirect("weights", weights, (long) n * topK);
    Native.requireDirect("out", out, (long) n * dModel);
    if (sharedWeights != null) {
      Native.requireDirect("sharedWeights", sharedWeights, (long) n * sharedCount[l]);
    }
    int[] idArr = new int[n * topK];
    ids.get(ids.position(), idArr);
    int[] count = new int[experts];
    for (int e : idArr) {
      if (e < 0 || e >= experts) {
        throw new IllegalArgumentException("expert id " + e + " outside [0, " + experts + ")");
      }
      count[e]++;
    }
    int[] ex = IntStream.range(0, experts).filter(e -> count[e] > 0).toArray();
    int[] loads = Arrays.stream(ex).map(e -> count[e]).toArray();
    float[] sc = null;
    if (scores != null) {
      Native.requireDirect("scores", scores, (long) n * experts);
      sc = new float[n * experts];
      scores.get(scores.position(), sc);
    }
    double now = HybridEngine.clockMs();
    if (l == lastLayer + 1 && lastLayer >= 0 && config.costAlpha() > 0) {
      online.observeNonMoe(n, Math.max(0, now - lastEnd)); // attention etc. between consecutive MoE layers
    }
    CostModel cm = online.current();
    pending.settle(l, count, accuracy); // accuracy of earlier look-aheads at this layer
    activations += ex.length;
    LayerPlan plan;
    if (device == null) {
      plan = LayerPlan.allOnCpu(l, ex, loads, sharedCount[l], n, sharedScale[l], cm);
    } else {
      plan = planOnDevice(l, n, idArr, sc, ex, loads, now, cm, x);
    }
    LayerTimeline tl = execute(plan, x, n, ids, weights, sharedWeights, out);
    afterLayer(l, count, tl);
    lastLayer = l;
    lastEnd = HybridEngine.clockMs();
    return tl;
  }

  private LayerPlan planOnDevice(int l, int n, int[] idArr, float[] sc, int[] ex, int[] loads, double now, CostModel cm,
      FloatBuffer x) {
    cache.setNow(now);
    cache.observe(l, idArr, n, topK, sc);
    double[] ready = new double[ex.length];
    for (int i = 0; i < ex.length; i++) {
      int e = ex[i];
      int key = l * experts + e;
      if (cache.resident(l, e)) {
        ready[i] = Math.max(0, cache.arrival(l, e) - now);
        hits++;
        cache.used(l, e);
      } else if (stagedSlot[key] >= 0) {
        ready[i] = Math.max(0, stagedArrival[key] - now);
        hits++;
      } else {
        ready[i] = Double.POSITIVE_INFINITY;
      }
    }
    cache.setBusy(l, ex);
    int shared = sharedOnDevice[l] ? sharedCount[l] : 0;
    LayerRequest req = new LayerRequest(l, ex, loads, ready, shared, n, Math.max(0, linkBusy - now));
    SlotAllocator alloc = cache.dynamic() ? cache : (layer, e, needed) -> SlotAllocator.STAGING;
    HybridScheduler scheduler = new HybridScheduler(cm); // cm changes after every layer's measurements
    LayerPlan plan = scheduler.plan(req, bundle.mode(), alloc);
    for (int j = 0; j < plan.transfers(); j++) {
      double end = now + plan.transferEnd(j);
      if (plan.transferSlot(j) >= 0) {
        cache.setArrival(l, plan.transferExpert(j), end);
      }
      linkBusy = Math.max(linkBusy, end);
    }
    double layerEnd = now + plan.makespan();
    List<Move> extra = new ArrayList<>();
    if (bundle.prefetch() != PolicyBundle.PrefetchKind.NONE && predictor != null) {
      prefetch(l, n, x, now, layerEnd, cm, scheduler, extra);
    }
    if (bundle.fillOnMiss() && cache instanceof MrsCache mrs) {
      fill(l, ex, plan, mrs, now, layerEnd + cm.nonMoeMs(n), cm, extra);
    }
    if (!extra.isEmpty()) {
      plan = plan.withPrefetches(extra.stream().mapToInt(Move::layer).toArray(),
          extra.stream().mapToInt(Move::expert).toArray(), extra.stream().mapToInt(Move::slot).toArray(),
          extra.stream().mapToInt(Move::evictedLayer).toArray(), extra.stream().mapToInt(Move::evicted).toArray(),
          floats(extra, true), floats(extra, false));
    }
    return plan;
  }

  /** Queues prefetches for layers l+1..l+D in the link's idle time before the next layer starts. */
  private void prefetch(int l, int n, FloatBuffer x, double now, double layerEnd, CostModel cm,
      HybridScheduler scheduler, List<Move> extra) {
    int depth = Math.min(bundle.lookahead(), layers - 1 - l);
    if (depth <= 0) {
      return;
    }
    LayerRequest[] reqs = new LayerRequest[depth];
    int[] pred = new int[n * topK];
    for (int d = 1; d <= depth; d++) {
      int target = l + d;
      predictor.predict(target, x, n, pred);
      int[] c = new int[experts];
      for (int e : pred) {
        if (e >= 0 && e < experts) {
          c[e]++;
        }
      }
      pending.remember(d, target, c);
      reqs[d - 1] = LayerRequest.predicted(target, c,
          e -> cache.resident(target, e) || stagedSlot[target * experts + e] >= 0,
          sharedOnDevice[target] ? sharedCount[target] : 0, n);
    }
    List<ImpactPrefetcher.Candidate> cands;
    if (bundle.prefetch() == PolicyBundle.PrefetchKind.IMPACT) {
      cands = new ImpactPrefetcher(scheduler, bundle.mode(), config.maxPrefetchCandidates()).rank(reqs, accuracy);
    } else { // next layer, heaviest predicted miss first
      cands = ImpactPrefetcher.nextLayer(reqs[0]);
    }
    double xfer = cm.xferMs();
    double windowEnd = layerEnd + cm.nonMoeMs(n);
    // What a copy costs the CPU where the link shares its host (the emulated device): a prefetch
    // must save more than that, or it slows the layers it means to speed up. 0 on a real GPU.
    double stall = cm.cpuStallMs(0, xfer);
    for (ImpactPrefetcher.Candidate c : cands) {
      if (bundle.prefetch() == PolicyBundle.PrefetchKind.IMPACT && c.impactMs() <= stall) {
        continue;
      }
      double startX = Math.max(linkBusy, now);
      double arrival = startX + xfer;
      if (arrival > windowEnd) {
        break;
      }
      int key = c.layer() * experts + c.expert();
      if (cache.resident(c.layer(), c.expert()) || stagedSlot[key] >= 0) {
        continue;
      }
      int slot;
      int evLayer = -1;
      int ev = -1;
      if (cache.dynamic()) {
        int[] needed = reqs[c.distance() - 1].experts();
        double value = cache instanceof MrsCache
            ? accuracy.probability(c.distance()) * c.load() / ((double) n * topK) : Double.NaN;
        SlotAllocator.Slot s = cache.allocate(c.layer(), c.expert(), needed, arrival, false, value);
        if (s.slot() < 0) {
          continue;
        }
        cache.markPrefetched(c.layer(), c.expert());
        slot = s.slot();
        evLayer = s.evictedLayer();
        ev = s.evicted();
      } else {
        slot = reserveStaging(key);
        if (slot < 0) {
          continue;
        }
        stagedArrival[key] = arrival;
      }
      linkBusy = arrival;
      extra.add(new Move(c.layer(), c.expert(), slot, evLayer, ev, (float) (startX - now), (float) (arrival - now)));
      prefetches++;
    }
  }

  /** MRS's own fill: misses computed on the CPU that outscore a resident, copied while the link idles. */
  private void fill(int l, int[] ex, LayerPlan plan, MrsCache mrs, double now, double deadline, CostModel cm,
      List<Move> extra) {
    // A fill pays off through later hits, each saving at most a CPU expert's time over a GPU one; where
    // a copy steals more CPU time than one such hit returns (the link shares the host), none is made.
    double xfer = cm.xferMs();
    if (cm.cpuStallMs(0, xfer) >= cm.cpuMs(1, false) - cm.gpuMs(1, false)) {
      return;
    }
    for (int i : mrs.fillOrder(l, plan)) {
      int e = plan.expert(i);
      double startX = Math.max(linkBusy, now);
      double arrival = startX + xfer;
      if (arrival > deadline) {
        break;
      }
      SlotAllocator.Slot s = cache.allocate(l, e, ex, arrival, false, mrs.score(l, e));
      if (s.slot() < 0) {
        continue;
      }
      linkBusy = arrival;
      extra.add(new Move(l, e, s.slot(), s.evictedLayer(), s.evicted(), (float) (startX - now), (float) (arrival - now)));
      fills++;
    }
  }

  // A staging slot for a staged prefetch (kept until its layer runs); one is always left for demand.
  private int reserveStaging(int key) {
    int free = 0;
    for (int r : stagingReserved) {
      if (r < 0) {
        free++;
      }
    }
    if (free <= 1) {
      return -1;
    }
    for (int q = 0; q < staging; q++) {
      int s = (stagingNext + q) % staging;
      if (stagingReserved[s] < 0) {
        stagingReserved[s] = key;
        stagedSlot[key] = stagingFrom + s;
        stagingNext = (s + 1) % staging;
        return stagingFrom + s;
      }
    }
    return -1;
  }

  // The next unreserved staging slot, round robin, for a miss moved for this use only.
  private int demandStaging() {
    for (int q = 0; q < staging; q++) {
      int s = (stagingNext + q) % staging;
      if (stagingReserved[s] < 0) {
        stagingNext = (s + 1) % staging;
        return stagingFrom + s;
      }
    }
    throw new IllegalStateException("no free staging slot"); // reserveStaging always leaves one
  }

  private LayerTimeline execute(LayerPlan plan, FloatBuffer x, int n, IntBuffer ids, FloatBuffer weights,
      FloatBuffer sharedWeights, FloatBuffer out) {
    int ints = plan.intLength();
    int[] flat = new int[ints];
    plan.writeIntsTo(flat, 0);
    int base = 4 + 4 * plan.size();
    for (int j = 0; j < plan.transfers(); j++) {
      if (flat[base + 6 * j + 2] < 0) { // staging: this layer's misses only (prefetches got a slot)
        flat[base + 6 * j + 2] = demandStaging();
      }
    }
    if (planBuf.capacity() < ints) {
      planBuf = direct(4L * ints * 2).asIntBuffer();
    }
    planBuf.clear();
    planBuf.put(flat, 0, ints).flip();
    int need = HybridEngine.TL_HEADER + 2 * (plan.size() + plan.transfers()) + 3 * 64;
    if (timelineBuf.capacity() < need) {
      timelineBuf = direct(8L * need * 2).asDoubleBuffer();
    }
    timelineBuf.clear();
    try {
      engine.run(planBuf, ints, x, n, ids, weights, topK, sharedWeights, out, timelineBuf);
    } catch (RuntimeException e) {
      // The plan's transfers may not have run: the cache must not count on them, nor on staging.
      for (int j = 0; j < plan.transfers(); j++) {
        int key = plan.transferLayer(j) * experts + plan.transferExpert(j);
        if (cache != null && plan.transferSlot(j) >= 0) {
          cache.forget(plan.transferLayer(j), plan.transferExpert(j));
        }
        if (stagedSlot[key] >= 0) {
          stagingReserved[stagedSlot[key] - stagingFrom] = -1;
          stagedSlot[key] = -1;
        }
      }
      throw e;
    }
    return readTimeline(plan);
  }

  private LayerTimeline readTimeline(LayerPlan plan) {
    DoubleBuffer t = timelineBuf;
    int n = plan.size();
    int m = plan.transfers();
    double begin = t.get(HybridEngine.TL_BEGIN);
    double end = t.get(HybridEngine.TL_END);
    long seq0 = (long) t.get(HybridEngine.TL_FIRST_SEQ);
    int late = (int) t.get(HybridEngine.TL_LATE);
    boolean perRun = t.get(HybridEngine.TL_PER_RUN) != 0;
    int waves = (int) t.get(HybridEngine.TL_WAVES);
    double[] st = new double[n], en = new double[n], xs = new double[m], xe = new double[m];
    int p = HybridEngine.TL_HEADER;
    for (int i = 0; i < n; i++, p += 2) {
      st[i] = t.get(p);
      en[i] = t.get(p + 1);
    }
    for (int j = 0; j < m; j++, p += 2) {
      xs[j] = t.get(p);
      xe[j] = t.get(p + 1);
    }
    if (!perRun) {
      apportionWaves(plan, st, en);
    }
    LayerTimeline tl = new LayerTimeline(plan, begin, end, st, en, xs, xe, waves, perRun);
    for (int j = 0; j < m; j++) {
      if (plan.transferKind(j) == LayerPlan.PREFETCH) {
        latePending.put(seq0 + j, new LateTransfer(tl, j));
      }
    }
    for (int r = 0; r < late; r++, p += 3) {
      LateTransfer at = latePending.remove((long) t.get(p));
      double s = t.get(p + 1);
      double e = t.get(p + 2);
      if (at != null) {
        at.timeline().completeTransfer(at.transfer(), s, e);
      }
      observeTransfer(e - s);
    }
    if (latePending.size() > 4096) { // never reported (a failed layer): forget the oldest
      latePending.keySet().removeIf(k -> k < seq0 - 4096);
    }
    return tl;
  }

  // CUDA times one launch per wave: share each wave's span out by predicted durations.
  private static void apportionWaves(LayerPlan plan, double[] st, double[] en) {
    Map<List<Double>, List<Integer>> byWave = new HashMap<>(); // (start, end) of a wave -> its experts
    for (int i = 0; i < plan.size(); i++) {
      if (plan.device(i) == LayerPlan.GPU && !Double.isNaN(st[i])) {
        byWave.computeIfAbsent(List.of(st[i], en[i]), k -> new ArrayList<>()).add(i);
      }
    }
    for (List<Integer> w : byWave.values()) {
      w.sort((a, b) -> Float.compare(plan.start(a), plan.start(b)));
      double s0 = st[w.get(0)];
      double span = en[w.get(0)] - s0;
      double total = 0;
      for (int i : w) {
        total += plan.end(i) - plan.start(i);
      }
      double t = s0;
      for (int i : w) {
        double share = total > 0 ? span * (plan.end(i) - plan.start(i)) / total : span / w.size();
        st[i] = t;
        t += share;
        en[i] = t;
      }
    }
  }

  private void afterLayer(int l, int[] count, LayerTimeline tl) {
    LayerPlan plan = tl.plan();
    nLayers++;
    measuredMs += tl.measuredMs();
    predictedMs += tl.predictedMs();
    // Online refinement from what was measured.
    List<Integer> gpuRouted = new ArrayList<>();
    for (int i = 0; i < plan.size(); i++) {
      double ms = tl.expertEnd(i) - tl.expertStart(i);
      boolean routed = plan.expert(i) >= 0;
      if (plan.device(i) == LayerPlan.CPU) {
        cpuExperts += routed ? 1 : 0;
        cpuByLayer[l] += routed ? 1 : 0;
        if (routed && ms > 0 && config.costAlpha() > 0) {
          online.observeCpu(plan.load(i), plan.order(i) == 0, ms);
        }
      } else {
        gpuExperts += routed ? 1 : 0;
        gpuByLayer[l] += routed ? 1 : 0;
        if (routed && !Double.isNaN(ms)) {
          gpuRouted.add(i);
        }
      }
    }
    if (config.costAlpha() > 0 && !gpuRouted.isEmpty()) {
      if (tl.perExpertGpuTimes()) {
        for (int i : gpuRouted) {
          double ms = tl.expertEnd(i) - tl.expertStart(i);
          if (ms > 0) {
            online.observeGpu(plan.load(i), plan.order(i) == 0, ms);
          }
        }
      } else {
        double s = Double.POSITIVE_INFINITY;
        double e = Double.NEGATIVE_INFINITY;
        int[] loads = new int[gpuRouted.size()];
        for (int q = 0; q < loads.length; q++) {
          int i = gpuRouted.get(q);
          s = Math.min(s, tl.expertStart(i));
          e = Math.max(e, tl.expertEnd(i));
          loads[q] = plan.load(i);
        }
        if (e > s) {
          online.observeGpuBatch(loads, true, e - s);
        }
      }
    }
    for (int j = 0; j < plan.transfers(); j++) {
      bytes += expertBytes;
      if (plan.transferKind(j) == LayerPlan.DEMAND) {
        demand++;
        observeTransfer(tl.transferEnd(j) - tl.transferStart(j));
      }
    }
    // Staged prefetches serve one execution of their layer.
    for (int s = 0; s < staging; s++) {
      int key = stagingReserved[s];
      if (key >= 0 && key / experts == l) {
        if (count[key % experts] > 0) {
          stagedUsed++;
        } else {
          stagedWasted++;
        }
        stagingReserved[s] = -1;
        stagedSlot[key] = -1;
      }
    }
    recent.addLast(tl);
    if (recent.size() > RECENT) {
      recent.removeFirst();
    }
  }

  private void observeTransfer(double ms) {
    if (config.costAlpha() > 0 && ms > 0 && !Double.isNaN(ms)) {
      online.observeTransfer(ms);
    }
  }

  /**
   * The counters by decoder layer (arrays up to the last MoE layer; dense layers 0), for the model's
   * user; {@link #hybridStats} has the executor's own view.
   */
  @Override
  public ExecutorStats stats() {
    Stats s = hybridStats();
    long[] cpu = new long[moeOf.length];
    long[] gpu = new long[moeOf.length];
    for (int m = 0; m < layers; m++) {
      cpu[decoderOf[m]] = cpuByLayer[m];
      gpu[decoderOf[m]] = gpuByLayer[m];
    }
    return new ExecutorStats(cpu, gpu, s.activations(), s.hits(), s.demandTransfers(), s.prefetches(),
        s.prefetchUsed(), s.prefetchWasted(), s.bytesMoved(), s.fills());
  }

  /** Counters so far by MoE layer, with times (prefetch outcomes: used before eviction / evicted or unused). */
  public Stats hybridStats() {
    long used = (cache == null ? 0 : cache.prefetchUsed()) - prefetchUsedBase + stagedUsed;
    long wasted = (cache == null ? 0 : cache.prefetchWasted()) - prefetchWastedBase + stagedWasted;
    return new Stats(nLayers, activations, hits, cpuExperts, gpuExperts, demand, prefetches, used, wasted, bytes,
        measuredMs, predictedMs, fills, cpuByLayer, gpuByLayer);
  }

  /** Zeroes the counters (the cache, the cost model and the device keep their state). */
  @Override
  public void resetStats() {
    nLayers = activations = hits = cpuExperts = gpuExperts = demand = prefetches = fills = stagedUsed = stagedWasted =
        bytes = 0;
    Arrays.fill(cpuByLayer, 0);
    Arrays.fill(gpuByLayer, 0);
    measuredMs = predictedMs = 0;
    prefetchUsedBase = cache == null ? 0 : cache.prefetchUsed();
    prefetchWastedBase = cache == null ? 0 : cache.prefetchWasted();
  }

  /** Waits for every transfer in flight (prefetches included). */
  public void sync() {
    engine.sync();
  }

  @Override
  public void close() {
    engine.close();
  }

  private static float[] floats(List<Move> moves, boolean start) {
    float[] f = new float[moves.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = start ? moves.get(i).start() : moves.get(i).end();
    }
    return f;
  }

  private static ByteBuffer direct(long bytes) {
    return ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
  }
}
