// Internal: small helpers shared by the AVX2 translation units (moe_avx2.cpp, attn_avx2.cpp).
// Everything has internal linkage (an anonymous namespace), so every including translation unit,
// compiled with -mavx2 -mfma, gets its own copy: no AVX2 code can be merged by the linker into a
// caller built without those flags (the reason these were written out in each file before).
#pragma once

#ifndef __AVX2__
#error "avx2_helpers.hpp is for translation units compiled with -mavx2"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace hmoe::cpu {
namespace {

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 bf16 values at p widened to f32: each 16-bit pattern shifted into the high half.
inline __m256 widen8_bf16(const void* p) {
  const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// One bf16 value widened to f32 (the vector tails).
inline float widen1_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace
}  // namespace hmoe::cpu
