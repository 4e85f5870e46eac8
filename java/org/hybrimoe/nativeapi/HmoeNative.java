package org.hybrimoe.nativeapi;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.ByPtrPtr;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Opaque;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * Raw JavaCPP binding of the C ABI in cpp/include/hybrimoe/hmoe.h, one method per C function.
 *
 * <p>Not the public API: callers go through {@link Native} and the typed handles, which check
 * status codes, reject heap buffers and own native memory. Methods here return the C status
 * unchanged. Out-parameters are small Java arrays (JavaCPP copies them back); data buffers are
 * direct NIO buffers, passed by address without a copy.
 */
@Platform(
    include = {
      "hybrimoe/hmoe.h", "hybrimoe/device.h", "hybrimoe/dense.h", "hybrimoe/hybrid.h", "hybrimoe/dense_device.h"
    },
    link = "hybrimoe",
    // libhybrimoe needs libdnnl.so.3 (and oneDNN libgomp.so.1): JavaCPP extracts both from the dnnl
    // platform jar and loads them first, which satisfies our library's dependency by soname.
    preload = {"gomp@.1", "dnnl@.3"},
    preloadresource = "/org/bytedeco/dnnl/")
public final class HmoeNative {
  static {
    Loader.load();
  }

  private HmoeNative() {}

  /** Opaque engine handle (hmoe_engine_t*). */
  @Opaque
  public static final class hmoe_engine_t extends Pointer {
    public hmoe_engine_t() {
      super((Pointer) null);
    }

    public hmoe_engine_t(Pointer p) {
      super(p);
    }
  }

  /** Opaque device handle (hmoe_device_t*). */
  @Opaque
  public static final class hmoe_device_t extends Pointer {
    public hmoe_device_t() {
      super((Pointer) null);
    }

    public hmoe_device_t(Pointer p) {
      super(p);
    }
  }

  /** Opaque hybrid layer executor handle (hmoe_hybrid_t*). */
  @Opaque
  public static final class hmoe_hybrid_t extends Pointer {
    public hmoe_hybrid_t() {
      super((Pointer) null);
    }

    public hmoe_hybrid_t(Pointer p) {
      super(p);
    }
  }

  /** Opaque dense device handle (hmoe_dense_device_t*). */
  @Opaque
  public static final class hmoe_dense_device_t extends Pointer {
    public hmoe_dense_device_t() {
      super((Pointer) null);
    }

    public hmoe_dense_device_t(Pointer p) {
      super(p);
    }
  }

  /** Opaque device router handle (hmoe_router_t*). */
  @Opaque
  public static final class hmoe_router_t extends Pointer {
    public hmoe_router_t() {
      super((Pointer) null);
    }

    public hmoe_router_t(Pointer p) {
      super(p);
    }
  }

  /** Opaque expert layer handle (hmoe_expert_layer_t*). */
  @Opaque
  public static final class hmoe_expert_layer_t extends Pointer {
    public hmoe_expert_layer_t() {
      super((Pointer) null);
    }

    public hmoe_expert_layer_t(Pointer p) {
      super(p);
    }
  }

  /** Opaque KV cache handle (hmoe_kv_cache_t*). */
  @Opaque
  public static final class hmoe_kv_cache_t extends Pointer {
    public hmoe_kv_cache_t() {
      super((Pointer) null);
    }

    public hmoe_kv_cache_t(Pointer p) {
      super(p);
    }
  }

  public static final int HMOE_OK = 0;
  public static final int HMOE_ERR_INVALID_ARGUMENT = -1;
  public static final int HMOE_ERR_UNSUPPORTED = -2;
  public static final int HMOE_ERR_OUT_OF_MEMORY = -3;
  public static final int HMOE_ERR_CUDA = -4;
  public static final int HMOE_ERR_INTERNAL = -5;
  public static final int HMOE_ERR_NO_DEVICE = -6;
  public static final int HMOE_ERR_STATE = -7;

