// Expert FFN, tensor-core path (many tokens per expert: prefill), WMMA tiles staged through
// shared memory; see expert-ffn.cuh. bf16 weights: x gathered and rounded to bf16 (cpu_moe.h's
// rule), f32 accumulation. int4 weights: the rule's integers held exactly in bf16 (activation q in
// -127..127, weight q in -8..7), one 32-value block per K tile multiplied into fresh accumulators
// (an integer sum below 2^15, exact in f32), then scaled by the block's weight scale into the
// thread's own f32 accumulators; the row's activation scale comes last.
#include <mma.h>

#include <algorithm>

#include "cuda-check.cuh"
#include "expert-ffn-common.cuh"

namespace hmoe::cuda {
namespace {

using namespace detail;

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

constexpr int kTile = 64, kTileK = 32, kLd = kTileK + 8;  // +8 bf16: fewer bank conflicts

// Where a block's 64 x 64 tile lies: run (blockIdx.z), its pairs [off, off + cnt), first row m0,
// first column n0, and the GEMM's K and N (gate/up: d and ff; down: ff and d).
struct TileAt {
  int run, off, cnt, m0, n0, K, N;
};

__device__ __forceinline__ TileAt tile_at(const ExpertArgs& a, const int32_t* runs, bool gate_up) {
  const int r = runs[blockIdx.z];
  const int off = a.run_offset[r];
  return {r, off, a.run_offset[r + 1] - off, int(blockIdx.y) * kTile, int(blockIdx.x) * kTile, gate_up ? a.d : a.ff,
          gate_up ? a.ff : a.d};
}

using Acc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

// One staged K tile (kTileK wide) into a warp's 32 x 32 quarter of the 64 x 64 tile: acc += A . B^T
// (and acc2 += A . B2^T for gate/up), at rows wm.. and columns wn.. of the tile.
template <bool kGateUp>
__device__ __forceinline__ void mma_tile(const __nv_bfloat16* As, const __nv_bfloat16* Bs, const __nv_bfloat16* B2s,
                                         int wm, int wn, Acc (&acc)[2][2], Acc (&acc2)[2][2]) {
  using namespace nvcuda;
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
}

// bf16 tensor-core GEMM tile: C[64 x 64] = A[rows, K] . B[cols, K]^T for one run, staged through
// shared memory with zero fill so that any K and any edge works. kGateUp: B is gate and B2 is up,
// epilogue writes h_bf16 = silu(gate) * up; else B is down, epilogue accumulates w * C into out.
template <bool kGateUp>
__global__ void __launch_bounds__(128) wmma_kernel(ExpertArgs a, const int32_t* __restrict__ runs) {
  using namespace nvcuda;
  const TileAt at = tile_at(a, runs, kGateUp);
  if (at.m0 >= at.cnt) return;
  const int r = at.run, off = at.off, cnt = at.cnt, m0 = at.m0, n0 = at.n0, K = at.K, N = at.N;
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
  Acc acc[2][2], acc2[2][2];
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
      stage(reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, pB, 0)), N, n0, Bs, row, col);
      if (kGateUp) stage(reinterpret_cast<const __nv_bfloat16*>(wrow(a, slot, 1, 0)), N, n0, B2s, row, col);
    }
    __syncthreads();
    mma_tile<kGateUp>(As, Bs, B2s, wm, wn, acc, acc2);
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

