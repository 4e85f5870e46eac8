// Internal: the device interface behind cpp/include/hybrimoe/device.h. The C ABI functions
// (device_api.cpp) validate arguments and build the routing plan; implementations (CUDA in
// cuda/cuda-device.cu, host-emulated in emulated_device.cpp) only move bytes and run kernels.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "hybrimoe/device.h"

namespace hmoe {

// The per-call routing plan, in the "count, prefix, pack" form the kernels consume.
// Runs are (slot, tokens) groups; pairs are (token, weight) entries, grouped by run.
struct MoePlan {
  int32_t n_tokens = 0;
  std::vector<int32_t> run_slot;    // [n_runs] slot of each run
  std::vector<int32_t> run_offset;  // [n_runs + 1] prefix of pair counts
  std::vector<int32_t> pair_token;  // [n_pairs] token row in x / out
  std::vector<float> pair_weight;   // [n_pairs] routing weight
  int32_t runs() const { return static_cast<int32_t>(run_slot.size()); }
  int32_t pairs() const { return static_cast<int32_t>(pair_token.size()); }
};

// Where each part of an expert sits in a slot (bytes from the slot's start), per projection
// (0 gate, 1 up, 2 down). Rows follow the CPU engine's storage (cpu_moe.h).
struct SlotLayout {
  int64_t weights_at[3];
  int64_t scales_at[3];       // int4 only
  int64_t row_bytes[3];       // bytes of one stored row
  int64_t rows[3];            // ff, ff, d
  int64_t scales_per_row[3];  // int4: padded inputs / group size; 0 for bf16
  int64_t slot_bytes;         // total, a multiple of 256
};

SlotLayout slot_layout(const hmoe_expert_shape_t& s);  // throws on an invalid shape
int64_t expert_bytes(const hmoe_expert_shape_t& s);

// The plan of one moe_run: the (token, j) entries whose expert has a slot, grouped by slot.
// Validates ids ([n_tokens, top_k] in [0, n_experts)) and slot_of_expert ([n_experts], -1 or a slot).
MoePlan build_plan(const ::hmoe_device* d, int32_t n_tokens, const int32_t* ids, const float* weights,
                   int32_t top_k, const int32_t* slot_of_expert, int32_t n_experts);

// The engine's clock for measured timelines: milliseconds of the host's steady clock since the
// library's first call of it. GPU times are converted onto it.
inline double now_ms() {
  static const auto epoch = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - epoch).count();
}

// A measured interval of queued device work on the now_ms() clock. The device fills it when the
// work has finished (the emulated device from its worker, CUDA from events in poll_timings), then
// sets done (release); readers check done (acquire) first. Shared, so that it outlives whichever
// side lets go first.
struct Interval {
  std::atomic<bool> done{false};
  double start_ms = 0, end_ms = 0;
};
using IntervalPtr = std::shared_ptr<Interval>;

}  // namespace hmoe

// Polymorphic base of both implementations; the opaque handle of the C ABI points at one.
struct hmoe_device {
  explicit hmoe_device(const hmoe_expert_shape_t& shape, int32_t slots)
      : shape(shape), slots(slots), layout(hmoe::slot_layout(shape)), slot_bytes(layout.slot_bytes) {}
  virtual ~hmoe_device() = default;
  hmoe_device(const hmoe_device&) = delete;
  hmoe_device& operator=(const hmoe_device&) = delete;

  virtual int32_t kind() const = 0;
  virtual bool register_host(const void* ptr, int64_t bytes) = 0;  // false: refused, not an error
  virtual void unregister_host(const void* ptr) = 0;
  // src[p] / scales[p]: projection p's rows and (int4) scales in host memory. timing (may be
  // null) receives when the copy ran.
  virtual void load(int32_t slot, const void* const src[3], const float* const scales[3], int32_t stream,
                    const hmoe::IntervalPtr& timing) = 0;
  virtual int32_t slot_state(int32_t slot) = 0;
  // x [n_tokens, d] f32 host; out [n_tokens, d] f32 host, written by wait() or wait_compute().
  // run_timing (may be null) receives one interval per run (plan.run_slot order): each run's own
  // where per_run_timing(), else the whole job's in every entry.
  virtual void moe_run(const hmoe::MoePlan& plan, const float* x, float* out,
                       std::vector<hmoe::IntervalPtr>* run_timing) = 0;
  virtual bool per_run_timing() const = 0;
  virtual void wait() = 0;
  // Waits for the compute stream only (and the loads its kernels wait on) and writes the pending
  // output; prefetches may still be running afterwards.
  virtual void wait_compute() = 0;
  // Work queued on `after` from now on starts only after the work queued on `before` so far
  // (demand transfers ahead of prefetches on the link).
  virtual void order_streams(int32_t before, int32_t after) = 0;
  // Fills the intervals of work that has finished (CUDA: event queries); never blocks.
  virtual void poll_timings() {}
  virtual float time_moe(const hmoe::MoePlan& plan, const float* x, int32_t reps) = 0;

  const hmoe_expert_shape_t shape;
  const int32_t slots;
  const hmoe::SlotLayout layout;
  const int64_t slot_bytes;
};
