// CPU smoke test of the C ABI: feature detection, kernel variant, oneDNN link, engine lifecycle,
// conversions against the scalar reference on awkward sizes, and that bad arguments come back as
// statuses with messages instead of crashes.
//
// Run with HMOE_KERNEL=avx2 (ctest "cpu-smoke-no-avx512") it checks that the override holds.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "hybrimoe/hmoe.h"
#include "internal/bf16.hpp"

static void test_features_and_variant() {
  uint32_t f = 0;
  CHECK_OK(hmoe_cpu_features(&f));
  int32_t v = -1;
  CHECK_OK(hmoe_kernel_variant(&v));
  std::printf("features=0x%x variant=%d (%s)\n", f, v, hmoe_kernel_variant_note());
  CHECK(v >= HMOE_KERNEL_SCALAR && v <= HMOE_KERNEL_AVX512);
  if (v == HMOE_KERNEL_AVX512) CHECK(f & HMOE_CPU_AVX512F);
  if (v == HMOE_KERNEL_AVX2) CHECK(f & HMOE_CPU_AVX2);

  const char* env = std::getenv("HMOE_KERNEL");
  if (env && std::string(env) == "avx2") {
    if (f & HMOE_CPU_AVX2) CHECK(v == HMOE_KERNEL_AVX2);
    else CHECK(std::string(hmoe_kernel_variant_note()).find("ignored") != std::string::npos);
  }
  // Forcing something the CPU lacks is a status, not a crash.
  if (!(f & HMOE_CPU_AVX512F)) {
    CHECK(hmoe_kernel_variant_force(HMOE_KERNEL_AVX512) == HMOE_ERR_UNSUPPORTED);
    CHECK(std::string(hmoe_last_error()).find("avx512f") != std::string::npos);
  }
  CHECK(hmoe_kernel_variant_force(7) == HMOE_ERR_INVALID_ARGUMENT);
  int32_t cores = 0;
  CHECK_OK(hmoe_cpu_physical_cores(&cores));
  CHECK(cores >= 1);
}

static void test_onednn() {
  int32_t a = -1, b = -1, c = -1;
  CHECK_OK(hmoe_onednn_version(&a, &b, &c));
  std::printf("oneDNN %d.%d.%d\n", a, b, c);
  CHECK(a >= 3);
}

static void test_engine() {
  hmoe_engine_t* e = nullptr;
  CHECK_OK(hmoe_engine_create(0, &e));
  int32_t t = 0;
  CHECK_OK(hmoe_engine_threads(e, &t));
  CHECK(t >= 1);
  hmoe_engine_free(e);
  hmoe_engine_free(nullptr);
  e = reinterpret_cast<hmoe_engine_t*>(0x1);
  CHECK(hmoe_engine_create(-3, &e) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(e == nullptr);
  CHECK(std::string(hmoe_last_error()).find("threads must be >= 0") != std::string::npos);
  CHECK(hmoe_engine_create(1, nullptr) == HMOE_ERR_INVALID_ARGUMENT);
}

// Each variant the CPU has, against the scalar reference, bit for bit, on awkward sizes and
// special values.
static void test_conversions() {
  uint32_t f = 0;
  hmoe_cpu_features(&f);
  int32_t original = 0;
  hmoe_kernel_variant(&original);
  std::mt19937 rng(1234);
  const int64_t sizes[] = {1, 7, 15, 16, 17, 33, 1000, 4099};
  for (int variant = HMOE_KERNEL_SCALAR; variant <= HMOE_KERNEL_AVX512; ++variant) {
    if (hmoe_kernel_variant_force(variant) != HMOE_OK) continue;  // CPU lacks it
    for (int64_t n : sizes) {
      std::vector<float> src(static_cast<size_t>(n));
      for (auto& x : src) {
        uint32_t bits = rng();
        std::memcpy(&x, &bits, 4);
      }
      src[0] = std::nanf("");
      if (n > 3) { src[1] = INFINITY; src[2] = -0.0f; src[3] = 1.0e-40f; }
      std::vector<uint16_t> dst(size_t(n) + 1, 0xabcd);
      CHECK_OK(hmoe_convert_f32_to_bf16(src.data(), dst.data(), n));
      int bad = 0;
      for (int64_t i = 0; i < n; ++i) bad += dst[size_t(i)] != hmoe::f32_to_bf16(src[size_t(i)]);
      CHECK(bad == 0);
      CHECK(dst[size_t(n)] == 0xabcd);  // no write past the end
      std::vector<float> back(size_t(n) + 1, 42.0f);
      CHECK_OK(hmoe_convert_bf16_to_f32(dst.data(), back.data(), n));
      for (int64_t i = 0; i < n; ++i) {
        uint32_t u;
        std::memcpy(&u, &back[size_t(i)], 4);
        bad += u != (uint32_t(dst[size_t(i)]) << 16);
      }
      CHECK(bad == 0);
      CHECK(back[size_t(n)] == 42.0f);
    }
  }
  hmoe_kernel_variant_force(original);
  uint16_t d[4];
  CHECK(hmoe_convert_f32_to_bf16(nullptr, d, 4) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()) == "hmoe_convert_f32_to_bf16: src must not be NULL");
  float s[4] = {0, 0, 0, 0};
  CHECK(hmoe_convert_f32_to_bf16(s, d, -1) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_convert_f32_to_bf16(s, reinterpret_cast<uint16_t*>(s) + 1, 4) == HMOE_ERR_INVALID_ARGUMENT);
}

static void test_cuda_absent_is_not_an_error() {
  int32_t n = -1;
  CHECK_OK(hmoe_cuda_device_count(&n));
  CHECK(n >= 0);
  std::printf("cuda compiled=%d devices=%d (%s)\n", hmoe_cuda_compiled(), n, hmoe_cuda_note());
  char name[64];
  int64_t a, b;
  int32_t c, d, e;
  CHECK(hmoe_cuda_device_info(n, name, sizeof name, &a, &b, &c, &d, &e) == HMOE_ERR_NO_DEVICE);
}

int main() {
  std::printf("hybrimoe %s\n", hmoe_version());
  test_features_and_variant();
  test_onednn();
  test_engine();
  test_conversions();
  test_cuda_absent_is_not_an_error();
  return TEST_RESULT();
}
