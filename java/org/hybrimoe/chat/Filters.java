package org.hybrimoe.chat;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.hybrimoe.chat.Methods.CallArgs;
import org.hybrimoe.chat.Values.Undefined;

/**
 * Jinja's filters ({@code value | name(args)}) as Python Jinja2 defines them, and transformers'
 * {@code tojson} (json.dumps with ensure_ascii=False, so non-ASCII text stays as is).
 */
final class Filters {
  private Filters() {}

  private static final Pattern WORD = Pattern.compile("\\w+", Pattern.UNICODE_CHARACTER_CLASS);
  private static final Pattern FLOAT_TEXT = Pattern.compile(
      "[+-]?(?:(?:\\d(?:_?\\d)*)?\\.?\\d(?:_?\\d)*(?:[eE][+-]?\\d+)?|\\d(?:_?\\d)*\\.|inf|infinity|nan)",
      Pattern.CASE_INSENSITIVE);

  static Object apply(String name, Object v, CallArgs a) {
    String fn = "filter '" + name + "'";
    switch (name) {
      case "abs":
        a.check(fn);
        if (Values.isFloat(v)) {
          return Math.abs(Values.toDouble(v));
        }
        if (Values.isNumeric(v)) {
          return Math.abs(Values.toLong(v));
        }
        throw new EvalError("bad operand type for abs(): '" + Values.typeName(v) + "'");
      case "attr":
        a.check(fn, "name");
        return Values.getAttr(v, str(a.get(0, "name", null), "the attribute name"));
      case "capitalize":
        a.check(fn);
        return Py.capitalize(Values.str(v));
      case "count", "length":
        a.check(fn);
        return Values.length(v);
      case "d", "default": {
        a.check(fn, "default_value", "boolean");
        Object def = a.get(0, "default_value", "");
        boolean bool = Values.truthy(a.get(1, "boolean", false));
        return v instanceof Undefined || (bool && !Values.truthy(v)) ? def : v;
      }
      case "dictsort":
        return dictsort(v, a, fn);
      case "e", "escape":
        a.check(fn);
        return escape(Values.str(v));
      case "first": {
        a.check(fn);
        List<Object> items = Values.iterate(v);
        return items.isEmpty() ? new Undefined("no first item, the sequence is empty") : items.get(0);
      }
      case "last": {
        a.check(fn);
        List<Object> items = Values.iterate(v);
        return items.isEmpty() ? new Undefined("no last item, the sequence is empty") : items.get(items.size() - 1);
      }
      case "float":
        a.check(fn, "default");
        return toFloat(v, a.get(0, "default", 0.0));
      case "int":
        a.check(fn, "default", "base");
        return toInt(v, a.get(0, "default", 0L), Values.requireInt(a.get(1, "base", 10L), "base"));
      case "indent":
        return indent(v, a, fn);
      case "items": {
        a.check(fn);
        if (v instanceof Undefined) {
          return new ArrayList<>();
        }
        if (!(v instanceof Map<?, ?> map)) {
          throw new EvalError("filter 'items' needs a mapping, got " + Values.typeName(v));
        }
        List<Object> out = new ArrayList<>();
        map.forEach((k, x) -> out.add(Methods.pair(k, x)));
        return out;
      }
      case "join": {
        a.check(fn, "d", "attribute");
        String sep = Values.str(a.get(0, "d", ""));
        Object attribute = a.get(1, "attribute", null);
        StringBuilder sb = new StringBuilder();
        List<Object> items = Values.iterate(v);
        for (int k = 0; k < items.size(); k++) {
          if (k > 0) {
            sb.append(sep);
          }
          sb.append(Values.str(attribute == null ? items.get(k) : attribute(items.get(k), attribute)));
        }
        return sb.toString();
      }
      case "list":
        a.check(fn);
        return new ArrayList<>(Values.iterate(v));
      case "lower":
        a.check(fn);
        return Py.lower(Values.str(v));
      case "upper":
        a.check(fn);
        return Py.upper(Values.str(v));
      case "title":
        a.check(fn);
        return jinjaTitle(Values.str(v));
      case "map":
        return map(v, a);
      case "max", "min":
        return minMax(v, a, fn, name.equals("max"));
      case "replace": {
        a.check(fn, "old", "new", "count");
        Object count = a.get(2, "count", null);
        return Py.replace(Values.str(v), Values.str(a.get(0, "old", "")), Values.str(a.get(1, "new", "")),
            count == null ? -1 : Values.requireInt(count, "count"));
      }
      case "reverse": {
        a.check(fn);
        if (v instanceof String s) {
          return new StringBuilder(s).reverse().toString();
        }
        List<Object> out = new ArrayList<>(Values.iterate(v));
        Collections.reverse(out);
        return out;
      }
      case "round":
        return round(v, a, fn);
      case "safe":
        a.check(fn);
        return Values.str(v);
      case "select", "reject":
        return select(v, a, name.equals("select"), false);
      case "selectattr", "rejectattr":
        return select(v, a, name.equals("selectattr"), true);
      case "sort":
        return sort(v, a, fn);
      case "string":
        a.check(fn);
        return Values.str(v);
      case "sum": {
        a.check(fn, "attribute", "start");
        Object attribute = a.get(0, "attribute", null);
        Object total = a.get(1, "start", 0L);
        for (Object item : Values.iterate(v)) {
          total = Values.arith("+", total, attribute == null ? item : attribute(item, attribute));
        }
        return total;
      }
      case "tojson":
        return tojson(v, a, fn);
      case "trim": {
        a.check(fn, "chars");
        Object chars = a.get(0, "chars", null);
        return Py.strip(Values.str(v), chars == null ? null : Values.str(chars), true, true);
      }
      case "unique":
        return unique(v, a, fn);
      case "wordcount": {
        a.check(fn);
        Matcher m = WORD.matcher(Values.str(v));
        long n = 0;
        while (m.find()) {
          n++;
        }
        return n;
      }
      default:
        throw new EvalError("unknown filter '" + name + "'");
    }
  }

