package org.hybrimoe.tokenizer;

import java.text.Normalizer.Form;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code normalizer} of tokenizer.json as a string function: NFC/NFD/NFKC/NFKD, Lowercase,
 * Prepend, Replace (string or regex), Strip, StripAccents and Sequence. Offsets are not tracked
 * (nothing here needs them). The functions are stateless and thread-safe.
 */
final class Normalizers {
  private Normalizers() {}

  static final String SUPPORTED = "NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, StripAccents, Sequence";

  /** The normalizer at f, or null when absent (identity). */
  static UnaryOperator<String> parse(Field f) {
    if (!f.present()) {
      return null;
    }
    String type = f.type();
    switch (type) {
      case "Sequence": {
        List<UnaryOperator<String>> steps = new ArrayList<>();
        for (Field g : f.get("normalizers").list()) {
          UnaryOperator<String> s = parse(g.require());
          if (s != null) {
            steps.add(s);
          }
        }
        if (steps.isEmpty()) {
          return null;
        }
        return s -> {
          for (UnaryOperator<String> step : steps) {
            s = step.apply(s);
          }
          return s;
        };
      }
      case "NFC":
        return s -> java.text.Normalizer.normalize(s, Form.NFC);
      case "NFD":
        return s -> java.text.Normalizer.normalize(s, Form.NFD);
      case "NFKC":
        return s -> java.text.Normalizer.normalize(s, Form.NFKC);
      case "NFKD":
        return s -> java.text.Normalizer.normalize(s, Form.NFKD);
      case "Lowercase":
        return s -> s.toLowerCase(Locale.ROOT);
      case "Prepend": {
        String p = f.get("prepend").string();
        return s -> s.isEmpty() ? s : p + s;
      }
      case "Replace": {
        Pattern pattern = pattern(f.get("pattern"));
        String content = Matcher.quoteReplacement(f.get("content").string());
        return s -> pattern.matcher(s).replaceAll(content);
      }
      case "Strip": {
        boolean left = f.get("strip_left").boolOr(true);
        boolean right = f.get("strip_right").boolOr(true);
        return s -> strip(s, left, right);
      }
      case "StripAccents":
        return s -> {
          StringBuilder out = new StringBuilder(s.length());
          s.codePoints().filter(c -> !isMark(c)).forEach(out::appendCodePoint);
          return out.toString();
        };
      default:
        throw f.unsupported("normalizer", type, SUPPORTED);
    }
  }

  /** A {"String": ..} or {"Regex": ..} pattern object. */
  static Pattern pattern(Field f) {
    f.requireObject();
    if (f.get("String").present()) {
      return OnigRegex.literal(f.get("String").string());
    }
    if (f.get("Regex").present()) {
      return OnigRegex.compile(f.get("Regex").string(), f.get("Regex"));
    }
    throw f.bad("must be {\"String\": ...} or {\"Regex\": ...}, got " + Field.brief(f.node));
  }

  static String strip(String s, boolean left, boolean right) {
    int a = 0;
    int b = s.length();
    while (left && a < b && isWhitespace(s.codePointAt(a))) {
      a += Character.charCount(s.codePointAt(a));
    }
    while (right && b > a && isWhitespace(s.codePointBefore(b))) {
      b -= Character.charCount(s.codePointBefore(b));
    }
    return s.substring(a, b);
  }

  /** Unicode White_Space (Rust's char::is_whitespace). */
  static boolean isWhitespace(int c) {
    return switch (c) {
      case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true;
      default -> c >= 0x2000 && c <= 0x200A;
    };
  }

  static boolean isMark(int c) {
    int t = Character.getType(c);
    return t == Character.NON_SPACING_MARK || t == Character.COMBINING_SPACING_MARK
        || t == Character.ENCLOSING_MARK;
  }
}
