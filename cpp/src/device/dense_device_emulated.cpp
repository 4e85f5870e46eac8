// The host-emulated dense device: weights copied into memory it owns (as a GPU would hold them),
// linears computed by the CPU kernels of dense.h on an engine of its own. It lets the model's
// dense placement run and be tested without a GPU; it makes no speed claim.
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "device/dense_device.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/device.h"
#include "internal/status.hpp"

namespace {

using hmoe::fail;

void check(int status) {
  if (status != HMOE_OK) fail(status, "%s", hmoe_last_error());
}

class EmulatedDenseDevice final : public hmoe_dense_device {
 public:
  explicit EmulatedDenseDevice(int32_t threads) { check(hmoe_engine_create(threads < 1 ? 1 : threads, &engine_)); }
  ~EmulatedDenseDevice() override { hmoe_engine_free(engine_); }

  int32_t kind() const override { return HMOE_DEVICE_EMULATED; }

  void upload(const Weight& w, const void* data, const float* bias) override {
    Stored s;
    const size_t wb = size_t(w.bytes - (w.has_bias ? w.out * 4 : 0));
    s.w.reset(new unsigned char[wb]);
    std::memcpy(s.w.get(), data, wb);
    if (bias) s.bias.assign(bias, bias + w.out);
    stored_.push_back(std::move(s));
  }

  void linears(int32_t count, const int32_t* ids, const float* x, int64_t n, float* y) override {
    int64_t at = 0;
    for (int32_t i = 0; i < count; ++i) {
      linear(ids[i], x, n, y + at);
      at += n * weights[size_t(ids[i])].out;
    }
  }

  void mlp(int32_t gate, int32_t up, int32_t down, const float* x, int64_t n, float* y) override {
    const int64_t ff = weights[size_t(gate)].out;
    g_.resize(size_t(n * ff));
    u_.resize(size_t(n * ff));
    linear(gate, x, n, g_.data());
    linear(up, x, n, u_.data());
    for (size_t i = 0; i < g_.size(); ++i) {
      const double a = g_[i];
      g_[i] = float(a / (1.0 + std::exp(-a))) * u_[i];  // as the model's CPU path (Act.siluMul)
    }
    linear(down, g_.data(), n, y);
  }

 private:
  struct Stored {
    std::unique_ptr<unsigned char[]> w;
    std::vector<float> bias;
  };

  void linear(int32_t id, const float* x, int64_t n, float* y) {
    const Weight& w = weights[size_t(id)];
    const Stored& s = stored_[size_t(id)];
    check(hmoe_dense_linear(engine_, x, n, w.in, s.w.get(), w.dtype, w.out, s.bias.empty() ? nullptr : s.bias.data(),
                            y));
  }

  hmoe_engine_t* engine_ = nullptr;  // owned
  std::vector<Stored> stored_;       // per weight id
  std::vector<float> g_, u_;         // MLP intermediates [n, ff]
};

}  // namespace

extern "C" int hmoe_dense_device_create_emulated(int32_t threads, hmoe_dense_device_t** out) {
  return hmoe::guarded("hmoe_dense_device_create_emulated", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (threads < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "threads must be >= 0, got %d", threads);
    *out = new EmulatedDenseDevice(threads);
  });
}
