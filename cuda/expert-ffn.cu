// Expert FFN kernels; see expert-ffn.cuh for the contract.
#include <mma.h>

#include "cuda-check.cuh"
#include "expert-ffn.cuh"

namespace hmoe::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float silu(float v) { return v / (1.0f + __expf(-v)); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ void bf16x8_to_f32(const uint4& u, float (&f)[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

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

__device__ __forceinline__ const unsigned char* wrow(const ExpertArgs& a, int slot, int p, int64_t row) {
  return a.slots + slot * a.slot_bytes + a.weights_at[p] + row * a.row_bytes[p];
}

__device__ __forceinline__ const float* srow(const ExpertArgs& a, int slot, int p, int64_t row) {
  return reinterpret_cast<const float*>(a.slots + slot * a.slot_bytes + a.scales_at[p]) +
         row * a.scales_per_row[p];
}

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

// int4 rows: per-lane partial dots of R rows (inputs n, padded to the group) with T activations.
template <int T, int R>
__device__ __forceinline__ void rows_dots_int4(const unsigned char* const (&q)[R], const float* const (&sc)[R],
                                               int group, int n, const float* const (&act)[T], int cnt,
                                               int lane, float (&acc)[R][T]) {
  const int blocks = (n + 31) / 32;  // blocks holding real inputs; padding beyond is zero
  int b = lane;
  for (; b + (kDepth - 1) * 32 < blocks; b += kDepth * 32) {
    uint4 wv[R][kDepth];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < kDepth; ++i) wv[r][i] = __ldcs(reinterpret_cast<const uint4*>(q[r] + int64_t(b + i * 32) * 16));
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < kDepth; ++i) {
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

// Tensor-core path: gathered bf16 copies of the large runs' x rows.
__global__ void gather_bf16_kernel(ExpertArgs a, const int32_t* __restrict__ runs) {
  const int r = runs[blockIdx.y];
  const int off = a.run_offset[r];
  const int cnt = a.run_offset[r + 1] - off;
  for (int m = blockIdx.x; m < cnt; m += gridDim.x) {
    const float* src = a.x + int64_t(a.pair_token[off + m]) * a.d;
    __nv_bfloat16* dst = a.a_bf16 + int64_t(off + m) * a.d;
    for (int k = threadIdx.x; k < a.d; k += blockDim.x) dst[k] = __float2bfloat16_rn(src[k]);
  }
}

// Tensor-core GEMM tile: C[64 x 64] = A[rows, K] . B[cols, K]^T for one run, staged through
// shared memory with zero fill so that any K and any edge works. kGateUp: B is gate and B2 is up,
// epilogue writes h_bf16 = silu(gate) * up; else B is down, epilogue accumulates w * C into out.
constexpr int kTile = 64, kTileK = 32, kLd = kTileK + 8;  // +8 bf16: fewer bank conflicts

template <bool kGateUp>
__global__ void __launch_bounds__(128) wmma_kernel(ExpertArgs a, const int32_t* __restrict__ runs) {
  using namespace nvcuda;
  const int r = runs[blockIdx.z];
  const int off = a.run_offset[r];
  const int cnt = a.run_offset[r + 1] - off;
  const int m0 = blockIdx.y * kTile;
  if (m0 >= cnt) return;
  const int n0 = blockIdx.x * kTile;
  const int K = kGateUp ? a.d : a.ff;
  const int N = kGateUp ? a.ff : a.d;
  const int slot = a.run_slot[r];
  const __nv_bfloat16* A = (kGateUp ? a.a_bf16 + int64_t(off) * a.d : a.h_bf16 + int64_t(off) * a.ff);
  const int pB = kGateUp ? 0 : 2;  // projection of B (and up = 1 for B2)

  constexpr int kStageBytes = (kGateUp ? 3 : 2) * kTile * kLd * 2;
  constexpr int kOutBytes = (kGateUp ? 2 : 1) * kTile * kTile * 4;
  __shared__ __align__(128) unsigned char smem[kStageBytes > kOutBytes ? kStageBytes : kOutBytes];
  __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* Bs = As + kTile * kLd;
  __nv_bfloat16* B2s = Bs + kTile * kLd;

  const int warp = threadIdx.x >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2], acc2[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::fill_fragment(acc[i][j], 0.0f);
      if (kGateUp) wmma::fill_fragment(acc2[i][j], 0.0f);
    }

  // bf16 rows are 16-byte aligned when K % 8 == 0 (slot parts start on 256-byte boundaries).
  const bool vec = (K & 7) == 0;
  for (int k0 = 0; k0 < K; k0 += kTileK) {
    // 64 rows x 32 columns per operand = 256 chunks of 8; 128 threads take 2 each.
    auto stage = [&](const __nv_bfloat16* src, int rows, int base, __nv_bfloat16* dst, int row, int col) {
      const int gr = base + row, k = k0 + col;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gr < rows) {
        const __nv_bfloat16* p = src + int64_t(gr) * K + k;
        if (vec && k + 8 <= K) {
          v = __ldg(reinterpret_cast<const uint4*>(p));
        } else {
          __align__(16) __nv_bfloat16 tmp[8];
#pragma unroll
          for (int i = 0; i < 8; ++i) tmp[i] = (k + i < K) ? p[i] : __float2bfloat16_rn(0.0f);
          v = *reinterpret_cast<const uint4*>(tmp);
        }
      }
      *reinterpret_cast<uint4*>(dst + row * kLd + col) = v;
    };
    for (int c = threadIdx.x; c < kTile * kTileK / 8; c += 128) {
      const int row = c >> 2, col = (c & 3) * 8;
      stage(A, cnt, m0, As, row, col);
      if (!a.int4) {
        stage(reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, pB, 0)), N, n0, Bs, row, col);
        if (kGateUp) stage(reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, 1, 0)), N, n0, B2s, row, col);
      }
    }
    if (a.int4) {
      // One int4 block (32 values, kTileK) per weight row: threads 0..63 stage B, 64..127 B2.
      const int row = threadIdx.x & 63;
      const int p = threadIdx.x < 64 ? pB : 1;
      __nv_bfloat16* dst = (threadIdx.x < 64 ? Bs : B2s) + row * kLd;
      if (threadIdx.x < 64 || kGateUp) {
        const int gr = n0 + row;
        if (gr < N) {
          const uint4 q = __ldg(reinterpret_cast<const uint4*>(wrow(a, slot, p, gr) + (k0 / 32) * 16));
          const float sc = __ldg(srow(a, slot, p, gr) + k0 / a.group);
          const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int b = 0; b < 4; ++b) {
              const uint32_t byte = (w[i] >> (8 * b)) & 0xffu;
              dst[4 * i + b] = __float2bfloat16_rn(sc * float(int(byte & 15u) - 8));
              dst[16 + 4 * i + b] = __float2bfloat16_rn(sc * float(int(byte >> 4) - 8));
            }
        } else {
#pragma unroll
          for (int i = 0; i < 32; ++i) dst[i] = __float2bfloat16_rn(0.0f);
        }
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm + 16 * i) * kLd + kk, kLd);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(fb, Bs + (wn + 16 * j) * kLd + kk, kLd);
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
        if (kGateUp) {
          wmma::load_matrix_sync(fb, B2s + (wn + 16 * j) * kLd + kk, kLd);
#pragma unroll
          for (int i = 0; i < 2; ++i) wmma::mma_sync(acc2[i][j], fa[i], fb, acc2[i][j]);
        }
      }
    }
    __syncthreads();
  }

  float* Cs = reinterpret_cast<float*>(smem);
  float* C2s = Cs + kTile * kTile;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(Cs + (wm + 16 * i) * kTile + wn + 16 * j, acc[i][j], kTile, wmma::mem_row_major);
      if (kGateUp)
        wmma::store_matrix_sync(C2s + (wm + 16 * i) * kTile + wn + 16 * j, acc2[i][j], kTile, wmma::mem_row_major);
    }
  __syncthreads();
  for (int e = threadIdx.x; e < kTile * kTile; e += 128) {
    const int m = m0 + e / kTile, n = n0 + e % kTile;
    if (m >= cnt || n >= N) continue;
    if (kGateUp) {
      a.h_bf16[int64_t(off + m) * a.ff + n] = __float2bfloat16_rn(silu(Cs[e]) * C2s[e]);
    } else {
      atomicAdd(a.out + int64_t(a.pair_token[off + m]) * a.d + n, a.pair_weight[off + m] * Cs[e]);
    }
  }
}

}  // namespace

