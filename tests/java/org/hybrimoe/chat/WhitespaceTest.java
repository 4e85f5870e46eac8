package org.hybrimoe.chat;

import static org.hybrimoe.chat.Render.render;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Whitespace as transformers renders chat templates: trim_blocks, lstrip_blocks, - and + markers. */
class WhitespaceTest {
  @Test
  void trimBlocksRemovesTheNewlineAfterABlockTag() {
    assertEquals("x\n", render("{% if true %}\nx\n{% endif %}\n"));
    assertEquals("a\nb", render("a\n{% set x = 1 %}\nb"));
  }

  @Test
  void trimBlocksLeavesTheNewlineAfterAnExpression() {
    assertEquals("a\nb", render("{{ 'a' }}\nb"));
  }

  @Test
  void lstripBlocksRemovesIndentationBeforeBlockTagsOnly() {
    assertEquals("  x\n", render("  {% if true %}\n  x\n  {% endif %}"));
    assertEquals("  a", render("  {{ 'a' }}"));
    assertEquals("x", render("{% if true %}\n  {% if true %}x{% endif %}{% endif %}"));
  }

  @Test
  void lstripBlocksNeedsTheTagToStartItsLine() {
    assertEquals("a b", render("a {% if true %}b{% endif %}"));
    assertEquals("a  b", render("{{ 'a' }}  {% if true %}b{% endif %}"));
    assertEquals(" 1  2 ", render("{% for i in [1, 2] %} {{ i }} {% endfor %}"));
  }

  @Test
  void minusMarkersStripAllWhitespaceOnTheirSide() {
    assertEquals("ab", render("a\n\n  {%- if true %}b{% endif %}"));
    assertEquals("b", render("{% if true -%}\n\n  b{% endif %}"));
    assertEquals("abc", render("a  {{- 'b' -}}  \n c"));
    assertEquals("a\n\n", render("a\n\n{{ '' -}}\n  \t"));
  }

  @Test
  void plusMarkersTurnLstripAndTrimOff() {
    assertEquals("  x", render("  {%+ if true %}x{% endif %}"));
    assertEquals("\nx", render("{% if true +%}\nx{% endif %}"));
  }

  @Test
  void commentsFollowTheBlockRules() {
    assertEquals("a  b", render("a {# c #} b"));
    assertEquals("b", render("  {# comment #}\nb"));
    assertEquals("ab", render("a {#- c -#} b"));
    assertEquals("x", render("{# a {{ not }} {% parsed %} #}x"));
  }

  @Test
  void oneTrailingNewlineOfTheSourceIsDropped() {
    assertEquals("x", render("x\n"));
    assertEquals("x\n", render("x\n\n"));
  }

  @Test
  void windowsLineEndingsAreNormalized() {
    assertEquals("x\ny", render("{% if true %}\r\nx\r\ny{% endif %}\r\n"));
  }

  @Test
  void rawBlocksAreNotParsed() {
    assertEquals("{{ not }} {% parsed %}", render("{% raw %}{{ not }} {% parsed %}{% endraw %}"));
    assertEquals("a{{ x }}b", render("a{% raw -%}  {{ x }}  {%- endraw %}b"));
  }

  @Test
  void aTypicalIndentedTemplateRendersWithoutStrayWhitespace() {
    String src = """
        {%- for m in messages %}
            {%- if m.role == 'user' %}
                {{- '<user>' + m.content + '\\n' }}
            {%- else %}
                {{- '<bot>' + m.content + '\\n' }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<bot>' }}
        {%- endif %}
        """;
    assertEquals("<user>hi\n<bot>yo\n<bot>", render(src, "messages",
        java.util.List.of(java.util.Map.of("role", "user", "content", "hi"), java.util.Map.of("role", "bot", "content", "yo")),
        "add_generation_prompt", true));
  }
}
