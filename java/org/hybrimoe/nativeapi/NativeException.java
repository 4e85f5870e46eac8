package org.hybrimoe.nativeapi;

/**
 * A native call returned an error status. The message reads "fn(..) failed: reason", the reason
 * being the engine's own per-thread message; {@link #status()} is the C status code.
 * Subclasses name the kind of failure so that callers can recover from the recoverable ones
 * (device memory exhaustion, say) without parsing messages.
 */
public class NativeException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int status;
  private final String function;

  public NativeException(String function, int status, String reason) {
    super(function + "(..) failed: " + reason);
    this.function = function;
    this.status = status;
  }

  /** The C status code (negative). */
  public int status() {
    return status;
  }

  /** The C function that failed. */
  public String function() {
    return function;
  }

  /** A null pointer, negative size or otherwise invalid argument reached the engine. */
  public static final class InvalidArgument extends NativeException {
    private static final long serialVersionUID = 1L;

    public InvalidArgument(String fn, int status, String reason) {
      super(fn, status, reason);
    }
  }

  /** The CPU or this build lacks what was asked for (a forced kernel variant, CUDA). */
  public static final class Unsupported extends NativeException {
    private static final long serialVersionUID = 1L;

    public Unsupported(String fn, int status, String reason) {
      super(fn, status, reason);
    }
  }

  /** Host or device memory ran out; the engine is still usable (retry smaller). */
  public static final class OutOfMemory extends NativeException {
    private static final long serialVersionUID = 1L;

    public OutOfMemory(String fn, int status, String reason) {
      super(fn, status, reason);
    }
  }

  /** A CUDA runtime call failed; the reason names the call and CUDA's error. */
  public static final class Cuda extends NativeException {
    private static final long serialVersionUID = 1L;

    public Cuda(String fn, int status, String reason) {
      super(fn, status, reason);
    }
  }

  /** No such device: index out of range, no driver, or a build without CUDA. */
  public static final class NoDevice extends NativeException {
    private static final long serialVersionUID = 1L;

    public NoDevice(String fn, int status, String reason) {
      super(fn, status, reason);
    }
  }

  /** The object is not in a state that allows the call. */
  public static final class IllegalState extends NativeException {
    private static final long serialVersionUID = 1L;

    public IllegalState(String fn, int status, String reason) {
      super(fn, status, reason);
    }
  }
}
