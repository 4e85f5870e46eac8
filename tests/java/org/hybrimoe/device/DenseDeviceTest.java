package org.hybrimoe.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.NativeException;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.runtime.CudaDiscovery;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Java side of dense devices: grouped linears and the MLP against the CPU's DenseOps (exactly
 * on the emulated device, which runs the same kernels; to f32 rounding on CUDA, skipped without a
 * GPU), the [n, out_i] blocks of a group in order, and refused arguments as exceptions that name
 * them. The kernels themselves are checked against a float64 reference in ctest dense-device.
 */
class DenseDeviceTest {
  private static DenseDevice open(String kind) {
    if (kind.equals("CUDA")) {
      Assumptions.assumeTrue(!CudaDiscovery.discover().devices().isEmpty(), "no CUDA device");
      return DenseDevice.cuda(0);
    }
    return DenseDevice.emulated(2);
  }

  private static ByteBuffer bf16(int count, Random r) {
    ByteBuffer b = ByteBuffer.allocateDirect(2 * count).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < count; i++) {
      b.putShort(2 * i, (short) (Float.floatToRawIntBits((float) r.nextGaussian() * 0.2f) >>> 16));
    }
    return b;
  }

  private static FloatBuffer floats(int count, Random r) {
    FloatBuffer f = DenseOps.floats(count);
    for (int i = 0; i < count; i++) {
      f.put(i, (float) r.nextGaussian());
    }
    return f;
  }

  private static double maxDiff(FloatBuffer a, FloatBuffer b, int count) {
    double m = 0;
    for (int i = 0; i < count; i++) {
      m = Math.max(m, Math.abs(a.get(i) - b.get(i)));
    }
    return m;
  }

  @ParameterizedTest
  @ValueSource(strings = {"EMULATED", "CUDA"})
  void groupedLinearsAndMlpMatchTheCpu(String kind) {
    Random r = new Random(3);
    int d = 72;
    int ff = 40;
    int n = 3;
    double tol = kind.equals("CUDA") ? 1e-4 : 0;
    try (DenseDevice dev = open(kind); Engine cpu = Engine.create(2)) { // the emulated device's thread count: same row split
      assertEquals(Device.Kind.valueOf(kind), dev.kind());
      ByteBuffer g = bf16(ff * d, r);
      ByteBuffer u = bf16(ff * d, r);
      ByteBuffer dn = bf16(d * ff, r);
      FloatBuffer bias = floats(ff, r);
      DenseDevice.Weight gw = dev.upload(g, WeightType.BF16, ff, d, bias);
      DenseDevice.Weight uw = dev.upload(u, WeightType.BF16, ff, d, null);
      DenseDevice.Weight dw = dev.upload(dn, WeightType.BF16, d, ff, null);
      assertEquals(3, dev.weights());
      assertEquals(2L * (2 * ff * d + d * ff) + 4L * ff, dev.bytes());
      FloatBuffer x = floats(n * d, r);
      FloatBuffer y = DenseOps.floats(2L * n * ff);
      dev.linears(x, n, y, gw, uw);
      FloatBuffer want = DenseOps.floats(2L * n * ff);
      DenseOps.linear(cpu, x, n, d, g, WeightType.BF16, ff, bias, want.slice(0, n * ff));
      DenseOps.linear(cpu, x, n, d, u, WeightType.BF16, ff, null, want.slice(n * ff, n * ff));
      assertTrue(maxDiff(y, want, 2 * n * ff) <= tol, "grouped linears differ by " + maxDiff(y, want, 2 * n * ff));
      // The MLP: silu(gate) * up, then down (gate without its bias here: a second upload).
      DenseDevice.Weight g2 = dev.upload(g, WeightType.BF16, ff, d, null);
      FloatBuffer out = DenseOps.floats((long) n * d);
      dev.mlp(g2, uw, dw, x, n, out);
      FloatBuffer gate = DenseOps.floats((long) n * ff);
      FloatBuffer up = DenseOps.floats((long) n * ff);
      DenseOps.linear(cpu, x, n, d, g, WeightType.BF16, ff, null, gate);
      DenseOps.linear(cpu, x, n, d, u, WeightType.BF16, ff, null, up);
      for (int i = 0; i < n * ff; i++) {
        double a = gate.get(i);
        gate.put(i, (float) (a / (1 + Math.exp(-a))) * up.get(i));
      }
      FloatBuffer ref = DenseOps.floats((long) n * d);
      DenseOps.linear(cpu, gate, n, ff, dn, WeightType.BF16, d, null, ref);
      assertTrue(maxDiff(out, ref, n * d) <= Math.max(tol, 1e-6));
    }
  }

  @Test
  void refusedArgumentsAreExceptionsNamingThem() {
    Random r = new Random(4);
    try (DenseDevice dev = DenseDevice.emulated(1)) {
      DenseDevice.Weight a = dev.upload(bf16(4 * 16, r), WeightType.BF16, 4, 16, null);
      DenseDevice.Weight b = dev.upload(bf16(4 * 24, r), WeightType.BF16, 4, 24, null);
      FloatBuffer x = DenseOps.floats(48);
      FloatBuffer y = DenseOps.floats(16);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> dev.linears(x, 1, y, a, b));
      assertTrue(e.getMessage().contains("share their input"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> dev.linears(x, 1, y));
      assertThrows(IllegalArgumentException.class, () -> dev.upload(bf16(4, r), WeightType.BF16, 4, 16, null));
      assertThrows(IllegalArgumentException.class,
          () -> dev.upload(ByteBuffer.allocate(128), WeightType.BF16, 4, 16, null));
      NativeException.InvalidArgument bad = assertThrows(NativeException.InvalidArgument.class,
          () -> dev.linears(x, 1, y, new DenseDevice.Weight(9, 4, 16)));
      assertTrue(bad.getMessage().contains("weight id 9"), bad.getMessage());
      NativeException.InvalidArgument mlp = assertThrows(NativeException.InvalidArgument.class,
          () -> dev.mlp(a, a, a, x, 1, y));
      assertTrue(mlp.getMessage().contains("MLP shapes"), mlp.getMessage());
      assertEquals(2, dev.weights());
    }
  }

  @Test
  void withoutGpuACudaDenseDeviceIsAClearError() {
    Assumptions.assumeTrue(CudaDiscovery.discover().devices().isEmpty(), "a GPU is present");
    NativeException.NoDevice e = assertThrows(NativeException.NoDevice.class, () -> DenseDevice.cuda(0));
    assertTrue(e.getMessage().contains("CUDA"), e.getMessage());
  }
}
