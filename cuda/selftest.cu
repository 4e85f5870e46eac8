// Device self-test: f32 -> bf16 conversion on the GPU, compared bit for bit with the CPU's
// reference conversion. It proves that the fat binary has code for this GPU, that a stream,
// allocation, copy and launch work, and that device rounding matches the host's.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda-check.cuh"
#include "internal/bf16.hpp"

namespace {

__global__ void f32_to_bf16_kernel(const float* __restrict__ src, uint16_t* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t u = __float_as_uint(src[i]);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      dst[i] = static_cast<uint16_t>((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      dst[i] = static_cast<uint16_t>(u >> 16);
    }
  }
}

// Owns device buffers and a stream so that every early exit releases them.
struct DeviceScratch {
  float* src = nullptr;
  uint16_t* dst = nullptr;
  cudaStream_t stream = nullptr;
  ~DeviceScratch() {
    if (src) cudaFree(src);
    if (dst) cudaFree(dst);
    if (stream) cudaStreamDestroy(stream);
  }
};

}  // namespace

extern "C" int hmoe_cuda_selftest(int32_t index, int64_t n, int64_t* mismatches) {
  return hmoe::guarded("hmoe_cuda_selftest", [&] {
    HMOE_REQUIRE_PTR(mismatches);
    if (n < 1 || n > (int64_t(1) << 30))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n must be in [1, 2^30], got %lld", (long long)n);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      count = 0;
    }
    if (index < 0 || index >= count)
      hmoe::fail(HMOE_ERR_NO_DEVICE, "device index %d out of range (%d device(s))", index, count);
    HMOE_CUDA_CHECK(cudaSetDevice(index));

    // Values that exercise rounding ties, denormals, infinities and NaN, then a spread.
    std::vector<float> host(static_cast<size_t>(n));
    uint32_t state = 0x9e3779b9u;
    for (int64_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      uint32_t bits = state;
      if (i % 7 == 0) bits = (bits & 0xffff0000u) | 0x8000u;  // exact tie
      std::memcpy(&host[size_t(i)], &bits, 4);
    }
    std::vector<uint16_t> got(static_cast<size_t>(n));

    DeviceScratch s;
    HMOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    HMOE_CUDA_CHECK(cudaMalloc(&s.src, size_t(n) * sizeof(float)));
    HMOE_CUDA_CHECK(cudaMalloc(&s.dst, size_t(n) * sizeof(uint16_t)));
    HMOE_CUDA_CHECK(cudaMemcpyAsync(s.src, host.data(), size_t(n) * 4, cudaMemcpyHostToDevice, s.stream));
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 4096));
    f32_to_bf16_kernel<<<blocks, threads, 0, s.stream>>>(s.src, s.dst, n);
    HMOE_CUDA_CHECK(cudaGetLastError());
    HMOE_CUDA_CHECK(cudaMemcpyAsync(got.data(), s.dst, size_t(n) * 2, cudaMemcpyDeviceToHost, s.stream));
    HMOE_CUDA_CHECK(cudaStreamSynchronize(s.stream));

    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i)
      if (got[size_t(i)] != hmoe::f32_to_bf16(host[size_t(i)])) ++bad;
    *mismatches = bad;
  });
}
