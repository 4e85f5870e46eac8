package org.hybrimoe.chat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import org.hybrimoe.chat.Lexer.Kind;
import org.hybrimoe.chat.Lexer.Token;
import org.hybrimoe.chat.Node.Args;
import org.hybrimoe.chat.Node.Expr;
import org.hybrimoe.chat.Node.FilterCall;
import org.hybrimoe.chat.Node.Operand;
import org.hybrimoe.chat.Node.Stmt;
import org.hybrimoe.chat.Node.Target;

/**
 * Recursive-descent parser from tokens to the syntax tree, with Jinja's grammar and operator
 * precedence (loosest first): conditional expression, or, and, not, comparisons and in, + -, ~,
 * * / // %, **, unary - +, then postfix (.attr, [index], call) with filters and tests binding
 * tighter than any binary operator ({@code a + b | trim} is {@code a + (b | trim)}).
 *
 * <p>Nesting (blocks, brackets, unary chains, conditional chains) deeper than {@link #MAX_DEPTH}
 * is refused, as is a tree deeper than {@link #MAX_TREE_DEPTH} nodes. At those limits parsing and
 * rendering need under half of the JVM's default 1 MiB thread stack (ErrorsTest measures it);
 * ChatTemplate turns a stack overflow on a smaller stack into a ChatTemplateException.
 */
final class Parser {
  /** Deepest nesting of blocks and brackets a template may use. */
  static final int MAX_DEPTH = 200;
  /** Deepest syntax tree (statements and expressions together) a template may produce. */
  static final int MAX_TREE_DEPTH = 400;

  private static final Set<String> END_TAGS = Set.of(
      "elif", "else", "endif", "endfor", "endset", "endmacro", "endfilter", "endgeneration", "endraw", "endcall",
      "endblock", "endwith", "endautoescape");
  private static final Set<String> UNSUPPORTED = Set.of(
      "call", "include", "import", "from", "extends", "block", "with", "autoescape", "do", "trans");

  /** A block being parsed: its tag, where it opened, and the tags that may end its body. */
  private record Open(String tag, Pos pos, List<String> ends) {}

  private final List<Token> tokens;
  private int i;
  private int depth;
  private int loopDepth;

  private Parser(List<Token> tokens) {
    this.tokens = tokens;
  }

  /** The statements of a template source. */
  static List<Stmt> parse(String source) {
    Parser p = new Parser(Lexer.tokenize(source));
    List<Stmt> body = p.parseBody(null);
    for (Stmt s : body) {
      checkTreeDepth(s, 1);
    }
    return body;
  }

  // ---- token helpers

  private Token peek() {
    return tokens.get(i);
  }

  private Token peek(int k) {
    return tokens.get(Math.min(i + k, tokens.size() - 1));
  }

  private Token next() {
    Token t = tokens.get(i);
    if (t.kind() != Kind.EOF) {
      i++;
    }
    return t;
  }

  private boolean isOp(String op) {
    return peek().isOp(op);
  }

  private boolean isName(String name) {
    return peek().isName(name);
  }

  private Token expectOp(String op, String context) {
    Token t = peek();
    if (!t.isOp(op)) {
      throw ChatTemplateException.at(t.pos(), "expected '" + op + "' " + context + ", found " + describe(t));
    }
    return next();
  }

  private String expectName(String context) {
    Token t = peek();
    if (t.kind() != Kind.NAME) {
      throw ChatTemplateException.at(t.pos(), "expected " + context + ", found " + describe(t));
    }
    next();
    return t.text();
  }

  private void expectBlockEnd(String statement) {
    Token t = peek();
    if (t.kind() != Kind.BLOCK_END) {
      throw ChatTemplateException.at(t.pos(), "expected '%}' to end the '" + statement + "' statement, found " + describe(t));
    }
    next();
  }

  static String describe(Token t) {
    return switch (t.kind()) {
      case EOF -> "the end of the template";
      case TEXT -> "template text";
      case STRING -> "string '" + t.text() + "'";
      case INTEGER, FLOAT -> "number " + t.text();
      case NAME -> "name '" + t.text() + "'";
      default -> "'" + t.text() + "'";
    };
  }

