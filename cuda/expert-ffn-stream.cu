// Expert FFN, streaming path (few tokens per expert: decode): one warp per weight row, 16-byte
// loads several deep, bf16 rows or int4 blocks; see expert-ffn.cuh for the contract.
#include "cuda-check.cuh"
#include "expert-ffn-common.cuh"

namespace hmoe::cuda {
namespace {

using namespace detail;

// Adds w[k..k+8) . act[t][k..k+8) to acc[t] for the first cnt of T activation rows.
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
      acc[t] += wf[0] * a0.x + wf[1] * a0.y + wf[2] * a0.z + wf[3] * a0.w + wf[4] * a1.x +
                wf[5] * a1.y + wf[6] * a1.z + wf[7] * a1.w;
    }
  }
}

constexpr int kDepth = 4;

// int4 block b of a row: 16 bytes = values 32b..32b+31 (byte j: value j low nibble, j+16 high),
// stored as q + 8. Adds scale * (block . act[t][32b..]) to acc[t]; n bounds the real inputs.
template <int T>
__device__ __forceinline__ void int4_block(const uint4& q, float scale, const float* const (&act)[T],
                                           int cnt, int k, int n, float (&acc)[T]) {
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
  float lo[16], hi[16];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const uint32_t byte = (w[i] >> (8 * b)) & 0xffu;
      lo[4 * i + b] = float(int(byte & 15u) - 8);
      hi[4 * i + b] = float(int(byte >> 4) - 8);
    }
  const bool full = k + 32 <= n && (n & 3) == 0;
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t >= cnt) continue;
    float s = 0.0f;
    if (full) {
      const float4* xa = reinterpret_cast<const float4*>(act[t] + k);
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const float4 l = __ldg(xa + v), h = __ldg(xa + 4 + v);
        s += lo[4 * v] * l.x + lo[4 * v + 1] * l.y + lo[4 * v + 2] * l.z + lo[4 * v + 3] * l.w;
        s += hi[4 * v] * h.x + hi[4 * v + 1] * h.y + hi[4 * v + 2] * h.z + hi[4 * v + 3] * h.w;
      }
    } else {
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        if (k + j < n) s += lo[j] * act[t][k + j];
        if (k + 16 + j < n) s += hi[j] * act[t][k + 16 + j];
      }
    }
    acc[t] += scale * s;
  }
}

// int4 is bound by unpacking and L1 activation reads, not by load latency: two blocks in flight per
// row suffice, and a deeper unroll only multiplies code size (and compile time) by the token count.
constexpr int kDepthInt4 = 2;

// int4 rows: per-lane partial dots of R rows (inputs n, padded to the group) with T activations.
template <int T, int R>
__device__ __forceinline__ void rows_dots_int4(const unsigned char* const (&q)[R], const float* const (&sc)[R],
                                               int group, int n, const float* const (&act)[T], int cnt,
                                               int lane, float (&acc)[R][T]) {
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
        const int k = (b + i * 32) * 32;
        int4_block<T>(wv[r][i], __ldg(sc[r] + k / group), act, cnt, k, n, acc[r]);
      }
  }
  for (; b < blocks; b += 32) {
    const int k = b * 32;
#pragma unroll
    for (int r = 0; r < R; ++r)
      int4_block<T>(__ldcs(reinterpret_cast<const uint4*>(q[r] + int64_t(b) * 16)), __ldg(sc[r] + k / group), act,
                    cnt, k, n, acc[r]);
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
          if (t < cnt) acc[r][t] += wk * act[t][k];
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
    rows_dots_int4<T, 2>(q, sc, a.group, a.d, act, cnt, lane, acc);
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
    rows_dots_int4<T, 1>(q, sc, a.group, a.ff, act, cnt, lane, y);
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

template <int T>
void launch_small(const ExpertArgs& a, const int32_t* runs, int n, cudaStream_t stream) {
  const dim3 block(kWarpsPerBlock * 32);
  gateup_small_kernel<T><<<dim3((a.ff + kWarpsPerBlock - 1) / kWarpsPerBlock, n), block, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
  down_small_kernel<T><<<dim3((a.d + kWarpsPerBlock - 1) / kWarpsPerBlock, n), block, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_expert_stream(const ExpertArgs& a, const int32_t* runs, int n_runs, int max_tokens,
                          cudaStream_t stream) {
  if (n_runs <= 0) return;
  if (max_tokens <= 1) launch_small<1>(a, runs, n_runs, stream);
  else if (max_tokens <= 2) launch_small<2>(a, runs, n_runs, stream);
  else if (max_tokens <= 4) launch_small<4>(a, runs, n_runs, stream);
  else launch_small<kSmallRunTokens>(a, runs, n_runs, stream);
}

}  // namespace hmoe::cuda
