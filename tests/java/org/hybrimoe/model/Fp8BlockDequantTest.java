package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.weights.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * FP8 (e4m3fn) decoding and block dequantization against float64 definitions written here from
 * the OCP spec, make-model's e4m3 encoder, and what make-model's FP8 checkpoints contain.
 */
class Fp8BlockDequantTest {
  // The spec's decoding, written apart from the production table: sign, 4-bit exponent (bias 7),
  // 3-bit mantissa; exponent 0 subnormal; exponent 15 with mantissa 7 NaN; nothing infinite.
  static double specValue(int code) {
    int exp = (code >>> 3) & 0xf;
    int man = code & 0x7;
    double sign = (code & 0x80) == 0 ? 1 : -1;
    if (exp == 0xf && man == 0x7) {
      return Double.NaN;
    }
    if (exp == 0) {
      return sign * (man / 8.0) * Math.pow(2, 1 - 7);
    }
    return sign * (1 + man / 8.0) * Math.pow(2, exp - 7);
  }

  @Test
  void everyE4m3CodeDecodesAsTheSpecSays() {
    for (int c = 0; c < 256; c++) {
      double want = specValue(c);
      float got = Fp8BlockDequant.e4m3ToFloat((byte) c);
      if (Double.isNaN(want)) {
        assertTrue(Float.isNaN(got), "code " + Integer.toHexString(c));
      } else {
        assertEquals(want, got, 0.0, "code 0x" + Integer.toHexString(c));
        assertEquals(Math.copySign(1.0, want), Math.copySign(1.0, got), "sign of code 0x" + Integer.toHexString(c));
      }
    }
    assertEquals(448f, Fp8BlockDequant.e4m3ToFloat((byte) 0x7e));
    assertEquals(-448f, Fp8BlockDequant.e4m3ToFloat((byte) 0xfe));
    assertEquals(0x1p-6f, Fp8BlockDequant.e4m3ToFloat((byte) 0x08)); // smallest normal
    assertEquals(0x1p-9f, Fp8BlockDequant.e4m3ToFloat((byte) 0x01)); // smallest subnormal
    assertEquals(0x7p-9f, Fp8BlockDequant.e4m3ToFloat((byte) 0x07)); // largest subnormal
    assertEquals(1f, Fp8BlockDequant.e4m3ToFloat((byte) 0x38));
    assertEquals(-1f, Fp8BlockDequant.e4m3ToFloat((byte) 0xb8));
    assertEquals(240f, Fp8BlockDequant.e4m3ToFloat((byte) 0x77));
    assertTrue(Float.isNaN(Fp8BlockDequant.e4m3ToFloat((byte) 0x7f)));
    assertTrue(Float.isNaN(Fp8BlockDequant.e4m3ToFloat((byte) 0xff)));
    assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(Fp8BlockDequant.e4m3ToFloat((byte) 0x80)));
  }

  @Test
  void encoderRoundsToNearestEvenAndSaturates() {
    for (int c = 0; c < 256; c++) {
      if ((c & 0x7f) != 0x7f) {
        assertEquals((byte) c, ModelMaker.toE4m3((float) specValue(c)), "round trip of 0x" + Integer.toHexString(c));
      }
    }
    assertEquals((byte) 0x38, ModelMaker.toE4m3(1.0625f)); // halfway 1 (0x38) .. 1.125 (0x39): even
    assertEquals((byte) 0x3a, ModelMaker.toE4m3(1.1875f)); // halfway 1.125 .. 1.25 (0x3a): even
    assertEquals((byte) 0x39, ModelMaker.toE4m3(1.07f));
    assertEquals((byte) 0x00, ModelMaker.toE4m3(0x1p-10f)); // half the smallest subnormal: to zero (even)
    assertEquals((byte) 0x01, ModelMaker.toE4m3(0x1.1p-10f));
    assertEquals((byte) 0x08, ModelMaker.toE4m3(0xfp-10f)); // halfway 7/8 * 2^-6 .. 2^-6: even (0x08)
    assertEquals((byte) 0x7e, ModelMaker.toE4m3(460f)); // beyond 448 saturates, no NaN
    assertEquals((byte) 0xfe, ModelMaker.toE4m3(-1e9f));
    assertEquals((byte) 0x7f, ModelMaker.toE4m3(Float.NaN));
  }

  // bf16 bits of a float, nearest even, computed through double arithmetic (not the bit trick).
  static short bf16Bits(double v) {
    return (short) (Float.floatToRawIntBits((float) ReferenceForward.bf16((float) v)) >>> 16);
  }

  @Test
  void blocksDequantizeToBf16OfCodeTimesScaleWithPartialEdgeBlocks() {
    // 2 matrices [37, 50] in blocks [16, 24]: 3 x 3 blocks each, the last row and column partial.
    int count = 2;
    int rows = 37;
    int cols = 50;
    Fp8BlockDequant q = new Fp8BlockDequant(16, 24);
    assertEquals(java.util.List.of(2L, 3L, 3L), java.util.Arrays.stream(q.scaleShape(2, 37, 50)).boxed().toList());
    SplittableRandom r = new SplittableRandom(3);
    byte[] codes = new byte[count * rows * cols];
    for (int i = 0; i < codes.length; i++) {
      int c;
      do {
        c = r.nextInt(256);
      } while ((c & 0x7f) == 0x7f);
      codes[i] = (byte) c;
    }
    float[] scales = new float[count * 3 * 3];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = (float) (r.nextDouble(1e-4, 1e-2) * (r.nextBoolean() ? 1 : -1));
    }
    for (WeightType st : new WeightType[] {WeightType.F32, WeightType.BF16}) {
      ByteBuffer sb = ByteBuffer.allocateDirect(scales.length * st.bytes()).order(ByteOrder.LITTLE_ENDIAN);
      float[] used = new float[scales.length]; // the scales as stored (bf16 rounds them)
      for (int i = 0; i < scales.length; i++) {
        if (st == WeightType.F32) {
          sb.putFloat(4 * i, scales[i]);
          used[i] = scales[i];
        } else {
          sb.putShort(2 * i, bf16Bits(scales[i]));
          used[i] = Float.intBitsToFloat((sb.getShort(2 * i) & 0xffff) << 16);
        }
      }
      ByteBuffer out = ByteBuffer.allocateDirect(2 * codes.length).order(ByteOrder.LITTLE_ENDIAN);
      q.toBf16(ByteBuffer.allocateDirect(codes.length).put(0, codes), sb, st, count, rows, cols, out);
      for (int m = 0; m < count; m++) {
        for (int i = 0; i < rows; i++) {
          for (int j = 0; j < cols; j++) {
            int at = (m * rows + i) * cols + j;
            // The product as the loader computes it: in f32 (exact here: 4 x 24 significant bits
            // fit a double), then bf16.
            float prod = (float) (specValue(codes[at] & 0xff) * used[(m * 3 + i / 16) * 3 + j / 24]);
            assertEquals(bf16Bits(prod), out.getShort(2 * at), st + " element " + m + "," + i + "," + j);
          }
        }
      }
    }
  }

  @Test
  void nanCodesAndNonFiniteScalesAreRefused() {
    Fp8BlockDequant q = new Fp8BlockDequant(2, 2);
    ByteBuffer scales = ByteBuffer.allocateDirect(4 * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 4; i++) {
      scales.putFloat(4 * i, 0.5f);
    }
    ByteBuffer codes = ByteBuffer.allocateDirect(9);
    codes.put(7, (byte) 0xff); // row 2, column 1
    ByteBuffer out = ByteBuffer.allocateDirect(18);
    Exception e = assertThrows(IllegalArgumentException.class,
        () -> q.toBf16(codes, scales, WeightType.F32, 1, 3, 3, out));
    assertTrue(e.getMessage().contains("NaN code") && e.getMessage().contains("row 2"), e.getMessage());
    codes.put(7, (byte) 0x7e);
    scales.putFloat(4, Float.POSITIVE_INFINITY); // block [0, 1]
    e = assertThrows(IllegalArgumentException.class, () -> q.toBf16(codes, scales, WeightType.F32, 1, 3, 3, out));
    assertTrue(e.getMessage().contains("scale [0, 1] is Infinity"), e.getMessage());
  }

  @Test
  void makeModelFp8QuantizesProjectionsOnlyWithPartialBlocks(@TempDir Path dir) throws IOException {
    ModelMaker.Spec spec = ReferenceModelTest.with(
        ModelMaker.Spec.defaults("deepseek_v2"), 2, 64, 8, 2, "FP8", false, 1, 0, false);
    ModelMaker.write(spec, dir);
    JsonNode q = new ObjectMapper().readTree(dir.resolve("config.json").toFile()).get("quantization_config");
    assertEquals("fp8", q.get("quant_method").asText());
    assertEquals("e4m3", q.get("fmt").asText());
    int b0 = q.get("weight_block_size").get(0).asInt();
    int b1 = q.get("weight_block_size").get(1).asInt();
    assertEquals(ModelMaker.FP8_BLOCK_SMALL.get(0), b0);
    assertEquals(ModelMaker.FP8_BLOCK_SMALL.get(1), b1);
    boolean partialRows = false;
    boolean partialCols = false;
    int fp8 = 0;
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      for (SafetensorsFile.Tensor t : f.tensors().values()) {
        String n = t.name();
        boolean unquantized = n.contains("norm") || n.endsWith("mlp.gate.weight") || n.contains("embed_tokens")
            || n.startsWith("lm_head");
        if (n.endsWith(Fp8BlockDequant.SCALE_SUFFIX)) {
          assertEquals("F32", t.dtype(), n);
          continue;
        }
        assertEquals(unquantized ? "BF16" : "F8_E4M3", t.dtype(), n);
        if (!unquantized) {
          fp8++;
          long[] s = t.shape();
          partialRows |= s[0] % b0 != 0;
          partialCols |= s[1] % b1 != 0;
          SafetensorsFile.Tensor sc = f.tensor(n + Fp8BlockDequant.SCALE_SUFFIX);
          assertEquals(java.util.List.of((s[0] + b0 - 1) / b0, (s[1] + b1 - 1) / b1),
              java.util.Arrays.stream(sc.shape()).boxed().toList(), n);
        }
      }
    }
    // 2 layers' attention (q_proj, kv_a_proj_with_mqa, kv_b_proj, o_proj), layer 0's dense MLP,
    // layer 1's 8 experts and shared experts
    assertEquals(2 * 4 + 3 + 8 * 3 + 3, fp8);
    assertTrue(partialRows && partialCols, "no partial edge block in either dimension");
  }

  /** A DeepSeek-V3-sized expert projection [2048, 7168] in 128 x 128 blocks: values and speed. */
  @Test
  void dequantizesARealSizedExpertProjection() {
    int rows = 2048;
    int cols = 7168;
    Fp8BlockDequant q = new Fp8BlockDequant(128, 128);
    ByteBuffer codes = ByteBuffer.allocateDirect(rows * cols);
    SplittableRandom r = new SplittableRandom(11);
    for (int i = 0; i < rows * cols; i++) {
      codes.put(i, (byte) (r.nextInt(256) & 0xf7)); // clears a mantissa bit: never NaN
    }
    ByteBuffer scales = ByteBuffer.allocateDirect(4 * 16 * 56).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16 * 56; i++) {
      scales.putFloat(4 * i, (float) r.nextDouble(1e-4, 1e-3));
    }
    ByteBuffer out = ByteBuffer.allocateDirect(2 * rows * cols).order(ByteOrder.LITTLE_ENDIAN);
    q.toBf16(codes, scales, WeightType.F32, 1, rows, cols, out); // warm-up
    long t0 = System.nanoTime();
    int reps = 3;
    for (int k = 0; k < reps; k++) {
      q.toBf16(codes, scales, WeightType.F32, 1, rows, cols, out);
    }
    double s = (System.nanoTime() - t0) / 1e9 / reps;
    System.out.printf("fp8 dequant [%d, %d]: %.1f ms, %.0f MB/s of fp8 in (%d threads)%n", rows, cols, s * 1e3,
        rows * (double) cols / s / 1e6, java.util.concurrent.ForkJoinPool.commonPool().getParallelism() + 1);
    for (int k = 0; k < 1000; k++) {
      int i = r.nextInt(rows);
      int j = r.nextInt(cols);
      float prod = (float) (specValue(codes.get(i * cols + j) & 0xff) * scales.getFloat(4 * ((i / 128) * 56 + j / 128)));
      assertEquals(bf16Bits(prod), out.getShort(2 * (i * cols + j)), "element " + i + "," + j);
    }
  }
}
