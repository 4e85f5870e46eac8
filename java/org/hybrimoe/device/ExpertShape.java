package org.hybrimoe.device;

import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * One expert's shape and weight format, which fixes the size of a device slot. Rows are stored as
 * the CPU engine stores them (cpu_moe.h), so the same host bytes feed the CPU and the device.
 *
 * @param format the weight format
 * @param dModel hidden size
 * @param dFf expert intermediate size
 * @param groupSize int4 scale group along the inputs (32, 64 or 128); 0 for bf16
 */
public record ExpertShape(Format format, int dModel, int dFf, int groupSize) {

  /** Expert weight formats a device computes, in the engine's numbering. */
  public enum Format {
    BF16(1),
    INT4(3);

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
    if (format == Format.INT4 && groupSize != 32 && groupSize != 64 && groupSize != 128) {
      throw new IllegalArgumentException("int4 groupSize must be 32, 64 or 128, got " + groupSize);
    }
  }

  /** A bf16 expert of dModel x dFf. */
  public static ExpertShape bf16(int dModel, int dFf) {
    return new ExpertShape(Format.BF16, dModel, dFf, 0);
  }

  /** An int4 expert of dModel x dFf with scales per {@code groupSize} inputs. */
  public static ExpertShape int4(int dModel, int dFf, int groupSize) {
    return new ExpertShape(Format.INT4, dModel, dFf, groupSize);
  }

  /** Stored bytes of one row of projection p (0 gate, 1 up, 2 down). */
  public long rowBytes(int p) {
    long in = p == 2 ? dFf : dModel;
    return format == Format.BF16 ? 2 * in : padded(in) / 2;
  }

  /** Rows of projection p: dFf for gate and up, dModel for down. */
  public long rows(int p) {
    return p == 2 ? dModel : dFf;
  }

  /** int4 scales per row of projection p (0 for bf16). */
  public long scalesPerRow(int p) {
    return format == Format.BF16 ? 0 : padded(p == 2 ? dFf : dModel) / groupSize;
  }

  private long padded(long in) {
    return (in + groupSize - 1) / groupSize * groupSize;
  }

  /** Bytes of a device slot for one expert (rows, scales, 256-byte aligned parts). */
  public long bytes() {
    Native.load();
    long[] out = new long[1];
    Native.check("hmoe_expert_bytes", HmoeNative.hmoe_expert_bytes(abi(), out));
    return out[0];
  }

  int[] abi() {
    return new int[] {format.code, dModel, dFf, groupSize};
  }
}
