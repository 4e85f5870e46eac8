package org.hybrimoe.chat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.hybrimoe.chat.Values.BoundMethod;
import org.hybrimoe.chat.Values.Loop;

/**
 * The Python methods templates call on values: str (strip, split, startswith, format, ...), dict
 * (items, keys, values, get) and loop.cycle. None of them mutates its target.
 */
final class Methods {
  private Methods() {}

  static Object call(BoundMethod m, CallArgs args) {
    Object target = m.target();
    if (target instanceof String s) {
      return callString(s, m.name(), args);
    }
    if (target instanceof Map<?, ?> map) {
      return callDict(map, m.name(), args);
    }
    if (target instanceof Loop loop && m.name().equals("cycle")) {
      args.noKeywords("loop.cycle");
      if (args.positional().isEmpty()) {
        throw new EvalError("loop.cycle() needs at least one value");
      }
      return args.positional().get(loop.index0 % args.positional().size());
    }
    throw new EvalError("'" + Values.typeName(target) + "' has no method '" + m.name() + "'");
  }

  private static String optStr(Object v, String what) {
    if (v == null) {
      return null;
    }
    if (v instanceof String s) {
      return s;
    }
    throw new EvalError(what + " must be a string or none, got " + Values.typeName(v));
  }

  private static String reqStr(Object v, String what) {
    if (v instanceof String s) {
      return s;
    }
    throw new EvalError(what + " must be a string, got " + Values.typeName(v));
  }

