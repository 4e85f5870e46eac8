package org.hybrimoe.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.IntStream;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.weights.SafetensorsWriter;

/**
 * Block-quantized FP8 weights as DeepSeek-V3/R1 and the Qwen3 *-FP8 checkpoints store them, read
 * from config.json's {@code quantization_config} ({@code quant_method "fp8"}, {@code fmt "e4m3"},
 * {@code weight_block_size [bs0, bs1]}): a weight [out, in] of OCP e4m3fn codes with a companion
 * {@code <name>_scale_inv} [ceil(out/bs0), ceil(in/bs1)] (F32 or BF16), real value
 * {@code e4m3(w[i][j]) * scale_inv[i / bs0][j / bs1]} (multiplied, despite the name, as DeepSeek's
 * weight_dequant does). A packed expert tensor [E, out, in] has scales [E, ceil(out/bs0),
 * ceil(in/bs1)]: blocks never cross experts.
 *
 * <p>The engine has no FP8 kernels, so weights are dequantized at load to BF16 copies: the f32
 * product rounded to nearest even, the numbers of DeepSeek's fp8_cast_bf16.py. Immutable and
 * thread-safe.
 */
public final class Fp8BlockDequant {
  /** Appended to a weight's name to name its scales ("x.weight" -> "x.weight_scale_inv"). */
  public static final String SCALE_SUFFIX = "_scale_inv";

  /** The largest finite e4m3fn magnitude (code 0x7E). */
  public static final float E4M3_MAX = 448f;

  // e4m3fn code -> value: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is
  // subnormal (m/8 * 2^-6); S.1111.111 is NaN and there are no infinities.
  private static final float[] E4M3 = new float[256];

  static {
    for (int c = 0; c < 256; c++) {
      int e = (c >> 3) & 0xf;
      int m = c & 7;
      float v;
      if (e == 0xf && m == 7) {
        v = Float.NaN;
      } else if (e == 0) {
        v = Math.scalb(m / 8f, -6);
      } else {
        v = Math.scalb(1 + m / 8f, e - 7);
      }
      E4M3[c] = (c & 0x80) != 0 ? -v : v;
    }
  }

  private final int blockRows;
  private final int blockCols;

  /** A dequantizer for blocks of blockRows x blockCols (both >= 1). */
  public Fp8BlockDequant(int blockRows, int blockCols) {
    if (blockRows < 1 || blockCols < 1) {
      throw new IllegalArgumentException("block must be at least 1 x 1, got " + blockRows + " x " + blockCols);
    }
    this.blockRows = blockRows;
    this.blockCols = blockCols;
  }

  /**
   * The config's FP8 block quantization, or null when it has no quantization_config. Throws
   * naming the field for a quantization this loader cannot read: another quant_method (bnb,
   * gptq, fbgemm_fp8, ...), a fmt other than e4m3, or a weight_block_size that is not two
   * positive integers (per-tensor and per-channel FP8 have none and are not supported).
   */
  public static Fp8BlockDequant of(ModelConfig cfg) {
    if (!cfg.has("quantization_config")) {
      return null;
    }
    String f = "quantization_config";
    JsonNode q = cfg.json().get(f);
    if (!q.isObject()) {
      throw cfg.bad(f, "must be an object, got " + q);
    }
    JsonNode method = q.get("quant_method");
    if (method == null || !method.isTextual() || !method.asText().equals("fp8")) {
      throw cfg.bad(f, "has quant_method " + method + "; only \"fp8\" (block-wise e4m3 with weight_block_size) is "
          + "supported");
    }
    // HF's FineGrainedFP8Config has no fmt field and means e4m3; DeepSeek writes "e4m3".
    JsonNode fmt = q.get("fmt");
    if (fmt != null && !fmt.isNull() && !(fmt.isTextual() && fmt.asText().equals("e4m3"))) {
      throw cfg.bad(f, "has fmt " + fmt + "; only \"e4m3\" is supported");
    }
    JsonNode bs = q.get("weight_block_size");
    if (bs == null || bs.isNull()) {
      throw cfg.bad(f, "has no weight_block_size; only block-wise FP8 ([rows, cols], e.g. [128, 128]) is supported");
    }
    if (!bs.isArray() || bs.size() != 2 || !positiveInt(bs.get(0)) || !positiveInt(bs.get(1))) {
      throw cfg.bad(f, "weight_block_size must be two positive integers [rows, cols], got " + bs);
    }
    return new Fp8BlockDequant(bs.get(0).asInt(), bs.get(1).asInt());
  }

  private static boolean positiveInt(JsonNode n) {
    return n.isIntegralNumber() && n.canConvertToInt() && n.asInt() >= 1;
  }

