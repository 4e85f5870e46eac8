// Internal: oneDNN matmul as the operator's large-batch path (cpu_moe.cpp), and the OpenMP
// thread setting it shares with the benchmark helper (bench.cpp).
#pragma once

#include <cstdint>

namespace hmoe {

// Sets OpenMP's thread count (oneDNN's pool) if libgomp is loaded; it is, as oneDNN's dependency.
void set_omp_threads(int n);

// dst[m, N] (row stride ldd) = src[m, K] (row stride lds, f32 or bf16 per dtype) x W^T, with W
// [N, K] row-major in the same dtype, read in place (no reorder). Runs oneDNN on the calling
// thread's OpenMP team. Returns false, computing nothing, when oneDNN has no implementation for
// this dtype on this CPU (bf16 without AVX-512, say); other failures throw.
bool onednn_matmul(int dtype, int64_t m, int64_t K, int64_t N, const void* src, int64_t lds,
                   const void* w, float* dst, int64_t ldd);

// dst[m, N] = src[m, K] (f32) x W^T for bf16 weights W [N, K] (row stride K) where oneDNN has
// no bf16 matmul: blocks of W's rows (at most 2M values) widened to f32 for oneDNN's f32 matmul.
// Prefill-sized calls only: the widening reads W once, the GEMM reuses it for all m rows.
void onednn_matmul_bf16_widened(int64_t m, int64_t K, int64_t N, const float* src, int64_t lds,
                                const void* w, float* dst, int64_t ldd);

// dst[m, N] = src[m, K] x W^T for bf16 weights W [N, K], under cpu_moe.h's bf16 rule: src must
// already hold bf16 values (act_rule.hpp's round_bf16), so that both ways compute the same exact
// products: oneDNN's bf16 matmul where it has one (src_bf16, the same rows as bf16 bits with
// stride lds, or null to convert src here, exactly), else onednn_matmul_bf16_widened on src. A missing bf16 implementation is remembered,
// so later calls neither try it nor round the activations.
void onednn_matmul_bf16_any(int64_t m, int64_t K, int64_t N, const float* src, int64_t lds, const uint16_t* src_bf16,
                            const void* w, float* dst, int64_t ldd);

}  // namespace hmoe
