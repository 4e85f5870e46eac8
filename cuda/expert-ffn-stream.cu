// Expert FFN, streaming path (few tokens per expert: decode): one warp per weight row, 16-byte
// loads several deep, bf16 rows or int4 blocks; see expert-ffn.cuh for the contract.
#include "cuda-check.cuh"
#include "expert-ffn-common.cuh"

namespace hmoe::cuda {
namespace {

using namespace detail;

// Adds w[k..k+8) . act[t][k..k+8) to acc[t] for the first cnt of T activation rows, each
// activation rounded to bf16 first (cpu_moe.h's bf16 rule: every product exact).
template <int T>
__device__ __forceinline__ void fma8(const uint4& wv, const float* const (&act)[T], int cnt, int k,
                                     float (&acc)[T]) {
  float wf[8];
  bf16x8_to_f32(wv, wf);
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t < cnt) {
      const float4 a0 = __ldg(reinterpret_cast<const float4*>(act[t] + k));
      const float4 a1 = __ldg(reinterpret_cast<const float4*>(act[t] + k + 4));
      acc[t] += wf[0] * round_bf16(a0.x) + wf[1] * round_bf16(a0.y) + wf[2] * round_bf16(a0.z) +
                wf[3] * round_bf16(a0.w) + wf[4] * round_bf16(a1.x) + wf[5] * round_bf16(a1.y) +
                wf[6] * round_bf16(a1.z) + wf[7] * round_bf16(a1.w);
    }
  }
}

constexpr int kDepth = 4;

// Activations of the int4 path: each row (token) quantized to int8 with one scale, cpu_moe.h's
// rule, laid out per block of 32 values: q, the row's scale s repeated per block, and the block's
// sum of q (for the weights' +8 offset). Padding is zeros.
struct QRow {
  const int8_t* q;   // [padded cols]
  const float* s;    // [padded cols / 32]
  const int* sum;    // [padded cols / 32]
};

// int4 block blk of a weight row (16 bytes = 32 values, byte j: value j in the low nibble, j + 16
// in the high, stored as q + 8) against int8 activation blocks: 8 dp4a per token.
//   sum_j (w_j + 8 - 8) x_j = dp4a(nibbles, xq) - 8 * sum(xq)
template <int T>
__device__ __forceinline__ void int4_block(const uint4& w, float wscale, const QRow (&act)[T], int cnt, int blk,
                                           float (&acc)[T]) {
  const uint32_t ww[4] = {w.x, w.y, w.z, w.w};
  int lo[4], hi[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    lo[i] = int(ww[i] & 0x0f0f0f0fu);         // values 4i..4i+3, as 0..15
    hi[i] = int((ww[i] >> 4) & 0x0f0f0f0fu);  // values 16+4i..16+4i+3
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t >= cnt) continue;
    const int4* xp = reinterpret_cast<const int4*>(act[t].q + blk * 32);
    const int4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
    int d = 0;
    d = __dp4a(lo[0], x0.x, d);
    d = __dp4a(lo[1], x0.y, d);
    d = __dp4a(lo[2], x0.z, d);
    d = __dp4a(lo[3], x0.w, d);
    d = __dp4a(hi[0], x1.x, d);
    d = __dp4a(hi[1], x1.y, d);
    d = __dp4a(hi[2], x1.z, d);
    d = __dp4a(hi[3], x1.w, d);
    d -= 8 * __ldg(act[t].sum + blk);
    acc[t] += wscale * __ldg(act[t].s + blk) * float(d);
  }
}

// int4 is bound by unpacking and activation reads, not by load latency: two blocks in flight per
// row suffice, and a deeper unroll only multiplies code size (and compile time) by the token count.
constexpr int kDepthInt4 = 2;

// int4 rows: per-lane partial dots of R rows (inputs n, padded to the group) with T activations.
template <int T, int R>
__device__ __forceinline__ void rows_dots_int4(const unsigned char* const (&q)[R], const float* const (&sc)[R],
                                               int group, int n, const QRow (&act)[T], int cnt, int lane,
                                               float (&acc)[R][T]) {
  const int blocks = (n + 31) / 32;  // blocks holding real inputs; padding beyond is zero
  int b = lane;
  for (; b + (kDepthInt4 - 1) * 32 < blocks; b += kDepthInt4 * 32) {
    uint4 wv[R][kDepthInt4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < kDepthInt4; ++i) wv[r][i] = __ldcs(reinterpret_cast<const uint4*>(q[r] + int64_t(b + i * 32) * 16));
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < kDepthInt4; ++i) {
        const int blk = b + i * 32;
        int4_block<T>(wv[r][i], __ldg(sc[r] + blk * 32 / group), act, cnt, blk, acc[r]);
      }
  }
  for (; b < blocks; b += 32) {
#pragma unroll
    for (int r = 0; r < R; ++r)
      int4_block<T>(__ldcs(reinterpret_cast<const uint4*>(q[r] + int64_t(b) * 16)), __ldg(sc[r] + b * 32 / group),
                    act, cnt, b, acc[r]);
  }
}