  private void enter(Pos pos) {
    if (++depth > MAX_DEPTH) {
      throw ChatTemplateException.at(pos, "template nests deeper than " + MAX_DEPTH + " levels");
    }
  }

  private void leave() {
    depth--;
  }

  // ---- statements

  private List<Stmt> parseBody(Open open) {
    List<Stmt> out = new ArrayList<>();
    while (true) {
      Token t = peek();
      switch (t.kind()) {
        case EOF -> {
          if (open == null) {
            return Collections.unmodifiableList(out);
          }
          throw ChatTemplateException.at(t.pos(), "unexpected end of template: expected " + quoted(open.ends)
              + " to close the '" + open.tag + "' opened at " + open.pos);
        }
        case TEXT -> {
          next();
          out.add(new Node.Text(t.pos(), t.text()));
        }
        case VAR_BEGIN -> {
          next();
          Expr e = parseExpression();
          Token end = peek();
          if (end.kind() != Kind.VAR_END) {
            throw ChatTemplateException.at(end.pos(), "expected '}}' after the expression, found " + describe(end));
          }
          next();
          out.add(new Node.Output(t.pos(), e));
        }
        case BLOCK_BEGIN -> {
          Token name = peek(1);
          if (name.kind() != Kind.NAME) {
            throw ChatTemplateException.at(name.pos(), "expected a statement name after '{%', found " + describe(name));
          }
          if (open != null && open.ends.contains(name.text())) {
            return Collections.unmodifiableList(out);
          }
          next();
          parseStatement(t, open, out);
        }
        default -> throw ChatTemplateException.at(t.pos(), "unexpected " + describe(t));
      }
    }
  }

  private void parseStatement(Token begin, Open enclosing, List<Stmt> out) {
    Token nameTok = next();
    String name = nameTok.text();
    Pos pos = begin.pos();
    switch (name) {
      case "if" -> out.add(parseIf(pos));
      case "for" -> out.add(parseFor(pos));
      case "set" -> out.add(parseSet(pos));
      case "macro" -> out.add(parseMacro(pos));
      case "filter" -> out.add(parseFilterBlock(pos));
      case "break", "continue" -> {
        if (loopDepth == 0) {
          throw ChatTemplateException.at(nameTok.pos(), "'" + name + "' outside of a for loop");
        }
        expectBlockEnd(name);
        out.add(name.equals("break") ? new Node.Break(pos) : new Node.Continue(pos));
      }
      case "generation" -> {
        // transformers' {% generation %} marks assistant tokens for masks; it renders its body.
        expectBlockEnd(name);
        List<Stmt> body = parseNested(new Open("generation", pos, List.of("endgeneration")));
        closeBlock("endgeneration");
        out.addAll(body);
      }
      default -> {
        if (END_TAGS.contains(name)) {
          if (enclosing == null) {
            String opener = switch (name) {
              case "elif" -> "'if'";
              case "else" -> "'if' or 'for'";
              default -> "'" + name.substring(3) + "'";
            };
            throw ChatTemplateException.at(nameTok.pos(), "'" + name + "' without a matching " + opener);
          }
          throw ChatTemplateException.at(nameTok.pos(), "found '" + name + "' but the '" + enclosing.tag + "' opened at "
              + enclosing.pos + " must first be closed with " + quoted(enclosing.ends));
        }
        if (UNSUPPORTED.contains(name)) {
          throw ChatTemplateException.at(nameTok.pos(), "statement '" + name + "' is not supported by this chat template engine");
        }
        throw ChatTemplateException.at(nameTok.pos(), "unknown statement '" + name + "'");
      }
    }
  }

  private static String quoted(List<String> tags) {
    StringBuilder sb = new StringBuilder();
    for (int k = 0; k < tags.size(); k++) {
      if (k > 0) {
        sb.append(k == tags.size() - 1 ? " or " : ", ");
      }
      sb.append('\'').append(tags.get(k)).append('\'');
    }
    return sb.toString();
  }

  private List<Stmt> parseNested(Open open) {
    enter(open.pos);
    try {
      return parseBody(open);
    } finally {
      leave();
    }
  }

