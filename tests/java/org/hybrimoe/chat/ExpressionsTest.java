package org.hybrimoe.chat;

import static org.hybrimoe.chat.Render.render;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Literals, operators, precedence, comparisons, subscripts and undefined values, as Python Jinja2 has them. */
class ExpressionsTest {
  @Test
  void stringLiteralsUnderstandPythonEscapes() {
    assertEquals("a\nb\t'\"\\", render("{{ 'a\\nb\\t\\'\\\"\\\\' }}"));
    assertEquals("it's", render("{{ \"it's\" }}"));
    assertEquals("é😀 \\d", render("{{ '\\u00e9\\U0001F600 \\d' }}"));
    assertEquals("ab", render("{{ 'a' 'b' }}"));
    assertEquals("<｜User｜>x", render("{{ '<｜User｜>' + 'x' }}"));
  }

  @Test
  void valuesRenderAsPythonPrintsThem() {
    assertEquals("None True False 1 1.5 2.0 1e+16 1e-05", render("{{ none }} {{ true }} {{ False }} {{ 1 }} {{ 1.5 }} {{ 2.0 }} {{ 1e16 }} {{ 0.00001 }}"));
    assertEquals("['a', 1, None, True, 1.5] {'k': [1, 2]}", render("{{ ['a', 1, none, true, 1.5] }} {{ {'k': [1, 2]} }}"));
    assertEquals("[\"it's\", 'a\\nb']", render("{{ [\"it's\", 'a\\nb'] }}"));
    assertEquals("None", render("{{ x }}", "x", null));
  }

