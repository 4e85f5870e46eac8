// AVX2+FMA attention kernels (attn_kernels.hpp). Helpers live in anonymous namespaces (here and
// in avx2_helpers.hpp) so that nothing compiled with these flags is shared with other translation
// units.
#include <immintrin.h>

#include "cpu/attn_kernels.hpp"
#include "cpu/avx2_helpers.hpp"

namespace hmoe::cpu {
namespace {

// 8 elements at p widened to f32.
__m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__m256 load8(const uint16_t* p) { return widen8_bf16(p); }
float to_f32(float v) { return v; }
float to_f32(uint16_t h) { return widen1_bf16(h); }

// NJ keys (k0, k0 + k_stride, ...) against every query row: each 8 values of a query row are
// loaded once for the NJ keys.
template <int NJ, typename T>
void scores_tile(const float* q, int64_t nq, int64_t q_stride, const T* k0, int64_t k_stride, int64_t kd,
                 float scale, float* out, int64_t out_stride) {
  for (int64_t i = 0; i < nq; ++i) {
    const float* qi = q + i * q_stride;
    __m256 acc[NJ];
    for (int j = 0; j < NJ; ++j) acc[j] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= kd; c += 8) {
      const __m256 qv = _mm256_loadu_ps(qi + c);
      for (int j = 0; j < NJ; ++j) acc[j] = _mm256_fmadd_ps(qv, load8(k0 + j * k_stride + c), acc[j]);
    }
    for (int j = 0; j < NJ; ++j) {
      float s = hsum8(acc[j]);
      for (int64_t cc = c; cc < kd; ++cc) s += qi[cc] * to_f32(k0[j * k_stride + cc]);
      out[i * out_stride + j] = scale * s;
    }
  }
}

// NI heads' 8 outputs [e, e + 8) in registers over every value row.
template <int NI, typename T>
void values_tile(const float* p, int64_t p_stride, const T* v0, int64_t v_stride, int64_t nv, int64_t e,
                 float* acc, int64_t acc_stride) {
  __m256 a[NI];
  for (int i = 0; i < NI; ++i) a[i] = _mm256_loadu_ps(acc + i * acc_stride + e);
  for (int64_t j = 0; j < nv; ++j) {
    const __m256 v = load8(v0 + j * v_stride + e);
    for (int i = 0; i < NI; ++i) a[i] = _mm256_fmadd_ps(_mm256_set1_ps(p[i * p_stride + j]), v, a[i]);
  }
  for (int i = 0; i < NI; ++i) _mm256_storeu_ps(acc + i * acc_stride + e, a[i]);
}

template <typename T>
void scores(const float* q, int64_t nq, int64_t q_stride, const T* k0, int64_t k_stride, int64_t nk, int64_t kd,
            float scale, float* out, int64_t out_stride) {
  int64_t j = 0;
  for (; j + 4 <= nk; j += 4) scores_tile<4>(q, nq, q_stride, k0 + j * k_stride, k_stride, kd, scale, out + j, out_stride);
  for (; j < nk; ++j) scores_tile<1>(q, nq, q_stride, k0 + j * k_stride, k_stride, kd, scale, out + j, out_stride);
}

template <typename T>
void values(const float* p, int64_t nq, int64_t p_stride, const T* v0, int64_t v_stride, int64_t nv, int64_t vd,
            float* acc, int64_t acc_stride) {
  int64_t e = 0;
  for (; e + 8 <= vd; e += 8) {
    int64_t i = 0;
    for (; i + 8 <= nq; i += 8)
      values_tile<8>(p + i * p_stride, p_stride, v0, v_stride, nv, e, acc + i * acc_stride, acc_stride);
    for (; i + 4 <= nq; i += 4)
      values_tile<4>(p + i * p_stride, p_stride, v0, v_stride, nv, e, acc + i * acc_stride, acc_stride);
    for (; i < nq; ++i) values_tile<1>(p + i * p_stride, p_stride, v0, v_stride, nv, e, acc + i * acc_stride, acc_stride);
  }
  for (; e < vd; ++e)  // the vd % 8 tail
    for (int64_t i = 0; i < nq; ++i) {
      float s = acc[i * acc_stride + e];
      for (int64_t j = 0; j < nv; ++j) s += p[i * p_stride + j] * to_f32(v0[j * v_stride + e]);
      acc[i * acc_stride + e] = s;
    }
}

}  // namespace

void attn_scores_avx2(const float* q, int64_t nq, int64_t q_stride, const float* k0, int64_t k_stride, int64_t nk,
                      int64_t kd, float scale, float* out, int64_t out_stride) {
  scores(q, nq, q_stride, k0, k_stride, nk, kd, scale, out, out_stride);
}

void attn_values_avx2(const float* p, int64_t nq, int64_t p_stride, const float* v0, int64_t v_stride, int64_t nv,
                      int64_t vd, float* acc, int64_t acc_stride) {
  values(p, nq, p_stride, v0, v_stride, nv, vd, acc, acc_stride);
}

void attn_scores_bf16_avx2(const float* q, int64_t nq, int64_t q_stride, const uint16_t* k0, int64_t k_stride,
                           int64_t nk, int64_t kd, float scale, float* out, int64_t out_stride) {
  scores(q, nq, q_stride, k0, k_stride, nk, kd, scale, out, out_stride);
}

void attn_values_bf16_avx2(const float* p, int64_t nq, int64_t p_stride, const uint16_t* v0, int64_t v_stride,
                           int64_t nv, int64_t vd, float* acc, int64_t acc_stride) {
  values(p, nq, p_stride, v0, v_stride, nv, vd, acc, acc_stride);
}

}  // namespace hmoe::cpu
