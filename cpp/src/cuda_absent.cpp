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

// ---- device.h entry points that need CUDA ------------------------------------------------------
#include "hybrimoe/device.h"

extern "C" {

int hmoe_device_create_cuda(int32_t index, const hmoe_expert_shape_t*, int32_t, hmoe_device_t** out) {
  return hmoe::guarded("hmoe_device_create_cuda", [&] {
    if (out) *out = nullptr;
    hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d: this library was built without CUDA", index);
  });
}

int hmoe_device_cuda_max_slots(int32_t index, const hmoe_expert_shape_t*, int64_t, int32_t*) {
  return hmoe::guarded("hmoe_device_cuda_max_slots", [&] {
    hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d: this library was built without CUDA", index);
  });
}

int hmoe_router_create(hmoe_device_t*, const float*, int32_t, int32_t, int32_t, int32_t, int32_t, float,
                       hmoe_router_t** out) {
  return hmoe::guarded("hmoe_router_create", [&] {
    if (out) *out = nullptr;
    hmoe::fail(HMOE_ERR_UNSUPPORTED, "the device router needs CUDA; this library was built without it");
  });
}

void hmoe_router_free(hmoe_router_t*) {}

int hmoe_router_run(hmoe_router_t*, const float*, int32_t, int32_t*, float*) {
  return hmoe::guarded("hmoe_router_run", [&] {
    hmoe::fail(HMOE_ERR_UNSUPPORTED, "the device router needs CUDA; this library was built without it");
  });
}

int hmoe_cuda_bench_h2d(int32_t index, int64_t, int64_t, int32_t, double*) {
  return hmoe::guarded("hmoe_cuda_bench_h2d", [&] {
    hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d: this library was built without CUDA", index);
  });
}

int hmoe_cuda_bench_d2d(int32_t index, int64_t, int32_t, double*) {
  return hmoe::guarded("hmoe_cuda_bench_d2d", [&] {
    hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d: this library was built without CUDA", index);
  });
}

}  // extern "C"

// ---- dense_device.h entry points that need CUDA ------------------------------------------------
#include "hybrimoe/dense_device.h"

extern "C" int hmoe_dense_device_create_cuda(int32_t index, hmoe_dense_device_t** out) {
  return hmoe::guarded("hmoe_dense_device_create_cuda", [&] {
    if (out) *out = nullptr;
    hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d: this library was built without CUDA", index);
  });
}
