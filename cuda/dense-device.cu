// The CUDA dense device (dense_device.h): linear weights copied into GPU memory once, linears
// computed on a stream of the device's own, activations staged through pinned host buffers.
//   few tokens (decode, n <= kGemvTokens): one warp per output row streams the row once for all
//     tokens, 16-byte weight loads (8 values), activations from L1/L2 (the same kernel, per head,
//     runs MLA's absorbed products);
//   more tokens (prefill): a shared-memory tiled GEMM, 64 tokens x 64 outputs per block, f32 FMA.
// Both follow the engine's rule (dense.h, cpu_moe.h): f32 accumulation on exact (widened)
// weights, and for bf16 weights every activation rounded to bf16 first, as the CPU kernels do.
//
// Attention sublayers (add_attention / kv_create / attend): the whole sublayer of a decoder layer
// runs on the stream for n new tokens, x [n, d] staged in with the positions, out [n, d] staged
// back, the KV cache in device memory (kernels in dense-attention.cuh):
//   GQA: q|k|v linears -> q/k RMSNorm (per head or full) -> clamp q, k, v -> RoPE HALF on q, k ->
//        cache append -> attention -> o linear;
//   MLA: (q_proj | kv_a) or (q_a | kv_a) -> q_a RMSNorm -> q_b; latent RMSNorm on the key's first
//        rank floats; RoPE INTERLEAVED on the key's and each q head's last rope floats; q' =
//        [W_uk_h^T q_nope | q_pe] (per-head linear, then a 2D copy); cache append (key only: the
//        value is its first rank floats) -> attention -> per-head W_uv -> o linear.
// The order is GqaAttention.forward's / MlaAttention.forward's (Java), the numbers dense.cpp's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "cuda-buffers.cuh"
#include "device/dense_device.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/device.h"