  /** Rows of a scale block (weight_block_size[0]). */
  public int blockRows() {
    return blockRows;
  }

  /** Columns of a scale block (weight_block_size[1]). */
  public int blockCols() {
    return blockCols;
  }

  /** The value of an e4m3fn code (NaN for 0x7F and 0xFF). */
  public static float e4m3ToFloat(byte code) {
    return E4M3[code & 0xff];
  }

  /** The scale tensor's shape for a weight of this shape ([..., rows, cols]; leading dims kept). */
  public long[] scaleShape(long... weightShape) {
    long[] s = weightShape.clone();
    int n = s.length;
    s[n - 2] = ceilDiv(s[n - 2], blockRows);
    s[n - 1] = ceilDiv(s[n - 1], blockCols);
    return s;
  }

  private static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }

  /**
   * Dequantizes {@code count} matrices [rows, cols] of e4m3 codes to BF16, in parallel over
   * block rows (the common fork-join pool).
   *
   * @param codes [count, rows, cols] bytes from its position (a mapped tensor; not modified)
   * @param scales [count, ceil(rows/bs0), ceil(cols/bs1)] of scaleType (F32 or BF16), from its position
   * @param out [count, rows, cols] bf16, little-endian, written from its position; the caller
   *     owns it (a new direct buffer for the engine)
   * @throws IllegalArgumentException when a scale is not finite or a code is NaN (0x7F/0xFF),
   *     naming the matrix, row and column; the caller adds the tensor's name
   */
  public void toBf16(ByteBuffer codes, ByteBuffer scales, WeightType scaleType, int count, int rows, int cols,
      ByteBuffer out) {
    if (scaleType != WeightType.F32 && scaleType != WeightType.BF16) {
      throw new IllegalArgumentException("scales must be F32 or BF16, got " + scaleType);
    }
    int sRows = (int) ceilDiv(rows, blockRows);
    int sCols = (int) ceilDiv(cols, blockCols);
    long n = (long) count * rows * cols;
    if (codes.remaining() < n || out.remaining() < 2 * n
        || scales.remaining() < (long) count * sRows * sCols * scaleType.bytes()) {
      throw new IllegalArgumentException("buffers too small for " + count + " x [" + rows + ", " + cols + "]");
    }
    ByteBuffer src = codes.slice();
    ByteBuffer sc = scales.slice().order(ByteOrder.LITTLE_ENDIAN);
    ShortBuffer dst = out.slice().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    AtomicReference<String> bad = new AtomicReference<>();
    // One task per block row of one matrix: its scales make one 256-entry bf16 table per column
    // block, then every code is one lookup (exactly bf16(f32(e4m3 * scale)), as computed per element).
    IntStream.range(0, count * sRows).parallel().forEach(task -> {
      int m = task / sRows;
      int br = task % sRows;
      short[][] lut = new short[sCols][256];
      for (int bc = 0; bc < sCols; bc++) {
        int at = (m * sRows + br) * sCols + bc;
        float s = scaleType == WeightType.F32
            ? sc.getFloat(4 * at)
            : Float.intBitsToFloat((sc.getShort(2 * at) & 0xffff) << 16);
        if (!Float.isFinite(s)) {
          bad.compareAndSet(null, "scale [" + (count > 1 ? m + ", " : "") + br + ", " + bc + "] is " + s);
          return;
        }
        for (int c = 0; c < 256; c++) {
          lut[bc][c] = SafetensorsWriter.toBf16(E4M3[c] * s);
        }
      }
      byte[] in = new byte[cols];
      short[] row = new short[cols];
      int r1 = Math.min(rows, (br + 1) * blockRows);
      for (int r = br * blockRows; r < r1; r++) {
        long base = ((long) m * rows + r) * cols;
        src.get(Math.toIntExact(base), in);
        int nanFlag = 0; // bit 7 is set iff some code has all of exponent and mantissa set (NaN)
        for (int bc = 0; bc < sCols; bc++) {
          short[] t = lut[bc];
          int c1 = Math.min(cols, (bc + 1) * blockCols);
          for (int c = bc * blockCols; c < c1; c++) {
            int code = in[c] & 0xff;
            nanFlag |= (code & 0x7f) + 1;
            row[c] = t[code];
          }
        }
        if ((nanFlag & 0x80) != 0) {
          bad.compareAndSet(null, "a NaN code (0x7F/0xFF) in " + (count > 1 ? "matrix " + m + " " : "") + "row " + r);
          return;
        }
        dst.put(Math.toIntExact(base), row);
      }
    });
    if (bad.get() != null) {
      throw new IllegalArgumentException(bad.get());
    }
  }
}
