package org.hybrimoe.chat;

/** PLACEHOLDER: a template that cannot be parsed or rendered (the real one lands with org.hybrimoe.chat). */
public class ChatTemplateException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ChatTemplateException(String message) {
    super(message);
  }

  public ChatTemplateException(String message, Throwable cause) {
    super(message, cause);
  }
}