  public static final int HMOE_CPU_AVX2 = 1;
  public static final int HMOE_CPU_AVX512F = 1 << 1;
  public static final int HMOE_CPU_AVX512_BF16 = 1 << 2;
  public static final int HMOE_CPU_AVX512_VNNI = 1 << 3;
  public static final int HMOE_CPU_AMX = 1 << 4;
  public static final int HMOE_CPU_F16C = 1 << 5;

  public static final int HMOE_KERNEL_SCALAR = 0;
  public static final int HMOE_KERNEL_AVX2 = 1;
  public static final int HMOE_KERNEL_AVX512 = 2;

  public static final int HMOE_FORMAT_F32 = 0;
  public static final int HMOE_FORMAT_BF16 = 1;
  public static final int HMOE_FORMAT_INT8 = 2;
  public static final int HMOE_FORMAT_INT4 = 3;
  public static final int HMOE_DTYPE_F32 = 0;
  public static final int HMOE_DTYPE_BF16 = 1;
  public static final int HMOE_PROJ_GATE = 0;
  public static final int HMOE_PROJ_UP = 1;
  public static final int HMOE_PROJ_DOWN = 2;

  public static native @Cast("const char*") BytePointer hmoe_last_error();

  public static native void hmoe_clear_error();

  public static native @Cast("const char*") BytePointer hmoe_version();

  public static native int hmoe_cpu_features(@Cast("uint32_t*") int[] out);

  public static native int hmoe_kernel_variant(@Cast("int32_t*") int[] out);

  public static native int hmoe_kernel_variant_force(int variant);

  public static native @Cast("const char*") BytePointer hmoe_kernel_variant_note();

  public static native int hmoe_cpu_physical_cores(@Cast("int32_t*") int[] out);

  public static native int hmoe_onednn_version(
      @Cast("int32_t*") int[] major, @Cast("int32_t*") int[] minor, @Cast("int32_t*") int[] patch);

  public static native int hmoe_cuda_compiled();

  public static native int hmoe_cuda_device_count(@Cast("int32_t*") int[] out);

  public static native @Cast("const char*") BytePointer hmoe_cuda_note();

  public static native int hmoe_cuda_device_info(
      int index,
      @Cast("char*") byte[] name,
      int nameLen,
      @Cast("int64_t*") long[] totalMem,
      @Cast("int64_t*") long[] freeMem,
      @Cast("int32_t*") int[] ccMajor,
      @Cast("int32_t*") int[] ccMinor,
      @Cast("int32_t*") int[] multiprocessors);

  public static native int hmoe_cuda_selftest(
      int index, @Cast("int64_t") long n, @Cast("int64_t*") long[] mismatches);

  public static native int hmoe_engine_create(int threads, @ByPtrPtr hmoe_engine_t out);

  public static native void hmoe_engine_free(hmoe_engine_t engine);

  public static native int hmoe_engine_threads(@Const hmoe_engine_t engine, @Cast("int32_t*") int[] out);

  public static native int hmoe_convert_f32_to_bf16(
      @Cast("const float*") FloatBuffer src, @Cast("uint16_t*") ShortBuffer dst, @Cast("int64_t") long n);

  public static native int hmoe_convert_bf16_to_f32(
      @Cast("const uint16_t*") ShortBuffer src, @Cast("float*") FloatBuffer dst, @Cast("int64_t") long n);

  // ---- device.h; an hmoe_expert_shape_t is passed as int[4] {format, d_model, d_ff, group} -----

  public static native int hmoe_expert_bytes(
      @Cast("const hmoe_expert_shape_t*") int[] shape, @Cast("int64_t*") long[] out);

  public static native int hmoe_device_create_cuda(
      int index, @Cast("const hmoe_expert_shape_t*") int[] shape, int slots, @ByPtrPtr hmoe_device_t out);

  public static native int hmoe_device_create_emulated(
      int threads, @Cast("const hmoe_expert_shape_t*") int[] shape, int slots, @ByPtrPtr hmoe_device_t out);

  public static native int hmoe_device_emulated_delays(hmoe_device_t device, int copyUs, int computeUs);

