package org.hybrimoe.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code pre_tokenizer} of tokenizer.json: splits normalized text into the words BPE runs on
 * (Split, ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit, Sequence), with HuggingFace
 * tokenizers' split behaviours. Parsed pre-tokenizers are immutable and thread-safe.
 */
final class PreTokenizers {
  private PreTokenizers() {}

  static final String SUPPORTED = "Split, ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit, Sequence";

  // GPT-2's pattern, which ByteLevel uses when use_regex is true.
  static final String GPT2_REGEX =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

  /** A piece of text; first when it starts at offset 0 of the whole input (Metaspace's "first"). */
  record Piece(String text, boolean first) {}

  /** One pre-tokenization step applied to one piece, appending its pieces to out. */
  interface PreTokenizer {
    void split(Piece piece, List<Piece> out);

    default List<Piece> apply(List<Piece> in) {
      List<Piece> out = new ArrayList<>(in.size() * 2);
      for (Piece p : in) {
        split(p, out);
      }
      return out;
    }
  }

  enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

  /** The pre-tokenizer at f, or null when absent. */
  static PreTokenizer parse(Field f) {
    if (!f.present()) {
      return null;
    }
    String type = f.type();
    switch (type) {
      case "Sequence": {
        List<PreTokenizer> steps = new ArrayList<>();
        for (Field g : f.get("pretokenizers").list()) {
          PreTokenizer p = parse(g.require());
          if (p != null) {
            steps.add(p);
          }
        }
        return new PreTokenizer() {
          @Override
          public void split(Piece piece, List<Piece> out) {
            out.addAll(apply(List.of(piece)));
          }

          @Override
          public List<Piece> apply(List<Piece> in) {
            for (PreTokenizer p : steps) {
              in = p.apply(in);
            }
            return in;
          }
        };
      }
      case "Split": {
        Pattern pattern = Normalizers.pattern(f.get("pattern"));
        Behavior behavior = behavior(f.get("behavior"));
        boolean invert = f.get("invert").boolOr(false);
        return (piece, out) -> splitRegex(piece, pattern, invert, behavior, out);
      }
      case "ByteLevel": {
        boolean prefix = f.get("add_prefix_space").boolOr(true);
        boolean useRegex = f.get("use_regex").boolOr(true);
        Pattern gpt2 = useRegex ? OnigRegex.compile(GPT2_REGEX, f) : null;
        return (piece, out) -> {
          String s = piece.text();
          if (prefix && !s.startsWith(" ")) {
            s = " " + s;
          }
          if (gpt2 == null) {
            out.add(new Piece(ByteLevel.encode(s), piece.first()));
            return;
          }
          List<Piece> parts = new ArrayList<>();
          splitRegex(new Piece(s, piece.first()), gpt2, false, Behavior.ISOLATED, parts);
          for (Piece p : parts) {
            out.add(new Piece(ByteLevel.encode(p.text()), p.first()));
          }
        };
      }
      case "Digits": {
        boolean individual = f.get("individual_digits").boolOr(false);
        Behavior b = individual ? Behavior.ISOLATED : Behavior.CONTIGUOUS;
        return (piece, out) -> splitChars(piece, PreTokenizers::isNumeric, b, out);
      }
      case "Metaspace":
        return metaspace(f);
      case "Whitespace": {
        Pattern words = OnigRegex.compile("\\w+|[^\\w\\s]+", f);
        return (piece, out) -> splitRegex(piece, words, true, Behavior.REMOVED, out);
      }
      case "WhitespaceSplit":
        return (piece, out) -> splitChars(piece, Normalizers::isWhitespace, Behavior.REMOVED, out);
      default:
        throw f.unsupported("pre-tokenizer", type, SUPPORTED);
    }
  }

  private static PreTokenizer metaspace(Field f) {
    String replacement = f.get("replacement").stringOr("\u2581");
    if (replacement.codePointCount(0, replacement.length()) != 1) {
      throw f.get("replacement").bad("must be one character, got \"" + replacement + "\"");
    }
    String scheme = prependScheme(f);
    boolean split = f.get("split").boolOr(true);
    int rep = replacement.codePointAt(0);
    return (piece, out) -> {
      String s = piece.text().replace(" ", replacement);
      boolean needs = !s.startsWith(replacement);
      if (needs && (scheme.equals("always") || (scheme.equals("first") && piece.first()))) {
        s = replacement + s;
      }
      Piece p = new Piece(s, piece.first());
      if (split) {
        splitChars(p, c -> c == rep, Behavior.MERGED_WITH_NEXT, out);
      } else if (!s.isEmpty()) {
        out.add(p);
      }
    };
  }

