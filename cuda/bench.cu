// Link and memory probes for bench-gpu: the reference rates our copies and kernels are judged by.
#include <algorithm>
#include <vector>

#include "cuda-buffers.cuh"
#include "cuda-timing.cuh"
#include "hybrimoe/device.h"

namespace {

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { HMOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() { if (s) cudaStreamDestroy(s); }
};

void check_device(int32_t index) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    n = 0;
  }
  if (index < 0 || index >= n) hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d does not exist (%d device(s))", index, n);
}

}  // namespace

extern "C" {

int hmoe_cuda_bench_h2d(int32_t index, int64_t total_bytes, int64_t chunk_bytes, int32_t reps, double* gbps) {
  return hmoe::guarded("hmoe_cuda_bench_h2d", [&] {
    HMOE_REQUIRE_PTR(gbps);
    if (total_bytes < 1 || chunk_bytes < 1 || chunk_bytes > total_bytes || reps < 1)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "need 1 <= chunk_bytes <= total_bytes and reps >= 1");
    check_device(index);
    hmoe::cuda::DeviceScope scope(index);
    hmoe::cuda::PinnedBuffer host;
    hmoe::cuda::DeviceBuffer dev;
    host.reserve(size_t(total_bytes));
    dev.reserve(size_t(total_bytes));
    std::fill_n(host.as<char>(), size_t(total_bytes), char(1));
    Stream st;
    const float ms = hmoe::cuda::median_ms(st.s, reps, [&](cudaStream_t s) {
      for (int64_t off = 0; off < total_bytes; off += chunk_bytes) {
        const int64_t n = std::min(chunk_bytes, total_bytes - off);
        HMOE_CUDA_CHECK(cudaMemcpyAsync(dev.as<char>() + off, host.as<char>() + off, size_t(n),
                                        cudaMemcpyHostToDevice, s));
      }
    });
    *gbps = double(total_bytes) / (double(ms) * 1e6);
  });
}

int hmoe_cuda_bench_d2d(int32_t index, int64_t bytes, int32_t reps, double* gbps) {
  return hmoe::guarded("hmoe_cuda_bench_d2d", [&] {
    HMOE_REQUIRE_PTR(gbps);
    if (bytes < 1 || reps < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "need bytes >= 1 and reps >= 1");
    check_device(index);
    hmoe::cuda::DeviceScope scope(index);
    hmoe::cuda::DeviceBuffer a, b;
    a.reserve(size_t(bytes));
    b.reserve(size_t(bytes));
    HMOE_CUDA_CHECK(cudaMemset(a.as<void>(), 1, size_t(bytes)));
    Stream st;
    const float ms = hmoe::cuda::median_ms(st.s, reps, [&](cudaStream_t s) {
      HMOE_CUDA_CHECK(cudaMemcpyAsync(b.as<void>(), a.as<void>(), size_t(bytes), cudaMemcpyDeviceToDevice, s));
    });
    *gbps = 2.0 * double(bytes) / (double(ms) * 1e6);
  });
}

}  // extern "C"