// int4 tensor-core GEMM tile (see the top of this file). A rows: token pair_token[off + m]'s q
// in xq (gate/up) or pair off + m's q in hq (down). Each thread owns the tile elements e = tid +
// 128 i (row e / 64, column e % 64) of C (and C2). kGateUp's epilogue writes h f32 (quantized per
// row afterwards, for the down tile); the down epilogue accumulates w * C into out.
template <bool kGateUp>
__global__ void __launch_bounds__(128) wmma_int4_kernel(ExpertArgs a, const int32_t* __restrict__ runs) {
  using namespace nvcuda;
  const TileAt at = tile_at(a, runs, kGateUp);
  if (at.m0 >= at.cnt) return;
  const int r = at.run, off = at.off, cnt = at.cnt, m0 = at.m0, n0 = at.n0, K = at.K, N = at.N;
  const int lda = kGateUp ? a.d_pad : a.ff_pad;
  const int8_t* Aq = kGateUp ? a.xq : a.hq;
  const float* Ascale = kGateUp ? a.xq_scale : a.hq_scale;
  const int slot = a.run_slot[r];
  const int pB = kGateUp ? 0 : 2;
  const int tid = threadIdx.x;

  constexpr int kStageBytes = (kGateUp ? 3 : 2) * kTile * kLd * 2;
  constexpr int kOutBytes = (kGateUp ? 2 : 1) * kTile * kTile * 4;
  __shared__ __align__(128) unsigned char smem[kStageBytes > kOutBytes ? kStageBytes : kOutBytes];
  __shared__ float wsc[2][kTile];  // this K tile's weight scale per B (B2) row
  __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* Bs = As + kTile * kLd;
  __nv_bfloat16* B2s = Bs + kTile * kLd;
  float* Cs = reinterpret_cast<float*>(smem);  // aliases the staging: used after the MMAs
  float* C2s = Cs + kTile * kTile;

  const int warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  constexpr int kPer = kTile * kTile / 128;
  float acc[kPer], acc2[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) acc[i] = acc2[i] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += kTileK) {
    {  // A: two threads per row, 16 int8 values each (k0 + 32 <= lda: rows are padded to 32)
      const int row = tid >> 1, half = tid & 1, gm = m0 + row;
      __nv_bfloat16* dst = As + row * kLd + half * 16;
      if (gm < cnt) {
        const int64_t src_row = kGateUp ? int64_t(a.pair_token[off + gm]) : int64_t(off + gm);
        const int8_t* p = Aq + src_row * lda + k0 + half * 16;
#pragma unroll
        for (int i = 0; i < 16; ++i) dst[i] = __int2bfloat16_rn(int(p[i]));
      } else {
#pragma unroll
        for (int i = 0; i < 16; ++i) dst[i] = __float2bfloat16_rn(0.0f);
      }
    }
    {  // B (threads 0..63) and B2 (64..127): one int4 block per weight row, q - 8 as integers
      const int row = tid & 63;
      const bool second = tid >= 64;
      if (!second || kGateUp) {
        const int p = second ? 1 : pB;
        __nv_bfloat16* dst = (second ? B2s : Bs) + row * kLd;
        const int gr = n0 + row;
        if (gr < N) {
          const uint4 q = __ldg(reinterpret_cast<const uint4*>(wrow(a, slot, p, gr) + (k0 / 32) * 16));
          wsc[second][row] = __ldg(srow(a, slot, p, gr) + k0 / a.group);
          const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int b = 0; b < 4; ++b) {
              const uint32_t byte = (w[i] >> (8 * b)) & 0xffu;
              dst[4 * i + b] = __int2bfloat16_rn(int(byte & 15u) - 8);
              dst[16 + 4 * i + b] = __int2bfloat16_rn(int(byte >> 4) - 8);
            }
        } else {
          wsc[second][row] = 0.0f;
#pragma unroll
          for (int i = 0; i < 32; ++i) dst[i] = __float2bfloat16_rn(0.0f);
        }
      }
    }
    __syncthreads();
    Acc c[2][2], c2[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::fill_fragment(c[i][j], 0.0f);
        if (kGateUp) wmma::fill_fragment(c2[i][j], 0.0f);
      }
    mma_tile<kGateUp>(As, Bs, B2s, wm, wn, c, c2);
    __syncthreads();  // every warp is done with the staging that Cs overwrites
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::store_matrix_sync(Cs + (wm + 16 * i) * kTile + wn + 16 * j, c[i][j], kTile, wmma::mem_row_major);
        if (kGateUp)
          wmma::store_matrix_sync(C2s + (wm + 16 * i) * kTile + wn + 16 * j, c2[i][j], kTile, wmma::mem_row_major);
      }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int e = tid + 128 * i, n = e % kTile;
      acc[i] += Cs[e] * wsc[0][n];
      if (kGateUp) acc2[i] += C2s[e] * wsc[1][n];
    }
    __syncthreads();  // before the next tile's staging and scales overwrite Cs and wsc
  }

#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = tid + 128 * i;
    const int m = m0 + e / kTile, n = n0 + e % kTile;
    if (m >= cnt || n >= N) continue;
    const int64_t src_row = kGateUp ? int64_t(a.pair_token[off + m]) : int64_t(off + m);
    const float sx = Ascale[src_row * (lda / 32)];  // the row's scale (the same in every block)
    if (kGateUp) {
      a.h[int64_t(off + m) * a.ff + n] = silu(acc[i] * sx) * (acc2[i] * sx);
    } else {
      atomicAdd(a.out + int64_t(a.pair_token[off + m]) * a.d + n, a.pair_weight[off + m] * (acc[i] * sx));
    }
  }
}

}  // namespace

void launch_expert_mma(const ExpertArgs& a, const int32_t* runs, int n_runs, int max_tokens,
                       cudaStream_t stream) {
  if (n_runs <= 0) return;
  const int mt = (max_tokens + kTile - 1) / kTile;
  if (a.int4) {  // x is already quantized per row (launch_expert_ffn)
    wmma_int4_kernel<true><<<dim3((a.ff + kTile - 1) / kTile, mt, n_runs), 128, 0, stream>>>(a, runs);
    HMOE_CUDA_CHECK(cudaGetLastError());
    quantize_act_rows(a.h, a.n_pairs, a.ff, a.ff, a.hq, a.hq_scale, a.hq_sum, a.ff_pad, stream);
    wmma_int4_kernel<false><<<dim3((a.d + kTile - 1) / kTile, mt, n_runs), 128, 0, stream>>>(a, runs);
    HMOE_CUDA_CHECK(cudaGetLastError());
    return;
  }
  gather_bf16_kernel<<<dim3(std::min(max_tokens, 1024), n_runs), 256, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
  wmma_kernel<true><<<dim3((a.ff + kTile - 1) / kTile, mt, n_runs), 128, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
  wmma_kernel<false><<<dim3((a.d + kTile - 1) / kTile, mt, n_runs), 128, 0, stream>>>(a, runs);
  HMOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace hmoe::cuda
