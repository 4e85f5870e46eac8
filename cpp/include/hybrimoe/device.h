/*
 * hybrimoe engine: expert devices (the GPU side of a hybrid MoE layer).
 *
 * A device holds a fixed pool of expert slots, each big enough for one expert of one shape and
 * format, and three streams: compute, copy (demand transfers) and prefetch. Two implementations
 * share this ABI: CUDA (hmoe_device_create_cuda) and a host-emulated device that runs the same
 * streams, events and hazards on host threads (hmoe_device_create_emulated), so that the hybrid
 * pipeline runs and is tested on machines without a GPU.
 *
 * Hazards are enforced by the device, not by the caller:
 * - a load into a slot starts only after every kernel that may read the slot's old contents has
 *   finished (the slot is never overwritten while in use);
 * - a kernel that reads a slot starts only after that slot's last load has completed.
 * The host never blocks for either; it blocks only in hmoe_device_wait.
 *
 * Expert rows in a slot use the CPU engine's storage of each format (cpu_moe.h: bf16 rows; int4
 * rows of 16-byte blocks of 32 values with f32 group scales), so the same host bytes feed either
 * side. A slot holds gate [d_ff rows], up [d_ff rows], down [d_model rows], then the three scale
 * arrays (int4), each part starting on a 256-byte boundary. Loads take the three projections (and
 * their scales) as separate host pointers, so HF's packed layout (gate_up_proj[e] is gate then up)
 * and the classic per-expert layout (w1, w3, w2) both load with no host-side copy.
 *
 * Thread-safety: one thread per device handle (calls on a handle must not overlap), except
 * hmoe_device_slot_state which any thread may call.
 */
#ifndef HYBRIMOE_DEVICE_H
#define HYBRIMOE_DEVICE_H

#include "hybrimoe/hmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmoe_device hmoe_device_t;

#define HMOE_DEVICE_CUDA 1
#define HMOE_DEVICE_EMULATED 2

#define HMOE_STREAM_COMPUTE 0
#define HMOE_STREAM_COPY 1
#define HMOE_STREAM_PREFETCH 2

#define HMOE_SLOT_FREE 0    /* never loaded */
#define HMOE_SLOT_LOADING 1 /* a load is queued or running */
#define HMOE_SLOT_READY 2   /* loaded, no kernel pending on it */
#define HMOE_SLOT_IN_USE 3  /* a queued or running kernel reads it */

/* Devices compute HMOE_FORMAT_BF16 and HMOE_FORMAT_INT4 experts (formats of cpu_moe.h). */

/* One expert's shape: the slot size follows from it. */
typedef struct hmoe_expert_shape {
  int32_t format;     /* HMOE_FORMAT_BF16 or HMOE_FORMAT_INT4 */
  int32_t d_model;    /* hidden size, >= 1 */
  int32_t d_ff;       /* expert intermediate size, >= 1 */
  int32_t group_size; /* int4: 32, 64 or 128; ignored for bf16 */
} hmoe_expert_shape_t;

/* Bytes of one expert of this shape in a slot (and in host memory). Any thread. */
HMOE_API int hmoe_expert_bytes(const hmoe_expert_shape_t* shape, int64_t* out);

/* A CUDA device on GPU `index` with `slots` expert slots of `shape`, allocated now.
 * HMOE_ERR_OUT_OF_MEMORY when they do not fit: nothing is leaked, retry with fewer slots.
 * HMOE_ERR_NO_DEVICE without GPU or in a build without CUDA. *out owned by the caller. */
HMOE_API int hmoe_device_create_cuda(int32_t index, const hmoe_expert_shape_t* shape, int32_t slots,
                                     hmoe_device_t** out);

/* A host-emulated device: `slots` slots of `shape` in host memory, copy/prefetch/compute streams on
 * worker threads with the same events and hazards as CUDA, experts computed by the CPU kernels on
 * an engine of its own with `threads` workers (0 = 1), so that it never competes for the caller's
 * engine. It exists to run and test the hybrid pipeline without a GPU; it makes no speed claim.
 * HMOE_ERR_OUT_OF_MEMORY when the pool cannot be allocated. *out owned by the caller. */
HMOE_API int hmoe_device_create_emulated(int32_t threads, const hmoe_expert_shape_t* shape,
                                         int32_t slots, hmoe_device_t** out);

/* Test hook of the emulated device: sleeps before every load (copy_us) and every expert run
 * (compute_us), so that tests can show that the hazards hold when transfers and kernels are slow.
 * HMOE_ERR_UNSUPPORTED on a CUDA device. */
HMOE_API int hmoe_device_emulated_delays(hmoe_device_t* device, int32_t copy_us, int32_t compute_us);

/* Slots of `shape` that fit in GPU `index`'s free memory less `reserve_bytes` (for dense
 * weights, KV cache, scratch). Any thread. */
HMOE_API int hmoe_device_cuda_max_slots(int32_t index, const hmoe_expert_shape_t* shape,
                                        int64_t reserve_bytes, int32_t* out);

/* Releases the device after finishing its queued work; NULL accepted. */
HMOE_API void hmoe_device_free(hmoe_device_t* device);

