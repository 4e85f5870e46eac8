package org.hybrimoe.chat;

import static org.hybrimoe.chat.Render.render;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Syntax errors name line:column and what was expected; runtime errors name where; limits hold. */
class ErrorsTest {
  private static String syntaxError(String source) {
    return assertThrows(ChatTemplateException.class, () -> ChatTemplate.compile(source)).getMessage();
  }

  private static String renderError(String source, Object... keyValues) {
    ChatTemplate t = ChatTemplate.compile(source);
    return assertThrows(ChatTemplateException.class, () -> t.render(Render.context(keyValues))).getMessage();
  }

  @Test
  void unclosedTagsAndBlocks() {
    assertEquals("1:4: '{{' is never closed (expected '}}')", syntaxError("ab {{ x "));
    assertEquals("2:1: '{%' is never closed (expected '%}')", syntaxError("a\n{% if x "));
    assertEquals("1:4: comment '{#' is never closed (expected '#}')", syntaxError("ab {# x"));
    // The source's one trailing newline is dropped, so the template ends right after "  y".
    assertEquals("2:4: unexpected end of template: expected 'elif', 'else' or 'endif' to close the 'if' opened at 1:1",
        syntaxError("{% if x %}\n  y\n"));
    assertEquals("2:27: unexpected end of template: expected 'endfor' to close the 'for' opened at 2:1",
        syntaxError("{% if x %}\n{% for a in b %}{% else %}"));
    assertEquals("1:6: expected '}}' to close the '{{' at 1:1, found '%}'", syntaxError("{{ x %}"));
    assertEquals("1:4: string literal is never closed (expected ')", syntaxError("{{ 'abc }}"));
  }

  @Test
  void unbalancedBrackets() {
    assertEquals("1:11: unexpected '}': expected ')' to close the '(' at 1:4", syntaxError("{{ (a + b }}"));
    assertEquals("1:9: unexpected ')' (no bracket is open)", syntaxError("{{ a + b) }}"));
    assertEquals("1:9: unexpected ')': expected ']' to close the '[' at 1:7", syntaxError("{{ f(a[1)] }}"));
    assertEquals("1:4: '[' is never closed (expected ']')", syntaxError("{{ [1, 2 "));
  }

  @Test
  void misplacedAndUnknownStatements() {
    assertEquals("1:4: 'endfor' without a matching 'for'", syntaxError("{% endfor %}"));
    assertEquals("1:6: 'else' without a matching 'if' or 'for'", syntaxError("x {% else %}"));
    assertEquals("1:14: found 'endfor' but the 'if' opened at 1:1 must first be closed with 'elif', 'else' or 'endif'",
        syntaxError("{% if x %}{% endfor %}"));
    assertEquals("1:4: unknown statement 'frobnicate'", syntaxError("{% frobnicate %}"));
    assertEquals("1:4: statement 'include' is not supported by this chat template engine", syntaxError("{% include 'x' %}"));
    assertEquals("1:4: 'break' outside of a for loop", syntaxError("{% break %}"));
    assertEquals("1:4: expected a statement name after '{%', found '%}'", syntaxError("{% %}"));
  }

  @Test
  void malformedExpressions() {
    assertEquals("1:4: expected an expression, found '}}'", syntaxError("{{ }}"));
    assertEquals("1:10: expected '}}' after the expression, found name 'y'", syntaxError("{{ x + y y }}"));
    assertEquals("1:10: expected 'in' after the loop variable, found '%}'", syntaxError("{% for x %}{% endfor %}"));
    assertEquals("1:14: expected '%}' to end the 'if' statement, found name 'y'", syntaxError("{% if x == y y %}{% endif %}"));
    assertEquals("1:10: expected '=' or '%}' after 'set x', found string 'a'", syntaxError("{% set x 'a' %}"));
    assertEquals("1:11: positional argument follows keyword argument", syntaxError("{{ f(a=1, 2) }}"));
    assertEquals("1:7: expected an attribute name after '.', found '}}'", syntaxError("{{ x. }}"));
    assertEquals("1:10: unexpected character '$' in expression", syntaxError("{{ 'a' + $ }}"));
    assertEquals("3:12: expected an expression, found '%}'", syntaxError("\n{{ [\n]  }}{% if %}{% endif %}"));
  }