  /** Metaspace's prepend_scheme, from the field or the older add_prefix_space. */
  static String prependScheme(Field f) {
    Field scheme = f.get("prepend_scheme");
    if (scheme.present()) {
      String s = scheme.string().toLowerCase(Locale.ROOT);
      if (!s.equals("always") && !s.equals("first") && !s.equals("never")) {
        throw scheme.bad("must be always, first or never, got \"" + scheme.string() + "\"");
      }
      return s;
    }
    return f.get("add_prefix_space").boolOr(true) ? "always" : "never";
  }

  private static Behavior behavior(Field f) {
    String s = f.string();
    return switch (s.toLowerCase(Locale.ROOT)) {
      case "removed" -> Behavior.REMOVED;
      case "isolated" -> Behavior.ISOLATED;
      case "merged_with_previous", "mergedwithprevious" -> Behavior.MERGED_WITH_PREVIOUS;
      case "merged_with_next", "mergedwithnext" -> Behavior.MERGED_WITH_NEXT;
      case "contiguous" -> Behavior.CONTIGUOUS;
      default -> throw f.bad("must be Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, got \"" + s + "\"");
    };
  }

  /** Rust's char::is_numeric: general categories Nd, Nl, No. */
  static boolean isNumeric(int c) {
    int t = Character.getType(c);
    return t == Character.DECIMAL_DIGIT_NUMBER || t == Character.LETTER_NUMBER || t == Character.OTHER_NUMBER;
  }

  interface CharTest {
    boolean test(int codePoint);
  }

  // Each matching character is one match, as HuggingFace's char patterns are.
  static void splitChars(Piece piece, CharTest test, Behavior behavior, List<Piece> out) {
    String s = piece.text();
    List<int[]> spans = new ArrayList<>();
    int prev = 0;
    for (int i = 0; i < s.length(); ) {
      int c = s.codePointAt(i);
      int next = i + Character.charCount(c);
      if (test.test(c)) {
        if (prev < i) {
          spans.add(new int[] {prev, i, 0});
        }
        spans.add(new int[] {i, next, 1});
        prev = next;
      }
      i = next;
    }
    if (prev < s.length()) {
      spans.add(new int[] {prev, s.length(), 0});
    }
    emit(piece, spans, behavior, out);
  }

  static void splitRegex(Piece piece, Pattern pattern, boolean invert, Behavior behavior, List<Piece> out) {
    String s = piece.text();
    List<int[]> spans = new ArrayList<>();
    Matcher m = pattern.matcher(s);
    int prev = 0;
    while (m.find()) {
      if (prev != m.start()) {
        spans.add(new int[] {prev, m.start(), invert ? 1 : 0});
      }
      spans.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
      prev = m.end();
    }
    if (prev != s.length()) {
      spans.add(new int[] {prev, s.length(), invert ? 1 : 0});
    }
    emit(piece, spans, behavior, out);
  }

  // spans: {start, end, isMatch} covering the text in order; HuggingFace's NormalizedString::split.
  private static void emit(Piece piece, List<int[]> spans, Behavior behavior, List<Piece> out) {
    List<int[]> keep = new ArrayList<>(spans.size()); // {start, end, remove}
    switch (behavior) {
      case ISOLATED -> {
        for (int[] s : spans) {
          keep.add(new int[] {s[0], s[1], 0});
        }
      }
      case REMOVED -> keep.addAll(spans);
      case CONTIGUOUS -> {
        boolean prevMatch = false;
        for (int[] s : spans) {
          boolean match = s[2] == 1;
          if (match == prevMatch && !keep.isEmpty()) {
            keep.get(keep.size() - 1)[1] = s[1];
          } else {
            keep.add(new int[] {s[0], s[1], 0});
          }
          prevMatch = match;
        }
      }
      case MERGED_WITH_PREVIOUS -> {
        boolean prevMatch = false;
        for (int[] s : spans) {
          boolean match = s[2] == 1;
          if (match && !prevMatch && !keep.isEmpty()) {
            keep.get(keep.size() - 1)[1] = s[1];
          } else {
            keep.add(new int[] {s[0], s[1], 0});
          }
          prevMatch = match;
        }
      }
      case MERGED_WITH_NEXT -> {
        boolean prevMatch = false;
        for (int i = spans.size() - 1; i >= 0; i--) {
          int[] s = spans.get(i);
          boolean match = s[2] == 1;
          if (match && !prevMatch && !keep.isEmpty()) {
            keep.get(keep.size() - 1)[0] = s[0];
          } else {
            keep.add(new int[] {s[0], s[1], 0});
          }
          prevMatch = match;
        }
        java.util.Collections.reverse(keep);
      }
    }
    String text = piece.text();
    for (int[] k : keep) {
      if (k[2] == 0 && k[1] > k[0]) {
        out.add(new Piece(text.substring(k[0], k[1]), piece.first() && k[0] == 0));
      }
    }
  }
}
