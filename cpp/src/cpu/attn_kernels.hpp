// Internal: the attention inner kernels of hmoe_dense_attention (dense.cpp), one chunk of cached
// positions against the query heads that share a KV head. Scalar versions in dense.cpp, AVX2
// here (attn_avx2.cpp, compiled with its flags).
//
//   scores  out[i * out_stride + j] = scale * (q_i . k_j)        i < nq, j < nk
//   values  acc[i * acc_stride + e] += sum_j p[i * p_stride + j] * v_j[e]   i < nq, e < vd
//
// q_i at q + i * q_stride; k_j at k0 + j * k_stride; v_j at v0 + j * v_stride (the cache's
// position stride), f32 or bf16 as the cache stores them (bf16 widened in registers). Tiles keep the data in L1: 4 keys per pass over a query row (each query row
// is read once per 4 keys instead of each key once per query head), 8 heads x 8 outputs of
// accumulators in registers per pass over the values (each value read once per 8 heads).
#pragma once

#include <cstdint>

namespace hmoe::cpu {

void attn_scores_avx2(const float* q, int64_t nq, int64_t q_stride, const float* k0, int64_t k_stride, int64_t nk,
                      int64_t kd, float scale, float* out, int64_t out_stride);
void attn_values_avx2(const float* p, int64_t nq, int64_t p_stride, const float* v0, int64_t v_stride, int64_t nv,
                      int64_t vd, float* acc, int64_t acc_stride);
void attn_scores_bf16_avx2(const float* q, int64_t nq, int64_t q_stride, const uint16_t* k0, int64_t k_stride,
                           int64_t nk, int64_t kd, float scale, float* out, int64_t out_stride);
void attn_values_bf16_avx2(const float* p, int64_t nq, int64_t p_stride, const uint16_t* v0, int64_t v_stride,
                           int64_t nv, int64_t vd, float* acc, int64_t acc_stride);

}  // namespace hmoe::cpu