void launch_expert_ffn(const ExpertArgs& a, const int32_t* small_runs, int n_small, int max_small,
                       const int32_t* large_runs, int n_large, int max_large, cudaStream_t stream) {
  if (n_small > 0) {
    if (max_small <= 1) launch_small<1>(a, small_runs, n_small, stream);
    else if (max_small <= 2) launch_small<2>(a, small_runs, n_small, stream);
    else if (max_small <= 4) launch_small<4>(a, small_runs, n_small, stream);
    else launch_small<kSmallRunTokens>(a, small_runs, n_small, stream);
  }
  if (n_large > 0) {
    const int mt = (max_large + kTile - 1) / kTile;
    gather_bf16_kernel<<<dim3(std::min(max_large, 1024), n_large), 256, 0, stream>>>(a, large_runs);
    HMOE_CUDA_CHECK(cudaGetLastError());
    wmma_kernel<true><<<dim3((a.ff + kTile - 1) / kTile, mt, n_large), 128, 0, stream>>>(a, large_runs);
    HMOE_CUDA_CHECK(cudaGetLastError());
    wmma_kernel<false><<<dim3((a.d + kTile - 1) / kTile, mt, n_large), 128, 0, stream>>>(a, large_runs);
    HMOE_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace hmoe::cuda
