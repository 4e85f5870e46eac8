// Internal to dense-device.cu: the kernels of the CUDA dense device's attention sublayers
// (dense_device.h's add_gqa / add_mla / attend), and their launchers. Included by dense-device.cu
// after its linear kernels, whose warp_sum, widen and kMaxGridYZ it uses (same anonymous namespace
// of the same translation unit); MLA's per-head products are dense-device.cu's gemv with heads.
//
// Each kernel reproduces one CPU operation of dense.cpp:
//   rmsnorm_kernel       hmoe_dense_rmsnorm, in place over rows with a stride; one warp per row,
//                        sum of squares in double, inv rounded to f32, y = w * (x * inv);
//   rope_kernel          hmoe_dense_rope (HALF or INTERLEAVED), in place; one thread per (token,
//                        frequency) over every head, angle f32, cos/sin in double, exact f32
//                        products (no FMA contraction), so that the numbers are the CPU's;
//   clamp_kernel         GqaAttention's clip_qkv;
//   kv_store_kernel      the cache append: f32 copied, bf16 rounded to nearest even as
//                        hmoe::f32_to_bf16 (bf16.hpp) rounds, NaN included;
//   attention_kernel     hmoe_dense_attention_window over the device cache: causal, token t of
//                        the call at absolute position L + t sees max(0, L+t+1-window) .. L+t;
//                        online softmax, f32;
// The attention kernel and the RMSNorm's sum differ from the CPU by f32 (or
// double) summation order only, as dense_device.h allows; RoPE, the clamp and the cache rounding
// are the CPU's bit for bit.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda-check.cuh"

namespace hmoe::cuda {
namespace {

constexpr int kAttnWarps = 8;        // warps per attention block (one block per token and head)
constexpr int kAttnMaxDim = 1024;    // largest key or value dimension the attention kernel holds

// ---- RMSNorm: x[r * stride + i] for r < rows, i < dim, in place. One warp per row, 8 rows a
// block, grid-stride over rows. The sum of squares is a double, as on the CPU (the product of two
// f32 is exact in double, so only the order of the additions differs; inv is then rounded to f32
// like the CPU's). w may be null (ones).
__global__ void __launch_bounds__(256) rmsnorm_kernel(float* __restrict__ x, int64_t rows, int dim, int64_t stride,
                                                      const float* __restrict__ w, float eps) {
  const int lane = threadIdx.x & 31;
  // r is the same for the whole warp, so every lane takes part in the shuffles.
  for (int64_t r = int64_t(blockIdx.x) * 8 + (threadIdx.x >> 5); r < rows; r += int64_t(gridDim.x) * 8) {
    float* xr = x + r * stride;
    double ss = 0;
    for (int i = lane; i < dim; i += 32) {
      const double v = xr[i];
      ss += v * v;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = float(1.0 / sqrt(ss / double(dim) + double(eps)));
    for (int i = lane; i < dim; i += 32) xr[i] = __fmul_rn(w != nullptr ? w[i] : 1.0f, __fmul_rn(xr[i], inv));
  }
}

void rmsnorm_rows(float* x, int64_t rows, int64_t dim, int64_t stride, const float* w, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((rows + 7) / 8, 65535));
  rmsnorm_kernel<<<blocks, 256, 0, s>>>(x, rows, int(dim), stride, w, eps);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

// ---- RoPE in place: token t's head h starts at x + t * token_stride + h * head_stride; its first
// 2 * half elements rotate by angle pos[t] * inv_freq[i] in pairs (i, i + half) (HALF) or
// (2i, 2i + 1) (INTERLEAVED). One thread per (token, i), grid-stride; a thread owns its pair's
// two elements in every head, so no two threads touch one element. The __f*_rn intrinsics keep
// nvcc from fusing the products into FMAs: the rotated values are the CPU's bit for bit, given
// the same cos/sin (double cos/sin of the same f32 angle, rounded to f32; CUDA's are within 2
// double ulps, which f32 rounding hides but for ties).
__global__ void __launch_bounds__(256) rope_kernel(float* __restrict__ x, int64_t n, int heads, int64_t token_stride,
                                                   int64_t head_stride, int half, const int32_t* __restrict__ pos,
                                                   const float* __restrict__ inv_freq, float mscale,
                                                   bool interleaved) {
  const int64_t count = n * half;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < count;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = idx / half;
    const int i = int(idx - t * half);
    const float ang = __fmul_rn(float(pos[t]), inv_freq[i]);
    double sd, cd;
    sincos(double(ang), &sd, &cd);
    const float c = __fmul_rn(float(cd), mscale), sn = __fmul_rn(float(sd), mscale);
    const int a = interleaved ? 2 * i : i;
    const int b = interleaved ? 2 * i + 1 : i + half;
    float* p = x + t * token_stride;
    for (int h = 0; h < heads; ++h, p += head_stride) {
      const float x0 = p[a], x1 = p[b];
      p[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, sn));
      p[b] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, sn));
    }
  }
}

