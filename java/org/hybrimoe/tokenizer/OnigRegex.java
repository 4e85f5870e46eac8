package org.hybrimoe.tokenizer;

import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Compiles the regexes of tokenizer.json, written for HuggingFace tokenizers' Oniguruma engine,
 * to java.util.regex with the same meaning. What differs and is rewritten:
 *
 * <ul>
 *   <li>{@code \s \d \w \b} are Unicode in Oniguruma (White_Space, Nd, Alphabetic+M+Nd+Pc, and
 *       Oniguruma also counts U+00B2/B3/B9/BC-BE as word characters); Java's are ASCII. They are
 *       spelled out as Unicode properties, so no UNICODE_CHARACTER_CLASS flag is needed.
 *   <li>{@code \h} is a hex digit in Oniguruma (horizontal space in Java).
 *   <li>{@code \p{Han}}-style script names and binary properties need Java's {@code Is} prefix;
 *       {@code \p{^X}} is {@code \P{X}}; POSIX brackets {@code [:alpha:]} become properties.
 *   <li>{@code {,n}} is {@code {0,n}}; a brace that is not a quantifier is a literal.
 *   <li>{@code ^ $} are line anchors in Oniguruma's Ruby syntax (MULTILINE), {@code .} excludes
 *       only {@code \n} (UNIX_LINES); {@code (?i)} folds Unicode case (UNICODE_CASE).
 * </ul>
 */
final class OnigRegex {
  private OnigRegex() {}

  static final String WORD_CHARS = "\\p{IsAlphabetic}\\p{M}\\p{Nd}\\p{Pc}\\u00B2\\u00B3\\u00B9\\u00BC-\\u00BE";
  private static final String WORD = "[" + WORD_CHARS + "]";
  private static final String NON_WORD = "[^" + WORD_CHARS + "]";
  private static final String SPACE = "\\p{IsWhite_Space}";
  private static final String NON_SPACE = "\\P{IsWhite_Space}";
  private static final String HEX = "0-9A-Fa-f";
  private static final int FLAGS = Pattern.MULTILINE | Pattern.UNIX_LINES | Pattern.UNICODE_CASE;

  /** General categories, usable as is in Java's \p{..}. */
  private static final Set<String> CATEGORIES = Set.of(
      "L", "LC", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No",
      "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So",
      "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cn", "Cs");

  /** Compiles an Oniguruma pattern; errors name the field the pattern came from. */
  static Pattern compile(String onig, Field where) {
    String java;
    try {
      java = translate(onig);
    } catch (IllegalArgumentException e) {
      throw where.bad("regex " + quote(onig) + " is not supported: " + e.getMessage());
    }
    try {
      return Pattern.compile(java, FLAGS);
    } catch (PatternSyntaxException e) {
      throw where.bad("regex " + quote(onig) + " does not compile in Java (as " + quote(java) + "): "
          + e.getDescription());
    }
  }

  /** A literal string pattern. */
  static Pattern literal(String s) {
    return Pattern.compile(Pattern.quote(s));
  }

  static String quote(String s) {
    return "\"" + s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "\"";
  }

  // The '[' at i, a negation '^' after it, and a leading ']' (a literal in both dialects, spelled
  // out for Java); returns the index after them.
  private static int openClass(String re, int i, StringBuilder out) {
    out.append('[');
    i++;
    if (i < re.length() && re.charAt(i) == '^') {
      out.append('^');
      i++;
    }
    if (i < re.length() && re.charAt(i) == ']') {
      out.append("\\]");
      i++;
    }
    return i;
  }

  static String translate(String re) {
    StringBuilder out = new StringBuilder(re.length() + 32);
    int depth = 0; // character class nesting
    int i = 0;
    int n = re.length();
    while (i < n) {
      char c = re.charAt(i);
      if (c == '\\') {
        if (i + 1 >= n) {
          throw new IllegalArgumentException("trailing backslash");
        }
        i = escape(re, i, depth > 0, out);
        continue;
      }
      if (depth > 0) {
        if (c == '[' && re.startsWith("[:", i)) {
          int end = re.indexOf(":]", i + 2);
          if (end > 0) {
            out.append(posix(re.substring(i + 2, end)));
            i = end + 2;
            continue;
          }
        }
        if (c == '[') {
          depth++;
          i = openClass(re, i, out);
          continue;
        }
        if (c == ']') {
          depth--;
        }
        out.append(c);
        i++;
        continue;
      }
      switch (c) {
        case '[' -> {
          depth++;
          i = openClass(re, i, out);
        }
        case '{' -> {
          int end = re.indexOf('}', i);
          String body = end > 0 ? re.substring(i + 1, end) : null;
          if (body != null && body.matches("\\d+(,\\d*)?")) {
            out.append('{').append(body).append('}');
            i = end + 1;
          } else if (body != null && body.matches(",\\d+")) {
            out.append("{0").append(body).append('}');
            i = end + 1;
          } else {
            out.append("\\{");
            i++;
          }
        }
        case '}' -> {
          out.append("\\}");
          i++;
        }
        default -> {
          out.append(c);
          i++;
        }
      }
    }
    if (depth != 0) {
      throw new IllegalArgumentException("unclosed character class");
    }
    return out.toString();
  }

