package org.hybrimoe.nativeapi;

import java.lang.ref.Cleaner;
import java.util.function.Consumer;
import org.bytedeco.javacpp.Pointer;

/**
 * Ownership of one native handle for a Java object: {@link #close()} frees it once, a Cleaner
 * frees it if the owner becomes unreachable unclosed (a backstop, not a substitute for close),
 * and {@link #get()} refuses a closed handle with a clear exception instead of passing a dangling
 * pointer to native code.
 *
 * <p>The free function must not capture the owner (use a static method reference), or the owner
 * could never become unreachable.
 *
 * @param <P> the JavaCPP pointer type of the handle
 */
public final class NativeHandle<P extends Pointer> implements AutoCloseable {
  private static final Cleaner CLEANER = Cleaner.create();

  private final P pointer;
  private final String what;
  private final Cleaner.Cleanable cleanable;
  private volatile boolean closed;

  /**
   * Takes ownership of {@code pointer} on behalf of {@code owner}.
   *
   * @param what names the object in "... is closed" messages ("engine", "device", ...)
   */
  public NativeHandle(Object owner, P pointer, Consumer<P> free, String what) {
    this.pointer = pointer;
    this.what = what;
    this.cleanable = CLEANER.register(owner, new Release<>(pointer, free));
  }

  /** The live pointer. */
  public P get() {
    if (closed) {
      throw new IllegalStateException(what + " is closed");
    }
    return pointer;
  }

  /** Whether {@link #close} has run (what the handle owned is gone). */
  public boolean closed() {
    return closed;
  }

  /** Frees the native object; later calls do nothing. Must not race calls using the handle. */
  @Override
  public void close() {
    if (!closed) {
      closed = true;
      cleanable.clean();
    }
  }

  // Holds only the pointer and a static free function, never the owner.
  private record Release<P extends Pointer>(P pointer, Consumer<P> free) implements Runnable {
    @Override
    public void run() {
      free.accept(pointer);
      pointer.setNull();
    }
  }
}