void rope_rows(float* x, int64_t n, int64_t heads, int64_t token_stride, int64_t head_stride, int64_t rot,
               const int32_t* pos, const float* inv_freq, float mscale, bool interleaved, cudaStream_t s) {
  const int64_t half = rot / 2, count = n * half;
  if (count <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((count + 255) / 256, 4096));
  rope_kernel<<<blocks, 256, 0, s>>>(x, n, int(heads), token_stride, head_stride, int(half), pos, inv_freq, mscale,
                                     interleaved);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

// ---- x[i] = max(-c, min(c, x[i])) for i < count; NaN stays NaN (as Java's Math.min/max).
__global__ void clamp_kernel(float* __restrict__ x, int64_t count, float c) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i];
    x[i] = v != v ? v : fmaxf(-c, fminf(c, v));
  }
}

void clamp_all(float* x, int64_t count, float c, cudaStream_t s) {
  if (count <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((count + 255) / 256, 4096));
  clamp_kernel<<<blocks, 256, 0, s>>>(x, count, c);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

// ---- Cache elements: f32, or bf16 kept as its bits (uint16_t).
__device__ __forceinline__ float kv_elem(float v) { return v; }
__device__ __forceinline__ float kv_elem(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

// hmoe::f32_to_bf16 (bf16.hpp) on the device: round to nearest even; NaN keeps its sign and gets
// the quiet bit. Equal to __float2bfloat16_rn but for the NaN payload.
__device__ __forceinline__ void kv_put(float* p, float v) { *p = v; }
__device__ __forceinline__ void kv_put(uint16_t* p, float v) {
  uint32_t u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    *p = uint16_t((u >> 16) | 0x40u);
    return;
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  *p = uint16_t(u >> 16);
}

// dst[i] = src[i] for i < count, converted to the cache's element type.
template <typename T>
__global__ void kv_store_kernel(const float* __restrict__ src, int64_t count, T* __restrict__ dst) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    kv_put(dst + i, src[i]);
}

// Appends count contiguous floats at dst (element type bf16 bits or f32).
void kv_store(const float* src, int64_t count, void* dst, bool bf16, cudaStream_t s) {
  if (count <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((count + 255) / 256, 4096));
  if (bf16)
    kv_store_kernel<uint16_t><<<blocks, 256, 0, s>>>(src, count, static_cast<uint16_t*>(dst));
  else
    kv_store_kernel<float><<<blocks, 256, 0, s>>>(src, count, static_cast<float*>(dst));
  HMOE_CUDA_CHECK(cudaGetLastError());
}

// ---- Attention over the cache, one block per (query head h = blockIdx.x, token t = t0 +
// blockIdx.y), kAttnWarps warps. Query head h reads KV head h / (heads / kv_heads).
//   q    [n, heads, k_dim] f32 (token t at q + (t * heads + h) * k_dim)
//   kc   the layer's keys [max_seq, kv_heads, k_dim]: position p, head g at kc + (p * kv_heads + g) * k_dim
//   vc   the layer's values: position p, head g at vc + p * v_pos_stride + g * v_head_stride (a
//        shared cache passes kc with the key's strides: the value is the key's first v_dim)
//   out  [n, heads, v_dim] f32
// Token t (absolute position L + t) attends positions first .. L + t, first = max(0, L + t + 1 -
// window) with a window, else 0. Warp w takes positions first + w, first + w + kAttnWarps, ...:
// lanes hold elements lane + 32 j (j < P) of q, of the key and of the running output, the dot is
// a shuffle reduction, and an online softmax (running max m, sum l, output rescaled when m
// grows) needs no buffer of the span's length. The warps' (m, l, acc) then combine through
// shared memory: o = sum_w e^(m_w - M) acc_w / sum_w e^(m_w - M) l_w, M = max_w m_w; a warp with
// no position (span < kAttnWarps) is skipped. Position L + t is always in the
// span, so some warp has one. Requires k_dim, v_dim <= 32 * P (add_attention checks <=
// kAttnMaxDim; the launcher picks P).
template <typename T, int P>
__global__ void __launch_bounds__(kAttnWarps * 32)
    attention_kernel(const float* __restrict__ q, const T* __restrict__ kc, const T* __restrict__ vc,
                     int64_t v_pos_stride, int64_t v_head_stride, bool shared, int heads, int kv_heads, int k_dim,
                     int v_dim, int64_t L, int64_t t0, int64_t window, float scale, float* __restrict__ out) {
  __shared__ float s_m[kAttnWarps], s_l[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][P * 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int h = int(blockIdx.x);
  const int64_t t = t0 + blockIdx.y;
  const int g = h / (heads / kv_heads);
  const int64_t last = L + t;
  const int64_t first = window > 0 && last + 1 - window > 0 ? last + 1 - window : 0;

  const float* qt = q + (t * heads + h) * int64_t(k_dim);
  float qr[P], kf[P], acc[P];
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int c = lane + 32 * j;
    qr[j] = c < k_dim ? qt[c] : 0.0f;
    acc[j] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const int64_t k_pos_stride = int64_t(kv_heads) * k_dim;
  // p is the same for the whole warp: the shuffles in warp_sum see all 32 lanes.
  for (int64_t p = first + warp; p <= last; p += kAttnWarps) {
    const T* kp = kc + p * k_pos_stride + int64_t(g) * k_dim;
    float d = 0.0f;
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int c = lane + 32 * j;
      kf[j] = c < k_dim ? kv_elem(kp[c]) : 0.0f;
      d += qr[j] * kf[j];
    }
    const float sc = scale * warp_sum(d);
    const float mn = fmaxf(m, sc);
    const float corr = expf(m - mn);  // 0 at the warp's first position (m = -inf)
    const float e = expf(sc - mn);
    l = l * corr + e;
    if (shared) {
      // The value is the key's first v_dim elements, already in kf (same lane mapping).
#pragma unroll
      for (int j = 0; j < P; ++j)
        if (lane + 32 * j < v_dim) acc[j] = acc[j] * corr + e * kf[j];
    } else {
      const T* vp = vc + p * v_pos_stride + int64_t(g) * v_head_stride;
#pragma unroll
      for (int j = 0; j < P; ++j) {
        const int c = lane + 32 * j;
        if (c < v_dim) acc[j] = acc[j] * corr + e * kv_elem(vp[c]);
      }
    }
    m = mn;
  }

  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int c = lane + 32 * j;
    if (c < v_dim) s_acc[warp][c] = acc[j];
  }
  __syncthreads();  // every warp's partial written before any is read (and nothing is written after)
  float mx = -INFINITY;
#pragma unroll
  for (int w = 0; w < kAttnWarps; ++w) mx = fmaxf(mx, s_m[w]);
  float f[kAttnWarps];
  float den = 0.0f;
#pragma unroll
  for (int w = 0; w < kAttnWarps; ++w) {
    // Whether warp w had a position is known from the span, not from its m: a warp whose scores
    // were all NaN keeps m = -inf, and its NaN must reach the output as on the CPU.
    f[w] = first + w <= last ? expf(s_m[w] - mx) : 0.0f;
    den += first + w <= last ? f[w] * s_l[w] : 0.0f;
  }
  const float inv = 1.0f / den;
  float* o = out + (t * heads + h) * int64_t(v_dim);
  for (int c = threadIdx.x; c < v_dim; c += kAttnWarps * 32) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kAttnWarps; ++w)
      if (first + w <= last) sum += f[w] * s_acc[w][c];  // 0 * NaN stays NaN, as on the CPU
    o[c] = sum * inv;
  }
}

