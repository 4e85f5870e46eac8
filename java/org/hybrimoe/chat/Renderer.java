package org.hybrimoe.chat;

import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.hybrimoe.chat.Methods.CallArgs;
import org.hybrimoe.chat.Node.Args;
import org.hybrimoe.chat.Node.Expr;
import org.hybrimoe.chat.Node.FilterCall;
import org.hybrimoe.chat.Node.Operand;
import org.hybrimoe.chat.Node.Stmt;
import org.hybrimoe.chat.Node.Target;
import org.hybrimoe.chat.Values.BoundMethod;
import org.hybrimoe.chat.Values.Global;
import org.hybrimoe.chat.Values.Loop;
import org.hybrimoe.chat.Values.Macro;
import org.hybrimoe.chat.Values.Namespace;
import org.hybrimoe.chat.Values.Undefined;

/**
 * One rendering of a compiled template: walks the tree with a stack of scopes. Jinja's scoping:
 * a for loop and a macro call open a scope (a {@code set} inside stays inside, which is why
 * templates use namespace objects), an if does not. Names resolve through the scopes, then the
 * caller's context, then the globals. Not thread-safe; {@link ChatTemplate#render} makes one per
 * call.
 */
final class Renderer {
  /** Deepest chain of macro calls (recursion included). */
  static final int MAX_CALL_DEPTH = 50;
  /** Largest list range() makes, as Jinja's sandbox limits it. */
  static final int MAX_RANGE = 100_000;

  private static final Map<String, Global> GLOBALS = Map.of(
      "range", Global.RANGE, "namespace", Global.NAMESPACE, "raise_exception", Global.RAISE_EXCEPTION,
      "strftime_now", Global.STRFTIME_NOW, "dict", Global.DICT);

  private enum Flow { NORMAL, BREAK, CONTINUE }

  /** A scope: variables set here, and the scope it sits in (null for the template's top). */
  private static final class Scope {
    final Scope parent;
    final Map<String, Object> vars = new HashMap<>();

    Scope(Scope parent) {
      this.parent = parent;
    }
  }

  private final Map<String, ?> context;
  private final Scope root = new Scope(null);
  private Scope scope = root;
  private int callDepth;

  Renderer(Map<String, ?> context) {
    this.context = context == null ? Map.of() : context;
  }

  String render(List<Stmt> body) {
    StringBuilder out = new StringBuilder();
    exec(body, out);
    return out.toString();
  }

  // ---- statements

  private Flow exec(List<Stmt> body, StringBuilder out) {
    for (Stmt s : body) {
      Flow f = exec(s, out);
      if (f != Flow.NORMAL) {
        return f;
      }
    }
    return Flow.NORMAL;
  }

  private Flow exec(Stmt s, StringBuilder out) {
    if (s instanceof Node.Text t) {
      out.append(t.text());
    } else if (s instanceof Node.Output o) {
      Object v = eval(o.expr());
      out.append(guard(o.pos(), () -> Values.str(v)));
    } else if (s instanceof Node.If f) {
      for (int k = 0; k < f.conditions().size(); k++) {
        if (Values.truthy(eval(f.conditions().get(k)))) {
          return exec(f.bodies().get(k), out);
        }
      }
      return exec(f.otherwise(), out);
    } else if (s instanceof Node.For f) {
      execFor(f, out);
    } else if (s instanceof Node.Set set) {
      assign(set.target(), eval(set.value()));
    } else if (s instanceof Node.SetBlock set) {
      StringBuilder sb = new StringBuilder();
      Flow f = exec(set.body(), sb);
      assign(set.target(), applyFilters(set.filters(), sb.toString()));
      return f;
    } else if (s instanceof Node.Macro m) {
      scope.vars.put(m.name(), new Macro(m));
    } else if (s instanceof Node.FilterBlock fb) {
      StringBuilder sb = new StringBuilder();
      Flow f = exec(fb.body(), sb);
      out.append(Values.str(applyFilters(fb.filters(), sb.toString())));
      return f;
    } else if (s instanceof Node.Break) {
      return Flow.BREAK;
    } else if (s instanceof Node.Continue) {
      return Flow.CONTINUE;
    }
    return Flow.NORMAL;
  }