  @Test
  void raiseExceptionPassesTheTemplatesMessageThrough() {
    ChatTemplate t = ChatTemplate.compile("{% if messages | length == 0 %}{{ raise_exception('No messages: ' ~ 0) }}{% endif %}ok");
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> t.render(Map.of("messages", List.of())));
    assertEquals("No messages: 0", e.getMessage());
    assertTrue(e.raisedByTemplate());
    assertEquals(0, e.line());
    assertEquals("ok", t.render(Map.of("messages", List.of(1))));
  }

  @Test
  void runtimeErrorsNameTheLineAndColumn() {
    assertEquals("2:6: unsupported operand types for +: 'int' and 'str'", renderError("x\n{{ 1 + 'a' }}"));
    assertEquals("1:6: division by zero", renderError("{{ 1 / 0 }}"));
    assertEquals("1:13: 'int' object is not iterable", renderError("{% for x in 5 %}{% endfor %}"));
    assertEquals("1:4: cannot call an undefined value: 'foo' is undefined", renderError("{{ foo() }}"));
    assertEquals("1:4: 'str' object is not callable", renderError("{{ s() }}", "s", "x"));
    assertEquals("1:45: macro 'f' has no parameter 'b'", renderError("{% macro f(a) %}{% endmacro %}{{ f(1) }}{{ f(b=2) }}"));
    assertEquals("1:8: '<' is not supported between 'str' and 'int'", renderError("{{ 'a' < 1 }}"));
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{{ 1 + 'a' }}"));
    assertFalse(e.raisedByTemplate());
    assertEquals(1, e.line());
    assertEquals(6, e.column());
  }

  @Test
  void reasonableNestingCompilesAndRenders() {
    int depth = 150;
    String ifs = "{% if true %}".repeat(depth) + "deep" + "{% endif %}".repeat(depth);
    assertEquals("deep", render(ifs));
    String parens = "{{ " + "(".repeat(depth) + "1" + ")".repeat(depth) + " }}";
    assertEquals("1", render(parens));
    StringBuilder sum = new StringBuilder("{{ 0");
    for (int k = 1; k <= 5000; k++) {
      sum.append(" + ").append(1);
    }
    assertEquals("5000", render(sum.append(" }}").toString()));
  }

  @Test
  void pathologicalNestingIsAClearErrorNotAStackOverflow() {
    int depth = 250;
    assertTrue(syntaxError("{% if true %}".repeat(depth) + "{% endif %}".repeat(depth))
        .endsWith("template nests deeper than 200 levels"));
    assertTrue(syntaxError("{{ " + "(".repeat(depth) + "1" + ")".repeat(depth) + " }}")
        .endsWith("template nests deeper than 200 levels"));
    assertTrue(syntaxError("{{ " + "not ".repeat(depth) + "x }}").endsWith("template nests deeper than 200 levels"));
    assertTrue(syntaxError("{{ " + "[".repeat(100_000) + "]".repeat(100_000) + " }}").endsWith("template nests deeper than 200 levels"));
    assertEquals("1:100005: unexpected '}': expected ']' to close the '[' at 1:100003", syntaxError("{{ " + "[".repeat(100_000) + " }}"));
    assertTrue(syntaxError("{{ x" + " | trim".repeat(1000) + " }}").endsWith("template nests deeper than 400 syntax levels"));
  }

  @Test
  void deeplyNestedDataIsRefusedWhereItWouldBeWalked() {
    Object deep = "leaf";
    for (int k = 0; k < 100; k++) {
      deep = List.of(deep);
    }
    assertEquals(100 + "\"leaf\"".length() + 100, render("{{ d | tojson }}", "d", deep).length());
    Object tooDeep = nested(10_000);
    assertTrue(renderError("{{ d | tojson }}", "d", tooDeep).endsWith("value nests deeper than 500 levels"));
    assertTrue(renderError("{{ d }}", "d", tooDeep).endsWith("value nests deeper than 500 levels"));
    assertTrue(renderError("{{ d == e }}", "d", tooDeep, "e", nested(10_000)).endsWith("value nests deeper than 500 levels"));
  }

  private static Object nested(int depth) {
    Object v = List.of();
    for (int k = 0; k < depth; k++) {
      List<Object> l = new ArrayList<>();
      l.add(v);
      v = l;
    }
    return v;
  }

  /** Compiles and renders on a new thread with this stack size: the output or what was thrown. */
  private static Object onThread(String src, long stackBytes) throws InterruptedException {
    Object[] result = new Object[1];
    Thread t = new Thread(null, () -> {
      try {
        result[0] = ChatTemplate.compile(src).render(Map.of("x", " ok "));
      } catch (Throwable e) {
        result[0] = e;
      }
    }, "chat-template-stack", stackBytes);
    t.start();
    t.join();
    return result[0];
  }

  private static final List<String> AT_THE_LIMITS = List.of(
      "{{ " + "(".repeat(199) + "x | trim" + ")".repeat(199) + " }}",
      "{{ " + "[".repeat(190) + "x | trim" + "]".repeat(190) + " | first".repeat(190) + " }}",
      "{% if true %}".repeat(120) + "{{ " + "(".repeat(79) + "x | trim" + ")".repeat(79) + " }}" + "{% endif %}".repeat(120),
      "{{ x" + " | trim".repeat(397) + " }}");

  @Test
  void templatesAtTheLimitsRenderOnTheDefaultThreadStack() throws Exception {
    for (String src : AT_THE_LIMITS) {
      assertEquals("ok", onThread(src, 1024 * 1024)); // 1 MiB: the JVM's default on 64-bit Linux
    }
  }

  @Test
  void aStackTooSmallForTheTemplateIsAChatTemplateExceptionNotAStackOverflow() throws Exception {
    for (String src : AT_THE_LIMITS) {
      Object r = onThread(src, 64 * 1024);
      assertTrue(r.equals("ok") || r instanceof ChatTemplateException, String.valueOf(r));
    }
  }
}
