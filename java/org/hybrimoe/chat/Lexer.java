package org.hybrimoe.chat;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a template source into text and tag tokens, with Jinja's whitespace rules as
 * HuggingFace configures them: {@code trim_blocks} (the first newline after a block or comment
 * tag is removed), {@code lstrip_blocks} (spaces and tabs between the start of a line and a block
 * or comment tag are removed), {@code -} markers strip all whitespace on their side, {@code +}
 * markers turn lstrip/trim off for that side, line endings are normalized to {@code \n} and one
 * trailing newline of the source is dropped (keep_trailing_newline=False).
 */
final class Lexer {
  /** Token kinds; expression tokens appear only between a BEGIN and its END. */
  enum Kind { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INTEGER, FLOAT, OP, EOF }

  /** One token: text is the source spelling (decoded for strings), value the literal's value. */
  record Token(Kind kind, String text, Object value, Pos pos) {
    boolean isOp(String op) {
      return kind == Kind.OP && text.equals(op);
    }

    boolean isName(String name) {
      return kind == Kind.NAME && text.equals(name);
    }
  }

  private static final String[] OPERATORS = {
    "//", "**", "==", "!=", "<=", ">=",
    "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"
  };
  private static final Pattern RAW_BEGIN = Pattern.compile("\\G\\s*raw\\s*(-?)%}");
  private static final Pattern RAW_END = Pattern.compile("\\{%([-+]?)\\s*endraw\\s*([-+]?)%}");

  private final String src;
  private final int n;
  private final int[] lineStarts;
  private final List<Token> tokens = new ArrayList<>();
  private int pos;
  /** Whether the text that follows starts at the beginning of a line (for lstrip_blocks). */
  private boolean lineStarting = true;

  private Lexer(String source) {
    String s = source.replace("\r\n", "\n").replace('\r', '\n');
    if (s.endsWith("\n")) {
      s = s.substring(0, s.length() - 1);
    }
    this.src = s;
    this.n = s.length();
    List<Integer> starts = new ArrayList<>();
    starts.add(0);
    for (int i = 0; i < n; i++) {
      if (s.charAt(i) == '\n') {
        starts.add(i + 1);
      }
    }
    this.lineStarts = starts.stream().mapToInt(Integer::intValue).toArray();
  }

  /** The tokens of a template source, ending with an EOF token. */
  static List<Token> tokenize(String source) {
    Lexer lx = new Lexer(source);
    lx.run();
    return lx.tokens;
  }

  private Pos posAt(int offset) {
    int lo = 0;
    int hi = lineStarts.length - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (lineStarts[mid] <= offset) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return new Pos(lo + 1, offset - lineStarts[lo] + 1);
  }

  private ChatTemplateException error(int offset, String what) {
    return ChatTemplateException.at(posAt(offset), what);
  }

  private void run() {
    while (pos < n) {
      int tag = nextTagStart(pos);
      int textStart = pos;
      if (tag < 0) {
        emitText(src.substring(pos), textStart);
        pos = n;
        break;
      }
      char kind = src.charAt(tag + 1);
      char sign = tag + 2 < n && (src.charAt(tag + 2) == '-' || src.charAt(tag + 2) == '+') ? src.charAt(tag + 2) : 0;
      emitText(stripBeforeTag(src.substring(pos, tag), kind, sign), textStart);
      pos = tag + 2 + (sign != 0 ? 1 : 0);
      if (kind == '#') {
        lexComment(tag);
      } else if (kind == '{') {
        tokens.add(new Token(Kind.VAR_BEGIN, "{{", null, posAt(tag)));
        lexTagBody(tag, false);
      } else {
        Matcher raw = RAW_BEGIN.matcher(src);
        if (raw.find(pos)) {
          lexRaw(raw);
        } else {
          tokens.add(new Token(Kind.BLOCK_BEGIN, "{%", null, posAt(tag)));
          lexTagBody(tag, true);
        }
      }
    }
    tokens.add(new Token(Kind.EOF, "", null, posAt(n)));
  }

  private int nextTagStart(int from) {
    for (int i = src.indexOf('{', from); i >= 0 && i + 1 < n; i = src.indexOf('{', i + 1)) {
      char c = src.charAt(i + 1);
      if (c == '{' || c == '%' || c == '#') {
        return i;
      }
    }
    return -1;
  }

  private void emitText(String text, int start) {
    if (!text.isEmpty()) {
      tokens.add(new Token(Kind.TEXT, text, null, posAt(start)));
    }
  }

  /** The text before a tag after the tag's '-' marker or lstrip_blocks took their whitespace. */
  private String stripBeforeTag(String text, char kind, char sign) {
    if (sign == '-') {
      return rstripWhitespace(text);
    }
    if (sign != '+' && kind != '{') {
      int l = text.lastIndexOf('\n') + 1;
      if ((l > 0 || lineStarting) && l < text.length() && isBlank(text, l)) {
        return text.substring(0, l);
      }
    }
    return text;
  }