  private Object applyFilters(List<FilterCall> filters, Object value) {
    Object v = value;
    for (FilterCall f : filters) {
      CallArgs args = evalArgs(f.args());
      Object in = v;
      v = guard(f.pos(), () -> Filters.apply(f.name(), in, args));
    }
    return v;
  }

  private void execFor(Node.For f, StringBuilder out) {
    Object iterable = eval(f.iterable());
    List<Object> items = guard(f.iterable().pos(), () -> Values.iterate(iterable));
    Scope outer = scope;
    scope = new Scope(outer);
    try {
      if (f.filter() != null) {
        List<Object> kept = new ArrayList<>();
        for (Object item : items) {
          bind(f.target(), item);
          if (Values.truthy(eval(f.filter()))) {
            kept.add(item);
          }
        }
        items = kept;
      } else {
        items = new ArrayList<>(items); // the body may not see later changes of the caller's list
      }
      Loop loop = new Loop(items);
      scope.vars.put("loop", loop);
      for (int k = 0; k < items.size(); k++) {
        loop.index0 = k;
        bind(f.target(), items.get(k));
        if (exec(f.body(), out) == Flow.BREAK) {
          break;
        }
      }
    } finally {
      scope = outer;
    }
    if (items.isEmpty()) {
      exec(f.otherwise(), out);
    }
  }

  private void bind(Target target, Object value) {
    if (target instanceof Node.NameTarget t) {
      scope.vars.put(t.name(), value);
    } else if (target instanceof Node.TupleTarget t) {
      List<Object> parts = guard(t.pos(), () -> Values.iterate(value));
      if (parts.size() != t.names().size()) {
        throw ChatTemplateException.at(t.pos(), "cannot unpack " + parts.size() + " value"
            + (parts.size() == 1 ? "" : "s") + " into " + t.names().size() + " names " + t.names());
      }
      for (int k = 0; k < parts.size(); k++) {
        scope.vars.put(t.names().get(k), parts.get(k));
      }
    } else {
      throw ChatTemplateException.at(target.pos(), "cannot assign to " + target);
    }
  }

  private void assign(Target target, Object value) {
    if (target instanceof Node.AttrTarget t) {
      Object obj = lookup(t.object());
      if (!(obj instanceof Namespace ns)) {
        throw ChatTemplateException.at(t.pos(), "cannot set attribute '" + t.attr() + "' of '" + t.object()
            + "': it is " + describeValue(obj) + ", and only namespace() objects can be assigned to");
      }
      ns.attrs.put(t.attr(), value);
    } else {
      bind(target, value);
    }
  }

  private static String describeValue(Object v) {
    return v instanceof Undefined ? "undefined" : "a " + Values.typeName(v);
  }

  // ---- expressions

  private Object lookup(String name) {
    for (Scope s = scope; s != null; s = s.parent) {
      Object v = s.vars.getOrDefault(name, Values.MISSING);
      if (v != Values.MISSING) {
        return v;
      }
    }
    if (context.containsKey(name)) {
      return context.get(name);
    }
    Global g = GLOBALS.get(name);
    return g != null ? g : new Undefined("'" + name + "' is undefined");
  }