  public static native int hmoe_device_cuda_max_slots(
      int index,
      @Cast("const hmoe_expert_shape_t*") int[] shape,
      @Cast("int64_t") long reserveBytes,
      @Cast("int32_t*") int[] out);

  public static native void hmoe_device_free(hmoe_device_t device);

  public static native int hmoe_device_describe(
      @Const hmoe_device_t device,
      @Cast("int32_t*") int[] kind,
      @Cast("int32_t*") int[] slots,
      @Cast("int64_t*") long[] slotBytes);

  public static native int hmoe_device_register_host(
      hmoe_device_t device,
      @Cast("const void*") java.nio.ByteBuffer ptr,
      @Cast("int64_t") long bytes,
      @Cast("int32_t*") int[] pinned);

  public static native int hmoe_device_unregister_host(
      hmoe_device_t device, @Cast("const void*") java.nio.ByteBuffer ptr);

  public static native int hmoe_device_load(
      hmoe_device_t device,
      int slot,
      @Cast("const void*") java.nio.ByteBuffer gate,
      @Cast("const void*") java.nio.ByteBuffer up,
      @Cast("const void*") java.nio.ByteBuffer down,
      @Cast("const float*") FloatBuffer gateScales,
      @Cast("const float*") FloatBuffer upScales,
      @Cast("const float*") FloatBuffer downScales,
      int stream);

  public static native int hmoe_device_slot_state(
      hmoe_device_t device, int slot, @Cast("int32_t*") int[] out);

  public static native int hmoe_device_moe_run(
      hmoe_device_t device,
      @Cast("const float*") FloatBuffer x,
      int nTokens,
      @Cast("const int32_t*") java.nio.IntBuffer ids,
      @Cast("const float*") FloatBuffer weights,
      int topK,
      @Cast("const int32_t*") java.nio.IntBuffer slotOfExpert,
      int nExperts,
      @Cast("float*") FloatBuffer out);

  public static native int hmoe_device_wait(hmoe_device_t device);

  public static native int hmoe_device_time_moe(
      hmoe_device_t device,
      @Cast("const float*") FloatBuffer x,
      int nTokens,
      @Cast("const int32_t*") java.nio.IntBuffer ids,
      @Cast("const float*") FloatBuffer weights,
      int topK,
      @Cast("const int32_t*") java.nio.IntBuffer slotOfExpert,
      int nExperts,
      int reps,
      @Cast("float*") float[] medianMs);

  public static native int hmoe_router_create(
      hmoe_device_t device,
      @Cast("const float*") FloatBuffer weight,
      int nExperts,
      int dModel,
      int topK,
      int scoring,
      int normTopk,
      float scale,
      @ByPtrPtr hmoe_router_t out);

  public static native void hmoe_router_free(hmoe_router_t router);

  public static native int hmoe_router_run(
      hmoe_router_t router,
      @Cast("const float*") FloatBuffer x,
      int nTokens,
      @Cast("int32_t*") java.nio.IntBuffer ids,
      @Cast("float*") FloatBuffer weights);

  public static native int hmoe_cuda_bench_h2d(
      int index,
      @Cast("int64_t") long totalBytes,
      @Cast("int64_t") long chunkBytes,
      int reps,
      double[] gbps);

  public static native int hmoe_cuda_bench_d2d(
      int index, @Cast("int64_t") long bytes, int reps, double[] gbps);
  // ---- cpu_moe.h (data buffers are direct; callers pass slices whose position is 0) ----------

  public static native int hmoe_expert_format_row_bytes(
      int format, @Cast("int64_t") long in, int groupSize, @Cast("int64_t*") long[] rowBytes,
      @Cast("int64_t*") long[] scalesPerRow);

  public static native int hmoe_expert_layer_create(
      int format, @Cast("int64_t") long nExperts, @Cast("int64_t") long dModel, @Cast("int64_t") long dFf,
      int groupSize, @ByPtrPtr hmoe_expert_layer_t out);

  public static native void hmoe_expert_layer_free(hmoe_expert_layer_t layer);