  /** Moves past a tag's closing delimiter (ending at end) and the whitespace its rules eat. */
  private void finishTag(int end, boolean minus, boolean plus, boolean trimNewline) {
    pos = end;
    if (minus) {
      int p = pos;
      while (p < n && Py.isSpace(src.charAt(p))) {
        p++;
      }
      lineStarting = p > pos && src.charAt(p - 1) == '\n';
      pos = p;
    } else if (trimNewline && !plus && pos < n && src.charAt(pos) == '\n') {
      pos++;
      lineStarting = true;
    } else {
      lineStarting = false;
    }
  }

  private void lexComment(int tag) {
    int close = src.indexOf("#}", pos);
    if (close < 0) {
      throw error(tag, "comment '{#' is never closed (expected '#}')");
    }
    char before = close > pos ? src.charAt(close - 1) : 0;
    finishTag(close + 2, before == '-', before == '+', true);
  }

  private void lexRaw(Matcher begin) {
    int contentStart = begin.end();
    boolean beginMinus = !begin.group(1).isEmpty();
    if (beginMinus) {
      int p = contentStart;
      while (p < n && Py.isSpace(src.charAt(p))) {
        p++;
      }
      lineStarting = p > contentStart && src.charAt(p - 1) == '\n';
      contentStart = p;
    } else {
      lineStarting = false;
    }
    Matcher end = RAW_END.matcher(src);
    if (!end.find(contentStart)) {
      throw error(pos - 2, "'raw' block is never closed (expected '{% endraw %}')");
    }
    char sign = end.group(1).isEmpty() ? 0 : end.group(1).charAt(0);
    String text = stripBeforeTag(src.substring(contentStart, end.start()), '%', sign);
    emitText(text, contentStart);
    String endSign = end.group(2);
    finishTag(end.end(), endSign.equals("-"), endSign.equals("+"), true);
  }

  /** Expression tokens up to the tag's end; brackets must balance before the end counts. */
  private void lexTagBody(int tag, boolean block) {
    Deque<Integer> brackets = new ArrayDeque<>();
    String open = block ? "{%" : "{{";
    String close = block ? "%}" : "}}";
    while (true) {
      while (pos < n && Py.isSpace(src.charAt(pos))) {
        pos++;
      }
      if (pos >= n) {
        if (!brackets.isEmpty()) {
          int b = brackets.peek();
          throw error(b, "'" + src.charAt(b) + "' is never closed (expected '" + closerOf(src.charAt(b)) + "')");
        }
        throw error(tag, "'" + open + "' is never closed (expected '" + close + "')");
      }
      if (brackets.isEmpty()) {
        boolean minus = src.startsWith("-" + close, pos);
        boolean plus = block && src.startsWith("+" + close, pos);
        if (minus || plus || src.startsWith(close, pos)) {
          tokens.add(new Token(block ? Kind.BLOCK_END : Kind.VAR_END, close, null, posAt(pos)));
          finishTag(pos + close.length() + (minus || plus ? 1 : 0), minus, plus, block);
          return;
        }
        String wrong = block ? "}}" : "%}";
        if (src.startsWith(wrong, pos)) {
          throw error(pos, "expected '" + close + "' to close the '" + open + "' at " + posAt(tag) + ", found '" + wrong + "'");
        }
      }
      char c = src.charAt(pos);
      if (Character.isLetter(c) || c == '_') {
        lexName();
      } else if (c >= '0' && c <= '9') {
        lexNumber();
      } else if (c == '\'' || c == '"') {
        lexString();
      } else {
        lexOperator(brackets);
      }
    }
  }

  private static char closerOf(char open) {
    return open == '(' ? ')' : open == '[' ? ']' : '}';
  }

  private void lexName() {
    int start = pos;
    while (pos < n && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) {
      pos++;
    }
    String name = src.substring(start, pos);
    tokens.add(new Token(Kind.NAME, name, name, posAt(start)));
  }

