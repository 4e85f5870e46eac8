// Internal: the dense device behind cpp/include/hybrimoe/dense_device.h. The C ABI functions
// (dense_device_api.cpp) validate ids and shapes against the weight table kept here;
// implementations (CUDA in cuda/dense-device.cu, host-emulated in dense_device_emulated.cpp)
// only store bytes and compute.
#pragma once

#include <cstdint>
#include <vector>

#include "hybrimoe/dense_device.h"

struct hmoe_dense_device {
  // What the ABI layer knows of an uploaded weight; implementations keep the bytes, indexed alike.
  struct Weight {
    int32_t dtype;
    int64_t out, in;
    bool has_bias;
    int64_t bytes;  // device memory it takes, bias included
  };

  hmoe_dense_device() = default;
  virtual ~hmoe_dense_device() = default;
  hmoe_dense_device(const hmoe_dense_device&) = delete;
  hmoe_dense_device& operator=(const hmoe_dense_device&) = delete;

  virtual int32_t kind() const = 0;
  // Stores weight number weights.size() (the caller appends its entry afterwards). Throws
  // HMOE_ERR_OUT_OF_MEMORY, keeping nothing, when it does not fit.
  virtual void upload(const Weight& w, const void* data, const float* bias) = 0;
  // Validated by the caller: ids exist, share `in`; y is the concatenation of the [n, out_i].
  virtual void linears(int32_t count, const int32_t* ids, const float* x, int64_t n, float* y) = 0;
  // Validated: gate, up [ff, d], down [d, ff].
  virtual void mlp(int32_t gate, int32_t up, int32_t down, const float* x, int64_t n, float* y) = 0;

  std::vector<Weight> weights;
  int64_t bytes = 0;
};