  /** The value of an expression; one small method per node kind keeps deep trees cheap on the stack. */
  Object eval(Expr e) {
    if (e instanceof Node.Literal l) {
      return l.value();
    } else if (e instanceof Node.Name n) {
      return lookup(n.name());
    } else if (e instanceof Node.Attr a) {
      return Values.getAttr(eval(a.object()), a.name());
    } else if (e instanceof Node.Item it) {
      return evalItem(it);
    } else if (e instanceof Node.Slice sl) {
      return evalSlice(sl);
    } else if (e instanceof Node.Call c) {
      return evalCall(c);
    } else if (e instanceof Node.Filter f) {
      return evalFilter(f);
    } else if (e instanceof Node.Test t) {
      return evalTest(t);
    } else if (e instanceof Node.Logic l) {
      return evalLogic(l);
    } else if (e instanceof Node.Unary u) {
      return evalUnary(u);
    } else if (e instanceof Node.Binary b) {
      return evalBinary(b);
    } else if (e instanceof Node.Concat c) {
      return evalConcat(c);
    } else if (e instanceof Node.Compare c) {
      return evalCompare(c);
    } else if (e instanceof Node.Cond c) {
      return evalCond(c);
    } else if (e instanceof Node.ListExpr l) {
      return evalList(l);
    } else if (e instanceof Node.DictExpr d) {
      return evalDict(d);
    }
    throw ChatTemplateException.at(e.pos(), "cannot evaluate " + e.getClass().getSimpleName());
  }

  private Object evalItem(Node.Item it) {
    Object obj = eval(it.object());
    return Values.getItem(obj, eval(it.key()));
  }

  private Object evalSlice(Node.Slice sl) {
    Object obj = eval(sl.object());
    Object start = sl.start() == null ? null : eval(sl.start());
    Object stop = sl.stop() == null ? null : eval(sl.stop());
    Object step = sl.step() == null ? null : eval(sl.step());
    return guard(sl.pos(), () -> Values.slice(obj, start, stop, step));
  }

  private Object evalFilter(Node.Filter f) {
    Object v = eval(f.value());
    CallArgs args = evalArgs(f.args());
    return guard(f.pos(), () -> Filters.apply(f.name(), v, args));
  }

  private Object evalTest(Node.Test t) {
    Object v = eval(t.value());
    CallArgs args = evalArgs(t.args());
    boolean r = guard(t.pos(), () -> IsTests.apply(t.name(), v, args));
    return r != t.negated();
  }

  private Object evalLogic(Node.Logic l) {
    Object v = null;
    for (Expr operand : l.operands()) {
      v = eval(operand);
      if (Values.truthy(v) != l.and()) {
        return v;
      }
    }
    return v;
  }

  private Object evalUnary(Node.Unary u) {
    Object v = eval(u.operand());
    return switch (u.op()) {
      case "not" -> !Values.truthy(v);
      case "-" -> guard(u.pos(), () -> Values.negate(v));
      default -> guard(u.pos(), () -> {
        if (!Values.isNumeric(v)) {
          throw new EvalError("bad operand type for unary +: '" + Values.typeName(v) + "'");
        }
        return v;
      });
    };
  }

  private Object evalBinary(Node.Binary b) {
    Object v = eval(b.first());
    for (Operand o : b.rest()) {
      Object left = v;
      Object right = eval(o.expr());
      v = guard(o.pos(), () -> Values.arith(o.op(), left, right));
    }
    return v;
  }

  private Object evalConcat(Node.Concat c) {
    StringBuilder sb = new StringBuilder();
    for (Expr part : c.parts()) {
      Object v = eval(part);
      sb.append(guard(part.pos(), () -> Values.str(v)));
    }
    return sb.toString();
  }

  private Object evalCompare(Node.Compare c) {
    Object left = eval(c.first());
    for (Operand o : c.rest()) {
      Object l = left;
      Object r = eval(o.expr());
      if (!guard(o.pos(), () -> compare(o.op(), l, r))) {
        return false;
      }
      left = r;
    }
    return true;
  }

  private Object evalCond(Node.Cond c) {
    if (Values.truthy(eval(c.condition()))) {
      return eval(c.then());
    }
    return c.otherwise() == null ? new Undefined("the condition of the 'if' expression at " + c.pos() + " was false")
        : eval(c.otherwise());
  }

  private Object evalList(Node.ListExpr l) {
    List<Object> out = new ArrayList<>(l.items().size());
    for (Expr item : l.items()) {
      out.add(eval(item));
    }
    return out;
  }

  private Object evalDict(Node.DictExpr d) {
    Map<Object, Object> out = new LinkedHashMap<>();
    for (int k = 0; k < d.keys().size(); k++) {
      out.put(eval(d.keys().get(k)), eval(d.values().get(k)));
    }
    return out;
  }

