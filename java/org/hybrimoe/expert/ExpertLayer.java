package org.hybrimoe.expert;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;
import org.hybrimoe.nativeapi.NativeHandle;

/**
 * A native expert layer (hmoe_expert_layer_t): the experts the CPU operator multiplies by.
 * Either borrows the caller's buffers ({@link #borrow}; they are kept referenced here so that
 * they outlive the layer) or holds an engine-made conversion ({@link #quantize}). Close it when
 * done; a Cleaner frees it if it becomes unreachable unclosed.
 *
 * <p>Thread-safety: any number of concurrent {@link CpuMoe#run} calls may read a layer; setting
 * or quantizing experts must not overlap them, nor {@link #close}.
 */
public final class ExpertLayer implements AutoCloseable {
  private final NativeHandle<HmoeNative.hmoe_expert_layer_t> handle;
  private final ExpertFormat format;
  private final int nExperts;
  private final long dModel;
  private final long dFf;
  private final int groupSize;
  private final Object[] pinned; // per expert: the borrowed buffers, kept reachable

  private ExpertLayer(ExpertFormat format, int nExperts, long dModel, long dFf, int groupSize) {
    Native.load();
    HmoeNative.hmoe_expert_layer_t out = new HmoeNative.hmoe_expert_layer_t();
    Native.check(
        "hmoe_expert_layer_create",
        HmoeNative.hmoe_expert_layer_create(format.code(), nExperts, dModel, dFf, groupSize, out));
    this.handle = new NativeHandle<>(this, out, HmoeNative::hmoe_expert_layer_free, "expert layer");
    this.format = format;
    this.nExperts = nExperts;
    this.dModel = dModel;
    this.dFf = dFf;
    this.groupSize = groupSize;
    this.pinned = new Object[nExperts];
  }

  /** An empty layer; add experts with {@link #setExpert} or {@link #quantizeExpert}. */
  public static ExpertLayer create(
      ExpertFormat format, int nExperts, long dModel, long dFf, int groupSize) {
    return new ExpertLayer(
        Objects.requireNonNull(format, "format"), nExperts, dModel, dFf,
        format == ExpertFormat.INT4 ? groupSize : 0);
  }

  /** A layer over the described buffers, used in place (no copy). */
  public static ExpertLayer borrow(ExpertLayerWeights w) {
    ExpertLayer layer = create(w.format(), w.nExperts(), w.dModel(), w.dFf(), w.groupSize());
    try {
      for (int e = 0; e < w.nExperts(); e++) {
        if (w.expert(e) != null) {
          layer.setExpert(e, w.expert(e));
        }
      }
      return layer;
    } catch (RuntimeException ex) {
      layer.close();
      throw ex;
    }
  }

  /**
   * A layer in {@code target} format converted by the engine from f32 or bf16 source weights
   * (read during this call only). engine may be null (one thread).
   */
  public static ExpertLayer quantize(
      Engine engine, ExpertFormat target, int groupSize, ExpertLayerWeights source) {
    ExpertLayer layer =
        create(target, source.nExperts(), source.dModel(), source.dFf(), groupSize);
    try {
      for (int e = 0; e < source.nExperts(); e++) {
        if (source.expert(e) != null) {
          layer.quantizeExpert(engine, e, source.format(), source.expert(e));
        }
      }
      return layer;
    } catch (RuntimeException ex) {
      layer.close();
      throw ex;
    }
  }

  /** Borrows expert e's buffers (in this layer's format); they stay referenced by the layer. */
  public void setExpert(int e, ExpertLayerWeights.Expert x) {
    Objects.checkIndex(e, nExperts);
    long inRow = format.rowBytes(dModel, groupSize);
    long ffRow = format.rowBytes(dFf, groupSize);
    Native.requireDirect("gate", x.gate(), dFf * inRow);
    Native.requireDirect("up", x.up(), dFf * inRow);
    Native.requireDirect("down", x.down(), dModel * ffRow);
    if (format.quantized()) {
      long s = 4 * format.scalesPerRow(dModel, groupSize);
      Native.requireDirect("gateScales", x.gateScales(), dFf * s);
      Native.requireDirect("upScales", x.upScales(), dFf * s);
      Native.requireDirect(
          "downScales", x.downScales(), dModel * 4 * format.scalesPerRow(dFf, groupSize));
    }
    Native.check(
        "hmoe_expert_layer_set_expert",
        HmoeNative.hmoe_expert_layer_set_expert(
            handle(), e, x.gate().slice(), x.up().slice(), x.down().slice(),
            slice(x.gateScales()), slice(x.upScales()), slice(x.downScales())));
    pinned[e] = x;
  }

  /** Converts expert e from f32 or bf16 source buffers into this layer's format (layer-owned). */
  public void quantizeExpert(
      Engine engine, int e, ExpertFormat sourceFormat, ExpertLayerWeights.Expert src) {
    Objects.checkIndex(e, nExperts);
    if (sourceFormat != ExpertFormat.F32 && sourceFormat != ExpertFormat.BF16) {
      throw new IllegalArgumentException("source must be F32 or BF16, got " + sourceFormat);
    }
    long es = sourceFormat == ExpertFormat.F32 ? 4 : 2;
    Native.requireDirect("gate", src.gate(), dFf * dModel * es);
    Native.requireDirect("up", src.up(), dFf * dModel * es);
    Native.requireDirect("down", src.down(), dModel * dFf * es);
    int dtype =
        sourceFormat == ExpertFormat.F32 ? HmoeNative.HMOE_DTYPE_F32 : HmoeNative.HMOE_DTYPE_BF16;
    Native.check(
        "hmoe_expert_layer_quantize_expert",
        HmoeNative.hmoe_expert_layer_quantize_expert(
            handle(), engine == null ? null : engine.handle(), e, dtype, src.gate().slice(),
            src.up().slice(), src.down().slice()));
    pinned[e] = null;
  }

  /**
   * Expert e's projection as f32, exactly what the kernels multiply by: [dFf, dModel] for gate
   * and up, [dModel, dFf] for down, row-major.
   */
  public float[] dequantize(int e, Projection p) {
    Objects.checkIndex(e, nExperts);
    float[] out = new float[Math.toIntExact(dModel * dFf)];
    Native.check(
        "hmoe_expert_layer_dequantize",
        HmoeNative.hmoe_expert_layer_dequantize(handle(), e, p.code(), out));
    return out;
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

  /** INT4 group size, else 0. */
  public int groupSize() {
    return groupSize;
  }

  /** The native handle, for other bindings (the hybrid executor); valid while this is open. */
  public HmoeNative.hmoe_expert_layer_t handle() {
    return handle.get();
  }

  @Override
  public void close() {
    handle.close();
    Arrays.fill(pinned, null);
  }

  private static ByteBuffer slice(ByteBuffer b) {
    return b == null ? null : b.slice();
  }
}