  /** Consumes {@code {% tag %}} where parseBody stopped at it. */
  private void closeBlock(String tag) {
    next(); // BLOCK_BEGIN
    next(); // the tag's name, checked by parseBody
    expectBlockEnd(tag);
  }

  /** The end tag parseBody stopped at. */
  private String pendingTag() {
    return peek(1).text();
  }

  private Stmt parseIf(Pos pos) {
    List<Expr> conditions = new ArrayList<>();
    List<List<Stmt>> bodies = new ArrayList<>();
    List<Stmt> otherwise = List.of();
    conditions.add(parseExpression());
    expectBlockEnd("if");
    Open open = new Open("if", pos, List.of("elif", "else", "endif"));
    bodies.add(parseNested(open));
    while (true) {
      String tag = pendingTag();
      if (tag.equals("elif")) {
        next();
        next();
        conditions.add(parseExpression());
        expectBlockEnd("elif");
        bodies.add(parseNested(open));
      } else if (tag.equals("else")) {
        closeBlock("else");
        otherwise = parseNested(new Open("if", pos, List.of("endif")));
        closeBlock("endif");
        break;
      } else {
        closeBlock("endif");
        break;
      }
    }
    return new Node.If(pos, List.copyOf(conditions), List.copyOf(bodies), otherwise);
  }

  private Stmt parseFor(Pos pos) {
    Target target = parseLoopTarget();
    Token in = peek();
    if (!in.isName("in")) {
      throw ChatTemplateException.at(in.pos(), "expected 'in' after the loop variable, found " + describe(in));
    }
    next();
    Expr iterable = parseOr();
    Expr filter = null;
    if (isName("if")) {
      next();
      filter = parseExpression();
    }
    if (isName("recursive")) {
      throw ChatTemplateException.at(peek().pos(), "recursive for loops are not supported by this chat template engine");
    }
    expectBlockEnd("for");
    loopDepth++;
    List<Stmt> body;
    try {
      body = parseNested(new Open("for", pos, List.of("else", "endfor")));
    } finally {
      loopDepth--;
    }
    List<Stmt> otherwise = List.of();
    if (pendingTag().equals("else")) {
      closeBlock("else");
      otherwise = parseNested(new Open("for", pos, List.of("endfor")));
    }
    closeBlock("endfor");
    return new Node.For(pos, target, iterable, filter, body, otherwise);
  }

  private Target parseLoopTarget() {
    Token first = peek();
    boolean paren = first.isOp("(");
    if (paren) {
      next();
    }
    List<String> names = new ArrayList<>();
    names.add(expectName("a loop variable name"));
    while (isOp(",")) {
      next();
      if (peek().kind() != Kind.NAME || isName("in")) {
        break;
      }
      names.add(expectName("a loop variable name"));
    }
    if (paren) {
      expectOp(")", "after the loop variables");
    }
    if (names.size() == 1 && !paren) {
      return new Node.NameTarget(first.pos(), names.get(0));
    }
    return new Node.TupleTarget(first.pos(), List.copyOf(names));
  }

  private Stmt parseSet(Pos pos) {
    Token first = peek();
    String name = expectName("a variable name after 'set'");
    Target target;
    if (isOp(".")) {
      next();
      target = new Node.AttrTarget(first.pos(), name, expectName("an attribute name after '.'"));
    } else if (isOp(",")) {
      List<String> names = new ArrayList<>();
      names.add(name);
      while (isOp(",")) {
        next();
        names.add(expectName("a variable name"));
      }
      target = new Node.TupleTarget(first.pos(), List.copyOf(names));
    } else {
      target = new Node.NameTarget(first.pos(), name);
    }
    if (isOp("=")) {
      next();
      Expr value = parseExpression();
      if (isOp(",")) {
        List<Expr> items = new ArrayList<>();
        items.add(value);
        while (isOp(",")) {
          next();
          if (peek().kind() == Kind.BLOCK_END) {
            break;
          }
          items.add(parseExpression());
        }
        value = new Node.ListExpr(value.pos(), List.copyOf(items));
      }
      expectBlockEnd("set");
      return new Node.Set(pos, target, value);
    }
    List<FilterCall> filters = new ArrayList<>();
    while (isOp("|")) {
      next();
      filters.add(parseFilterCall());
    }
    Token t = peek();
    if (t.kind() != Kind.BLOCK_END) {
      throw ChatTemplateException.at(t.pos(), "expected '=' or '%}' after 'set " + name + "', found " + describe(t));
    }
    next();
    List<Stmt> body = parseNested(new Open("set", pos, List.of("endset")));
    closeBlock("endset");
    return new Node.SetBlock(pos, target, List.copyOf(filters), body);
  }

