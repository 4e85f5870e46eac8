package org.hybrimoe.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * simulate's protocol sizes fitted to a trace of {@code tokens} tokens: the first tokens profile
 * the caches, the rest is decoded, replayed for hit rates and cut into prompts. An option the user
 * gave is kept as given and is an error when it cannot fit; a default shrinks to fit the trace and
 * says so in {@link #adapted()}, so that a short real trace (Mixtral's 861 tokens) runs as it is.
 *
 * @param profileTokens leading tokens of the profiling window
 * @param decodeWarmup untimed decode tokens
 * @param decodeTokens timed decode tokens
 * @param hitRateTokens tokens replayed for the hit-rate table
 * @param inputLengths prompt lengths for TTFT
 * @param adapted what was shrunk from its default, one phrase each (empty: nothing)
 */
record TraceProtocol(
    int profileTokens, int decodeWarmup, int decodeTokens, int hitRateTokens, int[] inputLengths, List<String> adapted) {

  static final int PROFILE = 10000;
  static final int WARMUP = 100;
  static final int DECODE = 1000;
  static final int HIT_RATE = 20000;
  static final int[] INPUT_LENGTHS = {32, 128, 512, 1024};

  /** Tokens a synthetic trace needs for these options (defaults where null). */
  static int syntheticTokens(Integer profile, Integer warmup, Integer decode, Integer hitRate, int[] lengths) {
    int p = profile != null ? profile : PROFILE;
    int w = warmup != null ? warmup : WARMUP;
    int d = decode != null ? decode : DECODE;
    int h = hitRate != null ? hitRate : HIT_RATE;
    int l = Arrays.stream(lengths != null ? lengths : INPUT_LENGTHS).max().orElse(1);
    return p + Math.max(Math.max(w + d, h), l) + 4096;
  }

  /** The sizes for a trace of {@code tokens} tokens; null options take their fitted defaults. */
  static TraceProtocol fit(int tokens, Integer profile, Integer warmup, Integer decode, Integer hitRate, int[] lengths) {
    List<String> adapted = new ArrayList<>();
    if (tokens < 2) {
      throw new IllegalArgumentException("the trace has " + tokens + " token(s): simulate needs at least 2");
    }
    int p;
    if (profile != null) {
      if (profile < 1 || profile >= tokens) {
        throw new IllegalArgumentException("--profile-tokens " + profile + " does not fit the trace: it must be in [1, "
            + tokens + ") for its " + tokens + " tokens");
      }
      p = profile;
    } else {
      p = Math.max(1, Math.min(PROFILE, tokens / 4));
      if (p != PROFILE) {
        adapted.add("profile window " + p + " (default " + PROFILE + ")");
      }
    }
    int room = tokens - p;
    int w = warmup != null ? warmup : Math.min(WARMUP, room / 10);
    if (w < 0) {
      throw new IllegalArgumentException("--decode-warmup " + w + " must be >= 0");
    }
    int d;
    if (decode != null) {
      d = decode;
    } else {
      d = Math.min(DECODE, room - w);
    }
    if (d < 1 || w + d > room) {
      throw new IllegalArgumentException("decode of " + d + " tokens after " + w + " warm-up does not fit the "
          + room + " tokens after the profile window");
    }
    if ((warmup == null && w != WARMUP) || (decode == null && d != DECODE)) {
      adapted.add("decode " + d + " tokens after " + w + " warm-up (default " + DECODE + " after " + WARMUP + ")");
    }
    int h;
    if (hitRate != null) {
      if (hitRate < 1 || hitRate > room) {
        throw new IllegalArgumentException("--hit-rate-tokens " + hitRate + " does not fit the " + room
            + " tokens after the profile window");
      }
      h = hitRate;
    } else {
      h = Math.min(HIT_RATE, room);
      if (h != HIT_RATE) {
        adapted.add("hit rates over " + h + " tokens (default " + HIT_RATE + ")");
      }
    }
    int[] n;
    if (lengths != null) {
      for (int l : lengths) {
        if (l < 1) {
          throw new IllegalArgumentException("--input-lengths " + l + ": a prompt needs at least one token");
        }
        if (l > room) {
          throw new IllegalArgumentException("--input-lengths " + l + " does not fit the " + room
              + " tokens after the profile window");
        }
      }
      n = lengths;
    } else {
      n = Arrays.stream(INPUT_LENGTHS).filter(l -> l <= room).toArray();
      if (n.length == 0) {
        n = new int[] {room};
      }
      if (n.length != INPUT_LENGTHS.length) {
        adapted.add("input lengths " + join(n) + " (default " + join(INPUT_LENGTHS) + ")");
      }
    }
    return new TraceProtocol(p, w, d, h, n, List.copyOf(adapted));
  }

  /** One line for the report: what was fitted to the trace, or null when nothing was. */
  String adaptedLine(int tokens) {
    return adapted.isEmpty() ? null
        : String.format(Locale.ROOT, "defaults fitted to the trace's %d tokens: %s", tokens, String.join("; ", adapted));
  }

  private static String join(int[] v) {
    return String.join(",", Arrays.stream(v).mapToObj(Integer::toString).toList());
  }
}
