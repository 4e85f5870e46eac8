// AVX2+FMA expert kernels (compiled with -mavx2 -mfma -mf16c), following cpu_moe.h's rule:
//   matmul_avx2    f32 and bf16 weights widened to f32 in registers (bf16 by a 16-bit shift) and
//                  multiplied with FMA against f32 activations (for bf16, rounded to bf16 by the
//                  operator, so every product is exact); two rows share each activation load
//   matmul_avx2_q  int8 and int4 weights against per-token int8 activations (qu) in integers by
//                  VPMADDUBSW / VPMADDWD, then scaled as the rule says
// Up to 4 tokens share each weight load.
// Helpers live in an anonymous namespace so that nothing compiled with these flags is shared.
#include <immintrin.h>

#include <cstring>

#include "cpu/avx2_helpers.hpp"
#include "cpu/moe_kernels.hpp"
#include "hybrimoe/hmoe.h"

namespace hmoe::cpu {
namespace {

// 8 weights at element k of a row, widened to f32.
template <int FMT>
__m256 load8(const uint8_t* row, int64_t k) {
  if constexpr (FMT == HMOE_FORMAT_F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else {
    return widen8_bf16(row + 2 * k);
  }
}

template <int FMT>
float load1(const uint8_t* row, int64_t k) {
  if constexpr (FMT == HMOE_FORMAT_F32) {
    float f;
    std::memcpy(&f, row + 4 * k, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return widen1_bf16(h);
  }
}

// out[t] = row . x[t] for NT tokens (x rows ld apart, zero-padded past K).
template <int FMT, int NT>
void dot_dense(const uint8_t* row, int64_t K, const float* x, int64_t ld, float* out) {
  __m256 a0[NT], a1[NT];
  for (int t = 0; t < NT; ++t) a0[t] = a1[t] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    const __m256 w0 = load8<FMT>(row, k), w1 = load8<FMT>(row, k + 8);
    for (int t = 0; t < NT; ++t) {
      a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * ld + k), a0[t]);
      a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * ld + k + 8), a1[t]);
    }
  }
  for (; k + 8 <= K; k += 8) {
    const __m256 w0 = load8<FMT>(row, k);
    for (int t = 0; t < NT; ++t) a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * ld + k), a0[t]);
  }
  for (int t = 0; t < NT; ++t) {
    float s = hsum8(_mm256_add_ps(a0[t], a1[t]));
    for (int64_t kk = k; kk < K; ++kk) s += load1<FMT>(row, kk) * x[t * ld + kk];
    out[t] = s;
  }
}

// Two rows against NT tokens: each activation load feeds both rows (halves the activation
// traffic per FMA, which bounds the many-token case; 2 x NT independent accumulators).
template <int FMT, int NT>
void dot_dense2(const uint8_t* row0, const uint8_t* row1, int64_t K, const float* x, int64_t ld,
                float* out0, float* out1) {
  __m256 a[NT], b[NT];
  for (int t = 0; t < NT; ++t) a[t] = b[t] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 w0 = load8<FMT>(row0, k), w1 = load8<FMT>(row1, k);
    for (int t = 0; t < NT; ++t) {
      const __m256 xv = _mm256_loadu_ps(x + t * ld + k);
      a[t] = _mm256_fmadd_ps(w0, xv, a[t]);
      b[t] = _mm256_fmadd_ps(w1, xv, b[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    float s0 = hsum8(a[t]), s1 = hsum8(b[t]);
    for (int64_t kk = k; kk < K; ++kk) {
      s0 += load1<FMT>(row0, kk) * x[t * ld + kk];
      s1 += load1<FMT>(row1, kk) * x[t * ld + kk];
    }
    out0[t] = s0;
    out1[t] = s1;
  }
}

// int4 x per-token int8 activations (qu = q + 128, read back as q = qu ^ 0x80): VPMADDUBSW takes
// the weight nibbles (u8, 0..15) against q (s8), pairs summing to at most 2 * 15 * 127, so no
// saturation; the +8 offset comes off with a second VPMADDUBSW of 8s against q. Per 32-value
// block: low nibbles are values 0..15, high nibbles 16..31, joined into one natural-order ymm.
template <int NT>
void dot_int4_q(const uint8_t* row, const float* scales, int64_t nblk, int group, const uint8_t* qu,
                int64_t ld, float* out) {
  const __m128i low = _mm_set1_epi8(0x0f);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), eight = _mm256_set1_epi8(8);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const int bpg = group / 32;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nblk; ++b) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16));
    const __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_and_si128(v, low));
    const __m256 s = _mm256_set1_ps(scales[b / bpg]);
    for (int t = 0; t < NT; ++t) {
      const __m256i q = _mm256_xor_si256(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qu + t * ld + b * 32)), flip);
      const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(w, q), _mm256_maddubs_epi16(eight, q));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones16)), s, acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum8(acc[t]);
}

