/*
 * hybrimoe engine: dense linears on a device (the GPU side of the model's dense layers).
 *
 * The dense weights of a MoE model (attention projections, dense MLP layers, shared experts, the
 * LM head) are read in full for every token; on the CPU they cost as much memory traffic as the
 * routed experts do. A dense device holds copies of such weights in its own memory and computes
 * the linears there, with activations coming from and going back to host memory in each call
 * (the model's norms, RoPE, attention over the KV cache and routing stay on the CPU).
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

#ifdef __cplusplus
}
#endif

#endif /* HYBRIMOE_DENSE_DEVICE_H */
