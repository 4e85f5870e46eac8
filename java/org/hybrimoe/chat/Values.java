package org.hybrimoe.chat;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Template values and Python's rules for them. Values are the Java objects the caller passes
 * (String, Boolean, any Number, List, Map, null for None) plus the runtime's own kinds below;
 * integers (Long, Integer, Short, Byte, BigInteger) and floats (Double, Float, BigDecimal) keep
 * Python's distinction, and a Boolean counts as the integer 0 or 1 in arithmetic and equality.
 * Nothing here mutates a caller's list or map.
 */
final class Values {
  private Values() {}

  /** Deepest nesting of lists and maps that repr, equality and tojson will walk. */
  static final int MAX_DATA_DEPTH = 500;

  static final Set<String> STR_METHODS = Set.of(
      "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
      "title", "capitalize", "replace", "find", "rfind", "index", "count", "join", "format", "isdigit", "isalpha",
      "isalnum", "isspace", "islower", "isupper", "zfill");
  static final Set<String> DICT_METHODS = Set.of("items", "keys", "values", "get");

  /** Jinja's Undefined: falsy, renders as "", iterates as empty; hint says what was missing. */
  static final class Undefined {
    final String hint;

    Undefined(String hint) {
      this.hint = hint;
    }

    @Override
    public String toString() {
      return "";
    }
  }

  /** A namespace(...) object: the one value whose attributes a template may assign. */
  static final class Namespace {
    final Map<String, Object> attrs = new LinkedHashMap<>();
  }

  /** The {@code loop} variable of a for loop over a materialized list. */
  static final class Loop {
    final List<Object> items;
    int index0;

    Loop(List<Object> items) {
      this.items = items;
    }

    Object attr(String name) {
      int n = items.size();
      return switch (name) {
        case "index" -> (long) index0 + 1;
        case "index0" -> (long) index0;
        case "revindex" -> (long) (n - index0);
        case "revindex0" -> (long) (n - index0 - 1);
        case "first" -> index0 == 0;
        case "last" -> index0 == n - 1;
        case "length" -> (long) n;
        case "depth" -> 1L;
        case "depth0" -> 0L;
        case "previtem" -> index0 > 0 ? items.get(index0 - 1) : new Undefined("there is no previous item");
        case "nextitem" -> index0 < n - 1 ? items.get(index0 + 1) : new Undefined("there is no next item");
        case "cycle" -> new BoundMethod(this, "cycle");
        default -> new Undefined("'loop' has no attribute '" + name + "'");
      };
    }
  }

  /** A macro defined by the template. */
  record Macro(Node.Macro def) {}

  /** A method looked up on a value (str.strip, dict.items, loop.cycle), not yet called. */
  record BoundMethod(Object target, String name) {}

  /** The global functions. */
  enum Global { RANGE, NAMESPACE, RAISE_EXCEPTION, STRFTIME_NOW, DICT }

  // ---- kinds

  static boolean isIntegral(Object v) {
    return v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
        || v instanceof BigInteger;
  }

  static boolean isFloat(Object v) {
    return v instanceof Double || v instanceof Float || v instanceof BigDecimal;
  }

  /** An int, float or bool (bool is an int in Python). */
  static boolean isNumeric(Object v) {
    return isIntegral(v) || isFloat(v) || v instanceof Boolean;
  }

  static long toLong(Object v) {
    if (v instanceof Boolean b) {
      return b ? 1 : 0;
    }
    if (v instanceof BigInteger b) {
      try {
        return b.longValueExact();
      } catch (ArithmeticException e) {
        throw new EvalError("integer " + b + " is too large");
      }
    }
    return ((Number) v).longValue();
  }

  static double toDouble(Object v) {
    if (v instanceof Boolean b) {
      return b ? 1 : 0;
    }
    return ((Number) v).doubleValue();
  }

  /** An integer argument (index, count, width), or an error naming what it is for. */
  static long requireInt(Object v, String what) {
    if (isIntegral(v) || v instanceof Boolean) {
      return toLong(v);
    }
    throw new EvalError(what + " must be an integer, got " + typeName(v));
  }

