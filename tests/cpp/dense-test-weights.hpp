// Test helpers shared by the dense device tests: random weights of every dtype with their exact
// values, a float64 linear, the relative error measure, and the device under test.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/dense_device.h"
#include "internal/bf16.hpp"

namespace {

// IEEE half to float, for the reference.
double f16_value(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return s * std::ldexp(double(m), -24);
  return s * std::ldexp(double(m + 1024), e - 25);
}

uint16_t f16_bits(float f) {  // round to nearest, for |f| below 65504
  const uint16_t sign = f < 0 ? 0x8000 : 0;
  if (std::fabs(f) < std::ldexp(1.0, -14))  // subnormal (or zero): m * 2^-24; m = 1024 is the least normal
    return uint16_t(sign | std::lround(std::ldexp(double(std::fabs(f)), 24)));
  int e = 0;
  const double fr = std::frexp(double(std::fabs(f)), &e);  // f = fr * 2^e, fr in [0.5, 1)
  long m = std::lround(std::ldexp(fr, 11));               // 11 significant bits
  if (m == 2048) { m = 1024; ++e; }
  const int be = e - 1 + 15;
  return uint16_t(sign | (be << 10) | (m - 1024));
}

// A random [out, in] weight in dtype, with its exact values.
struct Weight {
  int32_t dtype;
  int64_t out, in;
  std::vector<uint8_t> bytes;
  std::vector<double> value;
  std::vector<float> bias;  // empty: none
};

Weight make_weight(int32_t dtype, int64_t out, int64_t in, bool bias, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(float(in)));
  Weight w{dtype, out, in, {}, {}, {}};
  const size_t es = dtype == HMOE_DTYPE_F32 ? 4 : 2;
  w.bytes.resize(size_t(out * in) * es);
  w.value.resize(size_t(out * in));
  for (size_t i = 0; i < w.value.size(); ++i) {
    const float v = nd(rng);
    if (dtype == HMOE_DTYPE_F32) {
      std::memcpy(&w.bytes[i * 4], &v, 4);
      w.value[i] = v;
    } else if (dtype == HMOE_DTYPE_BF16) {
      const uint16_t h = hmoe::f32_to_bf16(v);
      std::memcpy(&w.bytes[i * 2], &h, 2);
      w.value[i] = hmoe::bf16_to_f32(h);
    } else {
      const uint16_t h = f16_bits(v);
      std::memcpy(&w.bytes[i * 2], &h, 2);
      w.value[i] = f16_value(h);
    }
  }
  if (bias) {
    w.bias.resize(size_t(out));
    for (auto& b : w.bias) b = nd(rng);
  }
  return w;
}

// One input of a linear as the engine's rule has the weight's dtype see it (dense.h): rounded to
// f32, then for bf16 weights to bf16; f32 and f16 weights see the f32 value.
inline double rule_input(int32_t dtype, double v) {
  const float f = float(v);
  return dtype == HMOE_DTYPE_BF16 ? double(hmoe::bf16_to_f32(hmoe::f32_to_bf16(f))) : double(f);
}

// The float64 linear y [n, out] over an input of floats or doubles x [n, in], each input as the
// rule has the weight's dtype see it.
template <typename X>
std::vector<double> ref_linear(const Weight& w, const std::vector<X>& x, int64_t n) {
  std::vector<double> y(size_t(n * w.out)), xr(size_t(w.in));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < w.in; ++i) xr[size_t(i)] = rule_input(w.dtype, double(x[size_t(t * w.in + i)]));
    for (int64_t r = 0; r < w.out; ++r) {
      double s = w.bias.empty() ? 0.0 : w.bias[size_t(r)];
      for (int64_t i = 0; i < w.in; ++i) s += w.value[size_t(r * w.in + i)] * xr[size_t(i)];
      y[size_t(t * w.out + r)] = s;
    }
  }
  return y;
}

std::vector<float> randn(size_t count, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(count);
  for (auto& f : v) f = nd(rng);
  return v;
}

// Largest |a - b| / (1 + |b|).
double max_err(const float* a, const double* b, size_t count) {
  double e = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    e = std::max(e, std::fabs(double(a[i]) - b[i]) / (1.0 + std::fabs(b[i])));
  }
  return e;
}

int32_t upload(hmoe_dense_device_t* dev, const Weight& w) {
  int32_t id = -1;
  CHECK_OK(hmoe_dense_device_upload(dev, w.bytes.data(), w.dtype, w.out, w.in, w.bias.empty() ? nullptr : w.bias.data(),
                                    &id));
  return id;
}

// The device the test's argument names: "cuda" (exits 77, skipped, without a GPU) or the
// host-emulated one; null after a failed CHECK.
hmoe_dense_device_t* open_device(const std::string& which) {
  hmoe_dense_device_t* dev = nullptr;
  if (which == "cuda") {
    const int st = hmoe_dense_device_create_cuda(0, &dev);
    if (st == HMOE_ERR_NO_DEVICE) SKIP("no CUDA device");
    CHECK_OK(st);
  } else {
    CHECK_OK(hmoe_dense_device_create_emulated(2, &dev));
  }
  return dev;
}

}  // namespace
