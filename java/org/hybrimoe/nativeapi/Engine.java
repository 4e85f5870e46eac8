package org.hybrimoe.nativeapi;

/**
 * A native engine: the worker configuration CPU kernels run with. Close it when done; a Cleaner
 * frees it if it becomes unreachable unclosed (a backstop, not a substitute for close).
 *
 * <p>Thread-safety: methods may be called from any thread; {@link #close} must not race other
 * calls on the same engine.
 */
public final class Engine implements AutoCloseable {
  private final NativeHandle<HmoeNative.hmoe_engine_t> handle;

  private Engine(HmoeNative.hmoe_engine_t handle) {
    this.handle = new NativeHandle<>(this, handle, HmoeNative::hmoe_engine_free, "engine");
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
    return handle.get();
  }

  @Override
  public void close() {
    handle.close();
  }
}
