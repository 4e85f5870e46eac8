package org.hybrimoe.chat;

import static org.hybrimoe.chat.Render.render;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Jinja's filters and the str/dict methods chat templates call, with Python's results. */
class FiltersAndMethodsTest {
  private static final List<Map<String, Object>> MESSAGES = List.of(
      Map.of("role", "system", "content", "S"),
      Map.of("role", "user", "content", "U1"),
      Map.of("role", "assistant", "content", "A", "tool_calls", List.of()),
      Map.of("role", "user", "content", "U2"));

  @Test
  void textFilters() {
    assertEquals("x|X|x|Hello World-Foo (Bar)|Hello|ab", render(
        "{{ '  x \\n' | trim }}|{{ 'x' | upper }}|{{ 'X' | lower }}|{{ 'hello wORLD-foo (bar)' | title }}|{{ 'hELLO' | capitalize }}|{{ 'xabx' | trim('x') }}"));
    assertEquals("a-b-c|b.b|3 2 0|&lt;a href=&#34;x&#34;&gt;", render(
        "{{ 'a b c' | replace(' ', '-') }}|{{ 'a.a' | replace('a', 'b') }}|{{ 'héé' | length }} {{ [1, 2] | count }} {{ '' | length }}|{{ '<a href=\"x\">' | e }}"));
    assertEquals("1|2.5|0|3|0.0|1.5", render(
        "{{ 1.9 | int }}|{{ '2.5' | float }}|{{ 'x' | int }}|{{ '3' | int }}|{{ 'x' | float }}|{{ '1.5' | float }}"));
    assertEquals("None|[1, 2]|3", render("{{ none | string }}|{{ [1, 2] | string }}|{{ 'some words  here' | wordcount }}"));
  }

  @Test
  void defaultReplacesUndefinedAndWithBooleanAlsoFalsy() {
    assertEquals("d|None|d|x|d", render(
        "{{ missing | default('d') }}|{{ none | default('d') }}|{{ '' | d('d', true) }}|{{ 'x' | d('d') }}|{{ missing | d(default_value='d') }}"));
  }

  @Test
  void sequenceFilters() {
    assertEquals("1|3|h|o|a, b|3-2-1|olleh|[1, 2]|[3, 1, 2]", render(
        "{{ l | first }}|{{ l | last }}|{{ 'hello' | first }}|{{ 'hello' | last }}|{{ ['a', 'b'] | join(', ') }}"
            + "|{{ [3, 2, 1] | join('-') }}|{{ 'hello' | reverse }}|{{ [2, 1] | reverse | list | reverse | list | sort }}"
            + "|{{ [3, 1, 2] | list }}",
        "l", List.of(1, 2, 3)));
    assertEquals("[1, 2, 3]|['a', 'B', 'c']|['c', 'B', 'a']|3|1|6|['a', 'b']|", render(
        "{{ [3, 1, 2] | sort }}|{{ ['c', 'a', 'B'] | sort }}|{{ ['c', 'a', 'B'] | sort(reverse=true) }}|{{ [3, 1, 2] | max }}"
            + "|{{ [3, 1, 2] | min }}|{{ [1, 2, 3] | sum }}|{{ ['a', 'A', 'b'] | unique | list }}|{{ [] | first }}"));
  }

  @Test
  void selectAndRejectByAttributeAndTest() {
    assertEquals("U1,U2|S,A|A|S,U1,U2", render(
        "{{ m | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}"
            + "|{{ m | rejectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}"
            + "|{{ m | selectattr('tool_calls', 'defined') | map(attribute='content') | join(',') }}"
            + "|{{ m | selectattr('tool_calls', 'undefined') | map(attribute='content') | join(',') }}",
        "m", MESSAGES));
    assertEquals("[2, 4]|[1, 3]|['a']|['b']|['A', 'B']|[1, 2]", render(
        "{{ [1, 2, 3, 4] | select('even') | list }}|{{ [1, 2, 3, 4] | reject('even') | list }}"
            + "|{{ ['a', 'b'] | reject('in', ['b']) | list }}|{{ ['a', 'b'] | select('in', 'xb') | list }}"
            + "|{{ ['a', 'b'] | map('upper') | list }}|{{ [0, 1, none, 2] | select | list }}"));
    assertEquals("x,?", render("{{ l | map(attribute='a.b', default='?') | join(',') }}",
        "l", List.of(Map.of("a", Map.of("b", "x")), Map.of())));
  }

