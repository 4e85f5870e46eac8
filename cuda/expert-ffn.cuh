// Internal: expert FFN kernels over experts held in device slots (bf16 or int4, cpu_moe.h rows).
//   out[token] += w * down(silu(gate(x)) * up(x))   for every (token, w) pair of every run
// Runs with few tokens (decode) take a streaming path: one warp per weight row, 16-byte loads,
// several in flight. Runs with many tokens (prefill) take a tensor-core path (WMMA bf16 -> f32).
// Both compute cpu_moe.h's rule: bf16 weights against activations rounded to bf16; int4 weights
// against activations quantized per row to int8, integer block sums (dp4a, or WMMA on the integer
// values held exactly in bf16, one 32-value block per tile) scaled per block.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace hmoe::cuda {

constexpr int kSmallRunTokens = 8;  // runs with at most this many tokens take the streaming path

struct ExpertArgs {
  const unsigned char* slots;  // slot s starts at slots + s * slot_bytes
  int64_t slot_bytes;
  bool int4;                   // else bf16
  int group;                   // int4 group size
  int64_t weights_at[3];       // per projection (gate, up, down): offsets in a slot
  int64_t scales_at[3];
  int64_t row_bytes[3];
  int64_t scales_per_row[3];
  int d;                       // d_model
  int ff;                      // d_ff
  const float* x;              // [n_tokens, d]
  const int32_t* run_slot;     // [n_runs]
  const int32_t* run_offset;   // [n_runs + 1]
  const int32_t* pair_token;   // [n_pairs]
  const float* pair_weight;    // [n_pairs]
  float* h;                    // [n_pairs, ff] scratch, streaming path
  __nv_bfloat16* a_bf16;       // [n_pairs, d] scratch, tensor-core path (gathered x)
  __nv_bfloat16* h_bf16;       // [n_pairs, ff] scratch, tensor-core path
  float* out;                  // [n_tokens, d], zeroed before, accumulated with atomics
  // int4: activations quantized per row (the row's scale repeated per block of 32, padded widths
  // d_pad, ff_pad), for both paths.
  int n_tokens, n_pairs, d_pad, ff_pad;
  int8_t* xq;                  // [n_tokens, d_pad]
  float* xq_scale;             // [n_tokens, d_pad / 32]
  int* xq_sum;                 // [n_tokens, d_pad / 32]
  int8_t* hq;                  // [n_pairs, ff_pad]
  float* hq_scale;             // [n_pairs, ff_pad / 32]
  int* hq_sum;                 // [n_pairs, ff_pad / 32]
};

// Streaming path (expert-ffn-stream.cu) over runs of at most kSmallRunTokens tokens, and the
// tensor-core path (expert-ffn-mma.cu) over larger runs. runs: device array of run indices;
// max_tokens: most tokens in one of them. Separate files so that they compile in parallel.
void launch_expert_stream(const ExpertArgs& a, const int32_t* runs, int n_runs, int max_tokens,
                          cudaStream_t stream);
void launch_expert_mma(const ExpertArgs& a, const int32_t* runs, int n_runs, int max_tokens,
                       cudaStream_t stream);

// int4 activations: rows [rows, cols] of src (row stride `stride`) quantized per row to int8 as
// the CPU's rule (q [rows, q_stride], s and sum [rows, q_stride / 32]).
void quantize_act_rows(const float* src, int rows, int cols, int64_t stride, int8_t* q, float* s, int* sum,
                       int q_stride, cudaStream_t stream);

inline void launch_expert_ffn(const ExpertArgs& a, const int32_t* small_runs, int n_small, int max_small,
                              const int32_t* large_runs, int n_large, int max_large, cudaStream_t stream) {
  if (a.int4 && n_small + n_large > 0)  // every token's x as int8 rows, for both paths
    quantize_act_rows(a.x, a.n_tokens, a.d, a.d, a.xq, a.xq_scale, a.xq_sum, a.d_pad, stream);
  launch_expert_stream(a, small_runs, n_small, max_small, stream);
  launch_expert_mma(a, large_runs, n_large, max_large, stream);
}

}  // namespace hmoe::cuda