  private static String str(Object v, String what) {
    if (v instanceof String s) {
      return s;
    }
    throw new EvalError(what + " must be a string, got " + Values.typeName(v));
  }

  /** Jinja's attribute path: "a.b.0" looks up item/attribute a, then b, then index 0. */
  static Object attribute(Object item, Object path) {
    if (Values.isIntegral(path)) {
      return Values.getItem(item, path);
    }
    Object v = item;
    for (String part : Values.str(path).split("\\.", -1)) {
      Object key = part;
      if (!part.isEmpty() && part.chars().allMatch(Character::isDigit)) {
        key = Long.parseLong(part);
      }
      v = Values.getItem(v, key);
    }
    return v;
  }

  private static String escape(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    for (int k = 0; k < s.length(); k++) {
      char c = s.charAt(k);
      switch (c) {
        case '&' -> sb.append("&amp;");
        case '<' -> sb.append("&lt;");
        case '>' -> sb.append("&gt;");
        case '"' -> sb.append("&#34;");
        case '\'' -> sb.append("&#39;");
        default -> sb.append(c);
      }
    }
    return sb.toString();
  }

  /** Jinja's title filter: each word (split at runs of -, whitespace and opening brackets) capitalized. */
  private static String jinjaTitle(String s) {
    StringBuilder sb = new StringBuilder();
    boolean start = true;
    for (int cp : Py.codePoints(s)) {
      boolean sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || Py.isSpace(cp);
      String ch = new String(Character.toChars(cp));
      sb.append(start ? Py.upper(ch) : Py.lower(ch));
      start = sep;
    }
    return sb.toString();
  }

  private static Object toFloat(Object v, Object def) {
    if (Values.isNumeric(v)) {
      return Values.toDouble(v);
    }
    if (v instanceof String s) {
      String t = Py.strip(s, null, true, true);
      if (FLOAT_TEXT.matcher(t).matches()) {
        String lower = Py.lower(t).replace("_", "");
        if (lower.endsWith("inf") || lower.endsWith("infinity")) {
          return lower.startsWith("-") ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
        }
        if (lower.endsWith("nan")) {
          return Double.NaN;
        }
        return Double.parseDouble(lower);
      }
    }
    return def;
  }

