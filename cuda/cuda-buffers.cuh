// Internal: RAII owners of device and pinned host memory that grow on demand. Growing frees the
// old allocation, so callers synchronize the streams that may still use it first.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda-check.cuh"

namespace hmoe::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { if (p_) cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  // Ensures room for `bytes`; returns true when it reallocated (old contents lost).
  bool reserve(size_t bytes) {
    if (bytes <= cap_) return false;
    if (p_) cudaFree(p_);
    p_ = nullptr;
    cap_ = 0;
    size_t want = bytes + bytes / 4;  // headroom: fewer reallocations as batches vary
    HMOE_CUDA_CHECK(cudaMalloc(&p_, want));
    cap_ = want;
    return true;
  }
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  size_t capacity() const { return cap_; }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { if (p_) cudaFreeHost(p_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  bool reserve(size_t bytes) {
    if (bytes <= cap_) return false;
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    cap_ = 0;
    size_t want = bytes + bytes / 4;
    HMOE_CUDA_CHECK(cudaHostAlloc(&p_, want, cudaHostAllocDefault));
    cap_ = want;
    return true;
  }
  template <typename T> T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

// Sets device `index` current for the scope, restoring the previous one.
class DeviceScope {
 public:
  explicit DeviceScope(int index) {
    HMOE_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != index) HMOE_CUDA_CHECK(cudaSetDevice(index));
  }
  ~DeviceScope() { cudaSetDevice(prev_); }

 private:
  int prev_ = 0;
};

}  // namespace hmoe::cuda
