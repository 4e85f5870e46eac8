// AVX-512 expert kernels (compiled with -mavx512f/bw/vl/dq/bf16/vnni). Three entry points, chosen
// by the operator from the CPU's feature bits:
//   matmul_avx512       f32 activations: f32 weights by FMA, bf16 weights widened (no AVX512_BF16)
//   matmul_avx512_bf16  bf16 weights x bf16 activations by VDPBF16PS, f32 accumulators
//   matmul_avx512_vnni  int8 / int4 weights (s8) x per-token quantized activations (u8 = q + 128)
//                       by VPDPBUSD; the 128 offset is removed with the row's weight sums (a
//                       VPDPBUSD with ones, shared by all tokens of the row)
// The structure mirrors moe_avx2.cpp: rows outside, up to 4 tokens sharing each weight load.
// Row tails use masked loads (zeros past K); activations are zero-padded to a multiple of 128.
// Helpers live in an anonymous namespace so that nothing compiled with these flags is shared.
#include <immintrin.h>

#include "cpu/moe_kernels.hpp"
#include "hybrimoe/hmoe.h"

namespace hmoe::cpu {
namespace {

__mmask16 mask16(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }
__mmask32 mask32(int64_t n) { return n >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << n) - 1u); }
__mmask64 mask64(int64_t n) { return n >= 64 ? __mmask64(~0ull) : __mmask64((1ull << n) - 1ull); }

// 16 weights at element k widened to f32 (f32 or bf16 storage), masked to the first `valid`.
template <int FMT>
__m512 load16(const uint8_t* row, int64_t k, __mmask16 m) {
  if constexpr (FMT == HMOE_FORMAT_F32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + k);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <int FMT, int NT>
void dot_widen(const uint8_t* row, int64_t K, const float* x, int64_t ld, float* out) {
  __m512 a0[NT], a1[NT];
  for (int t = 0; t < NT; ++t) a0[t] = a1[t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m512 w0 = load16<FMT>(row, k, 0xffff), w1 = load16<FMT>(row, k + 16, 0xffff);
    for (int t = 0; t < NT; ++t) {
      a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * ld + k), a0[t]);
      a1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + t * ld + k + 16), a1[t]);
    }
  }
  for (; k < K; k += 16) {  // x is padded to a multiple of 128, so a full 16-float load is in bounds
    const __m512 w0 = load16<FMT>(row, k, mask16(K - k));
    for (int t = 0; t < NT; ++t) a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * ld + k), a0[t]);
  }
  for (int t = 0; t < NT; ++t) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

template <int NT>
void dot_bf16dp(const uint16_t* row, int64_t K, const uint16_t* x, int64_t ld, float* out) {
  __m512 a0[NT], a1[NT];
  for (int t = 0; t < NT; ++t) a0[t] = a1[t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    const __m512i w0 = _mm512_loadu_si512(row + k), w1 = _mm512_loadu_si512(row + k + 32);
    for (int t = 0; t < NT; ++t) {
      const __m512i x0 = _mm512_loadu_si512(x + t * ld + k), x1 = _mm512_loadu_si512(x + t * ld + k + 32);
      a0[t] = _mm512_dpbf16_ps(a0[t], (__m512bh)w0, (__m512bh)x0);
      a1[t] = _mm512_dpbf16_ps(a1[t], (__m512bh)w1, (__m512bh)x1);
    }
  }
  for (; k < K; k += 32) {  // masked weights (zeros past K) against zero-padded activations
    const __m512i w0 = _mm512_maskz_loadu_epi16(mask32(K - k), row + k);
    for (int t = 0; t < NT; ++t)
      a0[t] = _mm512_dpbf16_ps(a0[t], (__m512bh)w0, (__m512bh)_mm512_loadu_si512(x + t * ld + k));
  }
  for (int t = 0; t < NT; ++t) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

int64_t reduce_i32_as_i64(__m512i v) {
  const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
  const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1));
  return _mm512_reduce_add_epi64(_mm512_add_epi64(lo, hi));
}

// int8: out[t] = sum_k q_x[t, k] * w[k] (exact integer, as float).
template <int NT>
void dot_i8(const int8_t* row, int64_t K, const uint8_t* xu, int64_t ld, float* out) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc[NT];
  __m512i ws = _mm512_setzero_si512();
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_si512();
  for (int64_t k = 0; k < K; k += 64) {
    const __m512i w = _mm512_maskz_loadu_epi8(mask64(K - k), row + k);
    ws = _mm512_dpbusd_epi32(ws, ones, w);
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_dpbusd_epi32(acc[t], _mm512_loadu_si512(xu + t * ld + k), w);
  }
  const int64_t wsum128 = reduce_i32_as_i64(ws) * 128;
  for (int t = 0; t < NT; ++t) out[t] = float(reduce_i32_as_i64(acc[t]) - wsum128);
}

