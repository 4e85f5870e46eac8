package org.hybrimoe.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The {@code added_tokens} of tokenizer.json and how they are found in text (HuggingFace's
 * AddedVocabulary): tokens with {@code normalized: false} are matched in the raw text, the others
 * in the normalized text; at each position the longest token wins; {@code single_word} tokens
 * match only between non-word characters; {@code lstrip}/{@code rstrip} swallow the whitespace
 * beside them. Immutable; thread-safe.
 */
final class AddedTokens {
  /** One added token as declared. */
  record Token(int id, String content, boolean singleWord, boolean lstrip, boolean rstrip,
      boolean normalized, boolean special) {}

  /** A run of text, or an added token (id >= 0) found in it; start is its offset in the input. */
  record Segment(String text, int id, int start) {}

  final List<Token> tokens;
  private final Trie raw;
  private final Trie normalized;

  AddedTokens(List<Token> tokens, UnaryOperator<String> normalizer) {
    this.tokens = List.copyOf(tokens);
    this.raw = new Trie();
    this.normalized = new Trie();
    for (Token t : tokens) {
      if (t.content().isEmpty()) {
        continue;
      }
      if (t.normalized() && normalizer != null) {
        String n = normalizer.apply(t.content());
        if (!n.isEmpty()) {
          normalized.add(n, t);
        }
      } else if (t.normalized()) {
        normalized.add(t.content(), t);
      } else {
        raw.add(t.content(), t);
      }
    }
  }

  boolean isEmpty() {
    return tokens.isEmpty();
  }

  /** Splits raw text on the non-normalized tokens. */
  List<Segment> splitRaw(String text) {
    return split(text, raw);
  }

  /** Splits normalized text on the normalized tokens. */
  List<Segment> splitNormalized(String text) {
    return split(text, normalized);
  }

  // HF's find_matches with leftmost-longest matching.
  private static List<Segment> split(String s, Trie trie) {
    List<Segment> out = new ArrayList<>();
    if (trie.root.kids.isEmpty()) {
      out.add(new Segment(s, -1, 0));
      return out;
    }
    int done = 0; // end of the last emitted piece
    int i = 0;
    while (i < s.length()) {
      if (!trie.firstChars.get(s.charAt(i))) {
        i++;
        continue;
      }
      Trie.Node node = trie.root;
      Token match = null;
      int matchEnd = -1;
      for (int j = i; j < s.length(); j++) {
        node = node.kids.get(s.charAt(j));
        if (node == null) {
          break;
        }
        if (node.token != null) {
          match = node.token;
          matchEnd = j + 1;
        }
      }
      if (match == null) {
        i++;
        continue;
      }
      int start = i;
      int stop = matchEnd;
      i = matchEnd;
      if (match.singleWord()) {
        boolean startOk = start == 0 || !isWordChar(s.codePointBefore(start));
        boolean stopOk = stop == s.length() || !isWordChar(s.codePointAt(stop));
        if (!startOk || !stopOk) {
          continue;
        }
      }
      if (start < done) {
        continue; // inside whitespace an earlier rstrip token swallowed
      }
      if (match.lstrip()) {
        int ns = start;
        while (ns > done && Normalizers.isWhitespace(s.codePointBefore(ns))) {
          ns -= Character.charCount(s.codePointBefore(ns));
        }
        start = ns;
      }
      if (match.rstrip()) {
        while (stop < s.length() && Normalizers.isWhitespace(s.codePointAt(stop))) {
          stop += Character.charCount(s.codePointAt(stop));
        }
        i = stop;
      }
      if (done < start) {
        out.add(new Segment(s.substring(done, start), -1, done));
      }
      out.add(new Segment(s.substring(start, stop), match.id(), start));
      done = stop;
    }
    if (done < s.length() || out.isEmpty()) {
      out.add(new Segment(s.substring(done), -1, done));
    }
    return out;
  }

  // Rust regex's Unicode \w.
  private static boolean isWordChar(int c) {
    return Character.isAlphabetic(c) || Character.isDigit(c) || Normalizers.isMark(c)
        || Character.getType(c) == Character.CONNECTOR_PUNCTUATION || c == 0x200C || c == 0x200D;
  }

  /** Character trie over token contents (UTF-16 units; a token ends where its node has one). */
  private static final class Trie {
    final Node root = new Node();
    final java.util.BitSet firstChars = new java.util.BitSet(); // quick rejection of most positions

    static final class Node {
      final Map<Character, Node> kids = new HashMap<>(4);
      Token token;
    }

    void add(String content, Token t) {
      firstChars.set(content.charAt(0));
      Node n = root;
      for (int i = 0; i < content.length(); i++) {
        n = n.kids.computeIfAbsent(content.charAt(i), k -> new Node());
      }
      if (n.token == null) {
        n.token = t;
      }
    }
  }
}