  // Translates the escape at re[i] ('\\'); returns the index after it.
  private static int escape(String re, int i, boolean inClass, StringBuilder out) {
    char e = re.charAt(i + 1);
    switch (e) {
      case 'w' -> out.append(inClass ? WORD_CHARS : WORD);
      case 'W' -> out.append(NON_WORD); // a nested class inside a class
      case 'd' -> out.append("\\p{Nd}");
      case 'D' -> out.append("\\P{Nd}");
      case 's' -> out.append(SPACE);
      case 'S' -> out.append(NON_SPACE);
      case 'h' -> out.append(inClass ? HEX : "[" + HEX + "]");
      case 'H' -> out.append("[^" + HEX + "]");
      case 'b' -> {
        if (inClass) {
          out.append("\\x08");
        } else {
          out.append("(?:(?<!" + WORD + ")(?=" + WORD + ")|(?<=" + WORD + ")(?!" + WORD + "))");
        }
      }
      case 'B' -> out.append("(?:(?<!" + WORD + ")(?!" + WORD + ")|(?<=" + WORD + ")(?=" + WORD + "))");
      case 'A' -> out.append("\\A");
      case 'z' -> out.append("\\z");
      case 'Z' -> out.append("(?=\\n?\\z)");
      case 'a' -> out.append("\\x07");
      case 'e' -> out.append("\\x1B");
      case 'p', 'P' -> {
        boolean negate = e == 'P';
        if (i + 2 < re.length() && re.charAt(i + 2) == '{') {
          int end = re.indexOf('}', i + 3);
          if (end < 0) {
            throw new IllegalArgumentException("unclosed \\p{");
          }
          String name = re.substring(i + 3, end);
          if (name.startsWith("^")) {
            negate = !negate;
            name = name.substring(1);
          }
          out.append(negate ? "\\P{" : "\\p{").append(property(name)).append('}');
          return end + 1;
        }
        // \pL one-letter form
        if (i + 2 >= re.length()) {
          throw new IllegalArgumentException("incomplete \\p");
        }
        out.append(negate ? "\\P" : "\\p").append(re.charAt(i + 2));
        return i + 3;
      }
      case 'x' -> {
        if (i + 2 < re.length() && re.charAt(i + 2) == '{') {
          int end = re.indexOf('}', i + 3);
          if (end < 0) {
            throw new IllegalArgumentException("unclosed \\x{");
          }
          out.append(re, i, end + 1);
          return end + 1;
        }
        out.append(re, i, Math.min(re.length(), i + 4));
        return Math.min(re.length(), i + 4);
      }
      case 'u' -> {
        out.append(re, i, Math.min(re.length(), i + 6));
        return Math.min(re.length(), i + 6);
      }
      case 'K', 'R', 'X', 'y', 'Y', 'O', 'N', 'g' ->
          throw new IllegalArgumentException("escape \\" + e + " has no java.util.regex equivalent");
      default -> out.append('\\').append(e);
    }
    return i + 2;
  }

  private static String property(String name) {
    String bare = name.replace(" ", "");
    if (CATEGORIES.contains(bare)) {
      return bare;
    }
    String lower = bare.toLowerCase(Locale.ROOT).replace("_", "");
    return switch (lower) {
      case "alpha", "alphabetic" -> "IsAlphabetic";
      case "space", "whitespace" -> "IsWhite_Space";
      case "digit" -> "Nd";
      case "upper", "uppercase" -> "IsUppercase";
      case "lower", "lowercase" -> "IsLowercase";
      case "punct", "punctuation" -> "P";
      case "cntrl", "control" -> "Cc";
      case "letter" -> "L";
      case "mark", "combiningmark" -> "M";
      case "number" -> "N";
      case "symbol" -> "S";
      case "separator" -> "Z";
      case "ideographic" -> "IsIdeographic";
      default -> bare.startsWith("In") || bare.startsWith("Is") ? bare : "Is" + bare; // scripts
    };
  }

  private static String posix(String name) {
    boolean negate = name.startsWith("^");
    String n = negate ? name.substring(1) : name;
    String body = switch (n) {
      case "alpha" -> "\\p{IsAlphabetic}";
      case "alnum" -> "\\p{IsAlphabetic}\\p{Nd}";
      case "digit" -> "\\p{Nd}";
      case "lower" -> "\\p{IsLowercase}";
      case "upper" -> "\\p{IsUppercase}";
      case "space" -> SPACE;
      case "blank" -> "\\t\\p{Zs}";
      case "punct" -> "\\p{P}\\p{S}";
      case "cntrl" -> "\\p{Cc}";
      case "word" -> WORD_CHARS;
      case "xdigit" -> HEX;
      default -> throw new IllegalArgumentException("unknown POSIX class [:" + name + ":]");
    };
    return negate ? "[^" + body + "]" : "[" + body + "]";
  }
}