// int4: out[t] = sum_g scale[g] * sum_{k in g} q_x[t, k] * q_w[k]. Two 32-value blocks (32 bytes)
// per step: low nibbles give values 0..15 of each block, high nibbles 16..31; one 128-bit lane
// shuffle puts all 64 in natural order, so activations are read as they are.
template <int NT>
void dot_i4(const uint8_t* row, const float* scales, int64_t nblk, int group, const uint8_t* xu,
            int64_t ld, float* out) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m512i eight = _mm512_set1_epi8(8), ones = _mm512_set1_epi8(1);
  const int bpg = group / 32;  // blocks per group
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nblk; b += 2) {
    const bool two = b + 1 < nblk;
    const __m256i v = _mm256_maskz_loadu_epi8(two ? __mmask32(0xffffffffu) : __mmask32(0xffffu), row + b * 16);
    const __m256i lo = _mm256_and_si256(v, low);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);  // A0-15 B0-15 A16-31 B16-31
    w = _mm512_shuffle_i64x2(w, w, _MM_SHUFFLE(3, 1, 2, 0));            // A0-31 B0-31
    w = _mm512_sub_epi8(w, eight);                                      // q in -8..7
    const __m512i wc = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, w), 7);
    const float sa = scales[b / bpg], sb = two ? scales[(b + 1) / bpg] : 0.0f;
    const __m512 sv = _mm512_insertf32x8(_mm512_set1_ps(sa), _mm256_set1_ps(sb), 1);
    const __mmask64 xm = two ? __mmask64(~0ull) : __mmask64(0xffffffffull);
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = _mm512_maskz_loadu_epi8(xm, xu + t * ld + b * 32);
      const __m512i d = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xv, w), wc);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sv, acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = _mm512_reduce_add_ps(acc[t]);
}

// Rows [r0, r1) x n tokens, 4 tokens per weight pass; `dot(row_index, t0, nt, out)` fills out[nt].
template <typename Dot>
void for_rows(int64_t r0, int64_t r1, int n, float* y, int64_t ldy, const Dot& dot) {
  float o[4];
  for (int64_t r = r0; r < r1; ++r) {
    for (int t0 = 0; t0 < n; t0 += 4) {
      const int nt = n - t0 < 4 ? n - t0 : 4;
      dot(r, t0, nt, o);
      for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + (r - r0)] = o[t];
    }
  }
}

#define HMOE_NT_SWITCH(nt, CALL) \
  switch (nt) {                  \
    case 4: CALL(4); break;      \
    case 3: CALL(3); break;      \
    case 2: CALL(2); break;      \
    default: CALL(1); break;     \
  }

}  // namespace

void matmul_avx512(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy) {
  const auto* w = static_cast<const uint8_t*>(m.w);
  if (m.format == HMOE_FORMAT_F32) {
    for_rows(r0, r1, n, y, ldy, [&](int64_t r, int t0, int nt, float* o) {
#define CALL(NT) dot_widen<HMOE_FORMAT_F32, NT>(w + r * m.row_bytes, m.K, x.f32 + t0 * x.ld, x.ld, o)
      HMOE_NT_SWITCH(nt, CALL)
#undef CALL
    });
  } else if (m.format == HMOE_FORMAT_BF16) {
    for_rows(r0, r1, n, y, ldy, [&](int64_t r, int t0, int nt, float* o) {
#define CALL(NT) dot_widen<HMOE_FORMAT_BF16, NT>(w + r * m.row_bytes, m.K, x.f32 + t0 * x.ld, x.ld, o)
      HMOE_NT_SWITCH(nt, CALL)
#undef CALL
    });
  }
}

void matmul_avx512_bf16(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                        int64_t ldy) {
  const auto* w = static_cast<const uint8_t*>(m.w);
  for_rows(r0, r1, n, y, ldy, [&](int64_t r, int t0, int nt, float* o) {
    const auto* row = reinterpret_cast<const uint16_t*>(w + r * m.row_bytes);
#define CALL(NT) dot_bf16dp<NT>(row, m.K, x.bf16 + t0 * x.ld, x.ld, o)
    HMOE_NT_SWITCH(nt, CALL)
#undef CALL
  });
}

void matmul_avx512_vnni(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                        int64_t ldy) {
  const auto* w = static_cast<const uint8_t*>(m.w);
  if (m.format == HMOE_FORMAT_INT8) {
    for_rows(r0, r1, n, y, ldy, [&](int64_t r, int t0, int nt, float* o) {
      const auto* row = reinterpret_cast<const int8_t*>(w + r * m.row_bytes);
#define CALL(NT) dot_i8<NT>(row, m.K, x.qu + t0 * x.ld, x.ld, o)
      HMOE_NT_SWITCH(nt, CALL)
#undef CALL
      for (int t = 0; t < nt; ++t) o[t] *= m.scales[r] * x.qscale[t0 + t];
    });
  } else if (m.format == HMOE_FORMAT_INT4) {
    const int64_t nblk = m.scales_per_row * m.group / 32;
    for_rows(r0, r1, n, y, ldy, [&](int64_t r, int t0, int nt, float* o) {
      const uint8_t* row = w + r * m.row_bytes;
      const float* s = m.scales + r * m.scales_per_row;
#define CALL(NT) dot_i4<NT>(row, s, nblk, m.group, x.qu + t0 * x.ld, x.ld, o)
      HMOE_NT_SWITCH(nt, CALL)
#undef CALL
      for (int t = 0; t < nt; ++t) o[t] *= x.qscale[t0 + t];
    });
  }
}

}  // namespace hmoe::cpu
