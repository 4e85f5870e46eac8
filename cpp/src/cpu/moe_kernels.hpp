// Internal: the expert-projection kernels, one set per ISA, each in its own translation unit
// compiled with its flags (CMakeLists.txt). Plain structs and functions only: nothing here is an
// inline helper or template that an ISA translation unit could instantiate.
//
// A kernel computes y[t, r - r0] = sum_k x[t, k] * W[r, k] for rows r in [r0, r1) of one
// projection and tokens t in [0, n): weights [rows, K] in the projection's format, activations in
// the form the variant reads (ActView), y [n, ldy] f32 (overwritten).
#pragma once

#include <cstdint>

namespace hmoe::cpu {

// One projection of one expert: [rows, K] in `format` (HMOE_FORMAT_*), row storage as in
// cpu_moe.h; scales [rows] (int8) or [rows, Kp / group] (int4), else null.
struct MatView {
  const void* w;
  const float* scales;
  int64_t rows;
  int64_t K;
  int64_t row_bytes;
  int64_t scales_per_row;
  int32_t format;
  int32_t group;
};

// Activations of n tokens, prepared once per call by the operator (cpu_moe.cpp):
//  f32   [n, ld] f32, zero-padded from K to ld (ld a multiple of 128): scalar, AVX2, AVX-512 f32.
//  f32p  [n, ld] the f32 rows permuted per 16-value block as permute_for_bf16 writes them, or
//        null: AVX2 bf16 weights against one token (dot_bf16_perm in moe_avx2.cpp).
//  bf16  [n, ld] bf16 bits, zero-padded: AVX-512 bf16 weights (VDPBF16PS).
//  qu    [n, ld] uint8 = q + 128, q = round(x / qscale[t]) in -127..127 per token (symmetric),
//        padded with 128 (q = 0): AVX-512 VNNI int8/int4, AVX2 int4. VPDPBUSD multiplies u8 by s8, so the
//        kernels compute sum(qu * w) - 128 * sum(w) = sum(q * w), sum(w) by a second VPDPBUSD
//        with ones that every token of the row shares.
struct ActView {
  const float* f32;
  const float* f32p;
  const uint16_t* bf16;
  const uint8_t* qu;
  const float* qscale;
  int64_t ld;
};

// dst[16b + j] = src[16b + 2j] and dst[16b + 8 + j] = src[16b + 2j + 1] for j < 8, every block b
// of [ld] (ld a multiple of 16): the order in which an AVX2 register of 16 bf16 weights splits
// into even and odd values with one shift and one mask (f32p above).
void permute_for_bf16(const float* src, float* dst, int64_t ld);

// Row r of m widened to f32 exactly, into dst [K] (scalar; the dequantization reference).
void widen_row(const MatView& m, int64_t r, float* dst);

void matmul_scalar(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy);
void matmul_avx2(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                 int64_t ldy);
// AVX2 int4 with qu activations (VPMADDUBSW); y already scaled by qscale.
void matmul_avx2_q(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy);
// AVX-512F/BW/VL/DQ with f32 activations: f32 weights, and bf16 weights widened to f32 (the path
// for CPUs without AVX512_BF16).
void matmul_avx512(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                   int64_t ldy);
// AVX512_BF16: bf16 weights with bf16 activations, VDPBF16PS (f32 accumulation).
void matmul_avx512_bf16(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                        int64_t ldy);
// AVX512_VNNI: int8 and int4 weights with qu activations, VPDPBUSD; y already scaled by qscale.
void matmul_avx512_vnni(const MatView& m, int64_t r0, int64_t r1, const ActView& x, int n, float* y,
                        int64_t ldy);

// Streaming read of [n] bytes (n a multiple of 64) returning a sum nobody can optimize away;
// the bandwidth probe. Scalar version in bench.cpp, AVX2 here.
uint64_t read_sum_avx2(const void* p, int64_t n);

}  // namespace hmoe::cpu