  @Test
  void arithmeticFollowsPython() {
    assertEquals("7 9 0.5 2.0 3 -4 2 -2 1024 1000", render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 1 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 1_000 }}"));
    assertEquals("abab [1, 2, 1, 2] ab [1, 2, 3]", render("{{ 'ab' * 2 }} {{ [1, 2] * 2 }} {{ 'a' + 'b' }} {{ [1] + [2, 3] }}"));
    assertEquals("2 2.5", render("{{ true + 1 }} {{ n + 1.5 }}", "n", 1));
    // Jinja (unlike Python) binds unary minus tighter than **.
    assertEquals("4", render("{{ -2 ** 2 }}"));
  }

  @Test
  void filtersAndTestsBindTighterThanOperators() {
    assertEquals("aB", render("{{ 'a' + 'b' | upper }}"));
    assertEquals("<x>", render("{{ '<' + '  x  ' | trim + '>' }}"));
    assertEquals("2", render("{{ items | length - 1 }}", "items", List.of(1, 2, 3)));
    // ~ binds tighter than + and -, looser than * and /.
    assertEquals("a6", render("{{ 'a' ~ 2 * 3 }}"));
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{{ 'a' ~ 1 + 2 }}"));
    assertEquals("1:12: unsupported operand types for +: 'str' and 'int'", e.getMessage());
    assertEquals("True", render("{{ not x is defined }}"));
  }

  @Test
  void comparisonsFollowPython() {
    assertEquals("True True True True True False True", render(
        "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ {'a': [1]} == {'a': [1.0]} }}"));
    assertEquals("True True True False True", render(
        "{{ 'b' in 'abc' }} {{ 'x' not in ['a'] }} {{ 'k' in {'k': 1} }} {{ 2 in [1, '2'] }} {{ none in [none] }}"));
  }

  @Test
  void andOrReturnAnOperandAndShortCircuit() {
    assertEquals("default|b|[]|0", render("{{ '' or 'default' }}|{{ 'a' and 'b' }}|{{ none or [] }}|{{ 0 and missing.call() }}"));
    assertEquals("False True", render("{{ not 'x' }} {{ not [] }}"));
  }

  @Test
  void conditionalExpressionsWithoutElseAreUndefined() {
    assertEquals("y||n", render("{{ 'y' if 1 else 'n' }}|{{ 'y' if 0 }}|{{ 'y' if 0 else 'n' }}"));
    assertEquals("b", render("{{ 'a' if x else 'b' if y else 'c' }}", "x", false, "y", true));
  }

  @Test
  void subscriptsSlicesAndNegativeIndexes() {
    assertEquals("[2, 3] [1, 3] [4, 3, 2, 1] [3, 4] ell 4 c", render(
        "{{ l[1:3] }} {{ l[::2] }} {{ l[::-1] }} {{ l[-2:] }} {{ 'hello'[1:-1] }} {{ l[-1] }} {{ 'abc'[-1] }}",
        "l", List.of(1, 2, 3, 4)));
    assertEquals("😀olléh|é", render("{{ 'héllo😀'[::-1] }}|{{ 'héllo'[1] }}"));
    assertEquals("|False|[]|[4]", render("{{ l[9] }}|{{ l[9] is defined }}|{{ l[5:9] }}|{{ l[-1:100] }}", "l", List.of(1, 2, 3, 4)));
    assertEquals("x x 1", render("{{ d.k }} {{ d['k'] }} {{ l.0 }}", "d", Map.of("k", "x"), "l", List.of(1)));
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{{ l[::0] }}", "l", List.of(1)));
    assertEquals("1:5: slice step cannot be zero", e.getMessage());
  }

  @Test
  void dictMethodsWinOverKeysOfTheSameNameWithDotsButNotWithBrackets() {
    Map<String, Object> d = new HashMap<>();
    d.put("items", "key");
    assertEquals("key items=key;", render("{{ d['items'] }} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "d", d));
  }

  @Test
  void undefinedValuesAreLenientUntilUsedInArithmetic() {
    assertEquals("||False|True|d|0|a|False", render(
        "{{ missing }}|{{ missing.attr.deeper }}|{{ missing.attr is defined }}|{{ missing is not defined }}"
            + "|{{ missing | default('d') }}|{{ missing | length }}|{{ missing ~ 'a' }}|{{ 'x' in missing }}"));
    assertEquals("no", render("{% if tools %}yes{% else %}no{% endif %}"));
    assertEquals("", render("{{ msg.content }}", "msg", Map.of("role", "user")));
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{{ 'a' + missing }}"));
    assertEquals("1:8: 'missing' is undefined", e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ m.content + 'x' }}", "m", Map.of()));
    assertEquals("1:14: 'dict object' has no attribute 'content'", e.getMessage());
  }

  @Test
  void javaNumbersOfEveryKindAreIntsOrFloats() {
    assertEquals("3 3 3.5 3.5 3.5 True", render("{{ a + 1 }} {{ b + 1 }} {{ c + 1 }} {{ d + 1 }} {{ e + 1 }} {{ a == b }}",
        "a", 2, "b", 2L, "c", 2.5, "d", 2.5f, "e", new BigDecimal("2.5")));
    assertEquals("[1, None, 'x']", render("{{ l }}", "l", Arrays.asList(1, null, "x")));
  }

  @Test
  void rangeAndDictGlobals() {
    assertEquals("[0, 1, 2] [1, 3] [3, 2, 1] [] {'a': 1}",
        render("{{ range(3) | list }} {{ range(1, 5, 2) | list }} {{ range(3, 0, -1) | list }} {{ range(0) | list }} {{ dict(a=1) }}"));
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{{ range(1000000) }}"));
    assertTrue(e.getMessage().contains("larger than the limit"), e.getMessage());
  }

  @Test
  void strftimeNowFormatsTheCurrentDate() {
    String year = render("{{ strftime_now('%Y') }}");
    assertTrue(year.matches("\\d{4}"), year);
    assertEquals("07 Mar 2025, Friday 14:05", Renderer.strftime("%d %b %Y, %A %H:%M",
        java.time.ZonedDateTime.of(2025, 3, 7, 14, 5, 0, 0, java.time.ZoneOffset.UTC)));
  }
}
