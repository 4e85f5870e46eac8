// Internal: turning CUDA runtime errors into hmoe::Error (status HMOE_ERR_CUDA) with the call's
// text, so that they reach Java as exceptions instead of aborting.
#pragma once

#include <cuda_runtime.h>

#include "internal/status.hpp"

#define HMOE_CUDA_CHECK(call)                                                           \
  do {                                                                                  \
    cudaError_t err_ = (call);                                                          \
    if (err_ != cudaSuccess) {                                                          \
      (void)cudaGetLastError(); /* clear the sticky-free error state */                 \
      ::hmoe::fail(err_ == cudaErrorMemoryAllocation ? HMOE_ERR_OUT_OF_MEMORY : HMOE_ERR_CUDA, \
                   "%s failed: %s (%s)", #call, cudaGetErrorString(err_), cudaGetErrorName(err_)); \
    }                                                                                   \
  } while (0)
