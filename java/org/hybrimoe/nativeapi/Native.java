package org.hybrimoe.nativeapi;

import java.lang.System.Logger.Level;
import java.nio.Buffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Locale;

/**
 * The typed face of the native engine: loads it once, turns status codes into
 * {@link NativeException}s, and checks buffers before they cross the boundary.
 *
 * <p>Kernel variant: the engine picks the best the CPU supports; the environment variable
 * {@code HMOE_KERNEL} or the system property {@code hybrimoe.kernel} (scalar, avx2, avx512, auto;
 * the property wins) forces another, and {@link #forceKernelVariant} does so at run time.
 */
public final class Native {
  private static final System.Logger LOG = System.getLogger(Native.class.getName());

  /** System property that forces the CPU kernel variant. */
  public static final String KERNEL_PROPERTY = "hybrimoe.kernel";

  private static volatile boolean loaded;

  private Native() {}

  /**
   * Loads libhybrimoe (and oneDNN before it) if not yet loaded and applies the kernel-variant
   * property. Thread-safe; cheap after the first call.
   *
   * @throws UnsatisfiedLinkError with JavaCPP's explanation when the platform jar is missing
   */
  public static void load() {
    if (loaded) {
      return;
    }
    synchronized (Native.class) {
      if (loaded) {
        return;
      }
      try {
        Class.forName(HmoeNative.class.getName(), true, Native.class.getClassLoader());
      } catch (ClassNotFoundException e) {
        throw new AssertionError("binding class missing from the jar", e);
      } catch (LinkageError e) { // UnsatisfiedLinkError, ExceptionInInitializerError
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        UnsatisfiedLinkError le =
            new UnsatisfiedLinkError(
                "cannot load libhybrimoe for this platform (is the hybrimoe platform jar on the"
                    + " class path?): "
                    + cause);
        le.initCause(cause);
        throw le;
      }
      loaded = true;
      String forced = System.getProperty(KERNEL_PROPERTY);
      if (forced != null && !forced.isBlank()) {
        forceKernelVariant(KernelVariant.parse(forced));
        LOG.log(Level.DEBUG, "kernel variant forced to {0} by -D{1}", forced, KERNEL_PROPERTY);
      }
    }
  }

  /**
   * Throws the exception for {@code status} when it is not {@code HMOE_OK}; the message is the
   * engine's last error on this thread. Use right after the native call, on the same thread.
   */
  public static void check(String function, int status) {
    if (status == HmoeNative.HMOE_OK) {
      return;
    }
    String reason = HmoeNative.hmoe_last_error().getString();
    String prefix = function + ": ";
    if (reason.startsWith(prefix)) {
      reason = reason.substring(prefix.length());
    }
    if (reason.isEmpty()) {
      reason = "status " + status + " with no message";
    }
    switch (status) {
      case HmoeNative.HMOE_ERR_INVALID_ARGUMENT:
        throw new NativeException.InvalidArgument(function, status, reason);
      case HmoeNative.HMOE_ERR_UNSUPPORTED:
        throw new NativeException.Unsupported(function, status, reason);
      case HmoeNative.HMOE_ERR_OUT_OF_MEMORY:
        throw new NativeException.OutOfMemory(function, status, reason);
      case HmoeNative.HMOE_ERR_CUDA:
        throw new NativeException.Cuda(function, status, reason);
      case HmoeNative.HMOE_ERR_NO_DEVICE:
        throw new NativeException.NoDevice(function, status, reason);
      case HmoeNative.HMOE_ERR_STATE:
        throw new NativeException.IllegalState(function, status, reason);
      default:
        throw new NativeException(function, status, reason);
    }
  }

