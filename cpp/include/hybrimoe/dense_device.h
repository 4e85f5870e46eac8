/*
 * hybrimoe engine: dense linears on a device (the GPU side of the model's dense layers).
 *
 * The dense weights of a MoE model (attention projections, dense MLP layers, shared experts, the
 * LM head) are read in full for every token; on the CPU they cost as much memory traffic as the
 * routed experts do. A dense device holds copies of such weights in its own memory and computes
 * the linears there, with activations coming from and going back to host memory in each call
 * (routing and the layer norms stay on the CPU). Whole attention sublayers, with their KV cache
 * in device memory, run through the functions at the end of this file.
 *
 * Two implementations share this ABI: CUDA (hmoe_dense_device_create_cuda: weights in GPU memory,
 * kernels on a stream of the device's own) and a host-emulated one (weights copied into host
 * memory, linears by the CPU kernels of dense.h on an engine of its own), which exists so that
 * the placement of dense weights and the model's calls through it run and are tested without a
 * GPU; it makes no speed claim.
 *
 * Weights are identified by the id hmoe_dense_device_upload returns (0, 1, 2, ... per device)
 * and live as long as the device. Every call is synchronous: outputs are written when it returns.
 *
 * Thread-safety: one thread per device handle at a time (calls must not overlap).
 */
#ifndef HYBRIMOE_DENSE_DEVICE_H
#define HYBRIMOE_DENSE_DEVICE_H

#include "hybrimoe/hmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmoe_dense_device hmoe_dense_device_t;

/* Most weights one hmoe_dense_device_linears call takes. */
#define HMOE_DENSE_MAX_GROUP 8

/* A CUDA dense device on GPU `index`. HMOE_ERR_NO_DEVICE without that GPU or in a build without
 * CUDA. *out owned by the caller (hmoe_dense_device_free). */
HMOE_API int hmoe_dense_device_create_cuda(int32_t index, hmoe_dense_device_t** out);

/* A host-emulated dense device whose linears run on an engine of its own with `threads` workers
 * (0 = 1). *out owned by the caller. */
HMOE_API int hmoe_dense_device_create_emulated(int32_t threads, hmoe_dense_device_t** out);

/* Frees the device and every weight on it; NULL accepted. */
HMOE_API void hmoe_dense_device_free(hmoe_dense_device_t* device);

/* kind: HMOE_DEVICE_CUDA or HMOE_DEVICE_EMULATED (device.h); weights: uploaded so far; bytes:
 * device memory they take. Any pointer may be NULL. */
HMOE_API int hmoe_dense_device_describe(const hmoe_dense_device_t* device, int32_t* kind,
                                        int32_t* weights, int64_t* bytes);

/* Copies a linear's weight onto the device:
 *   w     [out, in] in w_dtype (HMOE_DTYPE_F32, _BF16 or _F16), row-major as dense.h applies it
 *   bias  [out] f32 or NULL
 * *id receives its id. HMOE_ERR_OUT_OF_MEMORY when it does not fit: nothing is kept and the
 * device stays usable (the caller keeps that linear on the CPU). The host memory is only read
 * during the call. */
HMOE_API int hmoe_dense_device_upload(hmoe_dense_device_t* device, const void* w, int32_t w_dtype,
                                      int64_t out, int64_t in, const float* bias, int32_t* id);

/* Linears that share their input, x going over once: for i < count,
 *   y_i = x @ W_{ids[i]}^T + b_i,   y_i [n, out_i] f32 at y + n * (out_0 + ... + out_{i-1})
 *   x [n, in] f32 host; every weight of the group has the same `in`; 1 <= count <=
 *   HMOE_DENSE_MAX_GROUP. Accumulates in f32. */
HMOE_API int hmoe_dense_device_linears(hmoe_dense_device_t* device, int32_t count, const int32_t* ids,
                                       const float* x, int64_t n, float* y);

/* A SwiGLU MLP, its intermediate kept on the device: y = down(silu(gate(x)) * up(x)),
 *   gate, up [ff, d] and down [d, ff] (ids of uploaded weights), x [n, d] and y [n, d] f32 host.
 * silu(a) = a / (1 + e^-a). */
HMOE_API int hmoe_dense_device_mlp(hmoe_dense_device_t* device, int32_t gate, int32_t up, int32_t down,
                                   const float* x, int64_t n, float* y);

/* ---- Attention sublayers on the device ----
 *
 * A decoder layer's attention is registered once, over weights already uploaded; a KV cache is
 * created in device memory; then one hmoe_dense_device_attend call runs the whole sublayer for n
 * new tokens: x [n, d] goes over, out [n, d] comes back, and the projections, q/k or latent norms,
 * RoPE, the cache append, the attention over the cache and o_proj all run on the device. The
 * model's layer norms and residual adds stay with the caller (the hidden state is needed on the
 * host anyway: the CPU computes some experts of every MoE layer).
 *
 * Both forms follow dense.h's CPU operations exactly (the host-emulated device calls them): the
 * numbers are those of hmoe_dense_rmsnorm, hmoe_dense_rope, hmoe_dense_attention_window and
 * hmoe_dense_linear(_heads), up to f32 rounding order on CUDA. */

/* Where grouped-query attention normalises q and k (RMSNorm with eps): not at all; per head over
 * head_dim (Qwen3-MoE); over the whole projection (OLMoE). */
#define HMOE_QK_NORM_NONE 0
#define HMOE_QK_NORM_PER_HEAD 1
#define HMOE_QK_NORM_FULL 2

