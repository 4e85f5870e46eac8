package org.hybrimoe.expert;

import org.hybrimoe.nativeapi.HmoeNative;

/**
 * How an expert layer's weights are stored (see cpu_moe.h for the exact byte layout): f32, bf16,
 * int8 with one f32 scale per output row, or int4 with one f32 scale per group of 32, 64 or 128
 * inputs (symmetric, values stored as q + 8, 32-value blocks of 16 bytes).
 */
public enum ExpertFormat {
  F32(HmoeNative.HMOE_FORMAT_F32),
  BF16(HmoeNative.HMOE_FORMAT_BF16),
  INT8(HmoeNative.HMOE_FORMAT_INT8),
  INT4(HmoeNative.HMOE_FORMAT_INT4);

  private final int code;

  ExpertFormat(int code) {
    this.code = code;
  }

  /** The engine's HMOE_FORMAT_* code. */
  public int code() {
    return code;
  }

  /** True for the formats that carry scales (int8, int4). */
  public boolean quantized() {
    return this == INT8 || this == INT4;
  }

  /** Bytes of one stored row with {@code in} inputs; groupSize matters only for INT4. */
  public long rowBytes(long in, int groupSize) {
    switch (this) {
      case F32:
        return in * 4;
      case BF16:
        return in * 2;
      case INT8:
        return in;
      default:
        checkGroup(groupSize);
        return roundUp(in, groupSize) / 2;
    }
  }

  /** f32 scales per stored row: 0 (f32, bf16), 1 (int8), padded inputs / groupSize (int4). */
  public long scalesPerRow(long in, int groupSize) {
    switch (this) {
      case F32:
      case BF16:
        return 0;
      case INT8:
        return 1;
      default:
        checkGroup(groupSize);
        return roundUp(in, groupSize) / groupSize;
    }
  }

  static void checkGroup(int groupSize) {
    if (groupSize != 32 && groupSize != 64 && groupSize != 128) {
      throw new IllegalArgumentException("INT4 group size must be 32, 64 or 128, got " + groupSize);
    }
  }

  private static long roundUp(long a, long b) {
    return (a + b - 1) / b * b;
  }
}
