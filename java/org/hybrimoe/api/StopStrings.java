package org.hybrimoe.api;

import java.util.List;

/**
 * Finds stop strings in growing text and says how much of it is safe to release: text that could
 * still turn out to be the start of a stop string is held back until the next token decides.
 */
final class StopStrings {
  private final List<String> stops;
  private final int longest;

  StopStrings(List<String> stops) {
    this.stops = stops;
    this.longest = stops.stream().mapToInt(String::length).max().orElse(0);
  }

  /** Index of the earliest stop string in text at or after {@code from - longest}, or -1. */
  int find(CharSequence text, int from) {
    if (stops.isEmpty()) {
      return -1;
    }
    int start = Math.max(0, from - longest);
    String s = text.subSequence(start, text.length()).toString(); // only the tail can hold a new match
    int best = -1;
    for (String stop : stops) {
      int i = s.indexOf(stop);
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
      }
    }
    return best < 0 ? -1 : start + best;
  }

  /** Length of the longest suffix of text that is a proper prefix of a stop string. */
  int heldBack(CharSequence text) {
    int n = text.length();
    int held = 0;
    for (String stop : stops) {
      for (int k = Math.min(stop.length() - 1, n); k > held; k--) {
        if (text.subSequence(n - k, n).toString().equals(stop.substring(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
