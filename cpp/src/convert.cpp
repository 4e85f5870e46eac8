// bf16 <-> f32 conversion entry points, dispatched on the kernel variant.
#include "cpu/convert_kernels.hpp"
#include "internal/bf16.hpp"
#include "internal/cpu.hpp"
#include "internal/status.hpp"

namespace {
bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}
}  // namespace

extern "C" {

int hmoe_convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  return hmoe::guarded("hmoe_convert_f32_to_bf16", [&] {
    HMOE_REQUIRE_NONNEG(n);
    if (n == 0) return;
    HMOE_REQUIRE_PTR(src);
    HMOE_REQUIRE_PTR(dst);
    if (overlaps(src, size_t(n) * 4, dst, size_t(n) * 2))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "src and dst overlap");
    switch (hmoe::kernel_variant()) {
#ifdef HMOE_HAVE_AVX512
      case HMOE_KERNEL_AVX512: hmoe::cpu::f32_to_bf16_avx512(src, dst, n); return;
#endif
#ifdef HMOE_HAVE_AVX2
      case HMOE_KERNEL_AVX2: hmoe::cpu::f32_to_bf16_avx2(src, dst, n); return;
#endif
      default:
        for (int64_t i = 0; i < n; ++i) dst[i] = hmoe::f32_to_bf16(src[i]);
    }
  });
}

int hmoe_convert_bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  return hmoe::guarded("hmoe_convert_bf16_to_f32", [&] {
    HMOE_REQUIRE_NONNEG(n);
    if (n == 0) return;
    HMOE_REQUIRE_PTR(src);
    HMOE_REQUIRE_PTR(dst);
    if (overlaps(src, size_t(n) * 2, dst, size_t(n) * 4))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "src and dst overlap");
    switch (hmoe::kernel_variant()) {
#ifdef HMOE_HAVE_AVX512
      case HMOE_KERNEL_AVX512: hmoe::cpu::bf16_to_f32_avx512(src, dst, n); return;
#endif
#ifdef HMOE_HAVE_AVX2
      case HMOE_KERNEL_AVX2: hmoe::cpu::bf16_to_f32_avx2(src, dst, n); return;
#endif
      default:
        for (int64_t i = 0; i < n; ++i) dst[i] = hmoe::bf16_to_f32(src[i]);
    }
  });
}

}  // extern "C"
