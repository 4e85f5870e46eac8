package org.hybrimoe.chat;

/**
 * A chat template that cannot be compiled or rendered. Syntax and runtime errors carry the
 * 1-based line and column in the template source and start their message with "line:column: ";
 * an error raised by the template itself ({@code raise_exception('...')}) carries exactly the
 * template's message and no position.
 */
public final class ChatTemplateException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final int line;
  private final int column;
  private final boolean raisedByTemplate;

  private ChatTemplateException(String message, int line, int column, boolean raisedByTemplate) {
    super(message);
    this.line = line;
    this.column = column;
    this.raisedByTemplate = raisedByTemplate;
  }

  /** An error at a position of the template source (1-based line and column). */
  static ChatTemplateException at(int line, int column, String what) {
    return new ChatTemplateException(line + ":" + column + ": " + what, line, column, false);
  }

  /** An error at a position of the template source, packed as {@link Pos}. */
  static ChatTemplateException at(Pos pos, String what) {
    return at(pos.line(), pos.column(), what);
  }

  /** The error a template raises with raise_exception(message). */
  static ChatTemplateException raised(String message) {
    return new ChatTemplateException(message, 0, 0, true);
  }

  /** 1-based line of the error in the template source, or 0 when raised by the template. */
  public int line() {
    return line;
  }

  /** 1-based column of the error in the template source, or 0 when raised by the template. */
  public int column() {
    return column;
  }

  /** True when the template itself raised this error with raise_exception. */
  public boolean raisedByTemplate() {
    return raisedByTemplate;
  }
}