  public static native int hmoe_expert_layer_set_expert(
      hmoe_expert_layer_t layer, @Cast("int64_t") long e, @Cast("const void*") ByteBuffer gate,
      @Cast("const void*") ByteBuffer up, @Cast("const void*") ByteBuffer down,
      @Cast("const float*") ByteBuffer gateScales, @Cast("const float*") ByteBuffer upScales,
      @Cast("const float*") ByteBuffer downScales);

  public static native int hmoe_expert_layer_quantize_expert(
      hmoe_expert_layer_t layer, hmoe_engine_t engine, @Cast("int64_t") long e, int srcDtype,
      @Cast("const void*") ByteBuffer gate, @Cast("const void*") ByteBuffer up,
      @Cast("const void*") ByteBuffer down);

  public static native int hmoe_expert_layer_dequantize(
      @Const hmoe_expert_layer_t layer, @Cast("int64_t") long e, int proj, @Cast("float*") float[] out);

  public static native int hmoe_cpu_moe_run(
      hmoe_engine_t engine, @Const hmoe_expert_layer_t layer, @Cast("const void*") ByteBuffer x,
      int xDtype, @Cast("int64_t") long nTokens, int topK, @Cast("const int32_t*") IntBuffer ids,
      @Cast("const float*") FloatBuffer weights, @Cast("const uint8_t*") ByteBuffer expertMask,
      @Cast("float*") FloatBuffer out);

  /** The same with f32 activations in a FloatBuffer (x_dtype must be HMOE_DTYPE_F32). */
  public static native int hmoe_cpu_moe_run(
      hmoe_engine_t engine, @Const hmoe_expert_layer_t layer, @Cast("const void*") FloatBuffer x,
      int xDtype, @Cast("int64_t") long nTokens, int topK, @Cast("const int32_t*") IntBuffer ids,
      @Cast("const float*") FloatBuffer weights, @Cast("const uint8_t*") ByteBuffer expertMask,
      @Cast("float*") FloatBuffer out);

  public static native int hmoe_engine_set_onednn_min_tokens(hmoe_engine_t engine, int minTokens);

  public static native int hmoe_cpu_bandwidth_probe(
      hmoe_engine_t engine, @Cast("int64_t") long bytes, int iters, double[] gbps);

  public static native int hmoe_onednn_ffn_time(
      hmoe_engine_t engine, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long d,
      @Cast("int64_t") long ff, int experts, int iters, double[] seconds);

  // ---- dense.h (data buffers are direct; callers pass slices whose position is 0) -------------

  public static final int HMOE_DTYPE_F16 = 2;
  public static final int HMOE_ROPE_HALF = 0;
  public static final int HMOE_ROPE_INTERLEAVED = 1;

  // ---- dense_device.h ----

  public static final int HMOE_DENSE_MAX_GROUP = 8;
  public static final int HMOE_DEVICE_CUDA = 1;
  public static final int HMOE_DEVICE_EMULATED = 2;

  public static native int hmoe_dense_device_create_cuda(int index, @ByPtrPtr hmoe_dense_device_t out);

  public static native int hmoe_dense_device_create_emulated(int threads, @ByPtrPtr hmoe_dense_device_t out);

  public static native void hmoe_dense_device_free(hmoe_dense_device_t device);

  public static native int hmoe_dense_device_describe(
      @Const hmoe_dense_device_t device,
      @Cast("int32_t*") int[] kind,
      @Cast("int32_t*") int[] weights,
      @Cast("int64_t*") long[] bytes);

  public static native int hmoe_dense_device_upload(
      hmoe_dense_device_t device, @Cast("const void*") ByteBuffer w, int wDtype, @Cast("int64_t") long out,
      @Cast("int64_t") long in, @Cast("const float*") FloatBuffer bias, @Cast("int32_t*") int[] id);

  public static native int hmoe_dense_device_linears(
      hmoe_dense_device_t device, int count, @Cast("const int32_t*") int[] ids, @Cast("const float*") FloatBuffer x,
      @Cast("int64_t") long n, @Cast("float*") FloatBuffer y);