  private int skipDigits(int p) {
    while (p < n && (isDigit(src.charAt(p)) || (src.charAt(p) == '_' && p + 1 < n && isDigit(src.charAt(p + 1))))) {
      p++;
    }
    return p;
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private void lexNumber() {
    int start = pos;
    int p = skipDigits(pos);
    boolean isFloat = false;
    // After a '.', digits are an index (foo.1.2), never a float.
    boolean afterDot = start > 0 && src.charAt(start - 1) == '.';
    if (!afterDot) {
      if (p + 1 < n && src.charAt(p) == '.' && isDigit(src.charAt(p + 1))) {
        p = skipDigits(p + 1);
        isFloat = true;
      }
      if (p < n && (src.charAt(p) == 'e' || src.charAt(p) == 'E')) {
        int q = p + 1;
        if (q < n && (src.charAt(q) == '+' || src.charAt(q) == '-')) {
          q++;
        }
        if (q < n && isDigit(src.charAt(q))) {
          p = skipDigits(q);
          isFloat = true;
        }
      }
    }
    String text = src.substring(start, p);
    String digits = text.replace("_", "");
    Object value;
    if (isFloat) {
      value = Double.parseDouble(digits);
    } else {
      try {
        value = Long.parseLong(digits);
      } catch (NumberFormatException e) {
        throw error(start, "integer literal " + text + " is too large");
      }
    }
    tokens.add(new Token(isFloat ? Kind.FLOAT : Kind.INTEGER, text, value, posAt(start)));
    pos = p;
  }

  /** A quoted string with Python's escapes; an unknown escape keeps its backslash. */
  private void lexString() {
    int start = pos;
    char quote = src.charAt(pos++);
    StringBuilder sb = new StringBuilder();
    while (true) {
      if (pos >= n) {
        throw error(start, "string literal is never closed (expected " + quote + ")");
      }
      char c = src.charAt(pos);
      if (c == quote) {
        pos++;
        break;
      }
      if (c != '\\' || pos + 1 >= n) {
        sb.append(c);
        pos++;
        continue;
      }
      char e = src.charAt(pos + 1);
      pos += 2;
      switch (e) {
        case 'n' -> sb.append('\n');
        case 't' -> sb.append('\t');
        case 'r' -> sb.append('\r');
        case '\\' -> sb.append('\\');
        case '\'' -> sb.append('\'');
        case '"' -> sb.append('"');
        case 'a' -> sb.append('\u0007');
        case 'b' -> sb.append('\b');
        case 'f' -> sb.append('\f');
        case 'v' -> sb.append('\u000b');
        case '\n' -> { } // line continuation
        case 'x' -> sb.appendCodePoint(hexEscape(2, e));
        case 'u' -> sb.appendCodePoint(hexEscape(4, e));
        case 'U' -> sb.appendCodePoint(hexEscape(8, e));
        case 'N' -> sb.appendCodePoint(namedEscape());
        default -> {
          if (e >= '0' && e <= '7') {
            int v = e - '0';
            for (int k = 0; k < 2 && pos < n && src.charAt(pos) >= '0' && src.charAt(pos) <= '7'; k++) {
              v = v * 8 + (src.charAt(pos++) - '0');
            }
            sb.append((char) v);
          } else {
            sb.append('\\').append(e);
          }
        }
      }
    }
    String value = sb.toString();
    tokens.add(new Token(Kind.STRING, value, value, posAt(start)));
  }

  private int hexEscape(int digits, char kind) {
    int start = pos - 2;
    if (pos + digits > n) {
      throw error(start, "truncated \\" + kind + " escape in string literal");
    }
    String hex = src.substring(pos, pos + digits);
    int cp;
    try {
      cp = Integer.parseUnsignedInt(hex, 16);
    } catch (NumberFormatException e) {
      throw error(start, "invalid \\" + kind + " escape '\\" + kind + hex + "' in string literal");
    }
    if (!Character.isValidCodePoint(cp)) {
      throw error(start, "\\" + kind + hex + " is not a valid code point");
    }
    pos += digits;
    return cp;
  }

  private int namedEscape() {
    int start = pos - 2;
    int close = src.indexOf('}', pos);
    if (pos >= n || src.charAt(pos) != '{' || close < 0) {
      throw error(start, "malformed \\N{...} escape in string literal");
    }
    String name = src.substring(pos + 1, close);
    try {
      int cp = Character.codePointOf(name);
      pos = close + 1;
      return cp;
    } catch (IllegalArgumentException e) {
      throw error(start, "unknown character name '" + name + "' in \\N{...} escape");
    }
  }

  private void lexOperator(Deque<Integer> brackets) {
    for (String op : OPERATORS) {
      if (!src.startsWith(op, pos)) {
        continue;
      }
      char c = op.charAt(0);
      if (op.length() == 1 && (c == '(' || c == '[' || c == '{')) {
        brackets.push(pos);
      } else if (op.length() == 1 && (c == ')' || c == ']' || c == '}')) {
        if (brackets.isEmpty()) {
          throw error(pos, "unexpected '" + c + "' (no bracket is open)");
        }
        int b = brackets.peek();
        char expected = closerOf(src.charAt(b));
        if (c != expected) {
          throw error(pos, "unexpected '" + c + "': expected '" + expected + "' to close the '" + src.charAt(b) + "' at " + posAt(b));
        }
        brackets.pop();
      }
      tokens.add(new Token(Kind.OP, op, null, posAt(pos)));
      pos += op.length();
      return;
    }
    throw error(pos, "unexpected character '" + src.charAt(pos) + "' in expression");
  }

  private static boolean isBlank(String s, int from) {
    for (int i = from; i < s.length(); i++) {
      if (!Py.isSpace(s.charAt(i))) {
        return false;
      }
    }
    return true;
  }

  private static String rstripWhitespace(String s) {
    int end = s.length();
    while (end > 0 && Py.isSpace(s.charAt(end - 1))) {
      end--;
    }
    return s.substring(0, end);
  }
}