  private Stmt parseMacro(Pos pos) {
    String name = expectName("a macro name");
    expectOp("(", "after the macro name");
    List<String> params = new ArrayList<>();
    List<Expr> defaults = new ArrayList<>();
    while (!isOp(")")) {
      Token p = peek();
      params.add(expectName("a parameter name"));
      if (isOp("=")) {
        next();
        defaults.add(parseExpression());
      } else {
        if (!defaults.isEmpty() && defaults.get(defaults.size() - 1) != null) {
          throw ChatTemplateException.at(p.pos(), "parameter '" + p.text() + "' without a default follows one with a default");
        }
        defaults.add(null);
      }
      if (!isOp(",")) {
        break;
      }
      next();
    }
    expectOp(")", "to close the macro's parameters");
    expectBlockEnd("macro");
    int savedLoops = loopDepth;
    loopDepth = 0;
    List<Stmt> body;
    try {
      body = parseNested(new Open("macro", pos, List.of("endmacro")));
    } finally {
      loopDepth = savedLoops;
    }
    closeBlock("endmacro");
    return new Node.Macro(pos, name, List.copyOf(params), Collections.unmodifiableList(defaults), body);
  }

  private Stmt parseFilterBlock(Pos pos) {
    List<FilterCall> filters = new ArrayList<>();
    filters.add(parseFilterCall());
    while (isOp("|")) {
      next();
      filters.add(parseFilterCall());
    }
    expectBlockEnd("filter");
    List<Stmt> body = parseNested(new Open("filter", pos, List.of("endfilter")));
    closeBlock("endfilter");
    return new Node.FilterBlock(pos, List.copyOf(filters), body);
  }

  private FilterCall parseFilterCall() {
    Token t = peek();
    String name = expectName("a filter name");
    Args args = isOp("(") ? parseCallArgs() : Args.NONE;
    return new FilterCall(t.pos(), name, args);
  }

  // ---- expressions

  Expr parseExpression() {
    Expr e = parseOr();
    while (isName("if")) {
      Pos pos = next().pos();
      Expr condition = parseOr();
      Expr otherwise = null;
      if (isName("else")) {
        next();
        enter(pos);
        try {
          otherwise = parseExpression();
        } finally {
          leave();
        }
      }
      e = new Node.Cond(pos, condition, e, otherwise);
    }
    return e;
  }

  // Binary operators by precedence climbing: one frame per operand instead of one per level,
  // so nested brackets cost few Java frames. Levels, loosest first; each builds the same
  // n-ary node the grammar describes (Logic, Compare, Binary, Concat).
  private static final int OR = 0;
  private static final int AND = 1;
  private static final int NOT = 2;
  private static final int COMPARE = 3;
  private static final int SUM = 4;
  private static final int CONCAT = 5;
  private static final int PRODUCT = 6;
  private static final int POWER = 7;

  private Expr parseOr() {
    return parseBinary(OR);
  }

  /** The level of the binary operator at the cursor, or -1 when there is none. */
  private int operatorLevel() {
    Token t = peek();
    if (t.kind() == Kind.NAME) {
      return switch (t.text()) {
        case "or" -> OR;
        case "and" -> AND;
        case "in" -> COMPARE;
        case "not" -> peek(1).isName("in") ? COMPARE : -1;
        default -> -1;
      };
    }
    if (t.kind() != Kind.OP) {
      return -1;
    }
    return switch (t.text()) {
      case "==", "!=", "<", ">", "<=", ">=" -> COMPARE;
      case "+", "-" -> SUM;
      case "~" -> CONCAT;
      case "*", "/", "//", "%" -> PRODUCT;
      case "**" -> POWER;
      default -> -1;
    };
  }

