package org.hybrimoe.policy.sched;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.hybrimoe.policy.cost.CostModel;
import org.junit.jupiter.api.Test;

/**
 * Where the "GPU" and the link are host threads (the emulated device), their work takes the CPU's
 * cores: a transfer that pays on three independent resources does not pay there, and the
 * scheduler, seeing the measured overlaps in the cost model, keeps the misses on the CPU.
 */
class SharedHostSchedulingTest {
  // CPU 1 ms an expert, GPU 0.1, a copy 1.2: moving one of four misses shortens the layer from 4.0
  // to 3.0 when the link runs beside the CPU, and lengthens it to 4.3 when it takes the CPU's time.
  static final CostModel INDEPENDENT = CostModel.linear(0, 1.0, 0, 0, 0.1, 0, 1.2, 1e9, 1L, 0, 0, 1, 0.1);
  static final CostModel SHARED = INDEPENDENT.withOverlap(0, 0, 0);

  static LayerRequest fourMisses() {
    double inf = Double.POSITIVE_INFINITY;
    return new LayerRequest(0, new int[] {1, 2, 3, 4}, new int[] {1, 1, 1, 1}, new double[] {inf, inf, inf, inf}, 0, 1, 0);
  }

  @Test
  void transfersThatPayOnIndependentResourcesAreNotMadeOnASharedHost() {
    LayerRequest r = fourMisses();
    LayerPlan independent = new HybridScheduler(INDEPENDENT).plan(r, SchedulingMode.HYBRID, (l, e, n) -> SlotAllocator.STAGING);
    assertTrue(independent.transfers() >= 1, "the link helps beside the CPU: " + independent);
    assertTrue(independent.makespan() < 4.0 - 1e-6);
    LayerPlan shared = new HybridScheduler(SHARED).plan(r, SchedulingMode.HYBRID, (l, e, n) -> SlotAllocator.STAGING);
    assertEquals(0, shared.transfers(), "a copy would take the CPU's own time: " + shared);
    assertEquals(4.0, shared.makespan(), 1e-6);
    // Forced onto the GPU anyway, the shared host's timeline charges the copies to the CPU's cores.
    assertTrue(new HybridScheduler(SHARED).makespan(r, SchedulingMode.GPU_ONLY)
        > new HybridScheduler(INDEPENDENT).makespan(r, SchedulingMode.GPU_ONLY) - 1e-9);
  }

  @Test
  void overlapsOutsideTheUnitIntervalAreRefused() {
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> INDEPENDENT.withOverlap(1.5, 1, 1));
    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> INDEPENDENT.withOverlap(1, -0.1, 1));
  }
}
