/*
 * hybrimoe engine: dense operations of a transformer forward pass on the CPU (the model runtime
 * calls them between MoE layers).
 *
 * Conventions: activations are f32, row-major; linear weights are [out, in] row-major and apply
 * as x @ W^T (HuggingFace's layout, read in place from a mapped file: never copied). Functions
 * that take an engine run on its worker pool, the calling thread included, and are serialized
 * with every other pool call on that engine (a second caller waits). Outputs must not overlap
 * inputs unless a function says it works in place.
 *
 * Linears follow the engine's arithmetic rule (cpu_moe.h, "What every kernel computes") on every
 * kernel variant, oneDNN and every dense device: f32 and f16 weights multiply the f32 activations
 * as given (f16 widened exactly); bf16 weights multiply the activations rounded to bf16 first, so
 * that every product is exact. Variants differ only in summation order.
 */
#ifndef HYBRIMOE_DENSE_H
#define HYBRIMOE_DENSE_H

#include "hybrimoe/hmoe.h" /* hmoe_engine_t, HMOE_API, HMOE_DTYPE_F32/BF16 (cpu_moe.h) */

#ifdef __cplusplus
extern "C" {
#endif

/* IEEE half precision weights (linear only); F32 and BF16 are defined in cpu_moe.h. */
#define HMOE_DTYPE_F16 2

/* RoPE pairings. HALF: dimension i pairs with i + rot_dim/2 (HF rotate_half: Llama, Mixtral,
 * Qwen). INTERLEAVED: dimensions 2i and 2i+1 pair (GPT-J; DeepSeek's MLA rope part). */
#define HMOE_ROPE_HALF 0
#define HMOE_ROPE_INTERLEAVED 1

typedef struct hmoe_kv_cache hmoe_kv_cache_t;

/* y = x @ W^T (+ bias):
 *   x     [n, in] f32          w  [out, in] in w_dtype (HMOE_DTYPE_F32, _BF16 or _F16), borrowed
 *   bias  [out] f32 or NULL    y  [n, out] f32, overwritten
 * Accumulates in f32; bf16 weights: x rounded to bf16 first (the rule above). Any pointer may be
 * unaligned; w is only read. */
HMOE_API int hmoe_dense_linear(hmoe_engine_t* engine, const float* x, int64_t n, int64_t in,
                               const void* w, int32_t w_dtype, int64_t out, const float* bias,
                               float* y);

/* Per-head linears in one call (heads do not share weights; DeepSeek MLA's absorbed products):
 *   y[t * ldy_token + h * ldy_head + r] = sum_i x[t * ldx_token + h * ldx_head + i] * W_h[r, i]
 * for t < n, h < heads, r < out, i < in; W_h [out, in] in w_dtype at w + h * w_head_stride
 * elements. The (token, head) output rows must not overlap (token-major [n, heads, out] or
 * head-major [heads, n, out], padding allowed): HMOE_ERR_INVALID_ARGUMENT otherwise. All heads
 * share one pass over the engine's pool. */
HMOE_API int hmoe_dense_linear_heads(hmoe_engine_t* engine, const float* x, int64_t n, int64_t heads,
                                     int64_t in, int64_t ldx_token, int64_t ldx_head, const void* w,
                                     int32_t w_dtype, int64_t w_head_stride, int64_t out, float* y,
                                     int64_t ldy_token, int64_t ldy_head);

/* RMSNorm per row, in place allowed (y == x): y[r] = w * x[r] / sqrt(mean(x[r]^2) + eps).
 *   x, y [n, dim] f32 with row strides x_stride, y_stride (elements, >= dim)
 *   w    [dim] f32 or NULL (no weight). Runs on the calling thread (cheap next to a linear). */
HMOE_API int hmoe_dense_rmsnorm(const float* x, int64_t n, int64_t dim, int64_t x_stride,
                                const float* w, float eps, float* y, int64_t y_stride);

/* Rotary position embedding, in place, on the first rot_dim elements of every head:
 *   x         element [t, h, i] at x[t * token_stride + h * head_stride + i]
 *   positions [n] int32 >= 0, the absolute position of each token
 *   inv_freq  [rot_dim / 2] f32: angle of pair i at position p is p * inv_freq[i] (the caller
 *             computes theta^(-2i/rot_dim), or YaRN's blend of it)
 *   mscale    multiplies cos and sin (1 without YaRN; YaRN's attention factor otherwise)
 *   style     HMOE_ROPE_HALF or HMOE_ROPE_INTERLEAVED. rot_dim even, >= 2.
 * Angles are computed in double and rounded once. Calling thread only. */
HMOE_API int hmoe_dense_rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride,
                             int64_t head_stride, int64_t rot_dim, const int32_t* positions,
                             const float* inv_freq, float mscale, int32_t style);

