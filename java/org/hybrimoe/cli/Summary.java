package org.hybrimoe.cli;

import java.io.PrintWriter;
import java.util.Locale;
import org.hybrimoe.api.GenerationResult;
import org.hybrimoe.api.Timings;
import org.hybrimoe.model.ExecutorStats;

/** The timings and execution statistics of one generation, as text. */
final class Summary {
  private Summary() {}

  static void print(PrintWriter w, GenerationResult r) {
    Timings t = r.timings();
    w.printf(Locale.ROOT, "finish: %s after %d new tokens%n", r.finishReason().name().toLowerCase(Locale.ROOT),
        r.tokens().length);
    w.printf(Locale.ROOT, "prompt: %d tokens, prefill %.1f ms (%.1f tok/s), time to first token %.1f ms%n",
        t.promptTokens(), t.prefillMs(), t.prefillTokensPerSecond(), t.ttftMs());
    if (t.decodeTokens() > 0) {
      w.printf(Locale.ROOT, "decode: %d tokens, %.2f ms/token, %.2f tok/s%n", t.decodeTokens(), t.msPerToken(),
          t.tokensPerSecond());
    }
    ExecutorStats s = r.stats();
    if (s != null) {
      w.printf(Locale.ROOT, "experts: %d activations, %d on CPU, %d on GPU, cache hit rate %.1f%%%n", s.activations(),
          s.cpuTotal(), s.gpuTotal(), 100 * s.hitRate());
      w.printf(Locale.ROOT, "transfers: %d on demand, %d prefetched (%d used, %d wasted), %.1f MiB moved%n",
          s.demandTransfers(), s.prefetches(), s.prefetchUsed(), s.prefetchWasted(), s.bytesMoved() / 1048576.0);
      StringBuilder b = new StringBuilder("per layer CPU/GPU:");
      for (int l = 0; l < s.cpuExperts().length; l++) {
        if (s.cpuExperts()[l] + s.gpuExperts()[l] > 0) {
          b.append(' ').append(l).append(':').append(s.cpuExperts()[l]).append('/').append(s.gpuExperts()[l]);
        }
      }
      w.println(b);
    }
    w.flush();
  }
}