  /** An expression whose operators all bind at least as tightly as minLevel. */
  private Expr parseBinary(int minLevel) {
    Expr left = parseOperand(minLevel);
    while (true) {
      int level = operatorLevel();
      if (level < minLevel) {
        return left;
      }
      left = switch (level) {
        case OR, AND -> {
          List<Expr> operands = new ArrayList<>();
          operands.add(left);
          while (operatorLevel() == level) {
            next();
            operands.add(parseBinary(level + 1));
          }
          yield new Node.Logic(left.pos(), level == AND, List.copyOf(operands));
        }
        case CONCAT -> {
          List<Expr> parts = new ArrayList<>();
          parts.add(left);
          while (operatorLevel() == CONCAT) {
            next();
            parts.add(parseBinary(CONCAT + 1));
          }
          yield new Node.Concat(left.pos(), List.copyOf(parts));
        }
        default -> {
          List<Operand> rest = new ArrayList<>();
          while (operatorLevel() == level) {
            Token t = next();
            String op = t.text();
            if (t.isName("not")) {
              next();
              op = "not in";
            }
            rest.add(new Operand(t.pos(), op, level == POWER ? parseUnary(true) : parseBinary(level + 1)));
          }
          yield level == COMPARE ? new Node.Compare(left.pos(), left, List.copyOf(rest))
              : new Node.Binary(left.pos(), left, List.copyOf(rest));
        }
      };
    }
  }

  /** A unary expression, or {@code not x} where a not may stand (looser than comparisons). */
  private Expr parseOperand(int minLevel) {
    if (minLevel <= NOT && isName("not")) {
      Pos pos = next().pos();
      enter(pos);
      try {
        return new Node.Unary(pos, "not", parseBinary(NOT));
      } finally {
        leave();
      }
    }
    return parseUnary(true);
  }

  private Expr parseUnary(boolean withFilters) {
    Expr node;
    if (isOp("-") || isOp("+")) {
      Token t = next();
      enter(t.pos());
      try {
        node = new Node.Unary(t.pos(), t.text(), parseUnary(false));
      } finally {
        leave();
      }
    } else {
      node = parsePrimary();
    }
    node = parsePostfix(node);
    return withFilters ? parseFilters(node) : node;
  }

  private Expr parsePrimary() {
    Token t = peek();
    switch (t.kind()) {
      case NAME -> {
        next();
        return switch (t.text()) {
          case "true", "True" -> new Node.Literal(t.pos(), Boolean.TRUE);
          case "false", "False" -> new Node.Literal(t.pos(), Boolean.FALSE);
          case "none", "None" -> new Node.Literal(t.pos(), null);
          default -> new Node.Name(t.pos(), t.text());
        };
      }
      case STRING -> {
        StringBuilder sb = new StringBuilder();
        while (peek().kind() == Kind.STRING) {
          sb.append(next().text());
        }
        return new Node.Literal(t.pos(), sb.toString());
      }
      case INTEGER, FLOAT -> {
        next();
        return new Node.Literal(t.pos(), t.value());
      }
      case OP -> {
        if (t.text().equals("(") || t.text().equals("[") || t.text().equals("{")) {
          next();
          enter(t.pos());
          try {
            return switch (t.text()) {
              case "(" -> parseParenthesized(t.pos());
              case "[" -> parseList(t.pos());
              default -> parseDict(t.pos());
            };
          } finally {
            leave();
          }
        }
        throw ChatTemplateException.at(t.pos(), "expected an expression, found " + describe(t));
      }
      default -> throw ChatTemplateException.at(t.pos(), "expected an expression, found " + describe(t));
    }
  }

  private Expr parseParenthesized(Pos pos) {
    if (isOp(")")) {
      next();
      return new Node.ListExpr(pos, List.of());
    }
    Expr e = parseExpression();
    if (!isOp(",")) {
      expectOp(")", "to close the '(' at " + pos);
      return e;
    }
    List<Expr> items = new ArrayList<>();
    items.add(e);
    while (isOp(",")) {
      next();
      if (isOp(")")) {
        break;
      }
      items.add(parseExpression());
    }
    expectOp(")", "to close the '(' at " + pos);
    return new Node.ListExpr(pos, List.copyOf(items));
  }

