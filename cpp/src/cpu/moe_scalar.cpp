// Scalar expert kernels: the arithmetic rule of cpu_moe.h in plain C++, the reference every vector
// variant is tested against. f32 and bf16 rows are widened to f32 exactly and dotted with the f32
// activations (for bf16 already rounded to bf16 by the operator) in double precision; int8 and
// int4 rows are dotted in integers with the per-token int8 activations (qu), exactly as VPDPBUSD
// does, then scaled: int8 float(I) * (s_w * s_x), int4 (sum over 32-value blocks of s_w[g] * I_b)
// * s_x, the block sum in double.
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

namespace {

// q of activation k of a qu row (q + 128).
int act_q(const uint8_t* qu, int64_t k) { return int(qu[k]) - 128; }

void matmul_scalar_q(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y, int64_t ldy) {
  for (int64_t r = r0; r < r1; ++r) {
    const auto* base = static_cast<const uint8_t*>(m.w) + r * m.row_bytes;
    for (int t = 0; t < n; ++t) {
      const uint8_t* qt = x.qu + t * x.ld;
      if (m.format == HMOE_FORMAT_INT8) {
        int64_t acc = 0;
        for (int64_t k = 0; k < m.K; ++k) acc += int64_t(act_q(qt, k)) * static_cast<int8_t>(base[k]);
        y[t * ldy + (r - r0)] = float(acc) * (m.scales[r] * x.qscale[t]);
      } else {  // int4: 32-value blocks of 16 bytes, low nibbles values 0..15, high 16..31
        const float* s = m.scales + r * m.scales_per_row;
        const int64_t nblk = m.scales_per_row * m.group / 32;
        double acc = 0;
        for (int64_t b = 0; b < nblk; ++b) {
          int64_t blk = 0;
          for (int j = 0; j < 32; ++j) {
            const uint8_t byte = base[b * 16 + (j & 15)];
            blk += int64_t(int(j < 16 ? (byte & 15) : (byte >> 4)) - 8) * act_q(qt, b * 32 + j);
          }
          acc += double(s[b * 32 / m.group]) * double(blk);
        }
        y[t * ldy + (r - r0)] = float(acc) * x.qscale[t];
      }
    }
  }
}

}  // namespace

void matmul_scalar(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy) {
  if (m.format == HMOE_FORMAT_INT8 || m.format == HMOE_FORMAT_INT4) {
    matmul_scalar_q(m, r0, r1, x, n, y, ldy);
    return;
  }
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