// Per-lane partial dot products of R bf16 weight rows (each of length n) with up to T f32
// activation rows; the caller reduces across the warp. When n % 8 == 0 each lane issues kDepth
// 16-byte loads per row before using any, so that enough bytes are in flight to saturate HBM.

template <int T, int R>
__device__ __forceinline__ void rows_dots(const __nv_bfloat16* const (&w)[R], int n,
                                          const float* const (&act)[T], int cnt, int lane,
                                          float (&acc)[R][T]) {
  if ((n & 7) == 0) {
    int k = lane * 8;
    for (; k + (kDepth - 1) * 256 < n; k += kDepth * 256) {
      uint4 wv[R][kDepth];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < kDepth; ++i) wv[r][i] = __ldcs(reinterpret_cast<const uint4*>(w[r] + k + i * 256));
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < kDepth; ++i) fma8<T>(wv[r][i], act, cnt, k + i * 256, acc[r]);
    }
    for (; k < n; k += 256) {
#pragma unroll
      for (int r = 0; r < R; ++r) fma8<T>(__ldcs(reinterpret_cast<const uint4*>(w[r] + k)), act, cnt, k, acc[r]);
    }
  } else {
    for (int k = lane; k < n; k += 32) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float wk = __bfloat162float(w[r][k]);
#pragma unroll
        for (int t = 0; t < T; ++t)
          if (t < cnt) acc[r][t] += wk * round_bf16(act[t][k]);
      }
    }
  }
}

// Streaming path, stage 1: h[pair, j] = silu(gate_j . x) * (up_j . x); one warp per row j.
// T bounds the tokens of every run in the launch (1, 2, 4 or 8), sizing the register arrays.
template <int T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
gateup_small_kernel(ExpertArgs a, const int32_t* __restrict__ runs) {
  const int r = runs[blockIdx.y];
  const int off = a.run_offset[r];
  const int cnt = a.run_offset[r + 1] - off;
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (j >= a.ff) return;
  const int slot = a.run_slot[r];
  const float* act[T];
#pragma unroll
  for (int t = 0; t < T; ++t) act[t] = a.x + int64_t(a.pair_token[off + (t < cnt ? t : 0)]) * a.d;
  float acc[2][T] = {};
  if (a.int4) {
    const unsigned char* const q[2] = {wrow(a, slot, 0, j), wrow(a, slot, 1, j)};
    const float* const sc[2] = {srow(a, slot, 0, j), srow(a, slot, 1, j)};
    QRow xq[T];
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const int64_t row = a.pair_token[off + (t < cnt ? t : 0)];
      xq[t] = {a.xq + row * a.d_pad, a.xq_scale + row * (a.d_pad / 32), a.xq_sum + row * (a.d_pad / 32)};
    }
    rows_dots_int4<T, 2>(q, sc, a.group, a.d, xq, cnt, lane, acc);
  } else {
    const __nv_bfloat16* const rows[2] = {reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, 0, j)),
                                          reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, 1, j))};
    rows_dots<T, 2>(rows, a.d, act, cnt, lane, acc);
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t < cnt) {
      const float gs = warp_sum(acc[0][t]), us = warp_sum(acc[1][t]);
      if (lane == 0) a.h[int64_t(off + t) * a.ff + j] = silu(gs) * us;
    }
  }
}

// Streaming path, stage 2: out[token, c] += w * (down_c . h[pair]); one warp per row c.
template <int T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
down_small_kernel(ExpertArgs a, const int32_t* __restrict__ runs) {
  const int r = runs[blockIdx.y];
  const int off = a.run_offset[r];
  const int cnt = a.run_offset[r + 1] - off;
  const int lane = threadIdx.x & 31;
  const int c = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (c >= a.d) return;
  const int slot = a.run_slot[r];
  const float* act[T];
#pragma unroll
  for (int t = 0; t < T; ++t) act[t] = a.h + int64_t(off + (t < cnt ? t : 0)) * a.ff;
  float y[1][T] = {};
  if (a.int4) {
    const unsigned char* const q[1] = {wrow(a, slot, 2, c)};
    const float* const sc[1] = {srow(a, slot, 2, c)};
    QRow hq[T];
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const int64_t row = off + (t < cnt ? t : 0);
      hq[t] = {a.hq + row * a.ff_pad, a.hq_scale + row * (a.ff_pad / 32), a.hq_sum + row * (a.ff_pad / 32)};
    }
    rows_dots_int4<T, 1>(q, sc, a.group, a.ff, hq, cnt, lane, y);
  } else {
    const __nv_bfloat16* const rows[1] = {reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, 2, c))};
    rows_dots<T, 1>(rows, a.ff, act, cnt, lane, y);
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t < cnt) {
      const float ys = warp_sum(y[0][t]);
      if (lane == 0)
        atomicAdd(a.out + int64_t(a.pair_token[off + t]) * a.d + c, a.pair_weight[off + t] * ys);
    }
  }
}