  @Test
  void itemsAndDictsort() {
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("b", 1);
    d.put("a", 2);
    assertEquals("b=1 a=2 |a=2 b=1 |", render(
        "{% for k, v in d | items %}{{ k }}={{ v }} {% endfor %}|{% for k, v in d | dictsort %}{{ k }}={{ v }} {% endfor %}"
            + "|{% for k, v in missing | items %}x{% endfor %}", "d", d));
  }

  @Test
  void tojsonIsPythonJsonDumpsWithoutAsciiEscaping() {
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("name", "Grüße \"q\" \\ \n\t\u0001");
    d.put("n", List.of(1, 2.5, true));
    d.put("none", null);
    d.put("empty", Map.of());
    assertEquals("{\"name\": \"Grüße \\\"q\\\" \\\\ \\n\\t\\u0001\", \"n\": [1, 2.5, true], \"none\": null, \"empty\": {}}",
        render("{{ d | tojson }}", "d", d));
    assertEquals("{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ]\n}", render("{{ {'a': [1, {'b': []}]} | tojson(indent=2) }}"));
    assertEquals("{\"a\": 1, \"b\": 2}|\"\\u00e9\"", render("{{ {'b': 2, 'a': 1} | tojson(sort_keys=true) }}|{{ 'é' | tojson(ensure_ascii=true) }}"));
    assertEquals("\"x\"|\"x\"", render("{{ 'x' | tojson }}|{{ 'x' | tojson | safe }}"));
  }

  @Test
  void numberFilters() {
    assertEquals("3|2.5|2.0|4.0|2.67|3.0|2", render(
        "{{ -3 | abs }}|{{ -2.5 | abs }}|{{ 2.5 | round }}|{{ 3.5 | round }}|{{ 2.675 | round(2) }}|{{ 2.1 | round(method='ceil') }}|{{ 2 | round }}"));
  }

  @Test
  void indentFilter() {
    assertEquals("a\n  b\n\n  c", render("{{ 'a\\nb\\n\\nc' | indent(2) }}"));
    assertEquals("  a\n  b\n  \n  c", render("{{ 'a\\nb\\n\\nc' | indent(2, first=true, blank=true) }}"));
  }

  @Test
  void stringMethods() {
    assertEquals("x|x  |  x|ab|[' a', 'b ']|['a', 'b', 'c']|['a', 'b c']|['a,b', 'c']|['', 'x']", render(
        "{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ '\\nab\\n'.strip('\\n') }}"
            + "|{{ ' a,b '.split(',') }}|{{ ' a b\\tc\\n'.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}"
            + "|{{ '</think>x'.split('</think>') }}"));
    assertEquals("True|True|False|True|HI|hi|a-b|Hello World|2|-1|1|a, b|x=1, y=2", render(
        "{{ 'abc'.startswith('ab') }}|{{ 'abc'.startswith(['x', 'a']) }}|{{ 'abc'.endswith('b') }}|{{ 'abc'.endswith(('c',)) }}"
            + "|{{ 'hi'.upper() }}|{{ 'HI'.lower() }}|{{ 'a b'.replace(' ', '-') }}|{{ 'hello world'.title() }}"
            + "|{{ 'abcb'.find('c') }}|{{ 'abc'.find('z') }}|{{ 'aXbX'.count('Xb') }}|{{ ', '.join(['a', 'b']) }}"
            + "|{{ '{}={}, {y}={val}'.format('x', 1, y='y', val=2) }}"));
    assertEquals("b|a", render("{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
        "c", "<think>\na\n</think>\n\nb"));
  }

  @Test
  void dictMethods() {
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("a", 1);
    d.put("b", null);
    assertEquals("['a', 'b']|[1, None]|1|None|dflt|None", render(
        "{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.get('a') }}|{{ d.get('b', 'x') }}|{{ d.get('z', 'dflt') }}|{{ d.get('z') }}",
        "d", d));
  }

  @Test
  void unknownFiltersAndMethodsNameThemselves() {
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("\n  {{ x | frobnicate(1) }}"));
    assertEquals("2:10: unknown filter 'frobnicate'", e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ 'x'.frobnicate() }}"));
    assertEquals("1:8: str has no method 'frobnicate'", e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ d.pop('a') }}", "d", Map.of("a", 1)));
    assertEquals("1:6: dict has no method 'pop'", e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ x is frobnicated }}", "x", 1));
    assertEquals("1:9: unknown test 'frobnicated'", e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ 'x' | trim(1, 2) }}"));
    assertEquals("1:10: filter 'trim' takes at most 1 argument, got 2", e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ 5 | items }}"));
    assertEquals("1:8: filter 'items' needs a mapping, got int", e.getMessage());
  }
}