  private static boolean compare(String op, Object l, Object r) {
    return switch (op) {
      case "==" -> Values.eq(l, r);
      case "!=" -> !Values.eq(l, r);
      case "<" -> Values.compare(l, r, op) < 0;
      case "<=" -> Values.compare(l, r, op) <= 0;
      case ">" -> Values.compare(l, r, op) > 0;
      case ">=" -> Values.compare(l, r, op) >= 0;
      case "in" -> Values.contains(r, l);
      case "not in" -> !Values.contains(r, l);
      default -> throw new EvalError("unknown comparison " + op);
    };
  }

  private CallArgs evalArgs(Args args) {
    if (args.size() == 0) {
      return CallArgs.NONE;
    }
    List<Object> positional = new ArrayList<>(args.positional().size());
    for (Expr x : args.positional()) {
      positional.add(eval(x));
    }
    Map<String, Object> keywords = new LinkedHashMap<>();
    for (int k = 0; k < args.names().size(); k++) {
      keywords.put(args.names().get(k), eval(args.named().get(k)));
    }
    return new CallArgs(positional, keywords);
  }

  private Object evalCall(Node.Call c) {
    Object callee = eval(c.callee());
    CallArgs args = evalArgs(c.args());
    if (callee instanceof BoundMethod m) {
      return guard(c.pos(), () -> Methods.call(m, args));
    }
    if (callee instanceof Macro m) {
      return callMacro(m.def(), args, c.pos());
    }
    if (callee instanceof Global g) {
      return guard(c.pos(), () -> callGlobal(g, args));
    }
    if (callee instanceof Undefined u) {
      if (c.callee() instanceof Node.Attr a) {
        Object target = eval(a.object());
        if (!(target instanceof Undefined)) {
          throw ChatTemplateException.at(a.pos(), Values.typeName(target) + " has no method '" + a.name() + "'");
        }
      }
      throw ChatTemplateException.at(c.callee().pos(), "cannot call an undefined value: " + u.hint);
    }
    throw ChatTemplateException.at(c.callee().pos(), "'" + Values.typeName(callee) + "' object is not callable");
  }

  private Object callMacro(Node.Macro def, CallArgs args, Pos pos) {
    if (callDepth >= MAX_CALL_DEPTH) {
      throw ChatTemplateException.at(pos, "macro calls nest deeper than " + MAX_CALL_DEPTH
          + " (calling '" + def.name() + "')");
    }
    List<String> params = def.params();
    if (args.positional().size() > params.size()) {
      throw ChatTemplateException.at(pos, "macro '" + def.name() + "' takes " + params.size() + " argument"
          + (params.size() == 1 ? "" : "s") + ", got " + args.positional().size());
    }
    for (String k : args.keywords().keySet()) {
      int at = params.indexOf(k);
      if (at < 0) {
        throw ChatTemplateException.at(pos, "macro '" + def.name() + "' has no parameter '" + k + "'");
      }
      if (at < args.positional().size()) {
        throw ChatTemplateException.at(pos, "macro '" + def.name() + "' got argument '" + k + "' twice");
      }
    }
    Scope saved = scope;
    scope = new Scope(root);
    callDepth++;
    try {
      for (int k = 0; k < params.size(); k++) {
        String p = params.get(k);
        Object v;
        if (k < args.positional().size()) {
          v = args.positional().get(k);
        } else if (args.keywords().containsKey(p)) {
          v = args.keywords().get(p);
        } else if (def.defaults().get(k) != null) {
          v = eval(def.defaults().get(k));
        } else {
          v = new Undefined("macro parameter '" + p + "' was not given");
        }
        scope.vars.put(p, v);
      }
      StringBuilder sb = new StringBuilder();
      exec(def.body(), sb);
      return sb.toString();
    } finally {
      callDepth--;
      scope = saved;
    }
  }