/* Grouped-query attention (Mixtral, Qwen2/3-MoE, OLMoE):
 *   q = x W_q^T + b  [n, heads, head_dim];  k, v = x W_k^T + b, x W_v^T + b  [n, kv_heads, head_dim]
 *   q_norm, k_norm: [head_dim] (PER_HEAD) or [heads * head_dim] / [kv_heads * head_dim] (FULL),
 *     NULL for NONE; applied with eps
 *   clip > 0: q, k and v clamped to [-clip, clip] after the norms (OLMoE's clip_qkv); 0: none
 *   RoPE HMOE_ROPE_HALF over the whole head: inv_freq [head_dim / 2], cos and sin times rope_scale
 *   scores = scale * q.k over the cache; window > 0: the last `window` positions only (0: all)
 *   out = attended [n, heads * head_dim] W_o^T + b
 * q, k, v, o are ids of uploaded weights: q [heads*head_dim, d], k and v [kv_heads*head_dim, d],
 * o [d, heads*head_dim]. The vectors are copied. *attn receives the sublayer's id. Its cache:
 * kv_heads heads of head_dim key and value floats. */
HMOE_API int hmoe_dense_device_add_gqa(hmoe_dense_device_t* device, int32_t q, int32_t k, int32_t v, int32_t o,
                                       int32_t heads, int32_t kv_heads, int32_t head_dim, int32_t qk_norm,
                                       const float* q_norm, const float* k_norm, float eps, const float* inv_freq,
                                       float rope_scale, float clip, int32_t window, float scale, int32_t* attn);

/* DeepSeek-V2 multi-head latent attention, absorbed (the cache holds the latent):
 *   q      = x W_qproj^T  or, with q-lora (q_proj = -1),  rmsnorm(x W_qa^T; q_a_norm, eps) W_qb^T
 *            [n, heads, nope + rope]
 *   [c|pe] = x W_kva^T [n, rank + rope];  c = rmsnorm(c; kv_a_norm, eps);  pe, q_pe roped
 *            (HMOE_ROPE_INTERLEAVED, inv_freq [rope / 2], rope_scale)
 *   cache  key [c | pe] (one head, rank + rope floats), value c (the key's first rank floats)
 *   q'_h   = [W_uk_h^T q_nope_h | q_pe_h];  o'_h = softmax(scale * q'_h . key) c   [n, heads, rank]
 *   out    = concat_h (W_uv_h o'_h) W_o^T
 * Weight ids: q_proj [heads*(nope+rope), d] or -1; q_a [q_rank, d], q_b [heads*(nope+rope), q_rank]
 * (-1 without q-lora); kv_a [rank + rope, d]; uk_t [heads*rank, nope] (per head W_uk_h^T, heads in
 * turn); kv_b [heads*(nope+vd), rank] (kv_b_proj as in the checkpoint: W_uv_h is rows h*(nope+vd)
 * + nope .. + vd); o [d, heads*vd]. q_a_norm [q_rank] (NULL without q-lora) and kv_a_norm [rank]
 * are copied. Its cache: shared KV, 1 head, key rank + rope, value rank. */
HMOE_API int hmoe_dense_device_add_mla(hmoe_dense_device_t* device, int32_t q_proj, int32_t q_a,
                                       const float* q_a_norm, int32_t q_b, int32_t kv_a, const float* kv_a_norm,
                                       int32_t uk_t, int32_t kv_b, int32_t o, int32_t heads, int32_t nope,
                                       int32_t rope, int32_t vd, int32_t rank, float eps, const float* inv_freq,
                                       float rope_scale, float scale, int32_t* attn);

/* A KV cache in device memory: n_layers layers of up to max_seq positions, n_kv_heads heads of
 * k_dim key and v_dim value elements of dtype (HMOE_DTYPE_F32, or _BF16: rounded to nearest even
 * as appended); shared_kv nonzero: keys only, the value is the key's first v_dim elements. Every
 * layer starts at length 0. *kv receives its id; HMOE_ERR_OUT_OF_MEMORY when it does not fit
 * (nothing kept). It lives until hmoe_dense_device_kv_free or the device's end. */
HMOE_API int hmoe_dense_device_kv_create(hmoe_dense_device_t* device, int64_t n_layers, int64_t max_seq,
                                         int64_t n_kv_heads, int64_t k_dim, int64_t v_dim, int32_t dtype,
                                         int32_t shared_kv, int32_t* kv);

/* Frees a cache's memory; its id is not reused. A freed or unknown id: HMOE_ERR_INVALID_ARGUMENT. */
HMOE_API int hmoe_dense_device_kv_free(hmoe_dense_device_t* device, int32_t kv);

/* Sets every layer's length to min(length, its length), as hmoe_kv_cache_truncate. */
HMOE_API int hmoe_dense_device_kv_truncate(hmoe_dense_device_t* device, int32_t kv, int64_t length);

/* Length (positions stored) of one layer. */
HMOE_API int hmoe_dense_device_kv_length(const hmoe_dense_device_t* device, int32_t kv, int64_t layer,
                                         int64_t* out);

/* Runs attention sublayer `attn` for n new tokens on layer `layer` of cache `kv` (whose geometry
 * must be the sublayer's): appends their keys and values at L..L+n-1 (L the layer's length, which
 * grows by n on success) and attends causally, token t over positions 0..L+t.
 *   x [n, d] f32 host (already normalised), positions [n] int32 >= 0 host (RoPE's positions),
 *   out [n, d] f32 host, overwritten.
 * HMOE_ERR_STATE when L + n exceeds max_seq. On an error the layer's length is unchanged. */
HMOE_API int hmoe_dense_device_attend(hmoe_dense_device_t* device, int32_t attn, int32_t kv, int64_t layer,
                                      const float* x, int64_t n, const int32_t* positions, float* out);

#ifdef __cplusplus
}
#endif

#endif /* HYBRIMOE_DENSE_DEVICE_H */