  public static native int hmoe_dense_device_mlp(
      hmoe_dense_device_t device, int gate, int up, int down, @Cast("const float*") FloatBuffer x,
      @Cast("int64_t") long n, @Cast("float*") FloatBuffer y);

  public static final int HMOE_QK_NORM_NONE = 0;
  public static final int HMOE_QK_NORM_PER_HEAD = 1;
  public static final int HMOE_QK_NORM_FULL = 2;

  public static native int hmoe_dense_device_add_gqa(
      hmoe_dense_device_t device, int q, int k, int v, int o, int heads, int kvHeads, int headDim, int qkNorm,
      @Cast("const float*") FloatBuffer qNorm, @Cast("const float*") FloatBuffer kNorm, float eps,
      @Cast("const float*") FloatBuffer invFreq, float ropeScale, float clip, int window, float scale,
      @Cast("int32_t*") int[] attn);

  public static native int hmoe_dense_device_add_mla(
      hmoe_dense_device_t device, int qProj, int qA, @Cast("const float*") FloatBuffer qANorm, int qB, int kvA,
      @Cast("const float*") FloatBuffer kvANorm, int ukT, int kvB, int o, int heads, int nope, int rope, int vd,
      int rank, float eps, @Cast("const float*") FloatBuffer invFreq, float ropeScale, float scale,
      @Cast("int32_t*") int[] attn);

  public static native int hmoe_dense_device_kv_create(
      hmoe_dense_device_t device, @Cast("int64_t") long nLayers, @Cast("int64_t") long maxSeq,
      @Cast("int64_t") long nKvHeads, @Cast("int64_t") long kDim, @Cast("int64_t") long vDim, int dtype, int sharedKv,
      @Cast("int32_t*") int[] kv);

  public static native int hmoe_dense_device_kv_free(hmoe_dense_device_t device, int kv);

  public static native int hmoe_dense_device_kv_truncate(hmoe_dense_device_t device, int kv, @Cast("int64_t") long length);

  public static native int hmoe_dense_device_kv_length(
      @Const hmoe_dense_device_t device, int kv, @Cast("int64_t") long layer, @Cast("int64_t*") long[] out);

  public static native int hmoe_dense_device_attend(
      hmoe_dense_device_t device, int attn, int kv, @Cast("int64_t") long layer, @Cast("const float*") FloatBuffer x,
      @Cast("int64_t") long n, @Cast("const int32_t*") IntBuffer positions, @Cast("float*") FloatBuffer out);

  public static native int hmoe_dense_linear(
      hmoe_engine_t engine, @Cast("const float*") FloatBuffer x, @Cast("int64_t") long n,
      @Cast("int64_t") long in, @Cast("const void*") ByteBuffer w, int wDtype,
      @Cast("int64_t") long out, @Cast("const float*") FloatBuffer bias, @Cast("float*") FloatBuffer y);

  public static native int hmoe_dense_linear_heads(
      hmoe_engine_t engine, @Cast("const float*") FloatBuffer x, @Cast("int64_t") long n,
      @Cast("int64_t") long heads, @Cast("int64_t") long in, @Cast("int64_t") long ldxToken,
      @Cast("int64_t") long ldxHead, @Cast("const void*") ByteBuffer w, int wDtype,
      @Cast("int64_t") long wHeadStride, @Cast("int64_t") long out, @Cast("float*") FloatBuffer y,
      @Cast("int64_t") long ldyToken, @Cast("int64_t") long ldyHead);

  public static native int hmoe_dense_rmsnorm(
      @Cast("const float*") FloatBuffer x, @Cast("int64_t") long n, @Cast("int64_t") long dim,
      @Cast("int64_t") long xStride, @Cast("const float*") FloatBuffer w, float eps,
      @Cast("float*") FloatBuffer y, @Cast("int64_t") long yStride);

  public static native int hmoe_dense_rope(
      @Cast("float*") FloatBuffer x, @Cast("int64_t") long n, @Cast("int64_t") long nHeads,
      @Cast("int64_t") long tokenStride, @Cast("int64_t") long headStride,
      @Cast("int64_t") long rotDim, @Cast("const int32_t*") IntBuffer positions,
      @Cast("const float*") FloatBuffer invFreq, float mscale, int style);