  static String typeName(Object v) {
    if (v == null) {
      return "NoneType";
    } else if (v instanceof String) {
      return "str";
    } else if (v instanceof Boolean) {
      return "bool";
    } else if (isIntegral(v)) {
      return "int";
    } else if (isFloat(v)) {
      return "float";
    } else if (v instanceof List) {
      return "list";
    } else if (v instanceof Map) {
      return "dict";
    } else if (v instanceof Undefined) {
      return "undefined";
    } else if (v instanceof Namespace) {
      return "namespace";
    } else if (v instanceof Loop) {
      return "loop";
    } else if (v instanceof Macro) {
      return "macro";
    } else if (v instanceof BoundMethod || v instanceof Global) {
      return "function";
    }
    return v.getClass().getSimpleName();
  }

  // ---- truth, text

  static boolean truthy(Object v) {
    if (v == null || v instanceof Undefined) {
      return false;
    } else if (v instanceof Boolean b) {
      return b;
    } else if (v instanceof String s) {
      return !s.isEmpty();
    } else if (isIntegral(v)) {
      return v instanceof BigInteger b ? b.signum() != 0 : ((Number) v).longValue() != 0;
    } else if (isFloat(v)) {
      return ((Number) v).doubleValue() != 0;
    } else if (v instanceof Collection<?> c) {
      return !c.isEmpty();
    } else if (v instanceof Map<?, ?> m) {
      return !m.isEmpty();
    }
    return true;
  }

  /** Python's str(): what {{ value }} renders. */
  static String str(Object v) {
    if (v instanceof String s) {
      return s;
    }
    StringBuilder sb = new StringBuilder();
    appendStr(sb, v, 0);
    return sb.toString();
  }

  /** Python's repr(). */
  static String repr(Object v) {
    StringBuilder sb = new StringBuilder();
    appendRepr(sb, v, 0);
    return sb.toString();
  }

  private static void appendStr(StringBuilder sb, Object v, int depth) {
    if (v == null) {
      sb.append("None");
    } else if (v instanceof String s) {
      sb.append(s);
    } else if (v instanceof Boolean b) {
      sb.append(b ? "True" : "False");
    } else if (isIntegral(v)) {
      sb.append(v);
    } else if (isFloat(v)) {
      sb.append(Py.floatRepr(((Number) v).doubleValue()));
    } else if (v instanceof Undefined) {
      sb.append("");
    } else if (v instanceof List<?> || v instanceof Map<?, ?>) {
      appendRepr(sb, v, depth);
    } else if (v instanceof Namespace ns) {
      sb.append("<Namespace ");
      appendRepr(sb, ns.attrs, depth + 1);
      sb.append('>');
    } else if (v instanceof Loop l) {
      sb.append("<LoopContext ").append(l.index0 + 1).append('/').append(l.items.size()).append('>');
    } else if (v instanceof Macro m) {
      sb.append("<Macro '").append(m.def().name()).append("'>");
    } else if (v instanceof BoundMethod m) {
      sb.append("<built-in method ").append(m.name()).append('>');
    } else if (v instanceof Global g) {
      sb.append("<function ").append(g.name().toLowerCase(java.util.Locale.ROOT)).append('>');
    } else {
      sb.append(v);
    }
  }

