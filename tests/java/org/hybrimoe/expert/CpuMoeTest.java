package org.hybrimoe.expert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CPU operator against a float64 Java reference computed from the layer's dequantized
 * weights (quantization error excluded), for every kernel variant this CPU has, every format,
 * awkward shapes (d = 67, ff = 45: not multiples of 16), k = 1 and 8, experts with zero tokens.
 *
 * <p>The reference follows the engine's arithmetic rule (cpu_moe.h): for bf16 weights the
 * activations and H are rounded to bf16, for int8/int4 quantized per token to int8, then every
 * product and sum is in float64. So one tolerance per format holds on every variant (max |out -
 * ref| / max |ref|): f32 1e-5, bf16 5e-4, int8/int4 2e-3; what is left is summation order and,
 * rarely, an element of H that the kernel's f32 and the reference's double round to neighbouring
 * bf16 or int8 values (ctest cpu-moe has the derivation).
 */
class CpuMoeTest {
  private static CpuMoe moe;
  private static Native.KernelVariant before; // the variant this run was forced to, restored after

  @BeforeAll
  static void start() {
    moe = CpuMoe.create(0);
    before = Native.kernelVariant();
    moe.setOnednnMinTokens(0); // the engine's kernels; the oneDNN path has its own test
  }

  @AfterAll
  static void stop() {
    Native.forceKernelVariant(before);
    moe.close();
  }

  static ByteBuffer direct(long bytes) {
    return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
  }

  static ByteBuffer floats(float[] v) {
    ByteBuffer b = direct(4L * v.length);
    b.asFloatBuffer().put(v);
    return b;
  }

  static ByteBuffer bf16(float[] v) {
    ByteBuffer b = direct(2L * v.length);
    for (float f : v) {
      b.putShort((short) bf16Bits(f));
    }
    return b.flip();
  }

  /** Round to nearest even, as the engine (no NaNs in these tests). */
  static int bf16Bits(float f) {
    int u = Float.floatToRawIntBits(f);
    return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }

