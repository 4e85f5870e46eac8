// Scalar expert kernels: the reference every vector variant is tested against. Each weight row is
// widened to f32 exactly (bf16 bits, int8 * row scale, int4 * group scale) and dotted with the f32
// activations in double precision; activations are never rounded or quantized here.
#include <cstring>
#include <vector>

#include "cpu/moe_kernels.hpp"
#include "hybrimoe/hmoe.h"
#include "internal/bf16.hpp"

namespace hmoe::cpu {

void permute_for_bf16(const float* src, float* dst, int64_t ld) {
  for (int64_t b = 0; b + 16 <= ld; b += 16)
    for (int j = 0; j < 8; ++j) {
      dst[b + j] = src[b + 2 * j];
      dst[b + 8 + j] = src[b + 2 * j + 1];
    }
}

void widen_row(const MatView& m, int64_t r, float* dst) {
  const auto* base = static_cast<const uint8_t*>(m.w) + r * m.row_bytes;
  switch (m.format) {
    case HMOE_FORMAT_F32:
      std::memcpy(dst, base, size_t(m.K) * 4);
      break;
    case HMOE_FORMAT_BF16:
      for (int64_t k = 0; k < m.K; ++k) {
        uint16_t h;
        std::memcpy(&h, base + 2 * k, 2);
        dst[k] = bf16_to_f32(h);
      }
      break;
    case HMOE_FORMAT_INT8: {
      const float s = m.scales[r];
      for (int64_t k = 0; k < m.K; ++k) dst[k] = float(static_cast<int8_t>(base[k])) * s;
      break;
    }
    case HMOE_FORMAT_INT4: {
      const float* s = m.scales + r * m.scales_per_row;
      for (int64_t k = 0; k < m.K; ++k) {
        const int64_t blk = k / 32, j = k % 32;
        const uint8_t byte = base[blk * 16 + (j & 15)];
        const int q = int(j < 16 ? (byte & 15) : (byte >> 4)) - 8;
        dst[k] = float(q) * s[k / m.group];
      }
      break;
    }
    default:
      break;
  }
}

void matmul_scalar(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy) {
  thread_local std::vector<float> row;
  row.resize(size_t(m.K));
  for (int64_t r = r0; r < r1; ++r) {
    widen_row(m, r, row.data());
    for (int t = 0; t < n; ++t) {
      const float* xt = x.f32 + t * x.ld;
      double acc = 0;
      for (int64_t k = 0; k < m.K; ++k) acc += double(row[size_t(k)]) * double(xt[k]);
      y[t * ldy + (r - r0)] = float(acc);
    }
  }
}

}  // namespace hmoe::cpu
