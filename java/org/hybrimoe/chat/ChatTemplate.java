package org.hybrimoe.chat;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.hybrimoe.chat.Node.Stmt;

/**
 * A HuggingFace chat template (the Jinja {@code chat_template} of tokenizer_config.json),
 * compiled once and rendered many times. The engine implements the Jinja subset chat templates
 * use, with the environment transformers renders them in: trim_blocks and lstrip_blocks on,
 * loop controls, {@code raise_exception}, {@code strftime_now}, and a {@code tojson} that keeps
 * non-ASCII text. Where Python Jinja2 and other implementations differ, it follows Python
 * (None renders as "None", True as "True", lists as Python reprs).
 *
 * <pre>{@code
 * ChatTemplate t = ChatTemplate.compile(tokenizerConfig.get("chat_template").asText());
 * String prompt = t.render(Map.of(
 *     "messages", List.of(Map.of("role", "user", "content", "Hello")),
 *     "add_generation_prompt", true, "bos_token", "<s>", "eos_token", "</s>"));
 * }</pre>
 *
 * <p>Templates may nest blocks and brackets 200 levels deep and call macros 50 deep; beyond
 * that compile or render fails with a {@link ChatTemplateException}, as it does if the calling
 * thread's stack is too small for the template (never a StackOverflowError).
 *
 * <p>Immutable and thread-safe: each render has its own state.
 */
public final class ChatTemplate {
  private final String source;
  private final List<Stmt> body;

  private ChatTemplate(String source, List<Stmt> body) {
    this.source = source;
    this.body = body;
  }

  /**
   * Parses a template.
   *
   * @throws ChatTemplateException on a syntax error; the message starts with "line:column: " and
   *     says what was expected
   */
  public static ChatTemplate compile(String source) {
    Objects.requireNonNull(source, "source");
    try {
      return new ChatTemplate(source, Parser.parse(source));
    } catch (StackOverflowError e) {
      throw ChatTemplateException.at(1, 1, "template nests too deeply to compile on this thread's stack");
    }
  }

  /**
   * Renders the template with these variables: String, Boolean, Number, List, Map (nested) and
   * null values. A variable absent from the map is undefined (falsy, renders as "").
   *
   * @throws ChatTemplateException when the template calls {@code raise_exception} (the message is
   *     the template's) or fails at run time (the message names the line and column)
   */
  public String render(Map<String, Object> context) {
    try {
      return new Renderer(context).render(body);
    } catch (StackOverflowError e) {
      throw ChatTemplateException.at(1, 1, "template recursion too deep to render on this thread's stack");
    }
  }

  /** The source this template was compiled from. */
  public String source() {
    return source;
  }
}