  static float[] gaussian(Random r, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * scale);
    }
    return v;
  }

  /** The format's tolerance: the rule's, the same on every variant. */
  static double tolerance(ExpertFormat f) {
    return switch (f) {
      case F32 -> 1e-5;
      case BF16 -> 5e-4;
      default -> 2e-3;
    };
  }

  /** The rule's activation step on one row (bf16 rounding, or per-token int8 quantization). */
  static void applyRule(ExpertFormat f, double[] v) {
    if (f == ExpertFormat.F32) {
      return;
    }
    if (f == ExpertFormat.BF16) {
      for (int i = 0; i < v.length; i++) {
        v[i] = Float.intBitsToFloat(bf16Bits((float) v[i]) << 16);
      }
      return;
    }
    float amax = 0;
    for (double x : v) {
      amax = Math.max(amax, Math.abs((float) x));
    }
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    float sx = amax / 127.0f;
    for (int i = 0; i < v.length; i++) {
      v[i] = Math.rint(Math.min(127.0f, Math.max(-127.0f, (float) v[i] * inv))) * (double) sx;
    }
  }

  /** Float64 reference: out[t] += sum_j w * down(silu(gate x) * up x), selected experts only. */
  static void reference(
      ExpertLayer layer, double[] x, int n, int k, int[] ids, float[] w, boolean[] mask, double[] out) {
    int d = (int) layer.dModel();
    int ff = (int) layer.dFf();
    float[][][] deq = new float[layer.nExperts()][][];
    double[] h = new double[ff];
    double[] xt = new double[d];
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < k; j++) {
        int e = ids[t * k + j];
        if (e < 0 || (mask != null && !mask[e])) {
          continue;
        }
        if (deq[e] == null) {
          deq[e] =
              new float[][] {
                layer.dequantize(e, Projection.GATE), layer.dequantize(e, Projection.UP),
                layer.dequantize(e, Projection.DOWN)
              };
        }
        float[] g = deq[e][0];
        float[] u = deq[e][1];
        float[] dn = deq[e][2];
        System.arraycopy(x, t * d, xt, 0, d);
        applyRule(layer.format(), xt);
        for (int f = 0; f < ff; f++) {
          double gs = 0;
          double us = 0;
          for (int i = 0; i < d; i++) {
            gs += g[f * d + i] * xt[i];
            us += u[f * d + i] * xt[i];
          }
          h[f] = gs / (1 + Math.exp(-gs)) * us;
        }
        applyRule(layer.format(), h);
        for (int i = 0; i < d; i++) {
          double y = 0;
          for (int f = 0; f < ff; f++) {
            y += dn[i * ff + f] * h[f];
          }
          out[t * d + i] += w[t * k + j] * y;
        }
      }
    }
  }

  static ExpertLayer layer(ExpertFormat fmt, int group, int nExperts, int d, int ff, Random r, boolean bf16Source) {
    float[] gateUp = gaussian(r, nExperts * 2 * ff * d, 0.3);
    float[] down = gaussian(r, nExperts * d * ff, 0.3);
    if (fmt == ExpertFormat.F32 || fmt == ExpertFormat.BF16) {
      ByteBuffer gu = fmt == ExpertFormat.F32 ? floats(gateUp) : bf16(gateUp);
      ByteBuffer dn = fmt == ExpertFormat.F32 ? floats(down) : bf16(down);
      return ExpertLayer.borrow(ExpertLayerWeights.builder(fmt, nExperts, d, ff).packed(gu, dn).build());
    }
    ExpertFormat src = bf16Source ? ExpertFormat.BF16 : ExpertFormat.F32;
    ByteBuffer gu = bf16Source ? bf16(gateUp) : floats(gateUp);
    ByteBuffer dn = bf16Source ? bf16(down) : floats(down);
    return ExpertLayer.quantize(
        moe.engine(), fmt, group, ExpertLayerWeights.builder(src, nExperts, d, ff).packed(gu, dn).build());
  }

  static double runCase(ExpertLayer layer, int n, int k, boolean bf16Input, boolean useMask, Random r) {
    int e = layer.nExperts();
    int d = (int) layer.dModel();
    int[] ids = new int[n * k];
    float[] w = new float[n * k];
    for (int i = 0; i < n * k; i++) {
      ids[i] = (i % 11 == 5 && k > 1) ? -1 : r.nextInt(e - 2); // the last two experts get no tokens
      w[i] = 0.05f + r.nextFloat();
    }
    boolean[] mask = null;
    ByteBuffer maskBuf = null;
    if (useMask) {
      mask = new boolean[e];
      maskBuf = direct(e);
      for (int i = 0; i < e; i++) {
        mask[i] = i % 3 != 0;
        maskBuf.put(i, (byte) (mask[i] ? 1 : 0));
      }
    }
    float[] x = gaussian(r, n * d, 1.0);
    double[] xd = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      xd[i] = bf16Input ? Float.intBitsToFloat(bf16Bits(x[i]) << 16) : x[i];
    }
    float[] out0 = gaussian(r, n * d, 0.5);
    double[] ref = new double[out0.length];
    for (int i = 0; i < out0.length; i++) {
      ref[i] = out0[i];
    }
    reference(layer, xd, n, k, ids, w, mask, ref);
    FloatBuffer out = floats(out0).asFloatBuffer();
    IntBuffer idb = direct(4L * ids.length).asIntBuffer().put(ids).flip();
    FloatBuffer wb = floats(w).asFloatBuffer();
    if (bf16Input) {
      moe.run(layer, bf16(x), CpuMoe.InputType.BF16, n, k, idb, wb, maskBuf, out);
    } else {
      moe.run(layer, floats(x).asFloatBuffer(), n, k, idb, wb, maskBuf, out);
    }
    double maxRef = 0;
    double maxErr = 0;
    for (int i = 0; i < ref.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      maxErr = Math.max(maxErr, Math.abs(out.get(i) - ref[i]));
    }
    return maxErr / maxRef;
  }

  @Test
  void everyVariantAndFormatMatchesTheFloat64Reference() {
    List<String> ran = new ArrayList<>();
    for (Native.KernelVariant v : Native.KernelVariant.values()) {
      if (v == Native.KernelVariant.AUTO) {
        continue;
      }
      try {
        Native.forceKernelVariant(v);
      } catch (NativeException.Unsupported e) {
        System.out.println("CpuMoeTest: variant " + v + " skipped: " + e.getMessage());
        continue;
      }
      ran.add(v.toString());
      Random r = new Random(42 + v.ordinal());
      for (ExpertFormat fmt : ExpertFormat.values()) {
        int[] groups = fmt == ExpertFormat.INT4 ? new int[] {32, 64, 128} : new int[] {0};
        for (int g : groups) {
          try (ExpertLayer layer = layer(fmt, g, 16, 67, 45, r, g == 64)) {
            int[][] nk = {{1, 8}, {3, 1}, {17, 8}, {130, 1}, {130, 8}};
            for (int[] c : nk) {
              boolean bf16In = c[0] == 17;
              boolean mask = c[0] == 3 || c[0] == 17;
              double rel = runCase(layer, c[0], c[1], bf16In, mask, r);
              double tol = tolerance(fmt);
              assertTrue(
                  rel <= tol,
                  v + " " + fmt + " g=" + g + " n=" + c[0] + " k=" + c[1] + ": rel err " + rel
                      + " > " + tol);
            }
          }
        }
      }
      try (ExpertLayer layer = layer(ExpertFormat.BF16, 0, 4, 40, 72, r, false)) {
        double rel = runCase(layer, 1024, 1, false, false, r);
        assertTrue(rel <= tolerance(ExpertFormat.BF16), v + " bf16 n=1024: " + rel);
      }
    }
    System.out.println("CpuMoeTest: variants run " + ran);
    assertTrue(ran.contains("scalar"));
  }

  @Test
  void onednnPathForExpertsWithManyTokensMatchesTheReference() {
    Random r = new Random(5);
    moe.setOnednnMinTokens(1);
    try (ExpertLayer f32 = layer(ExpertFormat.F32, 0, 6, 67, 45, r, false);
        ExpertLayer bf16 = layer(ExpertFormat.BF16, 0, 6, 67, 45, r, false)) {
      // The same rule and tolerances as the engine's kernels (oneDNN's bf16 matmul, or its f32
      // matmul on widened weights where it has no bf16: both on the rounded activations).
      assertTrue(runCase(f32, 40, 2, false, false, r) <= tolerance(ExpertFormat.F32));
      assertTrue(runCase(bf16, 40, 2, false, true, r) <= tolerance(ExpertFormat.BF16));
    } finally {
      moe.setOnednnMinTokens(0);
    }
  }

  @Test
  void badArgumentsAreTypedExceptionsNamingTheArgument() {
    Random r = new Random(1);
    try (ExpertLayer layer = layer(ExpertFormat.F32, 0, 2, 8, 4, r, false)) {
      FloatBuffer x = direct(4 * 8).asFloatBuffer();
      FloatBuffer out = direct(4 * 8).asFloatBuffer();
      FloatBuffer w = direct(4).asFloatBuffer().put(0, 1f);
      IntBuffer bad = direct(4).asIntBuffer().put(0, 5);
      NativeException.InvalidArgument ex =
          assertThrows(
              NativeException.InvalidArgument.class,
              () -> moe.run(layer, x, 1, 1, bad, w, null, out));
      assertTrue(ex.getMessage().contains("ids[0] = 5"), ex.getMessage());
      assertThrows(
          IllegalArgumentException.class,
          () -> moe.run(layer, FloatBuffer.allocate(8), 1, 1, bad, w, null, out));
    }
    assertThrows(
        NativeException.InvalidArgument.class, () -> ExpertLayer.create(ExpertFormat.INT4, 2, 8, 8, 48));
    try (ExpertLayer empty = ExpertLayer.create(ExpertFormat.F32, 2, 8, 4, 0)) {
      FloatBuffer x = direct(4 * 8).asFloatBuffer();
      IntBuffer id = direct(4).asIntBuffer().put(0, 1);
      NativeException.IllegalState ex =
          assertThrows(
              NativeException.IllegalState.class,
              () -> moe.run(empty, x, 1, 1, id, direct(4).asFloatBuffer(), null, direct(32).asFloatBuffer()));
      assertTrue(ex.getMessage().contains("expert 1"), ex.getMessage());
    }
  }

  @Test
  void quantizationErrorIsWithinHalfAStep() {
    Random r = new Random(3);
    int d = 100;
    int ff = 37;
    float[] gate = gaussian(r, ff * d, 1.0);
    ExpertLayerWeights src =
        ExpertLayerWeights.builder(ExpertFormat.F32, 1, d, ff)
            .expert(0, floats(gate), floats(gaussian(r, ff * d, 1)), floats(gaussian(r, ff * d, 1)))
            .build();
    for (int g : new int[] {32, 128}) {
      try (ExpertLayer q4 = ExpertLayer.quantize(null, ExpertFormat.INT4, g, src);
          ExpertLayer q8 = ExpertLayer.quantize(null, ExpertFormat.INT8, 0, src)) {
        float[] d4 = q4.dequantize(0, Projection.GATE);
        float[] d8 = q8.dequantize(0, Projection.GATE);
        for (int row = 0; row < ff; row++) {
          double rowMax = 0;
          for (int i = 0; i < d; i++) {
            rowMax = Math.max(rowMax, Math.abs(gate[row * d + i]));
          }
          for (int i = 0; i < d; i++) {
            double groupMax = 0;
            for (int j = i / g * g; j < Math.min(d, i / g * g + g); j++) {
              groupMax = Math.max(groupMax, Math.abs(gate[row * d + j]));
            }
            double v = gate[row * d + i];
            assertTrue(Math.abs(v - d8[row * d + i]) <= rowMax / 127 / 2 * (1 + 1e-5));
            assertTrue(Math.abs(v - d4[row * d + i]) <= groupMax / 7 / 2 * (1 + 1e-5));
          }
        }
      }
    }
    assertEquals(64, ExpertFormat.INT4.rowBytes(100, 32)); // 100 values padded to 128, 2 per byte
    assertEquals(4, ExpertFormat.INT4.scalesPerRow(100, 32));
  }
}
