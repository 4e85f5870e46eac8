package org.hybrimoe.model;

/**
 * A model directory, config or checkpoint that cannot be run: an unknown model_type, a missing or
 * malformed config field, a missing tensor, or weights that disagree with the config. The message
 * names the file and the field or tensor at fault.
 */
public class ModelFormatException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ModelFormatException(String message) {
    super(message);
  }

  public ModelFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
