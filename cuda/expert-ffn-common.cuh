// Internal: device helpers shared by the expert kernels (expert-ffn-stream.cu, expert-ffn-mma.cu).
#pragma once

#include <cuda_bf16.h>

#include "expert-ffn.cuh"

namespace hmoe::cuda::detail {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float silu(float v) { return v / (1.0f + __expf(-v)); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// cpu_moe.h's bf16 rule: an activation rounded to the nearest bf16 before it meets a bf16 weight.
__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

__device__ __forceinline__ void bf16x8_to_f32(const uint4& u, float (&f)[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ const unsigned char* wrow(const ExpertArgs& a, int slot, int p, int64_t row) {
  return a.slots + slot * a.slot_bytes + a.weights_at[p] + row * a.row_bytes[p];
}

__device__ __forceinline__ const float* srow(const ExpertArgs& a, int slot, int p, int64_t row) {
  return reinterpret_cast<const float*>(a.slots + slot * a.slot_bytes + a.scales_at[p]) +
         row * a.scales_per_row[p];
}

}  // namespace hmoe::cuda::detail
