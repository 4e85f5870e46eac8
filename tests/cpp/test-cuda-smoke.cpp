// CUDA smoke test: every device reports sane properties and passes the engine's self-test
// (a stream, allocations, copies and a kernel whose bf16 rounding matches the host's bit for
// bit). Exits 77 (skipped) on a build without CUDA or a machine without a GPU.
#include <cstdio>
#include <string>

#include "check.hpp"
#include "hybrimoe/hmoe.h"

int main() {
  if (!hmoe_cuda_compiled()) SKIP("built without CUDA");
  int32_t n = 0;
  CHECK_OK(hmoe_cuda_device_count(&n));
  if (n == 0) {
    std::printf("%s\n", hmoe_cuda_note());
    SKIP("no CUDA device");
  }
  for (int32_t i = 0; i < n; ++i) {
    char name[256];
    int64_t total = 0, free_mem = 0;
    int32_t major = 0, minor = 0, sms = 0;
    CHECK_OK(hmoe_cuda_device_info(i, name, sizeof name, &total, &free_mem, &major, &minor, &sms));
    std::printf("device %d: %s, cc %d.%d, %d SMs, %.1f/%.1f GiB free\n", i, name, major, minor, sms,
                free_mem / 1073741824.0, total / 1073741824.0);
    CHECK(total > 0 && free_mem > 0 && free_mem <= total);
    CHECK(major >= 8);
    int64_t bad = -1;
    for (int64_t len : {1LL, 255LL, 1000003LL}) {
      CHECK_OK(hmoe_cuda_selftest(i, len, &bad));
      CHECK(bad == 0);
    }
    CHECK(hmoe_cuda_selftest(i, 0, &bad) == HMOE_ERR_INVALID_ARGUMENT);
  }
  char name[8];
  int64_t a, b;
  int32_t c, d, e;
  CHECK(hmoe_cuda_device_info(n, name, sizeof name, &a, &b, &c, &d, &e) == HMOE_ERR_NO_DEVICE);
  CHECK(std::string(hmoe_last_error()).find("out of range") != std::string::npos);
  return TEST_RESULT();
}