  private static Object toInt(Object v, Object def, long base) {
    if (Values.isIntegral(v) || v instanceof Boolean) {
      return Values.toLong(v);
    }
    if (Values.isFloat(v)) {
      double d = Values.toDouble(v);
      return Double.isFinite(d) ? (Object) (long) d : def;
    }
    if (v instanceof String s) {
      String t = Py.strip(s, null, true, true).replace("_", "");
      try {
        if (base == 16 && (t.startsWith("0x") || t.startsWith("0X"))) {
          t = t.substring(2);
        }
        return Long.parseLong(t.startsWith("+") ? t.substring(1) : t, (int) base);
      } catch (IllegalArgumentException e) {
        Object f = toFloat(v, null);
        if (f instanceof Double d && Double.isFinite(d)) {
          return (long) (double) d;
        }
      }
    }
    return def;
  }

  private static Object indent(Object v, CallArgs a, String fn) {
    a.check(fn, "width", "first", "blank");
    Object width = a.get(0, "width", 4L);
    String pad = width instanceof String w ? w : " ".repeat((int) Math.max(0, Values.requireInt(width, "width")));
    boolean first = Values.truthy(a.get(1, "first", false));
    boolean blank = Values.truthy(a.get(2, "blank", false));
    String s = Values.str(v) + "\n";
    List<String> lines = new ArrayList<>(List.of(s.split("\n", -1)));
    lines.remove(lines.size() - 1); // splitlines() of text ending in a newline has no empty last line
    StringBuilder sb = new StringBuilder();
    for (int k = 0; k < lines.size(); k++) {
      String line = lines.get(k);
      if (k > 0) {
        sb.append('\n');
        if (blank || !line.isEmpty()) {
          sb.append(pad);
        }
      }
      sb.append(line);
    }
    return first ? pad + sb : sb.toString();
  }

  private static Object map(Object v, CallArgs a) {
    List<Object> items = Values.iterate(v);
    List<Object> out = new ArrayList<>();
    if (a.positional().isEmpty()) {
      a.check("filter 'map'", "attribute", "default");
      Object attribute = a.keywords().get("attribute");
      if (attribute == null) {
        throw new EvalError("filter 'map' needs a filter name or attribute=...");
      }
      Object def = a.keywords().getOrDefault("default", Values.MISSING);
      for (Object item : items) {
        Object x = attribute(item, attribute);
        out.add(x instanceof Undefined && def != Values.MISSING ? def : x);
      }
      return out;
    }
    String filter = str(a.positional().get(0), "the filter name of 'map'");
    CallArgs rest = new CallArgs(a.positional().subList(1, a.positional().size()), a.keywords());
    for (Object item : items) {
      out.add(apply(filter, item, rest));
    }
    return out;
  }

  private static Object select(Object v, CallArgs a, boolean keep, boolean byAttribute) {
    a.noKeywords(byAttribute ? "filter 'selectattr'" : "filter 'select'");
    List<Object> args = a.positional();
    Object attribute = null;
    if (byAttribute) {
      if (args.isEmpty()) {
        throw new EvalError("filter '" + (keep ? "selectattr" : "rejectattr") + "' needs an attribute name");
      }
      attribute = args.get(0);
      args = args.subList(1, args.size());
    }
    String test = args.isEmpty() ? null : str(args.get(0), "the test name");
    CallArgs testArgs = new CallArgs(args.isEmpty() ? List.of() : args.subList(1, args.size()), new LinkedHashMap<>());
    List<Object> out = new ArrayList<>();
    for (Object item : Values.iterate(v)) {
      Object x = byAttribute ? attribute(item, attribute) : item;
      boolean pass = test == null ? Values.truthy(x) : IsTests.apply(test, x, testArgs);
      if (pass == keep) {
        out.add(item);
      }
    }
    return out;
  }

  /** Sort key: case-folded strings unless case_sensitive. */
  private static Object sortKey(Object item, Object attribute, boolean caseSensitive) {
    Object k = attribute == null ? item : attribute(item, attribute);
    return !caseSensitive && k instanceof String s ? Py.lower(s) : k;
  }

  private static Object sort(Object v, CallArgs a, String fn) {
    a.check(fn, "reverse", "case_sensitive", "attribute");
    boolean reverse = Values.truthy(a.get(0, "reverse", false));
    boolean cs = Values.truthy(a.get(1, "case_sensitive", false));
    Object attribute = a.get(2, "attribute", null);
    List<Object> out = new ArrayList<>(Values.iterate(v));
    Comparator<Object> cmp = (x, y) -> Values.compare(sortKey(x, attribute, cs), sortKey(y, attribute, cs), "<");
    out.sort(reverse ? cmp.reversed() : cmp);
    return out;
  }