  private Expr parseList(Pos pos) {
    List<Expr> items = new ArrayList<>();
    while (!isOp("]")) {
      items.add(parseExpression());
      if (!isOp(",")) {
        break;
      }
      next();
    }
    expectOp("]", "to close the '[' at " + pos);
    return new Node.ListExpr(pos, List.copyOf(items));
  }

  private Expr parseDict(Pos pos) {
    List<Expr> keys = new ArrayList<>();
    List<Expr> values = new ArrayList<>();
    while (!isOp("}")) {
      keys.add(parseExpression());
      expectOp(":", "after a dict key");
      values.add(parseExpression());
      if (!isOp(",")) {
        break;
      }
      next();
    }
    expectOp("}", "to close the '{' at " + pos);
    return new Node.DictExpr(pos, List.copyOf(keys), List.copyOf(values));
  }

  private Expr parsePostfix(Expr node) {
    while (true) {
      Token t = peek();
      if (t.isOp(".")) {
        next();
        Token a = peek();
        if (a.kind() == Kind.NAME) {
          next();
          node = new Node.Attr(a.pos(), node, a.text());
        } else if (a.kind() == Kind.INTEGER) {
          next();
          node = new Node.Item(a.pos(), node, new Node.Literal(a.pos(), a.value()));
        } else {
          throw ChatTemplateException.at(a.pos(), "expected an attribute name after '.', found " + describe(a));
        }
      } else if (t.isOp("[")) {
        next();
        node = parseSubscript(t.pos(), node);
      } else if (t.isOp("(")) {
        node = new Node.Call(t.pos(), node, parseCallArgs());
      } else {
        return node;
      }
    }
  }

  private Expr parseSubscript(Pos pos, Expr object) {
    Expr start = null;
    Expr stop = null;
    Expr step = null;
    boolean slice = false;
    if (!isOp(":")) {
      if (isOp("]")) {
        throw ChatTemplateException.at(peek().pos(), "expected an index or slice inside '[]'");
      }
      start = parseExpression();
    }
    if (isOp(":")) {
      slice = true;
      next();
      if (!isOp("]") && !isOp(":")) {
        stop = parseExpression();
      }
      if (isOp(":")) {
        next();
        if (!isOp("]")) {
          step = parseExpression();
        }
      }
    }
    expectOp("]", "to close the '[' at " + pos);
    return slice ? new Node.Slice(pos, object, start, stop, step) : new Node.Item(pos, object, start);
  }

  private Args parseCallArgs() {
    Token open = expectOp("(", "before call arguments");
    List<Expr> positional = new ArrayList<>();
    List<String> names = new ArrayList<>();
    List<Expr> named = new ArrayList<>();
    while (!isOp(")")) {
      Token t = peek();
      if (t.isOp("*") || t.isOp("**")) {
        throw ChatTemplateException.at(t.pos(), "'" + t.text() + "' argument unpacking is not supported by this chat template engine");
      }
      if (t.kind() == Kind.NAME && peek(1).isOp("=")) {
        next();
        next();
        if (names.contains(t.text())) {
          throw ChatTemplateException.at(t.pos(), "keyword argument '" + t.text() + "' given twice");
        }
        names.add(t.text());
        named.add(parseExpression());
      } else {
        if (!names.isEmpty()) {
          throw ChatTemplateException.at(t.pos(), "positional argument follows keyword argument");
        }
        positional.add(parseExpression());
      }
      if (!isOp(",")) {
        break;
      }
      next();
    }
    expectOp(")", "to close the '(' at " + open.pos());
    return new Args(List.copyOf(positional), List.copyOf(names), List.copyOf(named));
  }