  /**
   * Requires a direct buffer with at least {@code elements} remaining: the engine reads and writes
   * it in place, so a heap buffer (which JavaCPP would silently copy) is refused.
   */
  public static void requireDirect(String name, Buffer buffer, long elements) {
    if (buffer == null) {
      throw new NullPointerException(name + " must not be null");
    }
    if (!buffer.isDirect()) {
      throw new IllegalArgumentException(
          name
              + " must be a direct buffer (ByteBuffer.allocateDirect or a mapped file); heap buffers"
              + " would be copied on every call");
    }
    if (buffer.remaining() < elements) {
      throw new IllegalArgumentException(
          name + " has " + buffer.remaining() + " elements remaining, needs " + elements);
    }
  }

  /** Engine version, "MAJOR.MINOR.PATCH". */
  public static String version() {
    load();
    return HmoeNative.hmoe_version().getString();
  }

  /** The kernel variant all CPU kernels currently dispatch to. */
  public static KernelVariant kernelVariant() {
    load();
    int[] out = new int[1];
    check("hmoe_kernel_variant", HmoeNative.hmoe_kernel_variant(out));
    return KernelVariant.of(out[0]);
  }

  /** Why the current kernel variant was chosen. */
  public static String kernelVariantNote() {
    load();
    return HmoeNative.hmoe_kernel_variant_note().getString();
  }

  /**
   * Forces a kernel variant for every later kernel call, or {@link KernelVariant#AUTO}. Call at
   * start-up, not while kernels run.
   *
   * @throws NativeException.Unsupported when this CPU lacks the variant's features
   */
  public static void forceKernelVariant(KernelVariant variant) {
    load();
    check("hmoe_kernel_variant_force", HmoeNative.hmoe_kernel_variant_force(variant.code()));
  }

  /**
   * Converts {@code n} floats to bf16 (round to nearest even) from src's position into dst's
   * position, in place in native memory: no copy. Buffer positions are not moved.
   */
  public static void convertF32ToBf16(FloatBuffer src, ShortBuffer dst, long n) {
    load();
    requireDirect("src", src, n);
    requireDirect("dst", dst, n);
    check("hmoe_convert_f32_to_bf16", HmoeNative.hmoe_convert_f32_to_bf16(src, dst, n));
  }

  /** Converts {@code n} bf16 values to floats, exactly; see {@link #convertF32ToBf16}. */
  public static void convertBf16ToF32(ShortBuffer src, FloatBuffer dst, long n) {
    load();
    requireDirect("src", src, n);
    requireDirect("dst", dst, n);
    check("hmoe_convert_bf16_to_f32", HmoeNative.hmoe_convert_bf16_to_f32(src, dst, n));
  }

  /**
   * Runs the engine's CUDA self-test on one device (allocation, copies, a kernel whose bf16
   * rounding must match the host's) and returns the number of mismatching values, 0 when sound.
   *
   * @throws NativeException.NoDevice when there is no such device or no CUDA
   */
  public static long cudaSelfTest(int device, long n) {
    load();
    long[] bad = new long[1];
    check("hmoe_cuda_selftest", HmoeNative.hmoe_cuda_selftest(device, n, bad));
    return bad[0];
  }

  /** CPU kernel variants, in the engine's numbering. */
  public enum KernelVariant {
    AUTO(-1),
    SCALAR(HmoeNative.HMOE_KERNEL_SCALAR),
    AVX2(HmoeNative.HMOE_KERNEL_AVX2),
    AVX512(HmoeNative.HMOE_KERNEL_AVX512);

    private final int code;

    KernelVariant(int code) {
      this.code = code;
    }

    /** The engine's code for this variant. */
    public int code() {
      return code;
    }

    static KernelVariant of(int code) {
      for (KernelVariant v : values()) {
        if (v.code == code) {
          return v;
        }
      }
      throw new IllegalStateException("engine reported unknown kernel variant " + code);
    }

    /** Parses "scalar", "avx2", "avx512" or "auto" (any case). */
    public static KernelVariant parse(String s) {
      try {
        return valueOf(s.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "unknown kernel variant '" + s + "' (expected scalar, avx2, avx512 or auto)", e);
      }
    }

    @Override
    public String toString() {
      return name().toLowerCase(Locale.ROOT);
    }
  }
}
