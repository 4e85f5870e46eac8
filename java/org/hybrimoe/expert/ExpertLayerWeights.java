package org.hybrimoe.expert;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import org.hybrimoe.nativeapi.Native;

/**
 * Where the bytes of one MoE layer's experts are: format, shapes, and per expert the gate, up
 * and down weights (and scales for int8/int4) as direct buffers (a mapped file or
 * ByteBuffer.allocateDirect). Only describes; nothing is copied. Buffers are taken from their
 * position, as slices, and must hold at least the bytes the format needs. Immutable.
 *
 * <p>Shapes: gate and up [dFf, dModel], down [dModel, dFf], rows in {@link ExpertFormat}'s storage.
 * Experts not given are absent (a layer may hold only the experts that live on the CPU).
 */
public final class ExpertLayerWeights {
  /** One expert's buffers; scales are null for f32 and bf16. */
  public record Expert(
      ByteBuffer gate, ByteBuffer up, ByteBuffer down, ByteBuffer gateScales, ByteBuffer upScales,
      ByteBuffer downScales) {}

  private final ExpertFormat format;
  private final int nExperts;
  private final long dModel;
  private final long dFf;
  private final int groupSize;
  private final List<Expert> experts; // [nExperts], null where absent

  private ExpertLayerWeights(Builder b) {
    this.format = b.format;
    this.nExperts = b.nExperts;
    this.dModel = b.dModel;
    this.dFf = b.dFf;
    this.groupSize = b.groupSize;
    this.experts = Collections.unmodifiableList(new ArrayList<>(b.experts));
  }

  /** Starts a description of nExperts experts with the given shapes. */
  public static Builder builder(ExpertFormat format, int nExperts, long dModel, long dFf) {
    return new Builder(format, nExperts, dModel, dFf);
  }

  public ExpertFormat format() {
    return format;
  }

  public int nExperts() {
    return nExperts;
  }

  public long dModel() {
    return dModel;
  }

  public long dFf() {
    return dFf;
  }

  /** INT4 group size (32, 64 or 128); 0 for other formats. */
  public int groupSize() {
    return groupSize;
  }

  /** Expert e's buffers, or null when absent. */
  public Expert expert(int e) {
    return experts.get(e);
  }

  /** Builder; see {@link ExpertLayerWeights}. Not thread-safe. */
  public static final class Builder {
    private final ExpertFormat format;
    private final int nExperts;
    private final long dModel;
    private final long dFf;
    private int groupSize;
    private final List<Expert> experts;

    private Builder(ExpertFormat format, int nExperts, long dModel, long dFf) {
      this.format = Objects.requireNonNull(format, "format");
      if (nExperts < 1) {
        throw new IllegalArgumentException("nExperts must be >= 1, got " + nExperts);
      }
      if (dModel < 1 || dFf < 1) {
        throw new IllegalArgumentException("dModel and dFf must be >= 1, got " + dModel + ", " + dFf);
      }
      this.nExperts = nExperts;
      this.dModel = dModel;
      this.dFf = dFf;
      this.groupSize = format == ExpertFormat.INT4 ? 32 : 0;
      this.experts = new ArrayList<>(Collections.nCopies(nExperts, null));
    }

    /** INT4 group size: 32 (default), 64 or 128. Set before adding experts. */
    public Builder groupSize(int g) {
      if (format != ExpertFormat.INT4) {
        throw new IllegalStateException("group size applies to INT4 only, format is " + format);
      }
      ExpertFormat.checkGroup(g);
      this.groupSize = g;
      return this;
    }

    /** Expert e of an f32 or bf16 layer: gate, up [dFf, dModel], down [dModel, dFf]. */
    public Builder expert(int e, ByteBuffer gate, ByteBuffer up, ByteBuffer down) {
      if (format.quantized()) {
        throw new IllegalArgumentException(format + " experts need scales");
      }
      return put(e, gate, up, down, null, null, null);
    }

    /** Expert e of an int8/int4 layer, with its f32 scales as bytes. */
    public Builder expert(
        int e, ByteBuffer gate, ByteBuffer up, ByteBuffer down, ByteBuffer gateScales,
        ByteBuffer upScales, ByteBuffer downScales) {
      if (!format.quantized()) {
        throw new IllegalArgumentException(format + " experts take no scales");
      }
      return put(e, gate, up, down, gateScales, upScales, downScales);
    }

    /**
     * Every expert from HuggingFace's packed tensors: gateUp [E, 2*dFf, dModel] (gate rows first,
     * then up) and down [E, dModel, dFf], f32 or bf16. Slices only, no copy.
     */
    public Builder packed(ByteBuffer gateUp, ByteBuffer down) {
      if (format.quantized()) {
        throw new IllegalArgumentException("packed tensors are f32 or bf16, format is " + format);
      }
      long proj = dFf * format.rowBytes(dModel, groupSize);
      long downBytes = dModel * format.rowBytes(dFf, groupSize);
      Native.requireDirect("gateUp", gateUp, nExperts * 2 * proj);
      Native.requireDirect("down", down, nExperts * downBytes);
      for (int e = 0; e < nExperts; e++) {
        put(
            e,
            slice(gateUp, e * 2 * proj, proj),
            slice(gateUp, e * 2 * proj + proj, proj),
            slice(down, e * downBytes, downBytes),
            null,
            null,
            null);
      }
      return this;
    }

    private Builder put(
        int e, ByteBuffer gate, ByteBuffer up, ByteBuffer down, ByteBuffer gs, ByteBuffer us,
        ByteBuffer ds) {
      Objects.checkIndex(e, nExperts);
      long inRow = format.rowBytes(dModel, groupSize);
      long ffRow = format.rowBytes(dFf, groupSize);
      Native.requireDirect("gate", gate, dFf * inRow);
      Native.requireDirect("up", up, dFf * inRow);
      Native.requireDirect("down", down, dModel * ffRow);
      if (format.quantized()) {
        Native.requireDirect("gateScales", gs, 4 * dFf * format.scalesPerRow(dModel, groupSize));
        Native.requireDirect("upScales", us, 4 * dFf * format.scalesPerRow(dModel, groupSize));
        Native.requireDirect("downScales", ds, 4 * dModel * format.scalesPerRow(dFf, groupSize));
      }
      experts.set(
          e,
          new Expert(
              gate.slice(), up.slice(), down.slice(), gs == null ? null : gs.slice(),
              us == null ? null : us.slice(), ds == null ? null : ds.slice()));
      return this;
    }

    public ExpertLayerWeights build() {
      return new ExpertLayerWeights(this);
    }
  }

  private static ByteBuffer slice(ByteBuffer b, long offset, long length) {
    return b.slice(b.position() + Math.toIntExact(offset), Math.toIntExact(length));
  }
}
