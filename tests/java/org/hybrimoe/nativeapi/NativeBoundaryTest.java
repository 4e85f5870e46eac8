package org.hybrimoe.nativeapi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The boundary's promises: failures become exceptions with the native message; no copies. */
class NativeBoundaryTest {

  static FloatBuffer directFloats(int n) {
    return ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  static ShortBuffer directShorts(int n) {
    return ByteBuffer.allocateDirect(n * 2).order(ByteOrder.nativeOrder()).asShortBuffer();
  }

  /** Java's own f32 -> bf16 (round to nearest even, NaN kept quiet), the test's reference. */
  static short bf16(float x) {
    int u = Float.floatToRawIntBits(x);
    if ((u & 0x7fffffff) > 0x7f800000) {
      return (short) ((u >>> 16) | 0x40);
    }
    u += 0x7fff + ((u >>> 16) & 1);
    return (short) (u >>> 16);
  }

  @Test
  void nativeFailureArrivesAsTypedExceptionWithNativeMessage() {
    NativeException.InvalidArgument e =
        assertThrows(NativeException.InvalidArgument.class, () -> Engine.create(-3));
    assertEquals("hmoe_engine_create(..) failed: threads must be >= 0, got -3", e.getMessage());
    assertEquals(HmoeNative.HMOE_ERR_INVALID_ARGUMENT, e.status());
    assertEquals("hmoe_engine_create", e.function());
  }

  @Test
  void nativeCheckOfBufferOverlapIsAnException() {
    ByteBuffer raw = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
    FloatBuffer src = raw.asFloatBuffer();
    ShortBuffer dst = raw.position(2).slice().order(ByteOrder.nativeOrder()).asShortBuffer();
    NativeException e =
        assertThrows(NativeException.InvalidArgument.class, () -> Native.convertF32ToBf16(src, dst, 4));
    assertTrue(e.getMessage().endsWith("src and dst overlap"), e.getMessage());
  }

  @Test
  void forcingAVariantTheCpuLacksIsUnsupportedNotACrash() {
    boolean hasAvx512 = RuntimeFeatures.has(HmoeNative.HMOE_CPU_AVX512F);
    if (hasAvx512) {
      Native.KernelVariant before = Native.kernelVariant(); // the variant this run was forced to
      Native.forceKernelVariant(Native.KernelVariant.AVX512);
      Native.forceKernelVariant(before);
      return;
    }
    NativeException.Unsupported e =
        assertThrows(
            NativeException.Unsupported.class,
            () -> Native.forceKernelVariant(Native.KernelVariant.AVX512));
    assertTrue(e.getMessage().contains("avx512f"), e.getMessage());
  }

  @Test
  void nativeWriteIntoDirectBufferIsSeenWithoutCopy() {
    int n = 1000;
    ByteBuffer backing = ByteBuffer.allocateDirect(n * 2).order(ByteOrder.nativeOrder());
    ShortBuffer dst = backing.asShortBuffer();
    // A second view over the same memory, taken before the call: it can only see the result if
    // the engine wrote into this very memory.
    ShortBuffer otherView = backing.duplicate().order(ByteOrder.nativeOrder()).asShortBuffer();
    FloatBuffer src = directFloats(n);
    Random r = new Random(7);
    for (int i = 0; i < n; i++) {
      src.put(i, (float) r.nextGaussian() * 100f);
      otherView.put(i, (short) 0x7fff);
    }
    Native.convertF32ToBf16(src, dst, n);
    for (int i = 0; i < n; i++) {
      assertEquals(bf16(src.get(i)), otherView.get(i), "element " + i);
    }
    assertEquals(0, dst.position(), "the call must not move buffer positions");
  }

  @Test
  void bufferPositionsSelectTheRange() {
    FloatBuffer src = directFloats(10);
    ShortBuffer dst = directShorts(10);
    for (int i = 0; i < 10; i++) {
      src.put(i, i + 0.5f);
    }
    src.position(3);
    dst.position(5);
    Native.convertF32ToBf16(src, dst, 4);
    for (int i = 0; i < 4; i++) {
      assertEquals(bf16(3 + i + 0.5f), dst.get(5 + i));
    }
    assertEquals(0, dst.get(4));
    assertEquals(0, dst.get(9));
  }

  @Test
  void heapBuffersAreRefusedWithAClearMessage() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Native.convertF32ToBf16(FloatBuffer.allocate(4), directShorts(4), 4));
    assertTrue(e.getMessage().contains("src must be a direct buffer"), e.getMessage());
    IllegalArgumentException shortBuf =
        assertThrows(
            IllegalArgumentException.class,
            () -> Native.convertF32ToBf16(directFloats(3), directShorts(4), 4));
    assertTrue(shortBuf.getMessage().contains("needs 4"), shortBuf.getMessage());
  }

  @Test
  void everySupportedVariantConvertsIdentically() {
    int n = 4099;
    FloatBuffer src = directFloats(n);
    Random r = new Random(11);
    for (int i = 0; i < n; i++) {
      src.put(i, Float.intBitsToFloat(r.nextInt()));
    }
    Native.KernelVariant original = Native.kernelVariant();
    try {
      for (Native.KernelVariant v : Native.KernelVariant.values()) {
        if (v == Native.KernelVariant.AUTO) {
          continue;
        }
        try {
          Native.forceKernelVariant(v);
        } catch (NativeException.Unsupported e) {
          continue; // this CPU lacks it; covered where it exists
        }
        ShortBuffer dst = directShorts(n);
        Native.convertF32ToBf16(src, dst, n);
        FloatBuffer back = directFloats(n);
        Native.convertBf16ToF32(dst, back, n);
        for (int i = 0; i < n; i++) {
          assertEquals(bf16(src.get(i)), dst.get(i), v + " element " + i);
          assertEquals(
              dst.get(i) << 16, Float.floatToRawIntBits(back.get(i)), v + " back " + i);
        }
      }
    } finally {
      Native.forceKernelVariant(original);
    }
  }

  @Test
  void engineLifecycle() {
    Engine e = Engine.create(0);
    assertTrue(e.threads() >= 1);
    e.close();
    e.close(); // idempotent
    assertThrows(IllegalStateException.class, e::threads);
    try (Engine two = Engine.create(2)) {
      assertEquals(2, two.threads());
    }
  }

  /** Feature bits, read through the raw binding. */
  static final class RuntimeFeatures {
    static boolean has(int bit) {
      Native.load();
      int[] f = new int[1];
      Native.check("hmoe_cpu_features", HmoeNative.hmoe_cpu_features(f));
      return (f[0] & bit) != 0;
    }
  }
}
