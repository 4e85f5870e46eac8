package org.hybrimoe.device;

/**
 * How many expert slots a device gets: from a byte budget (what the user gives, or the GPU's free
 * memory less the dense weights, the KV cache and a scratch margin) or from a cache ratio (a
 * fraction of all routed experts of the model).
 */
public final class MemoryBudget {
  /** Scratch the device keeps besides slots (activations, plan buffers, CUDA context growth). */
  public static final long DEFAULT_SCRATCH_BYTES = 512L << 20;

  private MemoryBudget() {}

  /**
   * Slots that fit in {@code budgetBytes} after the dense weights and KV cache.
   *
   * @throws IllegalArgumentException when nothing is left for experts, saying how much is missing
   */
  public static int slotsForBytes(
      long budgetBytes, long denseBytes, long kvCacheBytes, long scratchBytes, long slotBytes) {
    if (budgetBytes < 0 || denseBytes < 0 || kvCacheBytes < 0 || scratchBytes < 0 || slotBytes < 1) {
      throw new IllegalArgumentException("byte counts must be >= 0 and slotBytes >= 1");
    }
    long left = budgetBytes - denseBytes - kvCacheBytes - scratchBytes;
    if (left < slotBytes) {
      throw new IllegalArgumentException(
          String.format(
              "GPU budget of %.2f GiB holds no expert: dense weights %.2f GiB + KV cache %.2f GiB +"
                  + " scratch %.2f GiB leave %.2f GiB, one expert needs %.3f GiB",
              gib(budgetBytes), gib(denseBytes), gib(kvCacheBytes), gib(scratchBytes), gib(Math.max(left, 0)),
              gib(slotBytes)));
    }
    return (int) Math.min(Integer.MAX_VALUE, left / slotBytes);
  }

  /**
   * Slots for a cache ratio: ratio x (routed experts per MoE layer x MoE layers), at least one.
   *
   * @throws IllegalArgumentException for a ratio outside (0, 1]
   */
  public static int slotsForRatio(double ratio, int expertsPerLayer, int moeLayers) {
    if (!(ratio > 0 && ratio <= 1)) {
      throw new IllegalArgumentException("cache ratio must be in (0, 1], got " + ratio);
    }
    if (expertsPerLayer < 1 || moeLayers < 1) {
      throw new IllegalArgumentException("expertsPerLayer and moeLayers must be >= 1");
    }
    return (int) Math.max(1, Math.round(ratio * expertsPerLayer * (double) moeLayers));
  }

  private static double gib(long b) {
    return b / (double) (1L << 30);
  }
}