// int8 x per-token int8 activations: out[t] = sum_k q[t, k] * w[k], exact. VPMADDUBSW takes |w| (u8)
// against q with w's sign (VPSIGNB), pairs summing to at most 2 * 127 * 127 < 2^15, so no
// saturation; VPMADDWD sums pairs into 8 int32 lanes (each at most K / 8 * 127^2, far from 2^31 at
// the operator's 262144-input limit). The last K % 32 weights come through a zeroed copy: a row
// may end a mapping.
template <int NT>
void dot_int8_q(const int8_t* row, int64_t K, const uint8_t* qu, int64_t ld, int64_t* out) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones16 = _mm256_set1_epi16(1);
  __m256i acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
  for (int64_t k = 0; k < K; k += 32) {
    __m256i w;
    if (k + 32 <= K) {
      w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k));
    } else {
      alignas(32) int8_t tail[32] = {};
      std::memcpy(tail, row + k, size_t(K - k));
      w = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
    }
    const __m256i aw = _mm256_sign_epi8(w, w);
    for (int t = 0; t < NT; ++t) {
      const __m256i q = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qu + t * ld + k)), flip);
      const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(q, w));
      acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(p, ones16));
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[t]);
    int64_t s = 0;
    for (int i = 0; i < 8; ++i) s += lanes[i];
    out[t] = s;
  }
}

// bf16 weights against one token whose activations come permuted per 16-value block (f32p):
// 16 bf16 weights (32 bytes) split into their even values (<< 16) and odd values (& 0xffff0000)
// with one instruction each, instead of two widenings of 8, against the block's 8 even and 8 odd
// activations; NR rows share every activation load. The row lines kPrefetch bytes ahead are
// prefetched: one core's demand misses alone stay well under its share of DRAM bandwidth (on the
// dev box's EPYC a 1024-wide gemv streamed 8 GB/s without, 10-11 GB/s with, against 16 GB/s for
// a plain read). The K % 16 tail runs on the unpermuted f32 row.
constexpr int64_t kPrefetch = 2048;

template <int NR>
void dot_bf16_perm(const uint8_t* row0, int64_t row_bytes, int64_t K, const float* xp, const float* x,
                   float* out) {
  const __m256i odd = _mm256_set1_epi32(int(0xFFFF0000u));
  __m256 ae[NR], ao[NR];
  for (int r = 0; r < NR; ++r) ae[r] = ao[r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {  // 64 bytes of each row: one prefetch per row and line
    for (int r = 0; r < NR; ++r) _mm_prefetch(reinterpret_cast<const char*>(row0 + r * row_bytes + 2 * k + kPrefetch), _MM_HINT_T0);
    for (int h = 0; h < 32; h += 16) {
      const __m256 xe = _mm256_loadu_ps(xp + k + h), xo = _mm256_loadu_ps(xp + k + h + 8);
      for (int r = 0; r < NR; ++r) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row0 + r * row_bytes + 2 * (k + h)));
        ae[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, ae[r]);
        ao[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, odd)), xo, ao[r]);
      }
    }
  }
  for (; k + 16 <= K; k += 16) {
    const __m256 xe = _mm256_loadu_ps(xp + k), xo = _mm256_loadu_ps(xp + k + 8);
    for (int r = 0; r < NR; ++r) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row0 + r * row_bytes + 2 * k));
      ae[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, ae[r]);
      ao[r] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, odd)), xo, ao[r]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    float s = hsum8(_mm256_add_ps(ae[r], ao[r]));
    for (int64_t kk = k; kk < K; ++kk) s += load1<HMOE_FORMAT_BF16>(row0 + r * row_bytes, kk) * x[kk];
    out[r] = s;
  }
}

void rows_bf16_one_token(const MatView& m, int64_t r0, int64_t r1, const ActView& x, float* y) {
  const auto* w = static_cast<const uint8_t*>(m.w);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) dot_bf16_perm<4>(w + r * m.row_bytes, m.row_bytes, m.K, x.f32p, x.f32, y + (r - r0));
  for (; r < r1; ++r) dot_bf16_perm<1>(w + r * m.row_bytes, m.row_bytes, m.K, x.f32p, x.f32, y + (r - r0));
}

