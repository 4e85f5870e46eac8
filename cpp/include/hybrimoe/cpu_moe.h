/*
 * hybrimoe engine: the CPU mixture-of-experts operator (included by hmoe.h).
 *
 * An expert layer describes E experts of one MoE layer: format, d_model (d), d_ff (ff), and per
 * expert three projections, each [out, in] row-major, applied as x @ W^T:
 *   gate [ff, d], up [ff, d], down [d, ff];   FFN_e(x) = down(silu(gate(x)) * up(x)).
 * Weights are either borrowed from the caller (hmoe_expert_layer_set_expert: an mmapped file or a
 * direct buffer, kept by pointer, never copied) or converted by the engine into memory the layer
 * owns (hmoe_expert_layer_quantize_expert). HF's packed layout (gate_up_proj [E, 2ff, d] with gate
 * rows 0..ff-1 and up rows ff..2ff-1, down_proj [E, d, ff]) and the classic per-expert w1/w3/w2
 * tensors both map onto per-expert pointers with pointer arithmetic only.
 *
 * Row storage per format, for a projection with `in` inputs (rows are contiguous, no padding
 * between rows other than what the format says):
 *   HMOE_FORMAT_F32   in x f32.
 *   HMOE_FORMAT_BF16  in x bf16 (uint16 bits).
 *   HMOE_FORMAT_INT8  in x int8, symmetric; scales: one f32 per output row, w = q * scale[row].
 *   HMOE_FORMAT_INT4  symmetric, group-wise along `in`: G = group_size (32, 64 or 128); the row is
 *                     padded with zeros to in_pad = round_up(in, G) and stored as in_pad/2 bytes:
 *                     each block of 32 values is 16 bytes, byte j holding value j in its low
 *                     nibble and value j+16 in its high nibble, as q + 8 (q in -8..7, the engine's
 *                     quantizer uses -7..7); scales: [rows, in_pad / G] f32, w = q * scale.
 *
 * What every kernel computes (the arithmetic rule). One rule per weight format, followed by every
 * implementation: scalar, AVX2, AVX-512, oneDNN, the emulated device (which runs these kernels)
 * and CUDA (cuda/). Variants differ only in the order in which they add products, so one
 * tolerance per format holds on every CPU. y = x . w for one output row and one token; "x" is
 * the projection's input: a token's activations for gate and up, H = silu(gate) * up (f32) for
 * down. Accumulation is in f32 or wider.
 *   F32   x as given (f32) times the f32 weights.
 *   BF16  x rounded to the nearest bf16 first (ties to even, NaN kept), then times the bf16
 *         weights: every product of two bf16 values is exact in f32. This is what VDPBF16PS, AMX,
 *         oneDNN's bf16 matmul, tensor cores and HF's bf16 models compute; AVX2 and scalar round
 *         x in the same way and multiply in f32. Cost against f32 activations: one bf16 rounding
 *         of each input (relative 2^-9 at most): up to 3.2e-3 of max |output| on an FFN (ctest
 *         cpu-moe prints it per case as "vs exact").
 *   INT8  x quantized per token to int8: amax = max|x| over the token's row, s_x = amax / 127,
 *         q = nearbyint(clamp(x * (127 / amax), -127, 127)) in f32 (amax 0: q = 0, s_x = 0; a row
 *         holding NaN or inf: s_x = NaN). y = float(sum q * w_q) * (s_w[row] * s_x): the sum is
 *         exact in integers (VPDPBUSD, VPMADDUBSW, a scalar loop), so every variant gives the
 *         same bits.
 *   INT4  x quantized as for INT8. y = (sum over 32-value blocks b of s_w[row, group(b)] * I_b)
 *         * s_x, I_b = sum over the block of q * w_q, exact in integers.
 * The quantization to int8 costs up to 2.4e-2 (int8) and 2.9e-2 (int4) of max |output| on an FFN
 * against f32 activations (random inputs, weights' own quantization excluded); it is what VNNI
 * and llama.cpp's quantized formats compute, and what makes them fast.
 */
