package org.hybrimoe.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@code model} of tokenizer.json when its type is BPE: vocabulary, ranked merges, and the
 * word-level algorithm of HuggingFace tokenizers (split a word into characters, map each to its
 * id, or to {@code <0xNN>} byte tokens with byte_fallback, or to unk; then repeatedly apply the
 * lowest-ranked merge, leftmost first, with a priority queue: O(n log n) per word). Results for
 * words shorter than 256 chars are cached (at most {@value #CACHE_CAP} entries, then the cache
 * starts afresh). Immutable apart from the cache; thread-safe.
 */
final class BpeModel {
  static final int CACHE_CAP = 10_000;
  private static final int CACHE_MAX_WORD = 256;

  final Map<String, Integer> vocab;
  private final LongLongMap merges; // (left id, right id) -> rank << 32 | merged id
  final int unkId; // -1 without unk_token
  final String unkToken;
  final boolean byteFallback;
  private final boolean fuseUnk;
  private final boolean ignoreMerges;
  private final String prefix; // continuing_subword_prefix or null
  private final String suffix; // end_of_word_suffix or null
  private final int[] byteIds = new int[256]; // <0xNN> ids, -1 when absent
  private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

  private BpeModel(Map<String, Integer> vocab, LongLongMap merges, String unkToken, boolean byteFallback,
      boolean fuseUnk, boolean ignoreMerges, String prefix, String suffix) {
    this.vocab = vocab;
    this.merges = merges;
    this.unkToken = unkToken;
    this.unkId = unkToken == null ? -1 : vocab.get(unkToken);
    this.byteFallback = byteFallback;
    this.fuseUnk = fuseUnk;
    this.ignoreMerges = ignoreMerges;
    this.prefix = prefix;
    this.suffix = suffix;
    for (int b = 0; b < 256; b++) {
      byteIds[b] = vocab.getOrDefault(byteToken(b), -1);
    }
  }

  static String byteToken(int b) {
    return String.format("<0x%02X>", b);
  }

  /** Parses a BPE model object; f is the "model" field. */
  static BpeModel parse(Field f) {
    f.requireObject();
    String type = f.get("type").stringOr(f.get("merges").present() ? "BPE" : null);
    if (type == null) {
      throw f.bad("has no 'type' (and no merges to tell it is BPE)");
    }
    if (!type.equals("BPE")) {
      throw f.unsupported("model", type, "BPE");
    }
    Map<String, Integer> vocab = parseVocab(f.get("vocab"));
    String unk = f.get("unk_token").stringOr(null);
    if (unk != null && !vocab.containsKey(unk)) {
      throw f.get("unk_token").bad("names '" + unk + "', which is not in model.vocab");
    }
    String prefix = emptyToNull(f.get("continuing_subword_prefix").stringOr(null));
    String suffix = emptyToNull(f.get("end_of_word_suffix").stringOr(null));
    LongLongMap merges = parseMerges(f.get("merges"), vocab, prefix);
    return new BpeModel(vocab, merges, unk, f.get("byte_fallback").boolOr(false),
        f.get("fuse_unk").boolOr(false), f.get("ignore_merges").boolOr(false), prefix, suffix);
  }

  private static String emptyToNull(String s) {
    return s == null || s.isEmpty() ? null : s;
  }

  private static Map<String, Integer> parseVocab(Field f) {
    f.requireObject();
    Map<String, Integer> vocab = new HashMap<>(f.node.size() * 2);
    Map<Integer, String> byId = new HashMap<>(f.node.size() * 2);
    for (Iterator<Map.Entry<String, JsonNode>> it = f.entries(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      Field v = f.get(e.getKey());
      int id = v.integer();
      if (id < 0) {
        throw v.bad("is a negative id (" + id + ")");
      }
      String other = byId.putIfAbsent(id, e.getKey());
      if (other != null) {
        throw v.bad("reuses id " + id + ", already the id of '" + other + "'");
      }
      vocab.put(e.getKey(), id);
    }
    return vocab;
  }

  private static LongLongMap parseMerges(Field f, Map<String, Integer> vocab, String prefix) {
    if (!f.present()) {
      return new LongLongMap(16);
    }
    if (!f.node.isArray()) {
      throw f.bad("must be a list of merges, got " + Field.brief(f.node));
    }
    int n = f.node.size();
    LongLongMap merges = new LongLongMap(n * 2 + 16);
    for (int rank = 0; rank < n; rank++) {
      JsonNode m = f.node.get(rank);
      String a;
      String b;
      if (m.isTextual()) {
        String s = m.asText();
        int sp = s.indexOf(' ');
        if (sp < 0) {
          throw f.at(rank).bad("must be \"left right\" (two tokens and one space), got \"" + s + "\"");
        }
        a = s.substring(0, sp);
        b = s.substring(sp + 1);
      } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
        a = m.get(0).asText();
        b = m.get(1).asText();
      } else {
        throw f.at(rank).bad("must be \"left right\" or [left, right], got " + Field.brief(m));
      }
      Integer ia = vocab.get(a);
      Integer ib = vocab.get(b);
      String merged = a + (prefix != null && b.startsWith(prefix) ? b.substring(prefix.length()) : b);
      Integer im = vocab.get(merged);
      if (ia == null || ib == null || im == null) {
        String missing = ia == null ? a : ib == null ? b : merged;
        throw f.at(rank).bad("merges '" + a + "' and '" + b + "', but '" + missing + "' is not in model.vocab");
      }
      merges.put(pair(ia, ib), ((long) rank << 32) | im); // a repeated pair keeps its last rank, as HF does
    }
    return merges;
  }

  private static long pair(int a, int b) {
    return ((long) a << 32) | (b & 0xFFFFFFFFL);
  }

  /** Appends the ids of one pre-tokenized word. */
  void encodeWord(String word, IntList out) {
    if (word.isEmpty()) {
      return;
    }
    if (ignoreMerges) {
      Integer id = vocab.get(word);
      if (id != null) {
        out.add(id);
        return;
      }
    }
    int[] cached = cache.get(word);
    if (cached == null) {
      cached = bpe(word);
      if (word.length() < CACHE_MAX_WORD) {
        if (cache.size() >= CACHE_CAP) {
          cache.clear();
        }
        cache.put(word, cached);
      }
    }
    out.addAll(cached);
  }

  private int[] bpe(String w) {
    // Initial symbols: one per character (or byte tokens / unk), as HF's BPE::merge_word.
    IntList syms = new IntList(w.length() + 4);
    int unk = -1; // pending unk (for fuse_unk)
    for (int i = 0; i < w.length(); ) {
      int cp = w.codePointAt(i);
      int next = i + Character.charCount(cp);
      String s = w.substring(i, next);
      if (prefix != null && i > 0) {
        s = prefix + s;
      }
      if (suffix != null && next == w.length()) {
        s = s + suffix;
      }
      Integer id = vocab.get(s);
      if (id != null) {
        if (unk >= 0) {
          syms.add(unk);
          unk = -1;
        }
        syms.add(id);
      } else if (byteFallback && allBytes(s)) {
        if (unk >= 0) {
          syms.add(unk);
          unk = -1;
        }
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
          syms.add(byteIds[b & 0xFF]);
        }
      } else if (unkId >= 0) {
        if (unk >= 0 && !fuseUnk) {
          syms.add(unk);
        }
        unk = unkId;
      } else {
        throw new IllegalArgumentException(String.format(
            "no token for character U+%04X in \"%s\": the vocabulary lacks it and the model has neither unk_token nor byte_fallback",
            cp, w.length() > 40 ? w.substring(0, 40) + "..." : w));
      }
      i = next;
    }
    if (unk >= 0) {
      syms.add(unk);
    }
    return mergeAll(syms.toArray());
  }

  private boolean allBytes(String s) {
    for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
      if (byteIds[b & 0xFF] < 0) {
        return false;
      }
    }
    return true;
  }

  // HF's Word::merge_all: pop the lowest (rank, position), skip stale entries, merge, and queue the
  // pairs the merged symbol forms with its neighbours.
  private int[] mergeAll(int[] ids) {
    int n = ids.length;
    if (n < 2) {
      return ids;
    }
    int[] prev = new int[n];
    int[] next = new int[n];
    boolean[] gone = new boolean[n];
    LongHeap heap = new LongHeap(n);
    for (int i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
      if (i + 1 < n) {
        long m = merges.get(pair(ids[i], ids[i + 1]));
        if (m >= 0) {
          heap.push((m & 0xFFFFFFFF00000000L) | i);
        }
      }
    }
    int live = n;
    while (!heap.isEmpty()) {
      long top = heap.pop();
      int pos = (int) top;
      int rank = (int) (top >>> 32);
      if (gone[pos] || next[pos] < 0) {
        continue;
      }
      int right = next[pos];
      long m = merges.get(pair(ids[pos], ids[right]));
      if (m < 0 || (int) (m >>> 32) != rank) {
        continue; // stale: this pair changed since it was queued
      }
      ids[pos] = (int) m;
      gone[right] = true;
      live--;
      next[pos] = next[right];
      if (next[pos] >= 0) {
        prev[next[pos]] = pos;
      }
      if (prev[pos] >= 0) {
        long pm = merges.get(pair(ids[prev[pos]], ids[pos]));
        if (pm >= 0) {
          heap.push((pm & 0xFFFFFFFF00000000L) | prev[pos]);
        }
      }
      if (next[pos] >= 0) {
        long nm = merges.get(pair(ids[pos], ids[next[pos]]));
        if (nm >= 0) {
          heap.push((nm & 0xFFFFFFFF00000000L) | pos);
        }
      }
    }
    int[] out = new int[live];
    int k = 0;
    for (int i = 0; i < n; i++) {
      if (!gone[i]) {
        out[k++] = ids[i];
      }
    }
    return out;
  }

  /** Open-addressing map from long keys to non-negative long values; get returns -1 when absent. */
  static final class LongLongMap {
    private long[] keys;
    private long[] values;
    private boolean[] used;
    private int size;

    LongLongMap(int expected) {
      int cap = Integer.highestOneBit(Math.max(16, expected) * 2 - 1) << 1;
      keys = new long[cap];
      values = new long[cap];
      used = new boolean[cap];
    }

    private static int mix(long k) {
      k *= 0x9E3779B97F4A7C15L;
      return (int) (k ^ (k >>> 29));
    }

    long get(long key) {
      int mask = keys.length - 1;
      for (int i = mix(key) & mask; used[i]; i = (i + 1) & mask) {
        if (keys[i] == key) {
          return values[i];
        }
      }
      return -1;
    }

    void put(long key, long value) {
      if ((size + 1) * 2 > keys.length) {
        grow();
      }
      int mask = keys.length - 1;
      int i = mix(key) & mask;
      while (used[i] && keys[i] != key) {
        i = (i + 1) & mask;
      }
      if (!used[i]) {
        used[i] = true;
        keys[i] = key;
        size++;
      }
      values[i] = value;
    }

    private void grow() {
      long[] k = keys;
      long[] v = values;
      boolean[] u = used;
      keys = new long[k.length * 2];
      values = new long[k.length * 2];
      used = new boolean[k.length * 2];
      size = 0;
      for (int i = 0; i < k.length; i++) {
        if (u[i]) {
          put(k[i], v[i]);
        }
      }
    }
  }

  /** Binary min-heap of longs. */
  private static final class LongHeap {
    private long[] a;
    private int n;

    LongHeap(int cap) {
      a = new long[Math.max(4, cap)];
    }

    boolean isEmpty() {
      return n == 0;
    }

    void push(long v) {
      if (n == a.length) {
        a = Arrays.copyOf(a, n * 2);
      }
      int i = n++;
      while (i > 0) {
        int p = (i - 1) >>> 1;
        if (a[p] <= v) {
          break;
        }
        a[i] = a[p];
        i = p;
      }
      a[i] = v;
    }

    long pop() {
      long top = a[0];
      long last = a[--n];
      int i = 0;
      while (true) {
        int c = 2 * i + 1;
        if (c >= n) {
          break;
        }
        if (c + 1 < n && a[c + 1] < a[c]) {
          c++;
        }
        if (a[c] >= last) {
          break;
        }
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
      return top;
    }
  }
}
