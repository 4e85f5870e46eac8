package org.hybrimoe.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Random;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.runtime.CudaDiscovery;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The device API: CUDA results against a float64 Java reference, hazards, errors. */
class DeviceTest {

  static boolean gpu() {
    return !CudaDiscovery.discover().devices().isEmpty();
  }

  static FloatBuffer floats(int n) {
    return ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  static IntBuffer ints(int... v) {
    IntBuffer b = ByteBuffer.allocateDirect(v.length * 4).order(ByteOrder.nativeOrder()).asIntBuffer();
    b.put(v).flip();
    return b;
  }

  static float bf16(ByteBuffer b, int i) {
    return Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
  }

  static ByteBuffer randomMatrix(int n, Random r) {
    ByteBuffer b = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.nativeOrder());
    for (int i = 0; i < n; i++) {
      b.putShort(2 * i, (short) (Float.floatToRawIntBits((float) (r.nextGaussian() * 0.1)) >>> 16));
    }
    return b;
  }

  /** down(silu(gate x) * up x) in float64 for one token. */
  static double[] ffn(ByteBuffer g, ByteBuffer u, ByteBuffer dn, FloatBuffer x, int t, int d, int ff) {
    double[] h = new double[ff];
    for (int r = 0; r < ff; r++) {
      double a = 0, b = 0;
      for (int c = 0; c < d; c++) {
        a += bf16(g, r * d + c) * x.get(t * d + c);
        b += bf16(u, r * d + c) * x.get(t * d + c);
      }
      h[r] = a / (1 + Math.exp(-a)) * b;
    }
    double[] y = new double[d];
    for (int c = 0; c < d; c++) {
      for (int r = 0; r < ff; r++) {
        y[c] += bf16(dn, c * ff + r) * h[r];
      }
    }
    return y;
  }

  @Test
  @Tag("gpu")
  void cudaDeviceMatchesFloat64ReferenceAndHonoursEviction() {
    Assumptions.assumeTrue(gpu(), "no CUDA device");
    try (Device dev = Device.cuda(0, ExpertShape.bf16(72, 40), 2)) {
      assertEquals(Device.Kind.CUDA, dev.kind());
      matchesReferenceAndHonoursEviction(dev, 1e-4);
    }
  }

  @Test
  void emulatedDeviceMatchesFloat64ReferenceAndHonoursEvictionWhenSlow() {
    try (Device dev = Device.emulated(2, ExpertShape.bf16(72, 40), 2)) {
      assertEquals(Device.Kind.EMULATED, dev.kind());
      dev.emulatedDelays(20_000, 20_000); // slow copies and kernels: the hazards must hold
      // AVX-512 rounds activations to bf16 in its bf16 kernel; elsewhere the math is f32.
      matchesReferenceAndHonoursEviction(dev, 2e-2);
    }
  }

  private static void matchesReferenceAndHonoursEviction(Device dev, double tol) {
    int d = 72, ff = 40, n = 3, k = 2;
    Random r = new Random(5);
    ByteBuffer[][] experts = new ByteBuffer[3][];
    for (int e = 0; e < 3; e++) {
      experts[e] = new ByteBuffer[] {randomMatrix(ff * d, r), randomMatrix(ff * d, r), randomMatrix(d * ff, r)};
    }
    {
      assertEquals(Device.SlotState.FREE, dev.slotState(0));
      dev.load(0, experts[0][0], experts[0][1], experts[0][2], Device.Stream.COPY);
      dev.load(1, experts[1][0], experts[1][1], experts[1][2], Device.Stream.PREFETCH);
      FloatBuffer x = floats(n * d);
      for (int i = 0; i < n * d; i++) {
        x.put(i, (float) r.nextGaussian());
      }
      IntBuffer ids = ints(0, 1, 1, 2, 2, 0);
      FloatBuffer w = floats(n * k);
      for (int i = 0; i < n * k; i++) {
        w.put(i, 0.3f + 0.1f * i);
      }
      FloatBuffer out = floats(n * d);
      dev.moeRun(x, n, ids, w, k, ints(0, 1, -1), 3, out);
      // Evict expert 0 for expert 2 while the run may still read slot 0.
      dev.load(0, experts[2][0], experts[2][1], experts[2][2], Device.Stream.COPY);
      FloatBuffer out2 = floats(n * d);
      dev.moeRun(x, n, ids, w, k, ints(-1, 1, 0), 3, out2);
      dev.await();
      int[][] slotOf = {{0, 1, -1}, {-1, 1, 0}};
      FloatBuffer[] outs = {out, out2};
      for (int run = 0; run < 2; run++) {
        for (int t = 0; t < n; t++) {
          double[] want = new double[d];
          for (int j = 0; j < k; j++) {
            int e = ids.get(t * k + j);
            if (slotOf[run][e] < 0) {
              continue;
            }
            double[] y = ffn(experts[e][0], experts[e][1], experts[e][2], x, t, d, ff);
            for (int c = 0; c < d; c++) {
              want[c] += w.get(t * k + j) * y[c];
            }
          }
          for (int c = 0; c < d; c++) {
            assertEquals(want[c], outs[run].get(t * d + c), tol * (1 + Math.abs(want[c])),
                "run " + run + " token " + t + " col " + c);
          }
        }
      }
      assertEquals(Device.SlotState.READY, dev.slotState(0));
    }
  }

