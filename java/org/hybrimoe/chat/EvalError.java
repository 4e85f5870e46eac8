package org.hybrimoe.chat;

/**
 * A runtime error found below the renderer (a bad operand, an unknown method); the renderer
 * turns it into a {@link ChatTemplateException} naming the expression's line and column.
 */
final class EvalError extends RuntimeException {
  private static final long serialVersionUID = 1L;

  EvalError(String message) {
    super(message, null, false, false);
  }
}
