package org.hybrimoe.expert;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.nativeapi.HmoeNative;
import org.hybrimoe.nativeapi.Native;

/**
 * The CPU MoE operator on an engine's worker pool: for each token and each of its top-k experts
 * that the call selects, {@code out[t] += w * down(silu(gate(x[t])) * up(x[t]))}. Close it to stop
 * its threads (a Cleaner on the engine is the backstop).
 *
 * <p>Thread-safety: calls on one CpuMoe are serialized by the engine (a second caller waits).
 * All data buffers must be direct; they are read and written in place from their positions.
 */
public final class CpuMoe implements AutoCloseable {
  private final Engine engine;
  private final boolean ownsEngine;

  private CpuMoe(Engine engine, boolean ownsEngine) {
    this.engine = engine;
    this.ownsEngine = ownsEngine;
  }

  /** An operator with its own engine of {@code threads} workers (0: one per physical core). */
  public static CpuMoe create(int threads) {
    return new CpuMoe(Engine.create(threads), true);
  }

  /** An operator on a caller-owned engine (not closed by {@link #close}). */
  public static CpuMoe on(Engine engine) {
    return new CpuMoe(engine, false);
  }

  /** The engine the operator runs on. */
  public Engine engine() {
    return engine;
  }

  /**
   * Experts with at least {@code minTokens} tokens in one call run on oneDNN's matmul (f32 and
   * bf16 weights, where oneDNN implements them on this CPU); 0 = never. The default is the
   * environment variable HMOE_ONEDNN_MIN_TOKENS, else 128.
   */
  public void setOnednnMinTokens(int minTokens) {
    Native.check(
        "hmoe_engine_set_onednn_min_tokens",
        HmoeNative.hmoe_engine_set_onednn_min_tokens(engine.handle(), minTokens));
  }

  /** Activation element type of x. */
  public enum InputType {
    F32,
    BF16
  }

  /**
   * Runs the operator.
   *
   * @param x [nTokens, dModel] f32 or bf16 (little-endian bytes of a direct buffer)
   * @param ids [nTokens, topK] expert ids; negative means none
   * @param weights [nTokens, topK] routing weights
   * @param expertMask [nExperts] bytes, nonzero = compute this expert here; null = all experts
   * @param out [nTokens, dModel] f32, accumulated into
   */
  public void run(
      ExpertLayer layer, ByteBuffer x, InputType xType, int nTokens, int topK, IntBuffer ids,
      FloatBuffer weights, ByteBuffer expertMask, FloatBuffer out) {
    long d = layer.dModel();
    long n = nTokens;
    Native.requireDirect("x", x, n * d * (xType == InputType.F32 ? 4 : 2));
    Native.requireDirect("ids", ids, n * topK);
    Native.requireDirect("weights", weights, n * topK);
    Native.requireDirect("out", out, n * d);
    if (expertMask != null) {
      Native.requireDirect("expertMask", expertMask, layer.nExperts());
    }
    Native.check(
        "hmoe_cpu_moe_run",
        HmoeNative.hmoe_cpu_moe_run(
            engine.handle(), layer.handle(), x.slice(),
            xType == InputType.F32 ? HmoeNative.HMOE_DTYPE_F32 : HmoeNative.HMOE_DTYPE_BF16,
            n, topK, ids.slice(), weights.slice(), expertMask == null ? null : expertMask.slice(),
            out.slice()));
  }

  /** {@link #run} with f32 activations given as a FloatBuffer. */
  public void run(
      ExpertLayer layer, FloatBuffer x, int nTokens, int topK, IntBuffer ids, FloatBuffer weights,
      ByteBuffer expertMask, FloatBuffer out) {
    long n = nTokens;
    Native.requireDirect("x", x, n * layer.dModel());
    Native.requireDirect("ids", ids, n * topK);
    Native.requireDirect("weights", weights, n * topK);
    Native.requireDirect("out", out, n * layer.dModel());
    if (expertMask != null) {
      Native.requireDirect("expertMask", expertMask, layer.nExperts());
    }
    Native.check(
        "hmoe_cpu_moe_run",
        HmoeNative.hmoe_cpu_moe_run(
            engine.handle(), layer.handle(), x.slice(), HmoeNative.HMOE_DTYPE_F32, n, topK,
            ids.slice(), weights.slice(), expertMask == null ? null : expertMask.slice(),
            out.slice()));
  }

  /**
   * Read bandwidth of this machine in GB/s (1e9 B/s): the engine's threads stream-sum a buffer of
   * {@code bytes} (>= 64 MiB), median of {@code iters} passes. For benchmarks.
   */
  public double bandwidthProbeGbps(long bytes, int iters) {
    double[] out = new double[1];
    Native.check(
        "hmoe_cpu_bandwidth_probe",
        HmoeNative.hmoe_cpu_bandwidth_probe(engine.handle(), bytes, iters, out));
    return out[0];
  }

  /**
   * Median seconds of oneDNN's matmul on one expert FFN ([m, d] x [d, ff] twice and [m, ff] x
   * [ff, d]), f32 or bf16 weights, over {@code experts} weight copies visited in turn, with the
   * engine's thread count. For benchmarks.
   */
  public double onednnFfnSeconds(InputType dtype, long m, long d, long ff, int experts, int iters) {
    double[] out = new double[1];
    Native.check(
        "hmoe_onednn_ffn_time",
        HmoeNative.hmoe_onednn_ffn_time(
            engine.handle(),
            dtype == InputType.F32 ? HmoeNative.HMOE_DTYPE_F32 : HmoeNative.HMOE_DTYPE_BF16,
            m, d, ff, experts, iters, out));
    return out[0];
  }

  @Override
  public void close() {
    if (ownsEngine) {
      engine.close();
    }
  }
}
