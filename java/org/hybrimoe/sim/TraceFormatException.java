package org.hybrimoe.sim;

import java.io.IOException;
import java.nio.file.Path;

/** A trace directory that does not match the format: the message names the file and the field. */
public final class TraceFormatException extends IOException {
  public TraceFormatException(Path file, String field, String problem) {
    super(file + ": " + field + ": " + problem);
  }
}
