package org.hybrimoe.nativeapi;

import java.lang.ref.Cleaner;

/**
 * A native engine: the worker configuration CPU kernels run with. Close it when done; a Cleaner
 * frees it if it becomes unreachable unclosed (a backstop, not a substitute for close).
 *
 * <p>Thread-safety: methods may be called from any thread; {@link #close} must not race other
 * calls on the same engine.
 */
public final class Engine implements AutoCloseable {
  private static final Cleaner CLEANER = Cleaner.create();

  private final HmoeNative.hmoe_engine_t handle;
  private final Cleaner.Cleanable cleanable;
  private volatile boolean closed;

  private Engine(HmoeNative.hmoe_engine_t handle) {
    this.handle = handle;
    this.cleanable = CLEANER.register(this, new Release(handle));
  }

  /**
   * Creates an engine.
   *
   * @param threads worker threads for CPU kernels; 0 for one per physical core
   * @throws NativeException.InvalidArgument for a negative or absurd count
   */
  public static Engine create(int threads) {
    Native.load();
    HmoeNative.hmoe_engine_t out = new HmoeNative.hmoe_engine_t();
    Native.check("hmoe_engine_create", HmoeNative.hmoe_engine_create(threads, out));
    return new Engine(out);
  }

  /** Worker threads this engine runs CPU kernels on. */
  public int threads() {
    int[] out = new int[1];
    Native.check("hmoe_engine_threads", HmoeNative.hmoe_engine_threads(handle(), out));
    return out[0];
  }

  /**
   * The native handle, for the typed wrappers of other packages (org.hybrimoe.expert); never
   * free it. Throws once closed.
   */
  public HmoeNative.hmoe_engine_t handle() {
    if (closed) {
      throw new IllegalStateException("engine is closed");
    }
    return handle;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      cleanable.clean();
    }
  }

  // Holds only the handle, never the Engine, so that the Engine can become unreachable.
  private static final class Release implements Runnable {
    private final HmoeNative.hmoe_engine_t handle;

    Release(HmoeNative.hmoe_engine_t handle) {
      this.handle = handle;
    }

    @Override
    public void run() {
      HmoeNative.hmoe_engine_free(handle);
      handle.setNull();
    }
  }
}
