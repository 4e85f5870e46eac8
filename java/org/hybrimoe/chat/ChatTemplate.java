package org.hybrimoe.chat;

import java.util.Map;
import java.util.Objects;

/**
 * PLACEHOLDER so the tokenizer compiles before the real Jinja engine lands: the API
 * org.hybrimoe.chat will have ({@link #compile}, {@link #render}); rendering is unsupported here.
 * Drop this file at merge in favour of the real one.
 */
public final class ChatTemplate {
  private final String source;

  private ChatTemplate(String source) {
    this.source = source;
  }

  /** Parses a template (the placeholder keeps the source only). */
  public static ChatTemplate compile(String source) {
    return new ChatTemplate(Objects.requireNonNull(source, "source"));
  }

  /** Renders with the given variables; the placeholder always throws. */
  public String render(Map<String, Object> context) {
    throw new UnsupportedOperationException("chat templates land with org.hybrimoe.chat");
  }

  @Override
  public String toString() {
    return "ChatTemplate(placeholder, " + source.length() + " chars)";
  }
}
