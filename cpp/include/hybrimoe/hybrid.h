/*
 * hybrimoe engine: hybrid execution of MoE layers (the CPU and an expert device at once).
 *
 * Java plans each MoE layer (policy.sched.LayerPlan); hmoe_hybrid_run executes the plan in one
 * call: the plan's demand transfers on the device's copy stream, its GPU experts (and the layer's
 * shared experts) on the compute stream, its prefetches on the prefetch stream behind the demand
 * transfers, and its CPU experts on the engine's pool in the calling thread, all at once; then it
 * joins the CPU's partial sum with the device's and returns a measured timeline.
 *
 * Slots: the device's slots are numbered by the caller (the Java cache picks every slot a
 * transfer fills, staging slots included); the executor records what each slot holds as it
 * queues loads and refuses a plan that would compute an expert from a slot that does not hold
 * it. A layer may reuse a slot for several of its experts (a small staging ring): the device work
 * is then split into waves, a slot's next load queued only after the wave reading it.
 *
 * Shared experts: a layer's shared MLP, split into experts of the routed shape (intermediate rows
 * cut into d_ff-sized pieces, padded with zero rows), so that the same kernels and slots serve
 * them. Their per-token weight is 1, or the caller's (Qwen2-MoE's sigmoid gate).
 *
 * Clock: every time is milliseconds on one host steady clock (GPU events converted onto it).
 *
 * Thread-safety: one thread per executor; the executor drives the device from a worker thread of
 * its own during a run, so the device must not be used by anyone else while the executor lives.
 */
#ifndef HYBRIMOE_HYBRID_H
#define HYBRIMOE_HYBRID_H

#include "hybrimoe/device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hmoe_hybrid hmoe_hybrid_t;

/* Flat plan layout version understood by hmoe_hybrid_run (LayerPlan.LAYOUT_VERSION). */
#define HMOE_PLAN_LAYOUT_VERSION 1
#define HMOE_PLAN_CPU 0
#define HMOE_PLAN_GPU 1
#define HMOE_PLAN_DEMAND 0
#define HMOE_PLAN_PREFETCH 1

/* Timeline header (doubles) written by hmoe_hybrid_run, then per plan expert (start, end), per plan
 * transfer (start, end; NaN for a prefetch still running), then n_late records (seq, start, end)
 * of earlier prefetches that have finished since the last report. */
#define HMOE_TL_BEGIN 0        /* when the call started */
#define HMOE_TL_END 1          /* when the layer's output was complete */
#define HMOE_TL_FIRST_SEQ 2    /* sequence number of the plan's first transfer (then +1 each) */
#define HMOE_TL_LATE 3         /* n_late */
#define HMOE_TL_PER_RUN 4      /* 1: device experts timed one by one; 0: each has its wave's span */
#define HMOE_TL_WAVES 5        /* device waves the layer needed */
#define HMOE_TL_HEADER 6

/* An executor on `engine` (CPU experts) and `device` (NULL: CPU only), both borrowed and outliving
 * it, for MoE layers 0..n_layers-1 of n_experts routed experts each. *out owned by the caller. */
HMOE_API int hmoe_hybrid_create(hmoe_engine_t* engine, hmoe_device_t* device, int32_t n_layers,
                                int32_t n_experts, hmoe_hybrid_t** out);

/* Finishes queued device work and frees the executor; NULL accepted. */
HMOE_API void hmoe_hybrid_free(hmoe_hybrid_t* hybrid);

/* Registers MoE layer `layer`: its routed experts (n_experts of them; on a device, in the device's
 * format and shape: they are also the host source of every transfer) and optionally its shared
 * experts (NULL: none) with the device slot each is pinned in (shared_slots [shared experts];
 * NULL without a device: they then run on the CPU). The pinned loads are queued now. Both layers
 * are borrowed and must outlive the executor. */
HMOE_API int hmoe_hybrid_set_layer(hmoe_hybrid_t* hybrid, int32_t layer, const hmoe_expert_layer_t* routed,
                                   const hmoe_expert_layer_t* shared, const int32_t* shared_slots);

/* Queues a load of expert `expert` of layer `layer` into `slot` on the copy stream (a cache's
 * initial contents); returns at once. */
HMOE_API int hmoe_hybrid_preload(hmoe_hybrid_t* hybrid, int32_t layer, int32_t expert, int32_t slot);

/* Executes one MoE layer:
 *   plan            the LayerPlan int layout (plan_ints ints): every transfer's slot >= 0
 *   x               [n_tokens, d_model] f32
 *   ids, weights    [n_tokens, top_k] routing (int32 ids in [0, n_experts), f32 weights); the
 *                   plan's routed experts must be exactly the distinct ids
 *   shared_weights  [n_tokens, n_shared] f32 per-token weights of the shared experts, or NULL (1)
 *   out             [n_tokens, d_model] f32, accumulated into
 *   timeline        [timeline_cap] doubles (layout above); late records beyond the capacity wait
 *                   for the next call
 * Returns when out is complete; prefetches may still be running. On failure nothing was queued
 * (plan errors) or everything queued has finished (execution errors), and the executor is usable;
 * out is then unspecified. */
HMOE_API int hmoe_hybrid_run(hmoe_hybrid_t* hybrid, const int32_t* plan, int64_t plan_ints, const float* x,
                             int32_t n_tokens, const int32_t* ids, const float* weights, int32_t top_k,
                             const float* shared_weights, float* out, double* timeline, int64_t timeline_cap);

/* Blocks until every transfer (prefetches included) has finished. */
HMOE_API int hmoe_hybrid_sync(hmoe_hybrid_t* hybrid);

/* The engine's clock now (ms), for callers that put their own events on the timeline. */
HMOE_API double hmoe_clock_ms(void);

#ifdef __cplusplus
}
#endif

#endif /* HYBRIMOE_HYBRID_H */