/* kind: HMOE_DEVICE_*; slots; slot_bytes. Any pointer may be NULL. */
HMOE_API int hmoe_device_describe(const hmoe_device_t* device, int32_t* kind, int32_t* slots,
                                  int64_t* slot_bytes);

/* Pins [ptr, ptr+bytes) (an mmapped weight file, say) for direct DMA. *pinned = 1 when the driver
 * agreed; 0 when it refused (copies then go through the device's pinned staging ring): not an
 * error. The region must stay mapped until hmoe_device_unregister_host or hmoe_device_free. */
HMOE_API int hmoe_device_register_host(hmoe_device_t* device, const void* ptr, int64_t bytes,
                                       int32_t* pinned);
HMOE_API int hmoe_device_unregister_host(hmoe_device_t* device, const void* ptr);

/* Queues a load of one expert into `slot` on `stream` (HMOE_STREAM_COPY or _PREFETCH): d_ff rows
 * from gate and from up, d_model rows from down, in the shape's format; for int4 also the scales
 * ([rows, scales_per_row] f32 each; NULL for bf16). Returns at once; host memory must stay valid
 * until the load completes (hmoe_device_wait, or the slot's state leaving LOADING). */
HMOE_API int hmoe_device_load(hmoe_device_t* device, int32_t slot, const void* gate, const void* up,
                              const void* down, const float* gate_scales, const float* up_scales,
                              const float* down_scales, int32_t stream);

/* State of a slot now (HMOE_SLOT_*). Any thread. */
HMOE_API int hmoe_device_slot_state(hmoe_device_t* device, int32_t slot, int32_t* out);

/* Queues the routed experts that live in slots on the compute stream:
 *   out[t, :] = sum over j < top_k with slot_of_expert[ids[t, j]] >= 0 of
 *               weights[t, j] * FFN_{slot}(x[t, :])
 * x:              [n_tokens, d_model] f32, host
 * ids:            [n_tokens, top_k] int32 expert ids in [0, n_experts)
 * weights:        [n_tokens, top_k] f32 routing weights
 * slot_of_expert: [n_experts] int32, the slot holding each expert or -1 (computed elsewhere)
 * out:            [n_tokens, d_model] f32, host, overwritten (zeros where no device expert)
 * Inputs are read before the call returns; out is written by the time hmoe_device_wait returns.
 * Each used slot waits for its pending load first. */
HMOE_API int hmoe_device_moe_run(hmoe_device_t* device, const float* x, int32_t n_tokens,
                                 const int32_t* ids, const float* weights, int32_t top_k,
                                 const int32_t* slot_of_expert, int32_t n_experts, float* out);

/* Blocks until every queued load and kernel has finished. */
HMOE_API int hmoe_device_wait(hmoe_device_t* device);

/* Times hmoe_device_moe_run's device work (no host transfers) over `reps` runs after a warm-up:
 * median milliseconds into *median_ms. Same arguments as hmoe_device_moe_run, no output. */
HMOE_API int hmoe_device_time_moe(hmoe_device_t* device, const float* x, int32_t n_tokens,
                                  const int32_t* ids, const float* weights, int32_t top_k,
                                  const int32_t* slot_of_expert, int32_t n_experts, int32_t reps,
                                  float* median_ms);

/* ---- router on the device ------------------------------------------------------------------ */

#define HMOE_SCORING_SOFTMAX 0 /* softmax over all experts, then top-k */
#define HMOE_SCORING_SIGMOID 1 /* sigmoid per expert, then top-k (DeepSeek-V3 style, no groups) */

typedef struct hmoe_router hmoe_router_t;

/* A router on `device`: weight [n_experts, d_model] f32 host, copied to the device now.
 * norm_topk: renormalise the k weights to sum 1; scale: multiplies the final weights. */
HMOE_API int hmoe_router_create(hmoe_device_t* device, const float* weight, int32_t n_experts,
                                int32_t d_model, int32_t top_k, int32_t scoring, int32_t norm_topk,
                                float scale, hmoe_router_t** out);
HMOE_API void hmoe_router_free(hmoe_router_t* router);

/* Routes n_tokens rows of x [n_tokens, d_model] f32 (host): gate GEMM, scoring and top-k on the
 * device; only ids [n_tokens, top_k] int32 and weights [n_tokens, top_k] f32 come back, ordered
 * by descending score. Synchronous. */
HMOE_API int hmoe_router_run(hmoe_router_t* router, const float* x, int32_t n_tokens, int32_t* ids,
                             float* weights);

/* ---- link and memory probes (bench-gpu) ---------------------------------------------------- */

/* Host-to-device copy rate from pinned memory, GB/s (1e9 bytes/s), median of reps: `total_bytes`
 * moved as chunks of `chunk_bytes` (one cudaMemcpyAsync each; chunk_bytes = total_bytes for one
 * large copy). */
HMOE_API int hmoe_cuda_bench_h2d(int32_t index, int64_t total_bytes, int64_t chunk_bytes,
                                 int32_t reps, double* gbps);

/* Device-to-device copy rate, GB/s counting bytes read plus bytes written, median of reps. */
HMOE_API int hmoe_cuda_bench_d2d(int32_t index, int64_t bytes, int32_t reps, double* gbps);

#ifdef __cplusplus
}
#endif

#endif /* HYBRIMOE_DEVICE_H */