namespace hmoe::cuda {
namespace {

constexpr int kGemvTokens = 8;  // calls with at most this many tokens take the streaming kernel
constexpr int kWarps = 8;       // warps per block of the streaming kernel

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One weight element as f32.
template <typename T> __device__ __forceinline__ float widen(T v);
template <> __device__ __forceinline__ float widen<float>(float v) { return v; }
template <> __device__ __forceinline__ float widen<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float widen<__half>(__half v) { return __half2float(v); }

// An activation as the rule has a weight of type T see it: rounded to bf16 for bf16 weights.
template <typename T> __device__ __forceinline__ float act(float v) { return v; }
template <> __device__ __forceinline__ float act<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// Eight consecutive weight elements from a 16-byte (f32: 32-byte) aligned address, as f32.
template <typename T> __device__ __forceinline__ void load8(const T* p, float (&f)[8]);
template <> __device__ __forceinline__ void load8<float>(const float* p, float (&f)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}
template <> __device__ __forceinline__ void load8<__nv_bfloat16>(const __nv_bfloat16* p, float (&f)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
template <> __device__ __forceinline__ void load8<__half>(const __half* p, float (&f)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __half22float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

constexpr int64_t kMaxGridYZ = 65535;  // gridDim.y and gridDim.z limit

// The streaming GEMV, strided and per head (heads do not share a weight):
//   y[t*ldy_t + h*ldy_h + r] = sum_i x[t*ldx_t + h*ldx_h + i] * w[(h*head_rows + row_off + r)*in + i] + bias[r]
// for t < n, h < gridDim.y, r < out. One warp per (row r, head h = blockIdx.y), kGemvTokens
// tokens a block (blockIdx.z, from token t_first): the row streams once for those tokens. A plain
// linear is one head (ldx_t = in, ldy_t = out); MLA's absorbed W_uk^T and W_uv are heads of one
// weight. kVec: in % 8 == 0 (every weight row starts on 8 elements: 16-byte aligned on a
// cudaMalloc'd base) and every x row 16-byte aligned (gemv checks x, ldx_t and ldx_h).
template <typename T, bool kVec>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const T* __restrict__ w, const float* __restrict__ bias, int64_t head_rows, int64_t row_off,
                int64_t in, int64_t out, const float* __restrict__ x, int64_t ldx_t, int64_t ldx_h, int64_t n,
                int64_t t_first, float* __restrict__ y, int64_t ldy_t, int64_t ldy_h) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= out) return;  // the whole warp: r is per warp
  const int64_t h = blockIdx.y;
  const int64_t t0 = t_first + int64_t(blockIdx.z) * kGemvTokens;
  const int nt = n - t0 < kGemvTokens ? int(n - t0) : kGemvTokens;  // >= 1: the grid covers tokens < n only
  const T* row = w + (h * head_rows + row_off + r) * in;
  const float* xh = x + t0 * ldx_t + h * ldx_h;
  float acc[kGemvTokens];
#pragma unroll
  for (int t = 0; t < kGemvTokens; ++t) acc[t] = 0.0f;
  if (kVec) {
    for (int64_t c = int64_t(lane) * 8; c < in; c += 32 * 8) {
      float f[8];
      load8<T>(row + c, f);
#pragma unroll
      for (int t = 0; t < kGemvTokens; ++t) {
        if (t < nt) {
          const float4* xp = reinterpret_cast<const float4*>(xh + t * ldx_t + c);
          const float4 a = xp[0], b = xp[1];
          acc[t] += f[0] * act<T>(a.x) + f[1] * act<T>(a.y) + f[2] * act<T>(a.z) + f[3] * act<T>(a.w) +
                    f[4] * act<T>(b.x) + f[5] * act<T>(b.y) + f[6] * act<T>(b.z) + f[7] * act<T>(b.w);
        }
      }
    }
  } else {
    for (int64_t c = lane; c < in; c += 32) {
      const float v = widen<T>(row[c]);
#pragma unroll
      for (int t = 0; t < kGemvTokens; ++t)
        if (t < nt) acc[t] += v * act<T>(xh[t * ldx_t + c]);
    }
  }
  const float b = bias ? bias[r] : 0.0f;
#pragma unroll
  for (int t = 0; t < kGemvTokens; ++t) {
    if (t < nt) {  // nt is the block's: uniform over the warp
      const float sm = warp_sum(acc[t]);
      if (lane == 0) y[(t0 + t) * ldy_t + h * ldy_h + r] = sm + b;
    }
  }
}

// Launches gemv_kernel over n tokens (any n: blocks of kGemvTokens, launches of 65535 blocks) and
// `heads` heads; bias [out] or null.
template <typename T>
void gemv(const T* w, const float* bias, int64_t head_rows, int64_t row_off, int64_t in, int64_t out, const float* x,
          int64_t ldx_t, int64_t ldx_h, int64_t n, int64_t heads, float* y, int64_t ldy_t, int64_t ldy_h,
          cudaStream_t s) {
  const bool vec = in % 8 == 0 && ldx_t % 4 == 0 && ldx_h % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  constexpr int64_t kTokensPerLaunch = kMaxGridYZ * kGemvTokens;
  for (int64_t t_first = 0; t_first < n; t_first += kTokensPerLaunch) {
    const int64_t z = std::min(kMaxGridYZ, (n - t_first + kGemvTokens - 1) / kGemvTokens);
    const dim3 grid(unsigned((out + kWarps - 1) / kWarps), unsigned(heads), unsigned(z));
    if (vec)
      gemv_kernel<T, true><<<grid, kWarps * 32, 0, s>>>(w, bias, head_rows, row_off, in, out, x, ldx_t, ldx_h, n,
                                                        t_first, y, ldy_t, ldy_h);
    else
      gemv_kernel<T, false><<<grid, kWarps * 32, 0, s>>>(w, bias, head_rows, row_off, in, out, x, ldx_t, ldx_h, n,
                                                         t_first, y, ldy_t, ldy_h);
    HMOE_CUDA_CHECK(cudaGetLastError());
  }
}

// Tiled GEMM for many tokens: y[n, out] = x[n, in] . w[out, in]^T + bias. A block of 16 x 16
// threads owns 64 tokens x 64 outputs, each thread 4 x 4; K advances 16 at a time through shared
// memory (tiles stored k-major so that the inner loop reads broadcast-friendly rows).
constexpr int kTm = 64, kTn = 64, kTk = 16;

template <typename T>
__global__ void __launch_bounds__(256) gemm_kernel(const T* __restrict__ w, const float* __restrict__ bias,
                                                   const float* __restrict__ x, int n, int64_t in, int64_t out,
                                                   float* __restrict__ y) {
  __shared__ float xs[kTk][kTm + 4];
  __shared__ float ws[kTk][kTn + 4];
  const int tid = threadIdx.x;
  const int tx = tid & 15, ty = tid >> 4;
  const int64_t m0 = int64_t(blockIdx.y) * kTm;  // first token
  const int64_t n0 = int64_t(blockIdx.x) * kTn;  // first output
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < in; k0 += kTk) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int idx = tid + i * 256;  // 64 rows x 16 k
      const int row = idx >> 4, k = idx & 15;
      const int64_t kk = k0 + k;
      const int64_t tm = m0 + row, on = n0 + row;
      xs[k][row] = (tm < n && kk < in) ? act<T>(x[tm * in + kk]) : 0.0f;
      ws[k][row] = (on < out && kk < in) ? widen<T>(w[on * in + kk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTk; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[k][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[k][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t tm = m0 + ty * 4 + i;
    if (tm >= n) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t on = n0 + tx * 4 + j;
      if (on < out) y[tm * out + on] = acc[i][j] + (bias ? bias[on] : 0.0f);
    }
  }
}

// g[i] = silu(g[i]) * u[i].
__global__ void silu_mul_kernel(float* __restrict__ g, const float* __restrict__ u, int64_t count) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const float a = g[i];
    g[i] = a / (1.0f + expf(-a)) * u[i];
  }
}

