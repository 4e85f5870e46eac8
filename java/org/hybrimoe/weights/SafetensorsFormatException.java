package org.hybrimoe.weights;

import java.io.IOException;

/**
 * A safetensors file whose bytes break the format (header length, JSON, dtype, shape, offsets,
 * overlaps, holes): the file is readable but not a valid checkpoint. The message names the file
 * and, where one is at fault, the tensor. An {@link IOException} so that callers that read files
 * handle it with their other I/O failures; the model loader turns it into its format error.
 */
public class SafetensorsFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public SafetensorsFormatException(String message) {
    super(message);
  }
}