/* A KV cache of n_layers layers, each up to max_seq positions of n_kv_heads heads with k_dim
 * key and v_dim value elements (f32), owned by the cache. Each layer has a length: the
 * positions appended so far. *out is owned by the caller (hmoe_kv_cache_free). */
HMOE_API int hmoe_kv_cache_create(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads,
                                  int64_t k_dim, int64_t v_dim, hmoe_kv_cache_t** out);

/* A key-only ("shared KV") cache: like hmoe_kv_cache_create, but only keys are stored and the
 * value of a cached head is the first v_dim elements of its key (v_dim <= k_dim, else
 * HMOE_ERR_INVALID_ARGUMENT). n_layers * max_seq * n_kv_heads * k_dim floats in all. For
 * DeepSeek's absorbed MLA: key [c | pe], value c. hmoe_dense_attention ignores its v argument
 * (NULL allowed) on such a cache. */
HMOE_API int hmoe_kv_cache_create_shared_kv(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads,
                                            int64_t k_dim, int64_t v_dim, hmoe_kv_cache_t** out);

/* Either cache with its element type: dtype HMOE_DTYPE_F32 (exact), or HMOE_DTYPE_BF16 (half the
 * memory and attention traffic; keys and values rounded to nearest even as they are appended,
 * what a bf16 model's cache holds in HuggingFace). shared_kv nonzero: the key-only layout of
 * hmoe_kv_cache_create_shared_kv. Other dtypes: HMOE_ERR_INVALID_ARGUMENT. */
HMOE_API int hmoe_kv_cache_create_typed(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads,
                                        int64_t k_dim, int64_t v_dim, int32_t dtype, int32_t shared_kv,
                                        hmoe_kv_cache_t** out);

/* Frees the cache; NULL accepted. Must not overlap other calls using it. */
HMOE_API void hmoe_kv_cache_free(hmoe_kv_cache_t* cache);

/* Length (positions stored) of one layer. */
HMOE_API int hmoe_kv_cache_length(const hmoe_kv_cache_t* cache, int64_t layer, int64_t* out);

/* Sets every layer's length to min(length, its length): drops later positions (length 0 resets
 * the cache for a new sequence). No memory is freed. */
HMOE_API int hmoe_kv_cache_truncate(hmoe_kv_cache_t* cache, int64_t length);

/* Causal attention of n new tokens with a KV cache. The new keys and values are appended to
 * layer `layer` at positions L..L+n-1 (L = its length before the call, which grows by n); new
 * token t attends to positions 0..L+t:
 *   q    [n, n_heads, k_dim] f32 (RoPE already applied)
 *   k    [n, n_kv_heads, k_dim] f32, v [n, n_kv_heads, v_dim] f32 (ignored, may be NULL, for a
 *        shared-KV cache: the values are the keys' first v_dim elements)
 *   out  [n, n_heads, v_dim] f32, overwritten
 * Query head h reads KV head h / (n_heads / n_kv_heads) (grouped-query attention; n_heads a
 * multiple of n_kv_heads). scores = scale * q.k, softmax in f32 with the maximum subtracted.
 * HMOE_ERR_STATE when L + n exceeds max_seq. One call per cache at a time. */
HMOE_API int hmoe_dense_attention(hmoe_engine_t* engine, hmoe_kv_cache_t* cache, int64_t layer,
                                  const float* q, const float* k, const float* v, int64_t n,
                                  int64_t n_heads, float scale, float* out);

/* hmoe_dense_attention with a sliding window (Mistral/Mixtral sliding_window, Qwen's
 * use_sliding_window): new token t at position p = L + t attends to positions max(0, p - window +
 * 1)..p only, HuggingFace's sliding-window mask (kv > q - window). window 0: no window (the whole
 * cache, as hmoe_dense_attention). The cache still keeps every position. */
HMOE_API int hmoe_dense_attention_window(hmoe_engine_t* engine, hmoe_kv_cache_t* cache, int64_t layer,
                                         const float* q, const float* k, const float* v, int64_t n,
                                         int64_t n_heads, float scale, int64_t window, float* out);

#ifdef __cplusplus
}
#endif

#endif /* HYBRIMOE_DENSE_H */