template <typename T>
void launch_typed(const T* wt, const float* bias, const float* x, int n, int64_t in, int64_t out, float* y,
                  cudaStream_t s) {
  if (n <= kGemvTokens) {
    gemv(wt, bias, 0, 0, in, out, x, in, 0, n, 1, y, out, 0, s);  // one head: a plain linear
    return;
  }
  // gridDim.y is at most 65535: token chunks of 65535 tiles.
  constexpr int64_t kChunk = kMaxGridYZ * kTm;
  for (int64_t t0 = 0; t0 < n; t0 += kChunk) {
    const int nt = int(std::min<int64_t>(kChunk, n - t0));
    const dim3 grid(unsigned((out + kTn - 1) / kTn), unsigned((nt + kTm - 1) / kTm));
    gemm_kernel<T><<<grid, 256, 0, s>>>(wt, bias, x + t0 * in, nt, in, out, y + t0 * out);
  }
  HMOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace
}  // namespace hmoe::cuda

// The attention sublayers' kernels: after the helpers above, which they use.
#include "dense-attention.cuh"

namespace hmoe::cuda {
namespace {

class CudaDenseDevice final : public hmoe_dense_device {
 public:
  explicit CudaDenseDevice(int index) : index_(index) {
    DeviceScope scope(index_);
    HMOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }

  ~CudaDenseDevice() override {
    // No DeviceScope here: a destructor must not throw. Errors are ignored (nothing to report to).
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(index_);
    if (stream_) cudaStreamSynchronize(stream_);
    for (auto& s : stored_) {
      cudaFree(s.w);
      if (s.bias) cudaFree(s.bias);
    }
    for (auto& a : attn_stored_)
      if (a.buf) cudaFree(a.buf);
    for (auto& k : kv_stored_) {  // freed caches hold nulls
      if (k.k) cudaFree(k.k);
      if (k.v) cudaFree(k.v);
    }
    if (stream_) cudaStreamDestroy(stream_);
    cudaSetDevice(prev);
    (void)cudaGetLastError();
  }

  int32_t kind() const override { return HMOE_DEVICE_CUDA; }

