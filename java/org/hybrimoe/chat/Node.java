package org.hybrimoe.chat;

import java.util.List;

/**
 * The immutable syntax tree of a compiled template: statements ({@link Stmt}) hold text, output
 * and control flow; expressions ({@link Expr}) compute values. Every node keeps the source
 * position that runtime errors name. Lists are unmodifiable; optional children are null.
 */
sealed interface Node permits Node.Stmt, Node.Expr, Node.Target {
  Pos pos();

  /** A statement of a template body. */
  sealed interface Stmt extends Node
      permits Text, Output, If, For, Set, SetBlock, Macro, FilterBlock, Break, Continue {}

  /** An expression. */
  sealed interface Expr extends Node
      permits Literal, ListExpr, DictExpr, Name, Attr, Item, Slice, Call, Filter, Test, Unary, Binary,
          Concat, Compare, Logic, Cond {}

  /** What a for loop or a set statement assigns to. */
  sealed interface Target extends Node permits NameTarget, TupleTarget, AttrTarget {}

  // ---- statements

  /** Literal template text. */
  record Text(Pos pos, String text) implements Stmt {}

  /** {@code {{ expr }}}. */
  record Output(Pos pos, Expr expr) implements Stmt {}

  /** if / elif... / else: conditions.get(i) guards bodies.get(i); otherwise may be empty. */
  record If(Pos pos, List<Expr> conditions, List<List<Stmt>> bodies, List<Stmt> otherwise) implements Stmt {}

  /** for target in iterable [if filter] ... [else otherwise] endfor. */
  record For(Pos pos, Target target, Expr iterable, Expr filter, List<Stmt> body, List<Stmt> otherwise)
      implements Stmt {}

  /** {@code set target = value}. */
  record Set(Pos pos, Target target, Expr value) implements Stmt {}

  /** {@code set target [| filters] %} body {% endset}: assigns the rendered, filtered body. */
  record SetBlock(Pos pos, Target target, List<FilterCall> filters, List<Stmt> body) implements Stmt {}

  /** macro name(params with defaults) ... endmacro; defaults.get(i) is null for a required one. */
  record Macro(Pos pos, String name, List<String> params, List<Expr> defaults, List<Stmt> body)
      implements Stmt {}

  /** filter f1 | f2 ... endfilter: the rendered body through the filters. */
  record FilterBlock(Pos pos, List<FilterCall> filters, List<Stmt> body) implements Stmt {}

  /** {@code break} inside a for loop. */
  record Break(Pos pos) implements Stmt {}

  /** {@code continue} inside a for loop. */
  record Continue(Pos pos) implements Stmt {}

  // ---- assignment targets

  /** A plain variable. */
  record NameTarget(Pos pos, String name) implements Target {}

  /** {@code a, b}: unpacks a sequence of the same length. */
  record TupleTarget(Pos pos, List<String> names) implements Target {}

  /** {@code ns.attr}: an attribute of a namespace object. */
  record AttrTarget(Pos pos, String object, String attr) implements Target {}

  // ---- expressions

  /** A constant: String, Long, Double, Boolean or null (none). */
  record Literal(Pos pos, Object value) implements Expr {}

  /** {@code [a, b]} or a tuple {@code (a, b)} (tuples are lists here). */
  record ListExpr(Pos pos, List<Expr> items) implements Expr {}

  /** {@code {k: v, ...}}. */
  record DictExpr(Pos pos, List<Expr> keys, List<Expr> values) implements Expr {}

  /** A variable reference. */
  record Name(Pos pos, String name) implements Expr {}

  /** {@code object.name}. */
  record Attr(Pos pos, Expr object, String name) implements Expr {}

  /** {@code object[key]}. */
  record Item(Pos pos, Expr object, Expr key) implements Expr {}

  /** {@code object[start:stop:step]}, each part optional (null). */
  record Slice(Pos pos, Expr object, Expr start, Expr stop, Expr step) implements Expr {}

  /** {@code callee(args)}. */
  record Call(Pos pos, Expr callee, Args args) implements Expr {}

  /** {@code value | name(args)}. */
  record Filter(Pos pos, Expr value, String name, Args args) implements Expr {}

  /** {@code value is [not] name args}. */
  record Test(Pos pos, Expr value, String name, Args args, boolean negated) implements Expr {}

  /** {@code -x}, {@code +x} or {@code not x} (op "-", "+", "not"). */
  record Unary(Pos pos, String op, Expr operand) implements Expr {}

  /** A left-associative chain of one precedence level: first op1 e1 op2 e2 ... */
  record Binary(Pos pos, Expr first, List<Operand> rest) implements Expr {}

  /** {@code a ~ b ~ c}: the parts converted to strings and joined. */
  record Concat(Pos pos, List<Expr> parts) implements Expr {}

  /** A comparison chain {@code a < b <= c}, Python style: each adjacent pair must hold. */
  record Compare(Pos pos, Expr first, List<Operand> rest) implements Expr {}

  /** {@code a and b and c} (and) or {@code a or b} (not and); yields an operand, not a bool. */
  record Logic(Pos pos, boolean and, List<Expr> operands) implements Expr {}

  /** {@code then if condition else otherwise}; otherwise null means undefined. */
  record Cond(Pos pos, Expr condition, Expr then, Expr otherwise) implements Expr {}

  // ---- parts

  /** One operator and its right operand in a Binary or Compare chain. */
  record Operand(Pos pos, String op, Expr expr) {}

  /** Call arguments: positional ones, then keyword ones (names.get(i) = named.get(i)). */
  record Args(List<Expr> positional, List<String> names, List<Expr> named) {
    static final Args NONE = new Args(List.of(), List.of(), List.of());

    int size() {
      return positional.size() + named.size();
    }
  }

  /** One filter of a filter block or block set. */
  record FilterCall(Pos pos, String name, Args args) {}
}