  private static Object callGlobal(Global g, CallArgs a) {
    switch (g) {
      case RAISE_EXCEPTION: {
        a.check("raise_exception", "message");
        throw ChatTemplateException.raised(Values.str(a.get(0, "message", "")));
      }
      case RANGE: {
        a.noKeywords("range");
        List<Object> p = a.positional();
        if (p.isEmpty() || p.size() > 3) {
          throw new EvalError("range() takes 1 to 3 arguments, got " + p.size());
        }
        long start = p.size() == 1 ? 0 : Values.requireInt(p.get(0), "range() start");
        long stop = Values.requireInt(p.get(p.size() == 1 ? 0 : 1), "range() stop");
        long step = p.size() == 3 ? Values.requireInt(p.get(2), "range() step") : 1;
        if (step == 0) {
          throw new EvalError("range() step must not be zero");
        }
        long count = step > 0 ? Math.max(0, (stop - start + step - 1) / step) : Math.max(0, (start - stop - step - 1) / -step);
        if (count > MAX_RANGE) {
          throw new EvalError("range() of " + count + " items is larger than the limit of " + MAX_RANGE);
        }
        List<Object> out = new ArrayList<>((int) count);
        for (long k = 0; k < count; k++) {
          out.add(start + k * step);
        }
        return out;
      }
      case NAMESPACE: {
        Namespace ns = new Namespace();
        for (Object p : a.positional()) {
          if (!(p instanceof Map<?, ?> m)) {
            throw new EvalError("namespace() takes keyword arguments or a dict, got " + Values.typeName(p));
          }
          m.forEach((k, v) -> ns.attrs.put(Values.str(k), v));
        }
        ns.attrs.putAll(a.keywords());
        return ns;
      }
      case DICT: {
        Map<Object, Object> out = new LinkedHashMap<>();
        for (Object p : a.positional()) {
          if (!(p instanceof Map<?, ?> m)) {
            throw new EvalError("dict() takes keyword arguments or a dict, got " + Values.typeName(p));
          }
          out.putAll(m);
        }
        out.putAll(a.keywords());
        return out;
      }
      case STRFTIME_NOW: {
        a.check("strftime_now", "format");
        Object f = a.get(0, "format", null);
        if (!(f instanceof String fmt)) {
          throw new EvalError("strftime_now() needs a format string");
        }
        return strftime(fmt, ZonedDateTime.now());
      }
      default:
        throw new EvalError("unknown function " + g);
    }
  }

  /** Python's strftime for the directives chat templates use (C locale). */
  static String strftime(String fmt, ZonedDateTime t) {
    StringBuilder sb = new StringBuilder();
    for (int k = 0; k < fmt.length(); k++) {
      char c = fmt.charAt(k);
      if (c != '%' || k + 1 >= fmt.length()) {
        sb.append(c);
        continue;
      }
      char d = fmt.charAt(++k);
      switch (d) {
        case 'Y' -> sb.append(t.getYear());
        case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
        case 'm' -> sb.append(String.format("%02d", t.getMonthValue()));
        case 'd' -> sb.append(String.format("%02d", t.getDayOfMonth()));
        case 'e' -> sb.append(String.format("%2d", t.getDayOfMonth()));
        case 'H' -> sb.append(String.format("%02d", t.getHour()));
        case 'I' -> sb.append(String.format("%02d", (t.getHour() + 11) % 12 + 1));
        case 'M' -> sb.append(String.format("%02d", t.getMinute()));
        case 'S' -> sb.append(String.format("%02d", t.getSecond()));
        case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
        case 'j' -> sb.append(String.format("%03d", t.getDayOfYear()));
        case 'b' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
        case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
        case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
        case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
        case '%' -> sb.append('%');
        default -> throw new EvalError("strftime directive '%" + d + "' is not supported");
      }
    }
    return sb.toString();
  }

  /** Runs a value operation, turning its EvalError into an error at pos. */
  private static <T> T guard(Pos pos, java.util.function.Supplier<T> op) {
    try {
      return op.get();
    } catch (EvalError e) {
      throw ChatTemplateException.at(pos, e.getMessage());
    }
  }
}
