// Internal: the activation half of the engine's arithmetic rule (cpu_moe.h, "What every kernel
// computes"), in one place for every CPU path that prepares activations (the MoE operator, the
// dense linears, oneDNN's calls). Plain C++ with no ISA flags: include it only from translation
// units compiled for the baseline ISA (never from cpu/*_avx2.cpp or cpu/*_avx512.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "internal/bf16.hpp"

namespace hmoe {

// bf16 weights: every activation is rounded to the nearest bf16 (ties to even, NaN kept) before
// it is multiplied, so that every product of two bf16 values is exact in f32.
inline float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

inline void round_bf16_row(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
}

// int8 and int4 weights: one row of K activations (one token) quantized symmetrically to int8:
//   amax = max |x|, scale = amax / 127, q = nearbyint(clamp(x * (127 / amax), -127, 127))
// (all f32 operations, rounding to nearest even; amax 0 gives scale 0 and q 0). Writes qu = q + 128
// for k < K and 128 (q = 0) for K <= k < ld; returns the scale. A row holding a NaN or an infinity
// has no finite scale: it gets q = 0 and scale NaN, so that its outputs are NaN on every variant,
// as f32 arithmetic would make them, never finite and wrong.
inline float quantize_row_i8(const float* x, int64_t K, int64_t ld, uint8_t* qu) {
  float amax = 0;
  bool finite = true;
  for (int64_t k = 0; k < K; ++k) {
    const float a = std::fabs(x[k]);
    finite = finite && a <= 3.4028235e38f;  // false for NaN and inf
    amax = std::max(amax, a);
  }
  if (!finite) {
    for (int64_t k = 0; k < ld; ++k) qu[k] = 128;
    return std::nanf("");
  }
  const float inv = amax > 0 ? 127.0f / amax : 0.0f;
  for (int64_t k = 0; k < K; ++k)
    qu[k] = uint8_t(int(std::nearbyint(std::min(127.0f, std::max(-127.0f, x[k] * inv)))) + 128);
  for (int64_t k = K; k < ld; ++k) qu[k] = 128;
  return amax / 127.0f;
}

}  // namespace hmoe