  private static void appendRepr(StringBuilder sb, Object v, int depth) {
    if (depth > MAX_DATA_DEPTH) {
      throw new EvalError("value nests deeper than " + MAX_DATA_DEPTH + " levels");
    }
    if (v instanceof String s) {
      sb.append(Py.repr(s));
    } else if (v instanceof Undefined) {
      sb.append("Undefined");
    } else if (v instanceof List<?> list) {
      sb.append('[');
      for (int k = 0; k < list.size(); k++) {
        if (k > 0) {
          sb.append(", ");
        }
        appendRepr(sb, list.get(k), depth + 1);
      }
      sb.append(']');
    } else if (v instanceof Map<?, ?> map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : map.entrySet()) {
        if (!first) {
          sb.append(", ");
        }
        first = false;
        appendRepr(sb, e.getKey(), depth + 1);
        sb.append(": ");
        appendRepr(sb, e.getValue(), depth + 1);
      }
      sb.append('}');
    } else {
      appendStr(sb, v, depth);
    }
  }

  // ---- equality, order

  /** Python's ==: 1 == 1.0 == True, lists and dicts compared element by element. */
  static boolean eq(Object a, Object b) {
    return eq(a, b, 0);
  }

  private static boolean eq(Object a, Object b, int depth) {
    if (depth > MAX_DATA_DEPTH) {
      throw new EvalError("value nests deeper than " + MAX_DATA_DEPTH + " levels");
    }
    if (a == b) {
      return true;
    }
    if (a == null || b == null) {
      return false;
    }
    if (a instanceof Undefined || b instanceof Undefined) {
      return a instanceof Undefined && b instanceof Undefined;
    }
    if (isNumeric(a) && isNumeric(b)) {
      if (isFloat(a) || isFloat(b)) {
        return toDouble(a) == toDouble(b);
      }
      if (a instanceof BigInteger || b instanceof BigInteger) {
        return toBig(a).equals(toBig(b));
      }
      return toLong(a) == toLong(b);
    }
    if (a instanceof String || b instanceof String) {
      return a.equals(b);
    }
    if (a instanceof List<?> x && b instanceof List<?> y) {
      if (x.size() != y.size()) {
        return false;
      }
      for (int k = 0; k < x.size(); k++) {
        if (!eq(x.get(k), y.get(k), depth + 1)) {
          return false;
        }
      }
      return true;
    }
    if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
      if (x.size() != y.size()) {
        return false;
      }
      for (Map.Entry<?, ?> e : x.entrySet()) {
        Object other = mapGet(y, e.getKey());
        if (other == MISSING || !eq(e.getValue(), other, depth + 1)) {
          return false;
        }
      }
      return true;
    }
    return a.equals(b);
  }

  private static BigInteger toBig(Object v) {
    return v instanceof BigInteger b ? b : BigInteger.valueOf(toLong(v));
  }

  /** Python's ordering of two numbers, two strings (by code point) or two lists. */
  static int compare(Object a, Object b, String op) {
    if (isNumeric(a) && isNumeric(b)) {
      if (isFloat(a) || isFloat(b)) {
        return Double.compare(toDouble(a), toDouble(b));
      }
      return toBig(a).compareTo(toBig(b));
    }
    if (a instanceof String x && b instanceof String y) {
      return compareCodePoints(x, y);
    }
    if (a instanceof List<?> x && b instanceof List<?> y) {
      for (int k = 0; k < Math.min(x.size(), y.size()); k++) {
        if (!eq(x.get(k), y.get(k))) {
          return compare(x.get(k), y.get(k), op);
        }
      }
      return Integer.compare(x.size(), y.size());
    }
    if (a instanceof Undefined u) {
      throw new EvalError(u.hint);
    }
    if (b instanceof Undefined u) {
      throw new EvalError(u.hint);
    }
    throw new EvalError("'" + op + "' is not supported between '" + typeName(a) + "' and '" + typeName(b) + "'");
  }

  static int compareCodePoints(String x, String y) {
    int i = 0;
    int j = 0;
    while (i < x.length() && j < y.length()) {
      int a = x.codePointAt(i);
      int b = y.codePointAt(j);
      if (a != b) {
        return Integer.compare(a, b);
      }
      i += Character.charCount(a);
      j += Character.charCount(b);
    }
    return Integer.compare(x.length() - i, y.length() - j);
  }

  // ---- arithmetic

  static Object arith(String op, Object a, Object b) {
    if (a instanceof Undefined u) {
      throw new EvalError(u.hint);
    }
    if (b instanceof Undefined u) {
      throw new EvalError(u.hint);
    }
    if (isNumeric(a) && isNumeric(b)) {
      return numeric(op, a, b);
    }
    switch (op) {
      case "+" -> {
        if (a instanceof String x && b instanceof String y) {
          return x + y;
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
          List<Object> out = new ArrayList<>(x);
          out.addAll(y);
          return out;
        }
      }
      case "*" -> {
        if ((a instanceof String || a instanceof List) && (isIntegral(b) || b instanceof Boolean)) {
          return repeat(a, toLong(b));
        }
        if ((b instanceof String || b instanceof List) && (isIntegral(a) || a instanceof Boolean)) {
          return repeat(b, toLong(a));
        }
      }
      default -> { }
    }
    throw new EvalError("unsupported operand types for " + op + ": '" + typeName(a) + "' and '" + typeName(b) + "'");
  }

  private static Object repeat(Object v, long times) {
    long unit = v instanceof String s ? s.length() : ((List<?>) v).size();
    if (times > 0 && unit > 0 && times > 100_000_000L / unit) {
      throw new EvalError("repetition result is too large");
    }
    if (v instanceof String s) {
      return times <= 0 ? "" : s.repeat((int) times);
    }
    List<Object> out = new ArrayList<>();
    for (long k = 0; k < times; k++) {
      out.addAll((List<?>) v);
    }
    return out;
  }

  private static Object numeric(String op, Object a, Object b) {
    boolean ints = !isFloat(a) && !isFloat(b);
    if (ints && !op.equals("/")) {
      long x = toLong(a);
      long y = toLong(b);
      try {
        switch (op) {
          case "+":
            return Math.addExact(x, y);
          case "-":
            return Math.subtractExact(x, y);
          case "*":
            return Math.multiplyExact(x, y);
          case "//":
            if (y == 0) {
              throw new EvalError("integer division by zero");
            }
            return Math.floorDiv(x, y);
          case "%":
            if (y == 0) {
              throw new EvalError("integer modulo by zero");
            }
            return Math.floorMod(x, y);
          case "**":
            if (y >= 0) {
              return BigInteger.valueOf(x).pow((int) Math.min(y, 100_000)).longValueExact();
            }
            return Math.pow(x, y);
          default:
            break;
        }
      } catch (ArithmeticException e) {
        throw new EvalError("integer overflow in " + x + " " + op + " " + y);
      }
    }
    double x = toDouble(a);
    double y = toDouble(b);
    switch (op) {
      case "+":
        return x + y;
      case "-":
        return x - y;
      case "*":
        return x * y;
      case "/":
        if (y == 0) {
          throw new EvalError("division by zero");
        }
        return x / y;
      case "//":
        if (y == 0) {
          throw new EvalError("float floor division by zero");
        }
        return Math.floor(x / y);
      case "%":
        if (y == 0) {
          throw new EvalError("float modulo by zero");
        }
        double r = x % y;
        return r != 0 && (r < 0) != (y < 0) ? r + y : r;
      case "**":
        return Math.pow(x, y);
      default:
        throw new EvalError("unknown operator " + op);
    }
  }

  static Object negate(Object v) {
    if (v instanceof Double d) {
      return -d;
    }
    if (isFloat(v)) {
      return -toDouble(v);
    }
    if (isIntegral(v) || v instanceof Boolean) {
      long x = toLong(v);
      if (x == Long.MIN_VALUE) {
        throw new EvalError("integer overflow in -" + x);
      }
      return -x;
    }
    if (v instanceof Undefined u) {
      throw new EvalError(u.hint);
    }
    throw new EvalError("bad operand type for unary -: '" + typeName(v) + "'");
  }

  // ---- containers

  /** Marks a key absent from a map (a present key may hold null). */
  static final Object MISSING = new Object();

  /** map.get(key) that tells absent from null and finds 1 among keys 1L or 1.0. */
  static Object mapGet(Map<?, ?> map, Object key) {
    Object v = map.get(key);
    if (v != null || map.containsKey(key)) {
      return v;
    }
    if (isNumeric(key)) {
      for (Map.Entry<?, ?> e : map.entrySet()) {
        if (isNumeric(e.getKey()) && eq(e.getKey(), key)) {
          return e.getValue();
        }
      }
    }
    return MISSING;
  }

  /** Python's {@code item in container}. */
  static boolean contains(Object container, Object item) {
    if (container instanceof String s) {
      if (!(item instanceof String sub)) {
        throw new EvalError("'in <string>' requires a string as left operand, not " + typeName(item));
      }
      return s.contains(sub);
    }
    if (container instanceof List<?> list) {
      for (Object o : list) {
        if (eq(o, item)) {
          return true;
        }
      }
      return false;
    }
    if (container instanceof Map<?, ?> map) {
      return mapGet(map, item) != MISSING;
    }
    if (container instanceof Undefined) {
      return false;
    }
    throw new EvalError("argument of type '" + typeName(container) + "' is not iterable");
  }

  /** The items a for loop visits: a list's elements, a dict's keys, a string's characters. */
  @SuppressWarnings("unchecked")
  static List<Object> iterate(Object v) {
    if (v instanceof List<?> list) {
      return (List<Object>) list;
    }
    if (v instanceof Map<?, ?> map) {
      return new ArrayList<>(map.keySet());
    }
    if (v instanceof String s) {
      List<Object> out = new ArrayList<>();
      s.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
      return out;
    }
    if (v instanceof Undefined) {
      return Collections.emptyList();
    }
    if (v instanceof Collection<?> c) {
      return new ArrayList<>(c);
    }
    throw new EvalError("'" + typeName(v) + "' object is not iterable");
  }

  static long length(Object v) {
    if (v instanceof String s) {
      return Py.length(s);
    } else if (v instanceof Collection<?> c) {
      return c.size();
    } else if (v instanceof Map<?, ?> m) {
      return m.size();
    } else if (v instanceof Undefined) {
      return 0;
    }
    throw new EvalError("object of type '" + typeName(v) + "' has no length");
  }

  /** {@code obj.name}: methods first, then a dict's key; anything missing is undefined. */
  static Object getAttr(Object obj, String name) {
    if (obj instanceof Undefined) {
      return obj;
    }
    if (name.startsWith("_")) {
      return new Undefined("access to attribute '" + name + "' is not allowed");
    }
    if (obj instanceof Map<?, ?> map) {
      if (DICT_METHODS.contains(name)) {
        return new BoundMethod(obj, name);
      }
      Object v = mapGet(map, name);
      return v != MISSING ? v : new Undefined("'dict object' has no attribute '" + name + "'");
    }
    if (obj instanceof Namespace ns) {
      Object v = ns.attrs.getOrDefault(name, MISSING);
      return v != MISSING ? v : new Undefined("namespace has no attribute '" + name + "'");
    }
    if (obj instanceof Loop loop) {
      return loop.attr(name);
    }
    if (obj instanceof String && STR_METHODS.contains(name)) {
      return new BoundMethod(obj, name);
    }
    return new Undefined("'" + typeName(obj) + " object' has no attribute '" + name + "'");
  }

  /** {@code obj[key]}: a dict's key, a list's or string's index (negative from the end). */
  static Object getItem(Object obj, Object key) {
    if (obj instanceof Undefined) {
      return obj;
    }
    if (obj instanceof Map<?, ?> map) {
      Object v = mapGet(map, key);
      if (v != MISSING) {
        return v;
      }
      if (key instanceof String name && DICT_METHODS.contains(name)) {
        return new BoundMethod(obj, name);
      }
      return new Undefined("'dict object' has no attribute " + repr(key));
    }
    if ((obj instanceof List<?> || obj instanceof String) && (isIntegral(key) || key instanceof Boolean)) {
      long k = toLong(key);
      if (obj instanceof List<?> list) {
        long idx = k < 0 ? k + list.size() : k;
        return idx >= 0 && idx < list.size() ? list.get((int) idx)
            : new Undefined("list index " + k + " out of range");
      }
      int[] cps = Py.codePoints((String) obj);
      long idx = k < 0 ? k + cps.length : k;
      return idx >= 0 && idx < cps.length ? new String(cps, (int) idx, 1)
          : new Undefined("string index " + k + " out of range");
    }
    if (key instanceof String name) {
      return getAttr(obj, name);
    }
    return new Undefined("'" + typeName(obj) + " object' has no item " + repr(key));
  }

  /** {@code obj[start:stop:step]} of a list or string, with Python's clamping. */
  static Object slice(Object obj, Object start, Object stop, Object step) {
    if (obj instanceof Undefined) {
      return obj;
    }
    Long st = sliceBound(step);
    long s = st == null ? 1 : st;
    if (s == 0) {
      throw new EvalError("slice step cannot be zero");
    }
    if (obj instanceof List<?> list) {
      List<Object> out = new ArrayList<>();
      forSlice(list.size(), sliceBound(start), sliceBound(stop), s, k -> out.add(list.get(k)));
      return out;
    }
    if (obj instanceof String str) {
      int[] cps = Py.codePoints(str);
      StringBuilder sb = new StringBuilder();
      forSlice(cps.length, sliceBound(start), sliceBound(stop), s, k -> sb.appendCodePoint(cps[k]));
      return sb.toString();
    }
    throw new EvalError("'" + typeName(obj) + "' object cannot be sliced");
  }

  private static Long sliceBound(Object v) {
    if (v == null) {
      return null;
    }
    return requireInt(v, "a slice index");
  }

  private static void forSlice(int n, Long start, Long stop, long step, java.util.function.IntConsumer visit) {
    long lo;
    long hi;
    if (step > 0) {
      lo = start == null ? 0 : clamp(start, n, 0, n);
      hi = stop == null ? n : clamp(stop, n, 0, n);
      for (long k = lo; k < hi; k += step) {
        visit.accept((int) k);
      }
    } else {
      lo = start == null ? n - 1 : clamp(start, n, -1, n - 1);
      hi = stop == null ? -1 : clamp(stop, n, -1, n - 1);
      for (long k = lo; k > hi; k += step) {
        visit.accept((int) k);
      }
    }
  }

  private static long clamp(long v, int n, long min, long max) {
    if (v < 0) {
      v += n;
    }
    return Math.max(min, Math.min(max, v));
  }
}
