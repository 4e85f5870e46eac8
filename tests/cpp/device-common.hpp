// Shared by the device tests: experts in a slot's storage (bf16 or int4 blocks), a float64
// reference of the routed expert FFN, and the error measure. Header-only, test code.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hybrimoe/device.h"
#include "internal/bf16.hpp"

namespace device_test {

// One expert in a device slot's storage: per projection the stored rows (bf16, or int4 blocks
// of 32 values in 16 bytes, low nibble j / high nibble j+16, q + 8), int4 group scales, and the
// float64 values the kernels must multiply by.
struct Expert {
  std::vector<uint8_t> w[3];
  std::vector<float> s[3];
  std::vector<double> deq[3];  // [rows, in]
};

inline std::vector<Expert> make_experts(int E, int d, int ff, int format, int group, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(float(d)));
  std::uniform_int_distribution<int> qd(-8, 7);
  std::vector<Expert> ex(static_cast<size_t>(E));
  const int ins[3] = {d, d, ff}, rows[3] = {ff, ff, d};
  for (auto& e : ex) {
    for (int p = 0; p < 3; ++p) {
      const int in = ins[p], R = rows[p];
      e.deq[p].assign(size_t(R) * in, 0.0);
      if (format == HMOE_FORMAT_BF16) {
        e.w[p].resize(size_t(R) * in * 2);
        for (int i = 0; i < R * in; ++i) {
          const uint16_t h = hmoe::f32_to_bf16(nd(rng));
          std::memcpy(&e.w[p][size_t(i) * 2], &h, 2);
          e.deq[p][size_t(i)] = double(hmoe::bf16_to_f32(h));
        }
      } else {
        const int in_pad = (in + group - 1) / group * group;
        e.w[p].assign(size_t(R) * in_pad / 2, 0x88);  // q = 0 everywhere, padding included
        e.s[p].resize(size_t(R) * (in_pad / group));
        for (auto& v : e.s[p]) v = std::fabs(nd(rng)) / 4 + 1e-3f;
        for (int r = 0; r < R; ++r) {
          for (int k = 0; k < in; ++k) {
            const int q = qd(rng);
            uint8_t& byte = e.w[p][size_t(r) * (in_pad / 2) + size_t(k / 32) * 16 + size_t(k % 16)];
            if ((k % 32) < 16) byte = uint8_t((byte & 0xf0) | (q + 8));
            else byte = uint8_t((byte & 0x0f) | ((q + 8) << 4));
            e.deq[p][size_t(r) * in + k] = double(q) * e.s[p][size_t(r) * (in_pad / group) + size_t(k / group)];
          }
        }
      }
    }
  }
  return ex;
}

inline double bf(uint16_t h) { return double(hmoe::bf16_to_f32(h)); }
inline double round_bf(double v) { return bf(hmoe::f32_to_bf16(float(v))); }

// out[t] = sum_j w[t,j] * FFN_{ids[t,j]}(x[t]) over experts with a slot, in float64. The
// tensor-core path rounds activations (and int4 weights after scaling) to bf16: mimic that there.
inline std::vector<double> reference(const std::vector<Expert>& ex, int d, int ff, const std::vector<float>& x,
                              int n, const std::vector<int32_t>& ids, const std::vector<float>& w, int k,
                              const std::vector<int32_t>& slot_of, bool tensor_path) {
  std::vector<double> out(size_t(n) * d, 0.0);
  std::vector<double> h(static_cast<size_t>(ff));
  auto W = [&](const Expert& E, int p, size_t i) { return tensor_path ? round_bf(E.deq[p][i]) : E.deq[p][i]; };
  for (int t = 0; t < n; ++t) {
    for (int j = 0; j < k; ++j) {
      const int e = ids[size_t(t) * k + j];
      if (slot_of[size_t(e)] < 0) continue;
      const Expert& E = ex[size_t(e)];
      for (int r = 0; r < ff; ++r) {
        double g = 0, u = 0;
        for (int c = 0; c < d; ++c) {
          double xv = x[size_t(t) * d + c];
          if (tensor_path) xv = round_bf(xv);
          g += W(E, 0, size_t(r) * d + c) * xv;
          u += W(E, 1, size_t(r) * d + c) * xv;
        }
        h[size_t(r)] = g / (1.0 + std::exp(-g)) * u;
        if (tensor_path) h[size_t(r)] = round_bf(h[size_t(r)]);
      }
      for (int c = 0; c < d; ++c) {
        double y = 0;
        for (int r = 0; r < ff; ++r) y += W(E, 2, size_t(c) * ff + r) * h[size_t(r)];
        out[size_t(t) * d + c] += w[size_t(t) * k + j] * y;
      }
    }
  }
  return out;
}

inline int load(hmoe_device_t* dev, int slot, const Expert& e, int stream) {
  const bool q = !e.s[0].empty();
  return hmoe_device_load(dev, slot, e.w[0].data(), e.w[1].data(), e.w[2].data(), q ? e.s[0].data() : nullptr,
                          q ? e.s[1].data() : nullptr, q ? e.s[2].data() : nullptr, stream);
}

inline double rel_err(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}


// Random top-k routing over E experts with distinct experts per token.
inline void random_routing(int n, int k, int E, std::mt19937& rng, std::vector<int32_t>& ids, std::vector<float>& w) {
  ids.assign(size_t(n) * k, 0);
  w.assign(size_t(n) * k, 0.0f);
  std::vector<int> perm(static_cast<size_t>(E));
  for (int t = 0; t < n; ++t) {
    for (int e = 0; e < E; ++e) perm[size_t(e)] = e;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < k; ++j) {
      ids[size_t(t) * k + j] = perm[size_t(j)];
      w[size_t(t) * k + j] = 0.25f + 0.5f * float(j);
    }
  }
}

}  // namespace device_test
