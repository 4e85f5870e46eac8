package org.hybrimoe.chat;

import static org.hybrimoe.chat.Render.render;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** for loops and their loop variable, Jinja's scoping, namespace objects, macros, set and filter blocks. */
class LoopsAndScopesTest {
  @Test
  void nestedLoopsEachSeeTheirOwnLoopVariable() {
    String src = "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}/{{ loop.length }}"
        + "{% if loop.last %};{% endif %}{% endfor %}{{ loop.index0 }}|{% endfor %}";
    assertEquals("1x/22y/2;0|1x/22y/2;1|", render(src));
  }

  @Test
  void loopVariableHasEveryCounterAndNeighbour() {
    String src = "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
        + "{{ loop.first }}{{ loop.last }}{{ loop.length }}<{{ loop.previtem }}|{{ loop.nextitem }}>{{ loop.cycle('o', 'e') }} {% endfor %}";
    assertEquals("1032TrueFalse3<|b>o 2121FalseFalse3<a|c>e 3210FalseTrue3<b|>o ", render(src));
  }

  @Test
  void loopFilterRunsBeforeCountingAndElseRunsWhenNothingIsLeft() {
    assertEquals("1:b/2 2:d/2 ", render("{% for x in ['a', 'b', 'c', 'd'] if x in 'bd' %}{{ loop.index }}:{{ x }}/{{ loop.length }} {% endfor %}"));
    assertEquals("empty", render("{% for x in [] %}x{% else %}empty{% endfor %}"));
    assertEquals("none kept", render("{% for x in [1, 2] if x > 5 %}x{% else %}none kept{% endfor %}"));
    assertEquals("", render("{% for x in missing %}x{% endfor %}"));
  }

  @Test
  void tuplesUnpackIntoSeveralLoopVariables() {
    assertEquals("a=1;b=2;", render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"));
    assertEquals("1-2 3-4 ", render("{% for (a, b) in [[1, 2], [3, 4]] %}{{ a }}-{{ b }} {% endfor %}"));
    assertEquals("k1,k2,", render("{% for k in d %}{{ k }},{% endfor %}", "d", orderedKeys()));
    assertEquals("h|é|😀|", render("{% for c in 'hé😀' %}{{ c }}|{% endfor %}"));
    ChatTemplateException e = assertThrows(ChatTemplateException.class,
        () -> render("{% for a, b in [[1, 2, 3]] %}{% endfor %}"));
    assertTrue(e.getMessage().startsWith("1:8: cannot unpack 3 values into 2 names"), e.getMessage());
  }

  private static Map<String, Object> orderedKeys() {
    Map<String, Object> m = new java.util.LinkedHashMap<>();
    m.put("k1", 1);
    m.put("k2", 2);
    return m;
  }

  @Test
  void setInsideALoopStaysInsideButSetInsideAnIfDoesNot() {
    assertEquals("1", render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"));
    assertEquals("2", render("{% if true %}{% set x = 2 %}{% endif %}{{ x }}"));
    // Inside one loop, an assignment carries over to the next iteration.
    assertEquals("1230", render("{% set x = 0 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"));
  }

  @Test
  void namespaceAttributesChangeAcrossIterationsAndScopes() {
    String src = "{% set ns = namespace(total=0, names='', found=false) %}"
        + "{% for m in messages %}{% set ns.total = ns.total + m.n %}{% if m.n > 1 %}{% set ns.found = true %}{% endif %}"
        + "{% for c in m.name %}{% set ns.names = ns.names ~ c %}{% endfor %}{% endfor %}"
        + "{{ ns.total }} {{ ns.names }} {{ ns.found }} {{ ns.missing is defined }}";
    assertEquals("3 abc True False", render(src, "messages",
        List.of(Map.of("n", 1, "name", "a"), Map.of("n", 2, "name", "bc"))));
    assertEquals("5", render("{% set ns = namespace({'a': 5}) %}{{ ns.a }}"));
  }

  @Test
  void assigningAnAttributeOfSomethingElseIsAnError() {
    ChatTemplateException e = assertThrows(ChatTemplateException.class,
        () -> render("{% set d = {'a': 1} %}\n{% set d.a = 2 %}"));
    assertTrue(e.getMessage().startsWith("2:8: cannot set attribute 'a' of 'd': it is a dict"), e.getMessage());
  }

  @Test
  void reversedSlicesAndIndexesWalkMessagesBackwards() {
    String src = "{% for m in messages[::-1] %}{{ (messages | length - 1) - loop.index0 }}{{ m }}{% endfor %}";
    assertEquals("2c1b0a", render(src, "messages", List.of("a", "b", "c")));
  }

  @Test
  void breakAndContinueControlTheInnermostLoop() {
    assertEquals("13", render("{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"));
    assertEquals("1a1b2a2b", render("{% for i in [1, 2] %}{% for c in 'abc' %}{% if c == 'c' %}{% break %}{% endif %}{{ i }}{{ c }}{% endfor %}{% endfor %}"));
  }

  @Test
  void macrosTakeDefaultsAndKeywordsAndSeeTopLevelVariables() {
    String src = "{% set sep = ':' %}{% macro item(name, value='?', tag='li') %}<{{ tag }}>{{ name }}{{ sep }}{{ value }}</{{ tag }}>{% endmacro %}"
        + "{{ item('a') }}{{ item('b', 2) }}{{ item('c', tag='p') }}{{ item(name='d', value=none) }}";
    assertEquals("<li>a:?</li><li>b:2</li><p>c:?</p><li>d:None</li>", render(src));
  }

  @Test
  void macrosDoNotSeeTheCallersLoopVariables() {
    assertEquals("[]", render("{% macro f() %}[{{ x }}]{% endmacro %}{% for x in [1] %}{{ f() }}{% endfor %}"));
  }

  @Test
  void recursiveMacrosWorkUntilTheCallDepthLimit() {
    String src = "{% macro down(n) %}{{ n }}{% if n > 0 %}{{ down(n - 1) }}{% endif %}{% endmacro %}{{ down(n) }}";
    assertEquals("3210", render(src, "n", 3));
    ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render(src, "n", 1000));
    assertTrue(e.getMessage().contains("macro calls nest deeper than 50 (calling 'down')"), e.getMessage());
  }

  @Test
  void setAndFilterBlocksCaptureRenderedText() {
    assertEquals("[A1]", render("{% set x | upper %}a{{ 1 }}{% endset %}[{{ x }}]"));
    assertEquals("AB c", render("{% filter upper %}ab{% endfilter %} c"));
    assertEquals("x y", render("{% set a, b = 'x', 'y' %}{{ a }} {{ b }}"));
  }

  @Test
  void theGenerationTagRendersItsBody() {
    assertEquals("<a>hi</a>", render("<a>{% generation %}hi{% endgeneration %}</a>"));
  }
}