#ifndef HYBRIMOE_CPU_MOE_H
#define HYBRIMOE_CPU_MOE_H

#include "hybrimoe/hmoe.h" /* hmoe_engine_t, HMOE_API; hmoe.h includes this file at its end */

#ifdef __cplusplus
extern "C" {
#endif

/* Weight formats of an expert layer. */
#define HMOE_FORMAT_F32 0
#define HMOE_FORMAT_BF16 1
#define HMOE_FORMAT_INT8 2
#define HMOE_FORMAT_INT4 3

/* Element types of activations and quantization sources. */
#define HMOE_DTYPE_F32 0
#define HMOE_DTYPE_BF16 1

/* Projections of an expert. */
#define HMOE_PROJ_GATE 0
#define HMOE_PROJ_UP 1
#define HMOE_PROJ_DOWN 2

typedef struct hmoe_expert_layer hmoe_expert_layer_t;

/* Bytes of one stored row of a projection with `in` inputs (group_size only matters for INT4);
 * scales per row (0 for F32/BF16, 1 for INT8, in_pad/G for INT4). Any thread. */
HMOE_API int hmoe_expert_format_row_bytes(int32_t format, int64_t in, int32_t group_size,
                                          int64_t* row_bytes, int64_t* scales_per_row);

/* Creates an empty layer: n_experts experts, none with weights yet. group_size: 32, 64 or 128
 * for INT4, ignored otherwise. *out is owned by the caller (hmoe_expert_layer_free). d_model and
 * d_ff >= 1, n_experts in 1..65536. Any thread. */
HMOE_API int hmoe_expert_layer_create(int32_t format, int64_t n_experts, int64_t d_model,
                                      int64_t d_ff, int32_t group_size, hmoe_expert_layer_t** out);

/* Releases the layer and the memory it owns; NULL accepted. Borrowed weights are untouched.
 * Must not overlap any other call using the layer. */
HMOE_API void hmoe_expert_layer_free(hmoe_expert_layer_t* layer);

/* Borrows caller weights for expert e, in the layer's format: gate [ff rows], up [ff rows],
 * down [d rows] (row bytes as above); scales: NULL for F32/BF16, [ff]/[ff]/[d] for INT8,
 * [ff, ff_groups]... i.e. [rows, scales_per_row] for INT4. The layer keeps the pointers, not
 * copies: the bytes must stay valid and unchanged until the layer is freed or the expert is set
 * again. Any pointer may be unaligned. Not thread-safe against runs using the layer. */
HMOE_API int hmoe_expert_layer_set_expert(hmoe_expert_layer_t* layer, int64_t e, const void* gate,
                                          const void* up, const void* down,
                                          const float* gate_scales, const float* up_scales,
                                          const float* down_scales);

/* Converts expert e from f32 or bf16 source weights (src_dtype HMOE_DTYPE_*; gate/up [ff, d],
 * down [d, ff], row-major, caller-owned, read only during the call) into the layer's format, in
 * memory the layer owns: bf16 rounds to nearest even; INT8 uses scale = max|row| / 127; INT4
 * scale = max|group| / 7 with q in -7..7. engine may be NULL (one thread) or the engine whose
 * pool does the work. Not thread-safe against runs using the layer. */
HMOE_API int hmoe_expert_layer_quantize_expert(hmoe_expert_layer_t* layer, hmoe_engine_t* engine,
                                               int64_t e, int32_t src_dtype, const void* gate,
                                               const void* up, const void* down);

/* Writes expert e's projection `proj` (HMOE_PROJ_*) as f32 into out: [ff, d] for gate and up,
 * [d, ff] for down; exactly what the kernels multiply by (before activation rounding). For
 * tests and references. Any thread, as long as the expert is not being set concurrently. */
HMOE_API int hmoe_expert_layer_dequantize(const hmoe_expert_layer_t* layer, int64_t e, int32_t proj,
                                          float* out);

/* The layer's format, experts, d_model, d_ff and group size. Any thread. */
HMOE_API int hmoe_expert_layer_info(const hmoe_expert_layer_t* layer, int32_t* format,
                                    int64_t* n_experts, int64_t* d_model, int64_t* d_ff,
                                    int32_t* group_size);

/* The MoE operator: for every token t and slot j with expert e = ids[t*top_k + j] selected by
 * expert_mask (expert_mask[e] != 0; NULL selects all), out[t] += weights[t*top_k + j] * FFN_e(x[t]).
 *   x        [n_tokens, d_model], x_dtype HMOE_DTYPE_F32 or HMOE_DTYPE_BF16
 *   ids      [n_tokens, top_k] int32 in 0..n_experts-1; a negative id means "no expert" (skipped)
 *   weights  [n_tokens, top_k] f32 routing weights
 *   expert_mask  [n_experts] uint8 or NULL
 *   out      [n_tokens, d_model] f32, accumulated into (not overwritten)
 * Experts with no selected token cost nothing; a selected expert without weights set is
 * HMOE_ERR_STATE. Every path computes the rule above; the kernel variant (hmoe_kernel_variant)
 * decides the code: scalar (the reference), AVX2+FMA (f32 and bf16 widened, int8/int4 by
 * VPMADDUBSW), AVX-512 (f32 FMA, bf16 by VDPBF16PS where the CPU has AVX512_BF16, int8/int4 by
 * VPDPBUSD where it has VNNI). Runs on the engine's pool, the calling thread included. Calls on one engine are
 * serialized (a second caller waits); the layer may be shared by engines. x, ids, weights and out
 * must not overlap out. */
HMOE_API int hmoe_cpu_moe_run(hmoe_engine_t* engine, const hmoe_expert_layer_t* layer,
                              const void* x, int32_t x_dtype, int64_t n_tokens, int32_t top_k,
                              const int32_t* ids, const float* weights, const uint8_t* expert_mask,
                              float* out);

/* Experts with at least min_tokens tokens in one hmoe_cpu_moe_run call are computed by oneDNN's
 * matmul (f32 and bf16 weights only, where oneDNN implements the dtype on this CPU; otherwise
 * the engine's kernels), reading the weights in place, under the same rule. 0 = never. Default: the environment
 * variable HMOE_ONEDNN_MIN_TOKENS at engine creation, else 128. Waits for a running call. */
HMOE_API int hmoe_engine_set_onednn_min_tokens(hmoe_engine_t* engine, int32_t min_tokens);

/* ---- measurement helpers for bench-cpu (not used on inference paths) ------------------------ */

/* Read bandwidth of this machine: the engine's threads sum a buffer of `bytes` (allocated and
 * filled here, at least 64 MiB) `iters` times; *gbps gets the median over the passes in 1e9 B/s.
 * One thread per engine. */
HMOE_API int hmoe_cpu_bandwidth_probe(hmoe_engine_t* engine, int64_t bytes, int32_t iters,
                                      double* gbps);

/* Times oneDNN's matmul on the FFN of one expert: [m, d] x [d, ff] twice (gate, up) and
 * [m, ff] x [ff, d] (down), weights as [out, in] in dtype (HMOE_DTYPE_F32 or _BF16), over
 * `experts` distinct weight copies visited in turn (so that they do not sit in cache). oneDNN
 * runs with as many OpenMP threads as the engine has, while the engine's pool is idle. *seconds
 * gets the median seconds of one FFN. One thread per engine. */
HMOE_API int hmoe_onednn_ffn_time(hmoe_engine_t* engine, int32_t dtype, int64_t m, int64_t d,
                                  int64_t ff, int32_t experts, int32_t iters, double* seconds);

#ifdef __cplusplus
}
#endif

#endif /* HYBRIMOE_CPU_MOE_H */
