package org.hybrimoe.device;

import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * One expert's shape and weight format, which fixes the size of a device slot.
 *
 * @param format the weight format (devices compute {@link Format#BF16})
 * @param dModel hidden size
 * @param dFf expert intermediate size
 */
public record ExpertShape(Format format, int dModel, int dFf) {

  /** Expert weight formats a device computes, in the engine's numbering. */
  public enum Format {
    BF16(1);

    final int code;

    Format(int code) {
      this.code = code;
    }
  }

  public ExpertShape {
    if (format == null) {
      throw new NullPointerException("format");
    }
    if (dModel < 1 || dFf < 1) {
      throw new IllegalArgumentException(
          "expert shape needs dModel >= 1 and dFf >= 1, got " + dModel + " x " + dFf);
    }
  }

  /** A bf16 expert of dModel x dFf. */
  public static ExpertShape bf16(int dModel, int dFf) {
    return new ExpertShape(Format.BF16, dModel, dFf);
  }

  /** Bytes of one expert (gate, up and down) in this format. */
  public long bytes() {
    Native.load();
    long[] out = new long[1];
    Native.check("hmoe_expert_bytes", HmoeNative.hmoe_expert_bytes(abi(), out));
    return out[0];
  }

  /** Bytes of one of the three matrices (gate, up or down). */
  public long matrixBytes() {
    return bytes() / 3;
  }

  int[] abi() {
    return new int[] {format.code, dModel, dFf};
  }
}
