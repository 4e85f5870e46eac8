package org.hybrimoe.chat;

import java.util.LinkedHashMap;
import java.util.Map;

/** Test helper: compile and render a template with key/value pairs as its context. */
final class Render {
  private Render() {}

  static String render(String source, Object... keyValues) {
    return ChatTemplate.compile(source).render(context(keyValues));
  }

  static Map<String, Object> context(Object... keyValues) {
    Map<String, Object> ctx = new LinkedHashMap<>();
    for (int k = 0; k < keyValues.length; k += 2) {
      ctx.put((String) keyValues[k], keyValues[k + 1]);
    }
    return ctx;
  }
}