  private static Object unique(Object v, CallArgs a, String fn) {
    a.check(fn, "case_sensitive", "attribute");
    boolean cs = Values.truthy(a.get(0, "case_sensitive", false));
    Object attribute = a.get(1, "attribute", null);
    List<Object> out = new ArrayList<>();
    List<Object> seen = new ArrayList<>();
    for (Object item : Values.iterate(v)) {
      Object key = sortKey(item, attribute, cs);
      if (!Values.contains(seen, key)) {
        seen.add(key);
        out.add(item);
      }
    }
    return out;
  }

  private static Object minMax(Object v, CallArgs a, String fn, boolean max) {
    a.check(fn, "case_sensitive", "attribute");
    boolean cs = Values.truthy(a.get(0, "case_sensitive", false));
    Object attribute = a.get(1, "attribute", null);
    Object best = null;
    Object bestKey = null;
    boolean any = false;
    for (Object item : Values.iterate(v)) {
      Object key = sortKey(item, attribute, cs);
      if (!any || (max ? Values.compare(key, bestKey, ">") > 0 : Values.compare(key, bestKey, "<") < 0)) {
        best = item;
        bestKey = key;
        any = true;
      }
    }
    return any ? best : new Undefined("no " + (max ? "largest" : "smallest") + " item, the sequence is empty");
  }

  private static Object dictsort(Object v, CallArgs a, String fn) {
    a.check(fn, "case_sensitive", "by", "reverse");
    boolean cs = Values.truthy(a.get(0, "case_sensitive", false));
    String by = Values.str(a.get(1, "by", "key"));
    boolean reverse = Values.truthy(a.get(2, "reverse", false));
    if (!(v instanceof Map<?, ?> map)) {
      throw new EvalError("filter 'dictsort' needs a mapping, got " + Values.typeName(v));
    }
    int pos = switch (by) {
      case "key" -> 0;
      case "value" -> 1;
      default -> throw new EvalError("filter 'dictsort': 'by' must be 'key' or 'value', got '" + by + "'");
    };
    List<Object> out = new ArrayList<>();
    map.forEach((k, x) -> out.add(Methods.pair(k, x)));
    Comparator<Object> cmp = (x, y) -> Values.compare(
        sortKey(((List<?>) x).get(pos), null, cs), sortKey(((List<?>) y).get(pos), null, cs), "<");
    out.sort(reverse ? cmp.reversed() : cmp);
    return out;
  }

  private static Object round(Object v, CallArgs a, String fn) {
    a.check(fn, "precision", "method");
    long precision = Values.requireInt(a.get(0, "precision", 0L), "precision");
    String method = Values.str(a.get(1, "method", "common"));
    if (!Values.isNumeric(v)) {
      throw new EvalError("filter 'round' needs a number, got " + Values.typeName(v));
    }
    if (method.equals("common") && !Values.isFloat(v) && precision >= 0) {
      return Values.toLong(v); // Python's round(int, n) is the int itself
    }
    double d = Values.toDouble(v);
    if (!Double.isFinite(d)) {
      return d;
    }
    RoundingMode mode = switch (method) {
      // Python's round(): half to even, on the exact binary value (round(2.675, 2) == 2.67).
      case "common" -> RoundingMode.HALF_EVEN;
      case "ceil" -> RoundingMode.CEILING;
      case "floor" -> RoundingMode.FLOOR;
      default -> throw new EvalError("filter 'round': method must be 'common', 'ceil' or 'floor', got '" + method + "'");
    };
    return new BigDecimal(d).setScale((int) precision, mode).doubleValue();
  }

  // ---- tojson

