// Internal: scalar bf16 <-> f32 conversion, the reference every vector variant must match bit
// for bit. Round to nearest even; NaN stays NaN (quiet bit forced, sign kept).
#pragma once

#include <cstdint>
#include <cstring>

namespace hmoe {

inline uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

}  // namespace hmoe