// One block of kQuantThreads per row: amax over the row, then q = nearbyint(clamp(v * (127 / amax),
// -127, 127)) and s = amax / 127 in IEEE f32 operations, exactly as the CPU's act_rule.hpp; a row
// holding NaN or inf gets q = 0 and s = NaN (its outputs are NaN, as on the CPU). Each warp then
// writes whole blocks of 32: q, the row's s, the block's sum of q; zeros past `cols`.
constexpr int kQuantThreads = 256;

__global__ void __launch_bounds__(kQuantThreads)
quantize_rows_kernel(const float* __restrict__ src, int cols, int64_t src_stride, int8_t* __restrict__ q,
                     float* __restrict__ scale, int* __restrict__ sum, int q_stride) {
  __shared__ float warp_max[kQuantThreads / 32];
  __shared__ int warp_bad[kQuantThreads / 32];
  const int r = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* row = src + int64_t(r) * src_stride;
  float m = 0.0f;
  int bad = 0;
  for (int c = threadIdx.x; c < cols; c += kQuantThreads) {
    const float a = fabsf(row[c]);
    bad |= !(a <= 3.4028235e38f);  // NaN or inf
    m = fmaxf(m, a);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    bad |= __shfl_xor_sync(0xffffffffu, bad, o);
  }
  if (lane == 0) warp_max[warp] = m, warp_bad[warp] = bad;
  __syncthreads();
  m = 0.0f;
  bad = 0;
#pragma unroll
  for (int w = 0; w < kQuantThreads / 32; ++w) m = fmaxf(m, warp_max[w]), bad |= warp_bad[w];
  const float inv = (bad || m == 0.0f) ? 0.0f : __fdiv_rn(127.0f, m);
  const float s = bad ? __int_as_float(0x7fc00000) : __fdiv_rn(m, 127.0f);
  const int blocks = q_stride / 32;
  for (int b = warp; b < blocks; b += kQuantThreads / 32) {
    const int col = b * 32 + lane;
    const float v = col < cols ? row[col] : 0.0f;
    const int qi = __float2int_rn(fminf(127.0f, fmaxf(-127.0f, __fmul_rn(v, inv))));
    int total = qi;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
    q[int64_t(r) * q_stride + col] = int8_t(qi);
    if (lane == 0) {
      scale[int64_t(r) * blocks + b] = s;
      sum[int64_t(r) * blocks + b] = total;
    }
  }
}

template <int T>
void launch_small(const ExpertArgs& a, const int32_t* runs, int n, cudaStream_t stream) {
  const dim3 block(kWarpsPerBlock * 32);
  gateup_small_kernel<T><<<dim3((a.ff + kWarpsPerBlock - 1) / kWarpsPerBlock, n), block, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
  // int4: h of every pair as int8 rows for the down projection's dp4a.
  if (a.int4) quantize_act_rows(a.h, a.n_pairs, a.ff, a.ff, a.hq, a.hq_scale, a.hq_sum, a.ff_pad, stream);
  down_small_kernel<T><<<dim3((a.d + kWarpsPerBlock - 1) / kWarpsPerBlock, n), block, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void quantize_act_rows(const float* src, int rows, int cols, int64_t stride, int8_t* q, float* s, int* sum,
                       int q_stride, cudaStream_t stream) {
  if (rows <= 0) return;
  quantize_rows_kernel<<<rows, kQuantThreads, 0, stream>>>(src, cols, stride, q, s, sum, q_stride);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

void launch_expert_stream(const ExpertArgs& a, const int32_t* runs, int n_runs, int max_tokens,
                          cudaStream_t stream) {
  if (n_runs <= 0) return;  // int4: x was quantized by launch_expert_ffn
  if (max_tokens <= 1) launch_small<1>(a, runs, n_runs, stream);
  else if (max_tokens <= 2) launch_small<2>(a, runs, n_runs, stream);
  else if (max_tokens <= 4) launch_small<4>(a, runs, n_runs, stream);
  else launch_small<kSmallRunTokens>(a, runs, n_runs, stream);
}

}  // namespace hmoe::cuda