template <int FMT>
void rows_dense(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                int64_t ldy) {
  const auto* w = static_cast<const uint8_t*>(m.w);
  float o[4], p[4];
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) {  // row pairs
    const uint8_t* row0 = w + r * m.row_bytes;
    const uint8_t* row1 = row0 + m.row_bytes;
    for (int t0 = 0; t0 < n; t0 += 4) {
      const float* xt = x.f32 + t0 * x.ld;
      const int nt = n - t0 < 4 ? n - t0 : 4;
      switch (nt) {
        case 4: dot_dense2<FMT, 4>(row0, row1, m.K, xt, x.ld, o, p); break;
        case 3: dot_dense2<FMT, 3>(row0, row1, m.K, xt, x.ld, o, p); break;
        case 2: dot_dense2<FMT, 2>(row0, row1, m.K, xt, x.ld, o, p); break;
        default: dot_dense2<FMT, 1>(row0, row1, m.K, xt, x.ld, o, p); break;
      }
      for (int t = 0; t < nt; ++t) {
        y[(t0 + t) * ldy + (r - r0)] = o[t];
        y[(t0 + t) * ldy + (r + 1 - r0)] = p[t];
      }
    }
  }
  for (; r < r1; ++r) {  // the odd row
    const uint8_t* row = w + r * m.row_bytes;
    for (int t0 = 0; t0 < n; t0 += 4) {
      const float* xt = x.f32 + t0 * x.ld;
      const int nt = n - t0 < 4 ? n - t0 : 4;
      switch (nt) {
        case 4: dot_dense<FMT, 4>(row, m.K, xt, x.ld, o); break;
        case 3: dot_dense<FMT, 3>(row, m.K, xt, x.ld, o); break;
        case 2: dot_dense<FMT, 2>(row, m.K, xt, x.ld, o); break;
        default: dot_dense<FMT, 1>(row, m.K, xt, x.ld, o); break;
      }
      for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + (r - r0)] = o[t];
    }
  }
}

}  // namespace

void matmul_avx2_q(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy) {
  const auto* w = static_cast<const uint8_t*>(m.w);
  if (m.format == HMOE_FORMAT_INT8) {
    int64_t o[4];
    for (int64_t r = r0; r < r1; ++r) {
      const auto* row = reinterpret_cast<const int8_t*>(w + r * m.row_bytes);
      for (int t0 = 0; t0 < n; t0 += 4) {
        const uint8_t* qt = x.qu + t0 * x.ld;
        const int nt = n - t0 < 4 ? n - t0 : 4;
        switch (nt) {
          case 4: dot_int8_q<4>(row, m.K, qt, x.ld, o); break;
          case 3: dot_int8_q<3>(row, m.K, qt, x.ld, o); break;
          case 2: dot_int8_q<2>(row, m.K, qt, x.ld, o); break;
          default: dot_int8_q<1>(row, m.K, qt, x.ld, o); break;
        }
        for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + (r - r0)] = float(o[t]) * (m.scales[r] * x.qscale[t0 + t]);
      }
    }
    return;
  }
  const int64_t nblk = m.scales_per_row * m.group / 32;
  float o[4];
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * m.row_bytes;
    const float* s = m.scales + r * m.scales_per_row;
    for (int t0 = 0; t0 < n; t0 += 4) {
      const uint8_t* qt = x.qu + t0 * x.ld;
      const int nt = n - t0 < 4 ? n - t0 : 4;
      switch (nt) {
        case 4: dot_int4_q<4>(row, s, nblk, m.group, qt, x.ld, o); break;
        case 3: dot_int4_q<3>(row, s, nblk, m.group, qt, x.ld, o); break;
        case 2: dot_int4_q<2>(row, s, nblk, m.group, qt, x.ld, o); break;
        default: dot_int4_q<1>(row, s, nblk, m.group, qt, x.ld, o); break;
      }
      for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + (r - r0)] = o[t] * x.qscale[t0 + t];
    }
  }
}

void matmul_avx2(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                 int64_t ldy) {
  switch (m.format) {
    case HMOE_FORMAT_F32: rows_dense<HMOE_FORMAT_F32>(m, r0, r1, x, n, y, ldy); break;
    case HMOE_FORMAT_BF16:
      if (n == 1 && x.f32p != nullptr) {
        rows_bf16_one_token(m, r0, r1, x, y);
      } else {
        rows_dense<HMOE_FORMAT_BF16>(m, r0, r1, x, n, y, ldy);
      }
      break;
    case HMOE_FORMAT_INT8:
    case HMOE_FORMAT_INT4: matmul_avx2_q(m, r0, r1, x, n, y, ldy); break;
    default: break;
  }
}

uint64_t read_sum_avx2(const void* p, int64_t n) {
  const auto* b = static_cast<const __m256i*>(p);
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i + 4 <= n / 32; i += 4) {
    s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(b + i));
    s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(b + i + 1));
    s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(b + i + 2));
    s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(b + i + 3));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

}  // namespace hmoe::cpu
