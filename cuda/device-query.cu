// CUDA device discovery through the static CUDA runtime. The runtime loads the driver lazily, so
// on a machine without driver or GPU these calls answer "0 devices" instead of failing to load.
#include <cstdio>
#include <cstring>
#include <mutex>

#include "cuda-check.cuh"

namespace {

struct Discovery {
  int count = 0;
  char note[256] = {0};
};

const Discovery& discovery() {
  static Discovery d;
  static std::once_flag once;
  std::call_once(once, [] {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      d.count = 0;
      std::snprintf(d.note, sizeof d.note, "no usable CUDA device: %s (%s)", cudaGetErrorString(err),
                    cudaGetErrorName(err));
      return;
    }
    d.count = n;
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    std::snprintf(d.note, sizeof d.note, "%d device(s); driver %d.%d, runtime %d.%d", n,
                  driver / 1000, (driver % 1000) / 10, runtime / 1000, (runtime % 1000) / 10);
  });
  return d;
}

}  // namespace

extern "C" {

int hmoe_cuda_compiled(void) { return 1; }

int hmoe_cuda_device_count(int32_t* out) {
  return hmoe::guarded("hmoe_cuda_device_count", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = discovery().count;
  });
}

const char* hmoe_cuda_note(void) { return discovery().note; }

int hmoe_cuda_device_info(int32_t index, char* name, int32_t name_len, int64_t* total_mem,
                          int64_t* free_mem, int32_t* cc_major, int32_t* cc_minor,
                          int32_t* multiprocessors) {
  return hmoe::guarded("hmoe_cuda_device_info", [&] {
    HMOE_REQUIRE_PTR(name);
    HMOE_REQUIRE_PTR(total_mem);
    HMOE_REQUIRE_PTR(free_mem);
    HMOE_REQUIRE_PTR(cc_major);
    HMOE_REQUIRE_PTR(cc_minor);
    HMOE_REQUIRE_PTR(multiprocessors);
    if (name_len < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "name_len must be >= 1, got %d", name_len);
    const int count = discovery().count;
    if (index < 0 || index >= count)
      hmoe::fail(HMOE_ERR_NO_DEVICE, "device index %d out of range (%d device(s): %s)", index, count,
                 discovery().note);
    cudaDeviceProp p;
    HMOE_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
    std::snprintf(name, static_cast<size_t>(name_len), "%s", p.name);
    *total_mem = static_cast<int64_t>(p.totalGlobalMem);
    *cc_major = p.major;
    *cc_minor = p.minor;
    *multiprocessors = p.multiProcessorCount;
    int prev = 0;
    HMOE_CUDA_CHECK(cudaGetDevice(&prev));
    HMOE_CUDA_CHECK(cudaSetDevice(index));
    size_t fr = 0, tot = 0;
    cudaError_t err = cudaMemGetInfo(&fr, &tot);
    cudaSetDevice(prev);
    HMOE_CUDA_CHECK(err);
    *free_mem = static_cast<int64_t>(fr);
  });
}

}  // extern "C"