  private Expr parseFilters(Expr node) {
    while (true) {
      Token t = peek();
      if (t.isOp("|")) {
        next();
        FilterCall f = parseFilterCall();
        node = new Node.Filter(f.pos(), node, f.name(), f.args());
      } else if (t.isName("is")) {
        next();
        boolean negated = false;
        if (isName("not")) {
          next();
          negated = true;
        }
        Token nameTok = peek();
        String name = expectName("a test name after 'is'");
        Args args = Args.NONE;
        Token a = peek();
        if (a.isOp("(")) {
          args = parseCallArgs();
        } else if (startsTestArgument(a)) {
          if (a.isName("is")) {
            throw ChatTemplateException.at(a.pos(), "tests cannot be chained with 'is'");
          }
          Expr arg = parsePostfix(parsePrimary());
          args = new Args(List.of(arg), List.of(), List.of());
        }
        node = new Node.Test(nameTok.pos(), node, name, args, negated);
      } else if (t.isOp("(")) {
        node = new Node.Call(t.pos(), node, parseCallArgs());
      } else {
        return node;
      }
    }
  }

  /** Whether a token starts a test's single unparenthesized argument ({@code is divisibleby 3}). */
  private static boolean startsTestArgument(Token t) {
    return switch (t.kind()) {
      case NAME -> !(t.isName("else") || t.isName("or") || t.isName("and"));
      case STRING, INTEGER, FLOAT -> true;
      case OP -> t.isOp("[") || t.isOp("{");
      default -> false;
    };
  }

  // ---- tree depth

  /** Refuses a tree deeper than MAX_TREE_DEPTH; the walk stops there, so it cannot overflow. */
  private static void checkTreeDepth(Node node, int d) {
    if (node == null) {
      return;
    }
    if (d > MAX_TREE_DEPTH) {
      throw ChatTemplateException.at(node.pos(), "template nests deeper than " + MAX_TREE_DEPTH + " syntax levels");
    }
    for (Node child : children(node)) {
      checkTreeDepth(child, d + 1);
    }
  }

  private static List<Node> children(Node node) {
    List<Node> c = new ArrayList<>();
    if (node instanceof Node.Output o) {
      c.add(o.expr());
    } else if (node instanceof Node.If s) {
      c.addAll(s.conditions());
      s.bodies().forEach(c::addAll);
      c.addAll(s.otherwise());
    } else if (node instanceof Node.For s) {
      c.add(s.iterable());
      c.add(s.filter());
      c.addAll(s.body());
      c.addAll(s.otherwise());
    } else if (node instanceof Node.Set s) {
      c.add(s.value());
    } else if (node instanceof Node.SetBlock s) {
      s.filters().forEach(f -> addArgs(c, f.args()));
      c.addAll(s.body());
    } else if (node instanceof Node.Macro s) {
      c.addAll(s.defaults());
      c.addAll(s.body());
    } else if (node instanceof Node.FilterBlock s) {
      s.filters().forEach(f -> addArgs(c, f.args()));
      c.addAll(s.body());
    } else if (node instanceof Node.ListExpr e) {
      c.addAll(e.items());
    } else if (node instanceof Node.DictExpr e) {
      c.addAll(e.keys());
      c.addAll(e.values());
    } else if (node instanceof Node.Attr e) {
      c.add(e.object());
    } else if (node instanceof Node.Item e) {
      c.add(e.object());
      c.add(e.key());
    } else if (node instanceof Node.Slice e) {
      c.add(e.object());
      c.add(e.start());
      c.add(e.stop());
      c.add(e.step());
    } else if (node instanceof Node.Call e) {
      c.add(e.callee());
      addArgs(c, e.args());
    } else if (node instanceof Node.Filter e) {
      c.add(e.value());
      addArgs(c, e.args());
    } else if (node instanceof Node.Test e) {
      c.add(e.value());
      addArgs(c, e.args());
    } else if (node instanceof Node.Unary e) {
      c.add(e.operand());
    } else if (node instanceof Node.Binary e) {
      c.add(e.first());
      e.rest().forEach(o -> c.add(o.expr()));
    } else if (node instanceof Node.Compare e) {
      c.add(e.first());
      e.rest().forEach(o -> c.add(o.expr()));
    } else if (node instanceof Node.Concat e) {
      c.addAll(e.parts());
    } else if (node instanceof Node.Logic e) {
      c.addAll(e.operands());
    } else if (node instanceof Node.Cond e) {
      c.add(e.condition());
      c.add(e.then());
      c.add(e.otherwise());
    }
    return c;
  }

  private static void addArgs(List<Node> c, Args args) {
    c.addAll(args.positional());
    c.addAll(args.named());
  }
}
