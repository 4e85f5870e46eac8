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

}  // namespace hmoe
