package org.hybrimoe.chat;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/**
 * Python's string and number spelling, which Jinja inherits: str.strip/split/title, float repr,
 * string repr. Strings are indexed by code point, as Python does.
 */
final class Py {
  private Py() {}

  /** Python's str.isspace for one code point. */
  static boolean isSpace(int cp) {
    return (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0
        || (cp > 0xff && Character.isSpaceChar(cp));
  }

  static int length(String s) {
    return s.codePointCount(0, s.length());
  }

  static int[] codePoints(String s) {
    return s.codePoints().toArray();
  }

  /** str.strip / lstrip / rstrip; chars null strips whitespace. */
  static String strip(String s, String chars, boolean left, boolean right) {
    int[] cps = codePoints(s);
    int[] set = chars == null ? null : codePoints(chars);
    int start = 0;
    int end = cps.length;
    if (left) {
      while (start < end && stripped(cps[start], set)) {
        start++;
      }
    }
    if (right) {
      while (end > start && stripped(cps[end - 1], set)) {
        end--;
      }
    }
    return new String(cps, start, end - start);
  }

  private static boolean stripped(int cp, int[] set) {
    if (set == null) {
      return isSpace(cp);
    }
    for (int c : set) {
      if (c == cp) {
        return true;
      }
    }
    return false;
  }

  /** str.split(sep, maxsplit); sep null splits on whitespace runs and drops empty parts. */
  static List<Object> split(String s, String sep, long maxsplit) {
    List<Object> out = new ArrayList<>();
    if (sep == null) {
      int[] cps = codePoints(s);
      int k = 0;
      while (true) {
        while (k < cps.length && isSpace(cps[k])) {
          k++;
        }
        if (k >= cps.length) {
          break;
        }
        if (maxsplit >= 0 && out.size() >= maxsplit) {
          int end = cps.length;
          while (end > k && isSpace(cps[end - 1])) {
            end--;
          }
          out.add(new String(cps, k, end - k));
          break;
        }
        int start = k;
        while (k < cps.length && !isSpace(cps[k])) {
          k++;
        }
        out.add(new String(cps, start, k - start));
      }
      return out;
    }
    if (sep.isEmpty()) {
      throw new EvalError("empty separator");
    }
    int from = 0;
    while (maxsplit < 0 || out.size() < maxsplit) {
      int at = s.indexOf(sep, from);
      if (at < 0) {
        break;
      }
      out.add(s.substring(from, at));
      from = at + sep.length();
    }
    out.add(s.substring(from));
    return out;
  }

  /** str.rsplit(sep, maxsplit) for a given separator; without one it is split from the left. */
  static List<Object> rsplit(String s, String sep, long maxsplit) {
    if (sep == null || maxsplit < 0) {
      return split(s, sep, maxsplit);
    }
    if (sep.isEmpty()) {
      throw new EvalError("empty separator");
    }
    List<Object> out = new ArrayList<>();
    int to = s.length();
    while (out.size() < maxsplit) {
      int at = s.lastIndexOf(sep, to - sep.length());
      if (at < 0) {
        break;
      }
      out.add(0, s.substring(at + sep.length(), to));
      to = at;
    }
    out.add(0, s.substring(0, to));
    return out;
  }

  /** str.replace(old, new, count); count < 0 replaces all. */
  static String replace(String s, String old, String rep, long count) {
    if (count < 0) {
      count = Long.MAX_VALUE;
    }
    StringBuilder sb = new StringBuilder();
    if (old.isEmpty()) {
      int[] cps = codePoints(s);
      long done = 0;
      for (int cp : cps) {
        if (done++ < count) {
          sb.append(rep);
        }
        sb.appendCodePoint(cp);
      }
      if (done < count) {
        sb.append(rep);
      }
      return sb.toString();
    }
    int from = 0;
    long done = 0;
    while (done < count) {
      int at = s.indexOf(old, from);
      if (at < 0) {
        break;
      }
      sb.append(s, from, at).append(rep);
      from = at + old.length();
      done++;
    }
    return sb.append(s.substring(from)).toString();
  }

  private static boolean isCased(int cp) {
    return Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
  }

  /** Python's str.title: a letter after an uncased character is titlecased, others lowered. */
  static String title(String s) {
    StringBuilder sb = new StringBuilder();
    boolean prevCased = false;
    for (int cp : codePoints(s)) {
      if (prevCased) {
        sb.append(new String(Character.toChars(cp)).toLowerCase(java.util.Locale.ROOT));
      } else {
        sb.appendCodePoint(Character.toTitleCase(cp));
      }
      prevCased = isCased(cp);
    }
    return sb.toString();
  }

  /** Python's str.capitalize: first character titlecased, the rest lowered. */
  static String capitalize(String s) {
    if (s.isEmpty()) {
      return s;
    }
    int first = s.codePointAt(0);
    int rest = Character.charCount(first);
    return new String(Character.toChars(Character.toTitleCase(first)))
        + s.substring(rest).toLowerCase(java.util.Locale.ROOT);
  }

  static String upper(String s) {
    return s.toUpperCase(java.util.Locale.ROOT);
  }

  static String lower(String s) {
    return s.toLowerCase(java.util.Locale.ROOT);
  }

  /** repr() of a float: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
  static String floatRepr(double d) {
    if (Double.isNaN(d)) {
      return "nan";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "inf" : "-inf";
    }
    if (d == 0) {
      return (1 / d < 0) ? "-0.0" : "0.0";
    }
    BigDecimal bd = new BigDecimal(Double.toString(d)).stripTrailingZeros();
    String digits = bd.unscaledValue().abs().toString();
    int exp = digits.length() - 1 - bd.scale(); // decimal exponent of the first digit
    String sign = d < 0 ? "-" : "";
    if (exp >= -4 && exp < 16) {
      String plain = bd.abs().toPlainString();
      if (!plain.contains(".")) {
        plain += ".0";
      }
      return sign + plain;
    }
    String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
    String e = Integer.toString(Math.abs(exp));
    return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (e.length() < 2 ? "0" + e : e);
  }

  /** repr() of a string: single quotes unless it holds ' and no ", escapes as Python writes them. */
  static String repr(String s) {
    char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
    StringBuilder sb = new StringBuilder().append(q);
    s.codePoints().forEach(cp -> {
      if (cp == q || cp == '\\') {
        sb.append('\\').appendCodePoint(cp);
      } else if (cp == '\n') {
        sb.append("\\n");
      } else if (cp == '\r') {
        sb.append("\\r");
      } else if (cp == '\t') {
        sb.append("\\t");
      } else if (cp < 0x20 || cp == 0x7f) {
        sb.append(String.format("\\x%02x", cp));
      } else {
        sb.appendCodePoint(cp);
      }
    });
    return sb.append(q).toString();
  }
}
