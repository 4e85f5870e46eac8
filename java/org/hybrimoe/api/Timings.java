package org.hybrimoe.api;

/**
 * Where a generation's time went, in milliseconds of wall clock.
 *
 * @param promptTokens tokens in the prompt (prefilled in one pass)
 * @param ttftMs time to first token: from the call to the first new token being known (prompt
 *     encoding, prefill, sampling)
 * @param prefillMs the prefill forward pass alone
 * @param decodeTokens tokens produced by decode steps (all new tokens but the first)
 * @param decodeMs time spent in decode steps
 * @param totalMs the whole call
 */
public record Timings(int promptTokens, double ttftMs, double prefillMs, int decodeTokens, double decodeMs,
    double totalMs) {
  /** Mean time per decoded token (NaN before the second token). */
  public double msPerToken() {
    return decodeTokens == 0 ? Double.NaN : decodeMs / decodeTokens;
  }

  /** Decode throughput in tokens per second (NaN before the second token). */
  public double tokensPerSecond() {
    return decodeTokens == 0 ? Double.NaN : 1000.0 * decodeTokens / decodeMs;
  }

  /** Prefill throughput in prompt tokens per second. */
  public double prefillTokensPerSecond() {
    return prefillMs <= 0 ? Double.NaN : 1000.0 * promptTokens / prefillMs;
  }
}
