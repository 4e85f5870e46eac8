// Internal: timing device work with CUDA events, the way every benchmark here reports it.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "cuda-check.cuh"

namespace hmoe::cuda {

// Median of `reps` timings of body(stream), after one warm-up.
template <typename Body>
inline float median_ms(cudaStream_t s, int reps, Body body) {
  cudaEvent_t a = nullptr, b = nullptr;
  std::vector<float> ms;
  try {
    HMOE_CUDA_CHECK(cudaEventCreate(&a));
    HMOE_CUDA_CHECK(cudaEventCreate(&b));
    body(s);
    HMOE_CUDA_CHECK(cudaStreamSynchronize(s));
    for (int r = 0; r < reps; ++r) {
      HMOE_CUDA_CHECK(cudaEventRecord(a, s));
      body(s);
      HMOE_CUDA_CHECK(cudaEventRecord(b, s));
      HMOE_CUDA_CHECK(cudaEventSynchronize(b));
      float t = 0;
      HMOE_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
  } catch (...) {
    if (a) cudaEventDestroy(a);
    if (b) cudaEventDestroy(b);
    throw;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace hmoe::cuda