template <typename T, int P>
void attention_chunks(const float* q, const T* kc, const T* vc, int64_t v_pos_stride, int64_t v_head_stride,
                      bool shared, int64_t heads, int64_t kv_heads, int64_t k_dim, int64_t v_dim, int64_t L, int64_t n,
                      int64_t window, float scale, float* out, cudaStream_t s) {
  // Tokens go over gridDim.y, at most 65535 a launch.
  for (int64_t t0 = 0; t0 < n; t0 += kMaxGridYZ) {
    const dim3 grid(unsigned(heads), unsigned(std::min(kMaxGridYZ, n - t0)));
    attention_kernel<T, P><<<grid, kAttnWarps * 32, 0, s>>>(q, kc, vc, v_pos_stride, v_head_stride, shared, int(heads),
                                                            int(kv_heads), int(k_dim), int(v_dim), L, t0, window,
                                                            scale, out);
    HMOE_CUDA_CHECK(cudaGetLastError());
  }
}

// Dispatches on the per-lane element count P (the smallest of 4, 8, 16, 32 covering both dims).
template <typename T>
void attention_typed(const float* q, const T* kc, const T* vc, int64_t v_pos_stride, int64_t v_head_stride,
                     bool shared, int64_t heads, int64_t kv_heads, int64_t k_dim, int64_t v_dim, int64_t L, int64_t n,
                     int64_t window, float scale, float* out, cudaStream_t s) {
  const int64_t dmax = std::max(k_dim, v_dim);
  if (dmax <= 128)
    attention_chunks<T, 4>(q, kc, vc, v_pos_stride, v_head_stride, shared, heads, kv_heads, k_dim, v_dim, L, n,
                           window, scale, out, s);
  else if (dmax <= 256)
    attention_chunks<T, 8>(q, kc, vc, v_pos_stride, v_head_stride, shared, heads, kv_heads, k_dim, v_dim, L, n,
                           window, scale, out, s);
  else if (dmax <= 512)
    attention_chunks<T, 16>(q, kc, vc, v_pos_stride, v_head_stride, shared, heads, kv_heads, k_dim, v_dim, L, n,
                            window, scale, out, s);
  else if (dmax <= kAttnMaxDim)
    attention_chunks<T, 32>(q, kc, vc, v_pos_stride, v_head_stride, shared, heads, kv_heads, k_dim, v_dim, L, n,
                            window, scale, out, s);
  else
    hmoe::fail(HMOE_ERR_INTERNAL, "attention dimension %lld over %d", (long long)dmax, kAttnMaxDim);
}

}  // namespace
}  // namespace hmoe::cuda
