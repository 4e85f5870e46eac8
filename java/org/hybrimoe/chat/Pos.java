package org.hybrimoe.chat;

/** A 1-based line and column in a template source, for error messages. */
record Pos(int line, int column) {
  @Override
  public String toString() {
    return line + ":" + column;
  }
}
