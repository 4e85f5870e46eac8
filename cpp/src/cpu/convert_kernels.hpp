// Internal: per-ISA conversion kernels. Each lives in its own translation unit compiled with
// its ISA's flags (CMakeLists.txt); callers dispatch on hmoe::kernel_variant().
#pragma once

#include <cstdint>

namespace hmoe::cpu {

void f32_to_bf16_avx2(const float* src, uint16_t* dst, int64_t n);
void bf16_to_f32_avx2(const uint16_t* src, float* dst, int64_t n);
void f32_to_bf16_avx512(const float* src, uint16_t* dst, int64_t n);
void bf16_to_f32_avx512(const uint16_t* src, float* dst, int64_t n);

}  // namespace hmoe::cpu