  public static native int hmoe_kv_cache_create(
      @Cast("int64_t") long nLayers, @Cast("int64_t") long maxSeq, @Cast("int64_t") long nKvHeads,
      @Cast("int64_t") long kDim, @Cast("int64_t") long vDim, @ByPtrPtr hmoe_kv_cache_t out);

  /** Key-only cache: a head's value is the first vDim floats of its key (vDim <= kDim). */
  public static native int hmoe_kv_cache_create_shared_kv(
      @Cast("int64_t") long nLayers, @Cast("int64_t") long maxSeq, @Cast("int64_t") long nKvHeads,
      @Cast("int64_t") long kDim, @Cast("int64_t") long vDim, @ByPtrPtr hmoe_kv_cache_t out);

  public static native int hmoe_kv_cache_create_typed(
      @Cast("int64_t") long nLayers, @Cast("int64_t") long maxSeq, @Cast("int64_t") long nKvHeads,
      @Cast("int64_t") long kDim, @Cast("int64_t") long vDim, int dtype, int sharedKv,
      @ByPtrPtr hmoe_kv_cache_t out);

  public static native void hmoe_kv_cache_free(hmoe_kv_cache_t cache);

  public static native int hmoe_kv_cache_length(
      @Const hmoe_kv_cache_t cache, @Cast("int64_t") long layer, @Cast("int64_t*") long[] out);

  public static native int hmoe_kv_cache_truncate(hmoe_kv_cache_t cache, @Cast("int64_t") long length);

  public static native int hmoe_dense_attention(
      hmoe_engine_t engine, hmoe_kv_cache_t cache, @Cast("int64_t") long layer,
      @Cast("const float*") FloatBuffer q, @Cast("const float*") FloatBuffer k,
      @Cast("const float*") FloatBuffer v, @Cast("int64_t") long n, @Cast("int64_t") long nHeads,
      float scale, @Cast("float*") FloatBuffer out);

  public static native int hmoe_dense_attention_window(
      hmoe_engine_t engine, hmoe_kv_cache_t cache, @Cast("int64_t") long layer,
      @Cast("const float*") FloatBuffer q, @Cast("const float*") FloatBuffer k,
      @Cast("const float*") FloatBuffer v, @Cast("int64_t") long n, @Cast("int64_t") long nHeads,
      float scale, @Cast("int64_t") long window, @Cast("float*") FloatBuffer out);

  // ---- hybrid.h ----

  public static native int hmoe_hybrid_create(
      hmoe_engine_t engine, hmoe_device_t device, int nLayers, int nExperts, @ByPtrPtr hmoe_hybrid_t out);

  public static native void hmoe_hybrid_free(hmoe_hybrid_t hybrid);

  public static native int hmoe_hybrid_set_layer(
      hmoe_hybrid_t hybrid, int layer, @Const hmoe_expert_layer_t routed, @Const hmoe_expert_layer_t shared,
      @Cast("const int32_t*") int[] sharedSlots);

  public static native int hmoe_hybrid_preload(hmoe_hybrid_t hybrid, int layer, int expert, int slot);

  public static native int hmoe_hybrid_run(
      hmoe_hybrid_t hybrid,
      @Cast("const int32_t*") IntBuffer plan,
      @Cast("int64_t") long planInts,
      @Cast("const float*") FloatBuffer x,
      int nTokens,
      @Cast("const int32_t*") IntBuffer ids,
      @Cast("const float*") FloatBuffer weights,
      int topK,
      @Cast("const float*") FloatBuffer sharedWeights,
      @Cast("float*") FloatBuffer out,
      @Cast("double*") java.nio.DoubleBuffer timeline,
      @Cast("int64_t") long timelineCap);

  public static native int hmoe_hybrid_sync(hmoe_hybrid_t hybrid);

  public static native double hmoe_clock_ms();
}