  void upload(const Weight& wt, const void* data, const float* bias) override {
    DeviceScope scope(index_);
    Stored s;
    const size_t wb = size_t(wt.bytes - (wt.has_bias ? wt.out * 4 : 0));
    try {
      HMOE_CUDA_CHECK(cudaMalloc(&s.w, wb));
      if (bias) HMOE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s.bias), size_t(wt.out) * 4));
      // On the device's own stream, then synchronized: a plain cudaMemcpy from pageable memory goes
      // on the legacy stream, which this non-blocking stream does not wait for, and may return
      // before its DMA has landed.
      HMOE_CUDA_CHECK(cudaMemcpyAsync(s.w, data, wb, cudaMemcpyHostToDevice, stream_));
      if (bias) HMOE_CUDA_CHECK(cudaMemcpyAsync(s.bias, bias, size_t(wt.out) * 4, cudaMemcpyHostToDevice, stream_));
      HMOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      stored_.push_back(s);
    } catch (...) {
      cudaStreamSynchronize(stream_);  // no copy may still target what is freed
      if (s.w) cudaFree(s.w);
      if (s.bias) cudaFree(s.bias);
      throw;
    }
  }

  void linears(int32_t count, const int32_t* ids, const float* x, int64_t n, float* y) override {
    DeviceScope scope(index_);
    Drain drain{stream_};
    const int64_t in = weights[size_t(ids[0])].in;
    int64_t total = 0;
    for (int32_t i = 0; i < count; ++i) total += weights[size_t(ids[i])].out;
    stage_in(x, n * in);
    dy_.reserve(size_t(n * total) * 4);
    int64_t at = 0;
    for (int32_t i = 0; i < count; ++i) {
      launch(ids[i], dx_.as<float>(), n, dy_.as<float>() + at);
      at += n * weights[size_t(ids[i])].out;
    }
    stage_out(dy_.as<float>(), y, n * total);
  }

  void mlp(int32_t gate, int32_t up, int32_t down, const float* x, int64_t n, float* y) override {
    DeviceScope scope(index_);
    Drain drain{stream_};
    const int64_t d = weights[size_t(gate)].in, ff = weights[size_t(gate)].out;
    stage_in(x, n * d);
    dg_.reserve(size_t(n * ff) * 4);
    du_.reserve(size_t(n * ff) * 4);
    dy_.reserve(size_t(n * d) * 4);
    launch(gate, dx_.as<float>(), n, dg_.as<float>());
    launch(up, dx_.as<float>(), n, du_.as<float>());
    const int64_t count = n * ff;
    const unsigned blocks = unsigned(std::min<int64_t>((count + 255) / 256, 4096));
    silu_mul_kernel<<<blocks, 256, 0, stream_>>>(dg_.as<float>(), du_.as<float>(), count);
    HMOE_CUDA_CHECK(cudaGetLastError());
    launch(down, dg_.as<float>(), n, dy_.as<float>());
    stage_out(dy_.as<float>(), y, n * d);
  }

  void add_attention(const Attention& a) override {
    // The ABI layer has checked the shapes, heads and vector lengths (dense_device_api.cpp); what
    // this device's kernels cannot take besides is refused here, before anything is allocated.
    const int64_t kd = a.cache_k_dim(), vd = a.cache_v_dim();
    if (kd > kAttnMaxDim || vd > kAttnMaxDim)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "key and value dims must be <= %d on a CUDA dense device, got %lld, %lld",
                 kAttnMaxDim, (long long)kd, (long long)vd);
    if (a.heads < 1 || a.heads > kMaxGridYZ)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "heads must be in 1..%lld, got %d", (long long)kMaxGridYZ, a.heads);
    DeviceScope scope(index_);
    // The vectors in one allocation, each at its offset (absent ones stay null).
    const std::vector<float>* parts[5] = {&a.q_norm, &a.k_norm, &a.q_a_norm, &a.kv_a_norm, &a.inv_freq};
    size_t total = 0;
    for (const auto* p : parts) total += p->size();
    AttnStored s;
    try {
      HMOE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s.buf), total * 4));
      const float* at[5] = {};
      size_t off = 0;
      for (int i = 0; i < 5; ++i) {
        if (parts[i]->empty()) continue;
        at[i] = s.buf + off;
        // The device's own stream, then synchronized: see upload.
        HMOE_CUDA_CHECK(cudaMemcpyAsync(s.buf + off, parts[i]->data(), parts[i]->size() * 4, cudaMemcpyHostToDevice,
                                        stream_));
        off += parts[i]->size();
      }
      s.q_norm = at[0];
      s.k_norm = at[1];
      s.q_a_norm = at[2];
      s.kv_a_norm = at[3];
      s.inv_freq = at[4];
      HMOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      attn_stored_.push_back(s);
    } catch (...) {
      cudaStreamSynchronize(stream_);  // no copy may still target what is freed
      if (s.buf) cudaFree(s.buf);
      throw;
    }
  }

  void kv_create(const Kv& kv) override {
    const int64_t es = kv.dtype == HMOE_DTYPE_BF16 ? 2 : 4;  // the caller checked the byte count fits int64
    DeviceScope scope(index_);
    const int64_t cells = kv.layers * kv.max_seq * kv.heads;  // (layer, position, head)
    KvStored s;
    try {
      HMOE_CUDA_CHECK(cudaMalloc(&s.k, size_t(cells * kv.k_dim * es)));
      if (!kv.shared) HMOE_CUDA_CHECK(cudaMalloc(&s.v, size_t(cells * kv.v_dim * es)));
      kv_stored_.push_back(s);
    } catch (...) {
      if (s.k) cudaFree(s.k);
      if (s.v) cudaFree(s.v);
      throw;
    }
  }

  void kv_free(int32_t id) override {
    DeviceScope scope(index_);
    // Every call ends drained; synchronizing anyway costs nothing and guards the free. Errors are
    // not this call's to report: the memory goes either way.
    if (cudaStreamSynchronize(stream_) != cudaSuccess) (void)cudaGetLastError();
    KvStored& s = kv_stored_[size_t(id)];
    if (s.k) cudaFree(s.k);
    if (s.v) cudaFree(s.v);
    s = KvStored{};
    (void)cudaGetLastError();
  }

  void attend(int32_t attn, int32_t kv, int64_t layer, const float* x, int64_t n, const int32_t* positions,
              float* out) override {
    DeviceScope scope(index_);
    Drain drain{stream_};
    const Attention& a = attentions[size_t(attn)];
    const Kv& c = kvs[size_t(kv)];
    const Cache cache = cache_at(c, kv_stored_[size_t(kv)], layer);
    if (a.mla)
      attend_mla(a, attn_stored_[size_t(attn)], cache, x, n, positions, out);
    else
      attend_gqa(a, attn_stored_[size_t(attn)], cache, x, n, positions, out);
  }

 private:
  struct Stored {
    void* w = nullptr;
    float* bias = nullptr;
  };

  // An attention sublayer's vectors in device memory: one allocation (buf), the others point into
  // it or are null where the sublayer has none.
  struct AttnStored {
    float* buf = nullptr;
    const float* q_norm = nullptr;
    const float* k_norm = nullptr;
    const float* q_a_norm = nullptr;
    const float* kv_a_norm = nullptr;
    const float* inv_freq = nullptr;
  };

  // A cache's memory, layer-major as dense.cpp's hmoe_kv_cache: keys [layers, max_seq, heads,
  // k_dim], values [layers, max_seq, heads, v_dim] (none when shared), elements f32 or bf16 bits.
  // Both null once freed.
  struct KvStored {
    void* k = nullptr;
    void* v = nullptr;
  };

  // One layer of a cache as attend uses it: its keys and values from position 0, the layer's
  // length L, and where a position's value lies (a shared cache's is the key's first v_dim).
  struct Cache {
    char* k;  // position p, head g at k + ((p * heads + g) * k_dim) * es
    char* v;  // position p, head g at v + (p * v_pos_stride + g * v_head_stride) * es
    int64_t es, heads, k_dim, v_dim, v_pos_stride, v_head_stride, L;
    bool bf16, shared;
    // Where position p's keys (all heads) and non-shared values go.
    void* keys_at(int64_t p) const { return k + p * heads * k_dim * es; }
    void* values_at(int64_t p) const { return v + p * heads * v_dim * es; }
  };

  Cache cache_at(const Kv& c, const KvStored& s, int64_t layer) const {
    Cache r;
    r.bf16 = c.dtype == HMOE_DTYPE_BF16;
    r.es = r.bf16 ? 2 : 4;
    r.shared = c.shared;
    r.heads = c.heads;
    r.k_dim = c.k_dim;
    r.v_dim = c.v_dim;
    r.L = c.length[size_t(layer)];
    r.k = static_cast<char*>(s.k) + layer * c.max_seq * c.heads * c.k_dim * r.es;
    if (c.shared) {
      r.v = r.k;
      r.v_pos_stride = c.heads * c.k_dim;
      r.v_head_stride = c.k_dim;
    } else {
      r.v = static_cast<char*>(s.v) + layer * c.max_seq * c.heads * c.v_dim * r.es;
      r.v_pos_stride = c.heads * c.v_dim;
      r.v_head_stride = c.v_dim;
    }
    return r;
  }

  // Appends n tokens' keys (and values) [n, heads, k_dim / v_dim] f32 at L..L+n-1.
  void append(const Cache& c, const float* k, const float* v, int64_t n) {
    kv_store(k, n * c.heads * c.k_dim, c.keys_at(c.L), c.bf16, stream_);
    if (!c.shared) kv_store(v, n * c.heads * c.v_dim, c.values_at(c.L), c.bf16, stream_);
  }

  // out [n, heads, v_dim] = attention of q [n, heads, k_dim] over the layer, the n new tokens
  // already appended.
  void attention(const Cache& c, const float* q, int64_t n, int64_t heads, int64_t window, float scale, float* o) {
    if (c.bf16)
      attention_typed<uint16_t>(q, reinterpret_cast<const uint16_t*>(c.k), reinterpret_cast<const uint16_t*>(c.v),
                                c.v_pos_stride, c.v_head_stride, c.shared, heads, c.heads, c.k_dim, c.v_dim, c.L, n,
                                window, scale, o, stream_);
    else
      attention_typed<float>(q, reinterpret_cast<const float*>(c.k), reinterpret_cast<const float*>(c.v),
                             c.v_pos_stride, c.v_head_stride, c.shared, heads, c.heads, c.k_dim, c.v_dim, c.L, n,
                             window, scale, o, stream_);
  }

  // Per-head linear over weight `id` (gemv with heads; the weight's bias, if any, is not added).
  void heads_linear(int32_t id, int64_t head_rows, int64_t row_off, int64_t in, int64_t out, const float* x,
                    int64_t ldx_t, int64_t ldx_h, int64_t n, int64_t heads, float* y, int64_t ldy_t, int64_t ldy_h) {
    typed(id, [&](const auto* w) {
      gemv(w, nullptr, head_rows, row_off, in, out, x, ldx_t, ldx_h, n, heads, y, ldy_t, ldy_h, stream_);
    });
  }

  // x [n, d] and positions [n] host -> dx_ (x, then the positions as int32) in one copy; returns
  // the device positions. Call after every reserve of the call (see stage_in).
  const int32_t* stage_in_attend(const float* x, int64_t n, int64_t d, const int32_t* positions) {
    const size_t xb = size_t(n * d) * 4, pb = size_t(n) * 4;
    pin_in_.reserve(xb + pb);
    dx_.reserve(xb + pb);
    std::memcpy(pin_in_.as<char>(), x, xb);
    std::memcpy(pin_in_.as<char>() + xb, positions, pb);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(dx_.as<char>(), pin_in_.as<char>(), xb + pb, cudaMemcpyHostToDevice, stream_));
    return reinterpret_cast<const int32_t*>(dx_.as<char>() + xb);
  }

  // GqaAttention.forward on the device. Scratch: dg_ = q | k | v ([n, qd], [n, kd], [n, kd] in
  // turn, as linears() groups them), datt_ = attended [n, qd], dy_ = out [n, d].
  void attend_gqa(const Attention& a, const AttnStored& s, const Cache& c, const float* x, int64_t n,
                  const int32_t* positions, float* out) {
    const int64_t H = a.heads, KV = a.kv_heads, hd = a.head_dim, qd = H * hd, kd = KV * hd, d = a.d;
    dg_.reserve(size_t(n * (qd + 2 * kd)) * 4);
    datt_.reserve(size_t(n * qd) * 4);
    dy_.reserve(size_t(n * d) * 4);
    const int32_t* pos = stage_in_attend(x, n, d, positions);
    float* q = dg_.as<float>();
    float* k = q + n * qd;
    float* v = k + n * kd;
    launch(a.q, dx_.as<float>(), n, q);
    launch(a.k, dx_.as<float>(), n, k);
    launch(a.v, dx_.as<float>(), n, v);
    if (a.qk_norm == HMOE_QK_NORM_PER_HEAD) {
      rmsnorm_rows(q, n * H, hd, hd, s.q_norm, a.eps, stream_);
      rmsnorm_rows(k, n * KV, hd, hd, s.k_norm, a.eps, stream_);
    } else if (a.qk_norm == HMOE_QK_NORM_FULL) {
      rmsnorm_rows(q, n, qd, qd, s.q_norm, a.eps, stream_);
      rmsnorm_rows(k, n, kd, kd, s.k_norm, a.eps, stream_);
    }
    if (a.clip > 0) clamp_all(q, n * (qd + 2 * kd), a.clip, stream_);  // q, k and v lie in turn
    rope_rows(q, n, H, qd, hd, hd, pos, s.inv_freq, a.rope_scale, false, stream_);
    rope_rows(k, n, KV, kd, hd, hd, pos, s.inv_freq, a.rope_scale, false, stream_);
    append(c, k, v, n);
    attention(c, q, n, H, a.window, a.scale, datt_.as<float>());
    launch(a.o, datt_.as<float>(), n, dy_.as<float>());
    stage_out(dy_.as<float>(), out, n * d);
  }

  // MlaAttention.forward on the device. Scratch: dg_ = the first projections ([n, heads*qk] or
  // [n, q_rank], then the key [n, aw]), dq_ = q_b's output with q-lora, dqa_ = q' [n, heads, aw],
  // dlat_ = latent attention output [n, heads, rank], datt_ = [n, heads * vd], dy_ = out [n, d].
  void attend_mla(const Attention& a, const AttnStored& s, const Cache& c, const float* x, int64_t n,
                  const int32_t* positions, float* out) {
    const int64_t H = a.heads, nope = a.nope, rope = a.rope, rank = a.rank, vd = a.vd, d = a.d;
    const int64_t qk = nope + rope, aw = rank + rope;
    const bool lora = a.q_proj < 0;
    const int64_t qr = lora ? weights[size_t(a.q_a)].out : 0;
    const int64_t first = lora ? qr : H * qk;  // floats of the query's first projection per token
    dg_.reserve(size_t(n * (first + aw)) * 4);
    if (lora) dq_.reserve(size_t(n * H * qk) * 4);
    dqa_.reserve(size_t(n * H * aw) * 4);
    dlat_.reserve(size_t(n * H * rank) * 4);
    datt_.reserve(size_t(n * H * vd) * 4);
    dy_.reserve(size_t(n * d) * 4);
    const int32_t* pos = stage_in_attend(x, n, d, positions);
    float* f = dg_.as<float>();
    float* key = f + n * first;  // [n, aw] = [c | pe] per token
    launch(lora ? a.q_a : a.q_proj, dx_.as<float>(), n, f);
    launch(a.kv_a, dx_.as<float>(), n, key);
    float* qb = f;  // q [n, heads, qk]
    if (lora) {
      rmsnorm_rows(f, n, qr, qr, s.q_a_norm, a.eps, stream_);
      qb = dq_.as<float>();
      launch(a.q_b, f, n, qb);
    }
    rmsnorm_rows(key, n, rank, aw, s.kv_a_norm, a.eps, stream_);
    rope_rows(key + rank, n, 1, aw, rope, rope, pos, s.inv_freq, a.rope_scale, true, stream_);
    rope_rows(qb + nope, n, H, H * qk, qk, rope, pos, s.inv_freq, a.rope_scale, true, stream_);
    // q'[t, h] = [W_uk_h^T q_nope[t, h] | q_pe[t, h]]: uk_t [heads*rank, nope], head h's rows h*rank ..
    float* qa = dqa_.as<float>();
    heads_linear(a.uk_t, rank, 0, nope, rank, qb, H * qk, qk, n, H, qa, H * aw, aw);
    HMOE_CUDA_CHECK(cudaMemcpy2DAsync(qa + rank, size_t(aw) * 4, qb + nope, size_t(qk) * 4, size_t(rope) * 4,
                                      size_t(n * H), cudaMemcpyDeviceToDevice, stream_));
    append(c, key, nullptr, n);
    attention(c, qa, n, H, 0, a.scale, dlat_.as<float>());
    // att[t, h] = W_uv_h lat[t, h]: kv_b [heads*(nope+vd), rank], W_uv_h its rows h*(nope+vd) + nope ..
    heads_linear(a.kv_b, nope + vd, nope, rank, vd, dlat_.as<float>(), H * rank, rank, n, H, datt_.as<float>(),
                 H * vd, vd);
    launch(a.o, datt_.as<float>(), n, dy_.as<float>());
    stage_out(dy_.as<float>(), out, n * d);
  }

  // Every call ends with the stream drained, so that the next may refill the pinned buffers and
  // grow the device ones: stage_out drains it on success; this drains it when the call throws
  // after queueing work.
  struct Drain {
    cudaStream_t s;
    int pending = std::uncaught_exceptions();
    ~Drain() {
      if (std::uncaught_exceptions() > pending && cudaStreamSynchronize(s) != cudaSuccess) (void)cudaGetLastError();
    }
  };

  void launch(int32_t id, const float* x, int64_t n, float* y) {
    const Weight& wt = weights[size_t(id)];
    typed(id, [&](const auto* w) { launch_typed(w, stored_[size_t(id)].bias, x, int(n), wt.in, wt.out, y, stream_); });
  }

  // f(w) with weight `id`'s elements typed as float, __nv_bfloat16 or __half.
  template <typename F>
  void typed(int32_t id, F&& f) {
    const void* w = stored_[size_t(id)].w;
    switch (weights[size_t(id)].dtype) {
      case HMOE_DTYPE_F32: f(static_cast<const float*>(w)); break;
      case HMOE_DTYPE_BF16: f(static_cast<const __nv_bfloat16*>(w)); break;
      default: f(static_cast<const __half*>(w)); break;
    }
  }

  // x [count] host -> dx_ through the pinned buffer. The previous call has finished (every call
  // ends synchronized), so the buffers are free to grow.
  void stage_in(const float* x, int64_t count) {
    const size_t b = size_t(count) * 4;
    pin_in_.reserve(b);
    dx_.reserve(b);
    std::memcpy(pin_in_.as<float>(), x, b);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(dx_.as<float>(), pin_in_.as<float>(), b, cudaMemcpyHostToDevice, stream_));
  }

  void stage_out(const float* dsrc, float* y, int64_t count) {
    const size_t b = size_t(count) * 4;
    pin_out_.reserve(b);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(pin_out_.as<float>(), dsrc, b, cudaMemcpyDeviceToHost, stream_));
    HMOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::memcpy(y, pin_out_.as<float>(), b);
  }

  int index_;
  cudaStream_t stream_ = nullptr;
  std::vector<Stored> stored_;  // per weight id
  std::vector<AttnStored> attn_stored_;  // per attention id
  std::vector<KvStored> kv_stored_;      // per cache id (nulls once freed)
  DeviceBuffer dx_, dy_, dg_, du_;
  DeviceBuffer dq_, dqa_, dlat_, datt_;  // attend's scratch (see attend_gqa / attend_mla)
  PinnedBuffer pin_in_, pin_out_;
};

}  // namespace
}  // namespace hmoe::cuda

extern "C" int hmoe_dense_device_create_cuda(int32_t index, hmoe_dense_device_t** out) {
  return hmoe::guarded("hmoe_dense_device_create_cuda", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      count = 0;
    }
    if (index < 0 || index >= count)
      hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d does not exist (%d found)", index, count);
    *out = new hmoe::cuda::CudaDenseDevice(index);
  });
}