  private static Object tojson(Object v, CallArgs a, String fn) {
    a.check(fn, "indent", "ensure_ascii", "separators", "sort_keys");
    Object indent = a.get(0, "indent", null);
    String pad = null;
    if (indent instanceof String s) {
      pad = s;
    } else if (indent != null) {
      pad = " ".repeat((int) Math.max(0, Values.requireInt(indent, "indent")));
    }
    boolean ascii = Values.truthy(a.get(1, "ensure_ascii", false));
    Object seps = a.get(2, "separators", null);
    String itemSep = pad == null ? ", " : ",";
    String keySep = ": ";
    if (seps != null) {
      if (!(seps instanceof List<?> l) || l.size() != 2) {
        throw new EvalError("tojson: separators must be a pair of strings");
      }
      itemSep = str(l.get(0), "the item separator");
      keySep = str(l.get(1), "the key separator");
    }
    boolean sortKeys = Values.truthy(a.get(3, "sort_keys", false));
    StringBuilder sb = new StringBuilder();
    new Json(pad, itemSep, keySep, ascii, sortKeys).write(sb, v, 0);
    return sb.toString();
  }

  /** Python's json.dumps, as transformers' tojson calls it. */
  private record Json(String pad, String itemSep, String keySep, boolean ascii, boolean sortKeys) {
    void write(StringBuilder sb, Object v, int depth) {
      if (depth > Values.MAX_DATA_DEPTH) {
        throw new EvalError("value nests deeper than " + Values.MAX_DATA_DEPTH + " levels");
      }
      if (v == null) {
        sb.append("null");
      } else if (v instanceof Boolean b) {
        sb.append(b ? "true" : "false");
      } else if (v instanceof String s) {
        string(sb, s);
      } else if (Values.isIntegral(v)) {
        sb.append(v);
      } else if (Values.isFloat(v)) {
        double d = Values.toDouble(v);
        sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : Py.floatRepr(d));
      } else if (v instanceof List<?> list) {
        if (list.isEmpty()) {
          sb.append("[]");
          return;
        }
        sb.append('[');
        for (int k = 0; k < list.size(); k++) {
          sb.append(k > 0 ? itemSep : "");
          newline(sb, depth + 1);
          write(sb, list.get(k), depth + 1);
        }
        newline(sb, depth);
        sb.append(']');
      } else if (v instanceof Map<?, ?> map) {
        if (map.isEmpty()) {
          sb.append("{}");
          return;
        }
        List<Map.Entry<String, Object>> entries = new ArrayList<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
          entries.add(Map.entry(key(e.getKey()), e.getValue() == null ? Values.MISSING : e.getValue()));
        }
        if (sortKeys) {
          entries.sort((x, y) -> Values.compareCodePoints(x.getKey(), y.getKey()));
        }
        sb.append('{');
        for (int k = 0; k < entries.size(); k++) {
          sb.append(k > 0 ? itemSep : "");
          newline(sb, depth + 1);
          string(sb, entries.get(k).getKey());
          sb.append(keySep);
          Object x = entries.get(k).getValue();
          write(sb, x == Values.MISSING ? null : x, depth + 1);
        }
        newline(sb, depth);
        sb.append('}');
      } else {
        throw new EvalError("object of type '" + Values.typeName(v) + "' is not JSON serializable");
      }
    }

    private void newline(StringBuilder sb, int depth) {
      if (pad != null) {
        sb.append('\n');
        sb.append(pad.repeat(depth));
      }
    }

    private static String key(Object k) {
      if (k instanceof String s) {
        return s;
      }
      if (k == null) {
        return "null";
      }
      if (k instanceof Boolean b) {
        return b ? "true" : "false";
      }
      if (Values.isNumeric(k)) {
        return Values.str(k);
      }
      throw new EvalError("keys must be str, int, float, bool or None, not " + Values.typeName(k));
    }

    private void string(StringBuilder sb, String s) {
      sb.append('"');
      for (int k = 0; k < s.length(); k++) {
        char c = s.charAt(k);
        switch (c) {
          case '"' -> sb.append("\\\"");
          case '\\' -> sb.append("\\\\");
          case '\n' -> sb.append("\\n");
          case '\r' -> sb.append("\\r");
          case '\t' -> sb.append("\\t");
          case '\b' -> sb.append("\\b");
          case '\f' -> sb.append("\\f");
          default -> {
            if (c < 0x20 || (ascii && c > 0x7e)) {
              sb.append(String.format("\\u%04x", (int) c));
            } else {
              sb.append(c);
            }
          }
        }
      }
      sb.append('"');
    }
  }
}
