package org.hybrimoe.model;

import org.hybrimoe.expert.ExpertFormat;

/**
 * How to load a model.
 *
 * @param threads engine worker threads (0: one per physical core)
 * @param expertFormat convert routed experts to this format at load (INT8, INT4, or BF16 from
 *     f32), or null to run them in place in the checkpoint's dtype
 * @param groupSize INT4 group size (32, 64 or 128)
 */
public record LoadOptions(int threads, ExpertFormat expertFormat, int groupSize) {
  /** Experts in place, one thread per physical core. */
  public static LoadOptions defaults() {
    return new LoadOptions(0, null, 32);
  }
}
