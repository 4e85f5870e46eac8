package org.hybrimoe.sim;

import java.util.Arrays;

/**
 * The future a simulated run will see, for Belady's cache (the oracle bundle): a run is a known
 * sequence of forward passes (each {@code tokens} consecutive trace tokens from a start), and for
 * every (layer, expert) the passes that use it. Positions are in request order, {@code pass *
 * layers + layer}, so a global cache compares next uses across layers. Queries must come in pass
 * order (a cursor per key moves forward only), which is how a run asks. Not thread-safe.
 */
final class FutureRouting {
  private final int layers;
  private final int experts;
  private final int[] offset; // [layers * experts + 1] into uses
  private final int[] uses; // pass indices per key, ascending
  private final int[] cursor; // [layers * experts] first entry not yet behind the asker

  FutureRouting(Trace trace, int[] starts, int tokens) {
    this.layers = trace.layers();
    this.experts = trace.experts();
    int keys = layers * experts;
    int k = trace.topK();
    int[] ids = new int[k];
    int[] seen = new int[keys]; // stamp: last pass counted, plus one
    int[] count = new int[keys];
    for (int pass = 0; pass < starts.length; pass++) {
      forEachKey(trace, starts[pass], tokens, ids, seen, pass + 1, key -> count[key]++);
    }
    this.offset = new int[keys + 1];
    for (int key = 0; key < keys; key++) {
      offset[key + 1] = offset[key] + count[key];
    }
    this.uses = new int[offset[keys]];
    int[] fill = Arrays.copyOf(offset, keys);
    Arrays.fill(seen, 0);
    for (int pass = 0; pass < starts.length; pass++) {
      int p = pass;
      forEachKey(trace, starts[pass], tokens, ids, seen, pass + 1, key -> uses[fill[key]++] = p);
    }
    this.cursor = Arrays.copyOf(offset, keys);
  }

  private void forEachKey(Trace trace, int start, int tokens, int[] ids, int[] seen, int stamp,
      java.util.function.IntConsumer action) {
    for (int t = start; t < start + tokens; t++) {
      for (int l = 0; l < layers; l++) {
        trace.ids(t, l, ids, 0);
        for (int e : ids) {
          int key = l * experts + e;
          if (seen[key] != stamp) {
            seen[key] = stamp;
            action.accept(key);
          }
        }
      }
    }
  }

  /** Position of the first use of (layer, expert) in a pass after {@code pass}, or Long.MAX_VALUE. */
  long nextUseAfter(int layer, int expert, int pass) {
    int key = layer * experts + expert;
    int c = cursor[key];
    while (c < offset[key + 1] && uses[c] <= pass) {
      c++;
    }
    cursor[key] = c;
    return c < offset[key + 1] ? (long) uses[c] * layers + layer : Long.MAX_VALUE;
  }
}