  @Test
  @Tag("gpu")
  void cudaOutOfMemoryIsRecoverable() {
    Assumptions.assumeTrue(gpu(), "no CUDA device");
    ExpertShape big = ExpertShape.bf16(4096, 14336);
    assertThrows(NativeException.OutOfMemory.class, () -> Device.cuda(0, big, 1_000_000));
    int fits = Device.cudaMaxSlots(0, big, 1L << 30);
    assertTrue(fits > 0);
    try (Device dev = Device.cuda(0, big, Math.min(fits, 2))) {
      assertTrue(dev.slots() >= 1);
    }
  }

  @Test
  void withoutGpuCreatingACudaDeviceIsAClearError() {
    Assumptions.assumeFalse(gpu(), "a GPU is present");
    NativeException.NoDevice e =
        assertThrows(NativeException.NoDevice.class, () -> Device.cuda(0, ExpertShape.bf16(8, 8), 1));
    assertTrue(e.getMessage().startsWith("hmoe_device_create_cuda(..) failed:"), e.getMessage());
  }

  @Test
  void expertBytesFollowTheFormat() {
    // bf16: three projections of 2048 x 1408 values, each part 256-byte aligned.
    assertEquals(3L * 2048 * 1408 * 2, ExpertShape.bf16(2048, 1408).bytes());
    ExpertShape q = ExpertShape.int4(100, 70, 32); // inputs padded to 128 and 96
    assertEquals(64, q.rowBytes(0));
    assertEquals(48, q.rowBytes(2));
    assertEquals(4, q.scalesPerRow(0));
    assertEquals(3, q.scalesPerRow(2));
    long weights = up256(70 * 64) * 2 + up256(100 * 48);
    long scales = up256(70 * 4 * 4) * 2 + up256(100 * 3 * 4);
    assertEquals(weights + scales, q.bytes());
    assertThrows(IllegalArgumentException.class, () -> ExpertShape.bf16(0, 8));
    assertThrows(IllegalArgumentException.class, () -> ExpertShape.int4(64, 64, 48));
  }

  static long up256(long b) {
    return (b + 255) / 256 * 256;
  }

  @Test
  void budgetsGiveSlotsOrSayWhatIsMissing() {
    long slot = 100;
    assertEquals(7, MemoryBudget.slotsForBytes(1000, 200, 50, 50, slot));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> MemoryBudget.slotsForBytes(1000, 900, 50, 0, slot));
    assertTrue(e.getMessage().contains("holds no expert"), e.getMessage());
    assertEquals(416, MemoryBudget.slotsForRatio(0.25, 64, 26));
    assertEquals(1, MemoryBudget.slotsForRatio(0.001, 4, 1));
    assertThrows(IllegalArgumentException.class, () -> MemoryBudget.slotsForRatio(1.5, 64, 26));
    assertThrows(IllegalArgumentException.class, () -> MemoryBudget.slotsForRatio(0, 64, 26));
  }
}
