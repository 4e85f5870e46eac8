package org.hybrimoe.chat;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.hybrimoe.chat.Methods.CallArgs;
import org.hybrimoe.chat.Values.Undefined;

/** Jinja's tests ({@code value is name args}), with Python's view of the types. */
final class IsTests {
  private IsTests() {}

  static boolean apply(String name, Object v, CallArgs a) {
    switch (name) {
      case "defined":
        return none(name, a, !(v instanceof Undefined));
      case "undefined":
        return none(name, a, v instanceof Undefined);
      case "none":
        return none(name, a, v == null);
      case "boolean":
        return none(name, a, v instanceof Boolean);
      case "true":
        return none(name, a, Boolean.TRUE.equals(v));
      case "false":
        return none(name, a, Boolean.FALSE.equals(v));
      case "integer":
        return none(name, a, Values.isIntegral(v));
      case "float":
        return none(name, a, Values.isFloat(v));
      case "number":
        // Python's numbers.Number, which bool belongs to.
        return none(name, a, Values.isNumeric(v));
      case "string":
        return none(name, a, v instanceof String);
      case "mapping":
        return none(name, a, v instanceof Map);
      case "iterable":
        // Python's iter() accepts Jinja's Undefined, which iterates as empty.
        return none(name, a, v instanceof String || v instanceof Collection || v instanceof Map || v instanceof Undefined);
      case "sequence":
        return none(name, a, v instanceof String || v instanceof List || v instanceof Map || v instanceof Undefined);
      case "callable":
        return none(name, a, v instanceof Values.Macro || v instanceof Values.BoundMethod || v instanceof Values.Global);
      case "escaped":
        return none(name, a, false);
      case "lower":
        return none(name, a, v instanceof String s && !s.equals(Py.upper(s)) && s.equals(Py.lower(s)));
      case "upper":
        return none(name, a, v instanceof String s && !s.equals(Py.lower(s)) && s.equals(Py.upper(s)));
      case "even":
      case "odd": {
        none(name, a, true);
        if (!Values.isNumeric(v)) {
          throw new EvalError("test '" + name + "' needs a number, got " + Values.typeName(v));
        }
        boolean even = Values.eq(Values.arith("%", v, 2L), 0L);
        return name.equals("even") == even;
      }
      case "divisibleby": {
        Object num = one(name, a);
        if (!Values.isNumeric(v) || !Values.isNumeric(num)) {
          throw new EvalError("test 'divisibleby' needs numbers, got " + Values.typeName(v) + " and " + Values.typeName(num));
        }
        return Values.eq(Values.arith("%", v, num), 0L);
      }
      case "sameas": {
        Object other = one(name, a);
        if (v == null || other == null || v instanceof Boolean || other instanceof Boolean) {
          return v == null ? other == null : v.equals(other);
        }
        return v == other;
      }
      case "in":
        return Values.contains(one(name, a), v);
      case "eq", "equalto", "==":
        return Values.eq(v, one(name, a));
      case "ne", "!=":
        return !Values.eq(v, one(name, a));
      case "lt", "lessthan", "<":
        return Values.compare(v, one(name, a), "<") < 0;
      case "le", "<=":
        return Values.compare(v, one(name, a), "<=") <= 0;
      case "gt", "greaterthan", ">":
        return Values.compare(v, one(name, a), ">") > 0;
      case "ge", ">=":
        return Values.compare(v, one(name, a), ">=") >= 0;
      default:
        throw new EvalError("unknown test '" + name + "'");
    }
  }

  private static boolean none(String name, CallArgs a, boolean result) {
    if (!a.positional().isEmpty() || !a.keywords().isEmpty()) {
      throw new EvalError("test '" + name + "' takes no arguments");
    }
    return result;
  }

  private static Object one(String name, CallArgs a) {
    if (a.positional().size() != 1 || !a.keywords().isEmpty()) {
      throw new EvalError("test '" + name + "' takes exactly one argument");
    }
    return a.positional().get(0);
  }
}
