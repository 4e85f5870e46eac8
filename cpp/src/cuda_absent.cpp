// The CUDA entry points of a build without CUDA (no nvcc, or -DHMOE_WITH_CUDA=OFF): zero
// devices, said plainly, never an error for merely asking.
#include "internal/status.hpp"

extern "C" {

int hmoe_cuda_compiled(void) { return 0; }

int hmoe_cuda_device_count(int32_t* out) {
  return hmoe::guarded("hmoe_cuda_device_count", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = 0;
  });
}

const char* hmoe_cuda_note(void) { return "built without CUDA"; }

int hmoe_cuda_device_info(int32_t index, char*, int32_t, int64_t*, int64_t*, int32_t*, int32_t*,
                          int32_t*) {
  return hmoe::guarded("hmoe_cuda_device_info", [&] {
    hmoe::fail(HMOE_ERR_NO_DEVICE, "device %d: this library was built without CUDA", index);
  });
}

int hmoe_cuda_selftest(int32_t index, int64_t, int64_t*) {
  return hmoe::guarded("hmoe_cuda_selftest", [&] {
    hmoe::fail(HMOE_ERR_NO_DEVICE, "device %d: this library was built without CUDA", index);
  });
}

}  // extern "C"
