package org.hybrimoe.policy.sched;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.hybrimoe.policy.cost.CostModel;
import org.hybrimoe.policy.cost.HardwareProfile;
import org.hybrimoe.policy.cost.ModelShape;
import org.hybrimoe.policy.prefetch.ImpactPrefetcher;
import org.hybrimoe.policy.prefetch.PrefetchAccuracy;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * JMH benchmark of one scheduling decision as the engine takes it per MoE layer: the layer's plan
 * (section 2) plus impact-ranked prefetch candidates for the next three layers (section 3), for the
 * Qwen2-57B-A14B shape (64 experts, top-8, one shared expert) on the paper's profile, a quarter of
 * the experts resident. {@code tokens} = 1 is a decode step, 512 a prefill chunk (up to 64 experts
 * active). Run with {@code java -jar target/hybrimoe.jar bench-scheduler}; the command prints the
 * decision time next to the predicted time of the layer it plans.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class SchedulerBenchmark {
  @Param({"1", "512"})
  public int tokens;

  HybridScheduler scheduler;
  ImpactPrefetcher prefetcher;
  PrefetchAccuracy accuracy;
  LayerRequest current;
  LayerRequest[] ahead;

  @Setup
  public void setup() {
    CostModel cost;
    try {
      cost = HardwareProfile.load("paper-a6000").costModel(ModelShape.QWEN2_57B_A14B);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    scheduler = new HybridScheduler(cost);
    prefetcher = new ImpactPrefetcher(scheduler, SchedulingMode.HYBRID, 12);
    accuracy = new PrefetchAccuracy(3);
    SplittableRandom rnd = new SplittableRandom(42);
    current = request(0, rnd);
    ahead = new LayerRequest[] {request(1, rnd), request(2, rnd), request(3, rnd)};
  }

  /** A request of the given shape: per token top-8 of 64 with a popularity skew, 25% resident. */
  public LayerRequest request(int layer, SplittableRandom rnd) {
    return randomRequest(layer, tokens, 64, 8, 1, 0.25, rnd);
  }

  /** Random layer request: tokens x topK routing over experts, each expert resident with probability p. */
  public static LayerRequest randomRequest(int layer, int tokens, int experts, int topK, int shared, double resident,
      SplittableRandom rnd) {
    int[] count = new int[experts];
    for (int t = 0; t < tokens; t++) {
      boolean[] used = new boolean[experts];
      for (int k = 0; k < topK; k++) {
        int e;
        do {
          e = (int) Math.min(experts - 1, Math.floor(experts * Math.pow(rnd.nextDouble(), 1.6)));
        } while (used[e]);
        used[e] = true;
        count[e]++;
      }
    }
    int n = 0;
    for (int c : count) {
      if (c > 0) {
        n++;
      }
    }
    int[] ids = new int[n];
    int[] loads = new int[n];
    double[] ready = new double[n];
    for (int e = 0, i = 0; e < experts; e++) {
      if (count[e] > 0) {
        ids[i] = e;
        loads[i] = count[e];
        ready[i] = rnd.nextDouble() < resident ? 0 : Double.POSITIVE_INFINITY;
        i++;
      }
    }
    return new LayerRequest(layer, ids, loads, ready, shared, tokens, 0);
  }

  /** The predicted makespan of the planned layer (what the decision must be well under). */
  public double plannedLayerMs() {
    return scheduler.plan(current, SchedulingMode.HYBRID, (l, e, needed) -> SlotAllocator.STAGING).makespan();
  }

  @Benchmark
  public Object decide() {
    LayerPlan plan = scheduler.plan(current, SchedulingMode.HYBRID, (l, e, needed) -> SlotAllocator.STAGING);
    List<ImpactPrefetcher.Candidate> c = prefetcher.rank(ahead, accuracy);
    return c.size() + plan.transfers();
  }
}
