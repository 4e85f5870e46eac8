package org.hybrimoe.api;

import org.hybrimoe.model.ExecutorStats;

/**
 * What a generation produced.
 *
 * @param text the new text (without the prompt, cut before a stop string, without EOS)
 * @param tokens the new token ids, EOS included when it ended the generation
 * @param finishReason why it ended
 * @param timings where the time went
 * @param stats what the MoE layers did during this request alone: per layer experts on CPU and
 *     GPU, cache hits, bytes moved, prefetches used and wasted
 */
public record GenerationResult(String text, int[] tokens, FinishReason finishReason, Timings timings,
    ExecutorStats stats) {
  public GenerationResult {
    tokens = tokens.clone();
  }

  @Override
  public int[] tokens() {
    return tokens.clone();
  }
}