  private static Object callString(String s, String name, CallArgs a) {
    String fn = "str." + name + "()";
    switch (name) {
      case "strip", "lstrip", "rstrip": {
        a.check(fn, "chars");
        String chars = optStr(a.get(0, "chars", null), "the characters to strip");
        return Py.strip(s, chars, !name.equals("rstrip"), !name.equals("lstrip"));
      }
      case "split", "rsplit": {
        a.check(fn, "sep", "maxsplit");
        String sep = optStr(a.get(0, "sep", null), "the separator");
        long max = Values.requireInt(a.get(1, "maxsplit", -1L), "maxsplit");
        return name.equals("split") ? Py.split(s, sep, max) : Py.rsplit(s, sep, max);
      }
      case "splitlines": {
        a.check(fn, "keepends");
        boolean keep = Values.truthy(a.get(0, "keepends", false));
        List<Object> out = new ArrayList<>();
        int start = 0;
        for (int k = 0; k < s.length(); k++) {
          char c = s.charAt(k);
          if (c == '\n' || c == '\r') {
            int end = k;
            if (c == '\r' && k + 1 < s.length() && s.charAt(k + 1) == '\n') {
              k++;
            }
            out.add(s.substring(start, keep ? k + 1 : end));
            start = k + 1;
          }
        }
        if (start < s.length()) {
          out.add(s.substring(start));
        }
        return out;
      }
      case "startswith", "endswith": {
        a.check(fn, "prefix");
        Object p = a.get(0, "prefix", Values.MISSING);
        if (p == Values.MISSING) {
          throw new EvalError(fn + " needs an argument");
        }
        List<Object> options = p instanceof List<?> l ? new ArrayList<>(l) : List.of(p);
        for (Object o : options) {
          String x = reqStr(o, "the argument of " + fn);
          if (name.equals("startswith") ? s.startsWith(x) : s.endsWith(x)) {
            return true;
          }
        }
        return false;
      }
      case "upper":
        a.check(fn);
        return Py.upper(s);
      case "lower":
        a.check(fn);
        return Py.lower(s);
      case "title":
        a.check(fn);
        return Py.title(s);
      case "capitalize":
        a.check(fn);
        return Py.capitalize(s);
      case "replace": {
        a.check(fn, "old", "new", "count");
        String old = reqStr(a.get(0, "old", null), "the old text");
        String rep = reqStr(a.get(1, "new", null), "the new text");
        return Py.replace(s, old, rep, Values.requireInt(a.get(2, "count", -1L), "count"));
      }
      case "find", "rfind", "index", "count": {
        a.check(fn, "sub");
        String sub = reqStr(a.get(0, "sub", null), "the substring");
        if (name.equals("count")) {
          if (sub.isEmpty()) {
            return (long) Py.length(s) + 1;
          }
          long n = 0;
          for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
          }
          return n;
        }
        int at = name.equals("rfind") ? s.lastIndexOf(sub) : s.indexOf(sub);
        if (at < 0 && name.equals("index")) {
          throw new EvalError("substring not found");
        }
        return at < 0 ? -1L : (long) s.codePointCount(0, at);
      }
      case "join": {
        a.check(fn, "iterable");
        StringBuilder sb = new StringBuilder();
        List<Object> items = Values.iterate(a.get(0, "iterable", null));
        for (int k = 0; k < items.size(); k++) {
          if (k > 0) {
            sb.append(s);
          }
          sb.append(reqStr(items.get(k), "item " + k + " of str.join()"));
        }
        return sb.toString();
      }
      case "format":
        return format(s, a);
      case "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper": {
        a.check(fn);
        return classify(s, name);
      }
      case "zfill": {
        a.check(fn, "width");
        long width = Values.requireInt(a.get(0, "width", 0L), "width");
        int len = Py.length(s);
        if (len >= width) {
          return s;
        }
        boolean signed = !s.isEmpty() && (s.charAt(0) == '-' || s.charAt(0) == '+');
        String zeros = "0".repeat((int) (width - len));
        return signed ? s.charAt(0) + zeros + s.substring(1) : zeros + s;
      }
      default:
        throw new EvalError("str has no method '" + name + "'");
    }
  }

  private static boolean classify(String s, String name) {
    if (s.isEmpty()) {
      return false;
    }
    if (name.equals("islower") || name.equals("isupper")) {
      boolean cased = false;
      for (int cp : Py.codePoints(s)) {
        if (Character.isUpperCase(cp) || Character.isTitleCase(cp)) {
          if (name.equals("islower")) {
            return false;
          }
          cased = true;
        } else if (Character.isLowerCase(cp)) {
          if (name.equals("isupper")) {
            return false;
          }
          cased = true;
        }
      }
      return cased;
    }
    for (int cp : Py.codePoints(s)) {
      boolean ok = switch (name) {
        case "isdigit" -> Character.isDigit(cp);
        case "isalpha" -> Character.isLetter(cp);
        case "isalnum" -> Character.isLetterOrDigit(cp);
        default -> Py.isSpace(cp);
      };
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  /** str.format with {}, {0}, {name}, {{ and }}, and !s / !r conversions; no format specs. */
  private static String format(String s, CallArgs a) {
    StringBuilder sb = new StringBuilder();
    int auto = 0;
    for (int k = 0; k < s.length(); k++) {
      char c = s.charAt(k);
      if (c == '}') {
        if (k + 1 < s.length() && s.charAt(k + 1) == '}') {
          sb.append('}');
          k++;
          continue;
        }
        throw new EvalError("single '}' encountered in format string");
      }
      if (c != '{') {
        sb.append(c);
        continue;
      }
      if (k + 1 < s.length() && s.charAt(k + 1) == '{') {
        sb.append('{');
        k++;
        continue;
      }
      int close = s.indexOf('}', k);
      if (close < 0) {
        throw new EvalError("single '{' encountered in format string");
      }
      String field = s.substring(k + 1, close);
      k = close;
      String conversion = "s";
      int bang = field.indexOf('!');
      if (bang >= 0) {
        conversion = field.substring(bang + 1);
        field = field.substring(0, bang);
      }
      if (field.contains(":")) {
        throw new EvalError("format specs ('" + field + "') are not supported by str.format() here");
      }
      Object v;
      if (field.isEmpty()) {
        v = positional(a, auto++);
      } else if (field.chars().allMatch(Character::isDigit)) {
        v = positional(a, Integer.parseInt(field));
      } else {
        v = a.keywords().getOrDefault(field, Values.MISSING);
        if (v == Values.MISSING) {
          throw new EvalError("str.format() has no argument named '" + field + "'");
        }
      }
      sb.append(conversion.equals("r") ? Values.repr(v) : Values.str(v));
    }
    return sb.toString();
  }

  private static Object positional(CallArgs a, int k) {
    if (k >= a.positional().size()) {
      throw new EvalError("str.format() has no positional argument " + k);
    }
    return a.positional().get(k);
  }

  private static Object callDict(Map<?, ?> map, String name, CallArgs a) {
    String fn = "dict." + name + "()";
    switch (name) {
      case "items": {
        a.check(fn);
        List<Object> out = new ArrayList<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
          out.add(pair(e.getKey(), e.getValue()));
        }
        return out;
      }
      case "keys":
        a.check(fn);
        return new ArrayList<Object>(map.keySet());
      case "values":
        a.check(fn);
        return new ArrayList<Object>(map.values());
      case "get": {
        a.check(fn, "key", "default");
        Object v = Values.mapGet(map, a.get(0, "key", null));
        return v != Values.MISSING ? v : a.get(1, "default", null);
      }
      default:
        throw new EvalError("dict has no method '" + name + "'");
    }
  }

  static List<Object> pair(Object a, Object b) {
    List<Object> p = new ArrayList<>(2);
    p.add(a);
    p.add(b);
    return p;
  }

  /** Evaluated call arguments. */
  record CallArgs(List<Object> positional, Map<String, Object> keywords) {
    static final CallArgs NONE = new CallArgs(List.of(), new LinkedHashMap<>());

    /** Argument k, or the keyword name, or def when neither was given. */
    Object get(int k, String name, Object def) {
      if (k < positional.size()) {
        return positional.get(k);
      }
      return keywords.containsKey(name) ? keywords.get(name) : def;
    }

    /** Refuses more positional arguments than params and keywords that are not params. */
    void check(String fn, String... params) {
      if (positional.size() > params.length) {
        throw new EvalError(fn + " takes at most " + params.length + " argument" + (params.length == 1 ? "" : "s")
            + ", got " + positional.size());
      }
      for (String k : keywords.keySet()) {
        int at = List.of(params).indexOf(k);
        if (at < 0) {
          throw new EvalError(fn + " got an unexpected keyword argument '" + k + "'");
        }
        if (at < positional.size()) {
          throw new EvalError(fn + " got argument '" + k + "' twice");
        }
      }
    }

    void noKeywords(String fn) {
      if (!keywords.isEmpty()) {
        throw new EvalError(fn + " takes no keyword arguments");
      }
    }
  }
}
