// The CUDA expert device: a slot pool in device memory, compute/copy/prefetch streams, and
// per-slot events that enforce the load/compute hazards on the GPU (see device.h).
#include <algorithm>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include "cuda-buffers.cuh"
#include "cuda-timing.cuh"
#include "device/device.hpp"
#include "expert-ffn.cuh"

namespace hmoe::cuda {
namespace {

constexpr size_t kStageBytes = size_t(8) << 20;  // each of the two pinned staging buffers

class CudaDevice final : public hmoe_device {
 public:
  CudaDevice(int index, const hmoe_expert_shape_t& shape, int32_t slots)
      : hmoe_device(shape, slots), index_(index) {
    DeviceScope scope(index_);
    try {
      HMOE_CUDA_CHECK(cudaMalloc(&pool_, size_t(slots) * size_t(slot_bytes)));
      for (auto& s : streams_) HMOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      ready_.assign(size_t(slots), nullptr);
      released_.assign(size_t(slots), nullptr);
      for (int32_t i = 0; i < slots; ++i) {
        HMOE_CUDA_CHECK(cudaEventCreateWithFlags(&ready_[size_t(i)], cudaEventDisableTiming));
        HMOE_CUDA_CHECK(cudaEventCreateWithFlags(&released_[size_t(i)], cudaEventDisableTiming));
      }
      loaded_.assign(size_t(slots), 0);
      used_.assign(size_t(slots), 0);
      for (int i = 0; i < 2; ++i) {
        HMOE_CUDA_CHECK(cudaHostAlloc(&stage_[i], kStageBytes, cudaHostAllocDefault));
        HMOE_CUDA_CHECK(cudaEventCreateWithFlags(&stage_done_[i], cudaEventDisableTiming));
      }
      HMOE_CUDA_CHECK(cudaEventCreateWithFlags(&inputs_consumed_, cudaEventDisableTiming));
      HMOE_CUDA_CHECK(cudaEventCreateWithFlags(&order_, cudaEventDisableTiming));
      // The timeline's origin: an event the idle compute stream passes now, next to the host clock.
      HMOE_CUDA_CHECK(cudaEventCreate(&epoch_));
      HMOE_CUDA_CHECK(cudaEventRecord(epoch_, streams_[HMOE_STREAM_COMPUTE]));
      HMOE_CUDA_CHECK(cudaEventSynchronize(epoch_));
      epoch_host_ms_ = now_ms();
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaDevice() override { release(); }

  int32_t kind() const override { return HMOE_DEVICE_CUDA; }

  bool register_host(const void* ptr, int64_t bytes) override {
    DeviceScope scope(index_);
    cudaError_t err = cudaHostRegister(const_cast<void*>(ptr), size_t(bytes), cudaHostRegisterReadOnly);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // refused (e.g. no support for read-only or file mappings): stage
      return false;
    }
    registered_[reinterpret_cast<uintptr_t>(ptr)] = bytes;
    return true;
  }

  void unregister_host(const void* ptr) override {
    auto it = registered_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == registered_.end())
      fail(HMOE_ERR_INVALID_ARGUMENT, "pointer %p was not registered with this device", ptr);
    DeviceScope scope(index_);
    // Copies from the region may be in flight.
    HMOE_CUDA_CHECK(cudaStreamSynchronize(streams_[HMOE_STREAM_COPY]));
    HMOE_CUDA_CHECK(cudaStreamSynchronize(streams_[HMOE_STREAM_PREFETCH]));
    HMOE_CUDA_CHECK(cudaHostUnregister(const_cast<void*>(ptr)));
    registered_.erase(it);
  }

  void load(int32_t slot, const void* const src[3], const float* const scales[3], int32_t stream,
            const IntervalPtr& timing) override {
    DeviceScope scope(index_);
    cudaStream_t s = streams_[stream];
    const size_t i = size_t(slot);
    // Never overwrite a slot a kernel may still read, nor race an earlier load into it.
    if (used_[i]) HMOE_CUDA_CHECK(cudaStreamWaitEvent(s, released_[i], 0));
    if (loaded_[i]) HMOE_CUDA_CHECK(cudaStreamWaitEvent(s, ready_[i], 0));
    Timed timed = timed_begin(timing, s);
    char* dst = static_cast<char*>(pool_) + i * size_t(slot_bytes);
    for (int p = 0; p < 3; ++p) {
      copy_in(dst + layout.weights_at[p], src[p], size_t(layout.rows[p] * layout.row_bytes[p]), s);
      if (layout.scales_per_row[p] > 0)
        copy_in(dst + layout.scales_at[p], scales[p], size_t(layout.rows[p] * layout.scales_per_row[p] * 4), s);
    }
    timed_end(timed, s);  // before ready_: whoever waited for the load finds its timing complete
    HMOE_CUDA_CHECK(cudaEventRecord(ready_[i], s));
    loaded_[i] = 1;
  }

  int32_t slot_state(int32_t slot) override {
    const size_t i = size_t(slot);
    if (!loaded_[i]) return HMOE_SLOT_FREE;
    if (pending(ready_[i])) return HMOE_SLOT_LOADING;
    if (used_[i] && pending(released_[i])) return HMOE_SLOT_IN_USE;
    return HMOE_SLOT_READY;
  }

  void moe_run(const MoePlan& plan, const float* x, float* out, std::vector<IntervalPtr>* run_timing) override {
    DeviceScope scope(index_);
    finish_pending_output();
    cudaStream_t s = streams_[HMOE_STREAM_COMPUTE];
    const size_t out_bytes = size_t(plan.n_tokens) * size_t(shape.d_model) * 4;
    // One interval for the whole job (its kernels are one launch); every run gets it.
    IntervalPtr job = run_timing && !run_timing->empty() ? std::make_shared<Interval>() : nullptr;
    enqueue(plan, x, s, job);
    if (job) {
      for (auto& t : *run_timing) t = job;
    }
    out_host_.reserve(out_bytes);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(out_host_.as<void>(), out_dev_.as<void>(), out_bytes,
                                    cudaMemcpyDeviceToHost, s));
    pending_out_ = out;
    pending_out_bytes_ = out_bytes;
  }

  void wait() override {
    DeviceScope scope(index_);
    for (auto& st : streams_) HMOE_CUDA_CHECK(cudaStreamSynchronize(st));
    finish_pending_output();
    poll_timings();
  }

  bool per_run_timing() const override { return false; }

  void wait_compute() override {
    DeviceScope scope(index_);
    HMOE_CUDA_CHECK(cudaStreamSynchronize(streams_[HMOE_STREAM_COMPUTE]));
    finish_pending_output();
    poll_timings();
  }

  void order_streams(int32_t before, int32_t after) override {
    DeviceScope scope(index_);
    HMOE_CUDA_CHECK(cudaEventRecord(order_, streams_[before]));
    HMOE_CUDA_CHECK(cudaStreamWaitEvent(streams_[after], order_, 0));
  }

  void poll_timings() override {
    DeviceScope scope(index_);
    // Completion is in order per stream, not across streams: look at every entry.
    for (auto it = timed_.begin(); it != timed_.end();) {
      if (pending(it->end)) {
        ++it;
        continue;
      }
      float a = 0, b = 0;
      HMOE_CUDA_CHECK(cudaEventElapsedTime(&a, epoch_, it->start));
      HMOE_CUDA_CHECK(cudaEventElapsedTime(&b, epoch_, it->end));
      it->interval->start_ms = epoch_host_ms_ + a;
      it->interval->end_ms = epoch_host_ms_ + b;
      it->interval->done.store(true, std::memory_order_release);
      spare_events_.push_back(it->start);
      spare_events_.push_back(it->end);
      it = timed_.erase(it);
    }
  }

  float time_moe(const MoePlan& plan, const float* x, int32_t reps) override {
    DeviceScope scope(index_);
    finish_pending_output();
    cudaStream_t s = streams_[HMOE_STREAM_COMPUTE];
    enqueue(plan, x, s);  // uploads the inputs (and warms up)
    return median_ms(s, reps, [&](cudaStream_t st) { launch(plan, st); });
  }

 private:
  static bool pending(cudaEvent_t e) {
    cudaError_t err = cudaEventQuery(e);
    if (err == cudaErrorNotReady) return true;
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      fail(HMOE_ERR_CUDA, "cudaEventQuery failed: %s", cudaGetErrorString(err));
    }
    return false;
  }

  bool is_pinned(const void* p, size_t bytes) const {
    auto u = reinterpret_cast<uintptr_t>(p);
    auto it = registered_.upper_bound(u);
    if (it != registered_.begin()) {
      --it;
      if (u >= it->first && u + bytes <= it->first + size_t(it->second)) return true;
    }
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return attr.type == cudaMemoryTypeHost;
  }

  // Pinned sources go straight to the DMA engine; pageable ones through the two pinned staging
  // buffers, alternating, so that the host's memcpy into one overlaps the DMA out of the other.
  void copy_in(char* dst, const void* src, size_t bytes, cudaStream_t s) {
    if (is_pinned(src, bytes)) {
      HMOE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
      return;
    }
    const char* p = static_cast<const char*>(src);
    for (size_t off = 0; off < bytes; off += kStageBytes) {
      const size_t n = std::min(kStageBytes, bytes - off);
      const int b = stage_next_;
      stage_next_ ^= 1;
      HMOE_CUDA_CHECK(cudaEventSynchronize(stage_done_[b]));  // its previous DMA has finished
      std::memcpy(stage_[b], p + off, n);
      HMOE_CUDA_CHECK(cudaMemcpyAsync(dst + off, stage_[b], n, cudaMemcpyHostToDevice, s));
      HMOE_CUDA_CHECK(cudaEventRecord(stage_done_[b], s));
    }
  }

  // A timed piece of queued work: events around it, resolved into the interval by poll_timings.
  struct Timed {
    cudaEvent_t start = nullptr, end = nullptr;
    IntervalPtr interval;
  };

  cudaEvent_t timing_event() {
    if (!spare_events_.empty()) {
      cudaEvent_t e = spare_events_.back();
      spare_events_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    HMOE_CUDA_CHECK(cudaEventCreate(&e));
    return e;
  }

  Timed timed_begin(const IntervalPtr& interval, cudaStream_t s) {
    Timed t;
    if (!interval) return t;
    t.interval = interval;
    t.start = timing_event();
    t.end = timing_event();
    HMOE_CUDA_CHECK(cudaEventRecord(t.start, s));
    return t;
  }

  void timed_end(Timed& t, cudaStream_t s) {
    if (!t.interval) return;
    HMOE_CUDA_CHECK(cudaEventRecord(t.end, s));
    timed_.push_back(t);
  }

  // Uploads x and the plan, waits for the slots' loads, zeroes out, launches.
  void enqueue(const MoePlan& plan, const float* x, cudaStream_t s, const IntervalPtr& timing = nullptr) {
    const int d = shape.d_model, ff = shape.d_ff;
    for (int32_t r = 0; r < plan.runs(); ++r)
      if (!loaded_[size_t(plan.run_slot[size_t(r)])])
        fail(HMOE_ERR_STATE, "slot %d holds no expert: load it before computing with it", plan.run_slot[size_t(r)]);
    small_.clear();
    large_.clear();
    max_large_ = 0;
    max_small_ = 0;
    for (int32_t r = 0; r < plan.runs(); ++r) {
      const int cnt = plan.run_offset[size_t(r) + 1] - plan.run_offset[size_t(r)];
      if (cnt <= kSmallRunTokens) {
        small_.push_back(r);
        max_small_ = std::max(max_small_, cnt);
      } else {
        large_.push_back(r);
        max_large_ = std::max(max_large_, cnt);
      }
    }
    // Host staging layout (int32 words): run_slot | run_offset | pair_token | small | large, then
    // pair_weight as f32.
    const size_t n_int = plan.run_slot.size() + plan.run_offset.size() + plan.pair_token.size() +
                         small_.size() + large_.size();
    const size_t plan_bytes = (n_int + plan.pair_weight.size()) * 4;
    const size_t x_bytes = size_t(plan.n_tokens) * size_t(d) * 4;
    const size_t pairs = std::max<size_t>(plan.pair_token.size(), 1);

    HMOE_CUDA_CHECK(cudaEventSynchronize(inputs_consumed_));  // the last upload left the staging
    bool grow = false;
    const size_t q_bytes_x = q_area(size_t(plan.n_tokens), pad32(d));
    const size_t q_bytes_h = q_area(pairs, pad32(ff));
    grow |= (shape.format == HMOE_FORMAT_INT4 && (xq_.capacity() < q_bytes_x || hq_.capacity() < q_bytes_h));
    grow |= x_dev_.capacity() < x_bytes || out_dev_.capacity() < x_bytes || plan_dev_.capacity() < plan_bytes ||
            h_.capacity() < pairs * size_t(ff) * 4 ||
            (!large_.empty() && (abf_.capacity() < pairs * size_t(d) * 2 || hbf_.capacity() < pairs * size_t(ff) * 2));
    if (grow) HMOE_CUDA_CHECK(cudaStreamSynchronize(s));  // kernels may still use the old buffers
    x_dev_.reserve(x_bytes);
    out_dev_.reserve(x_bytes);
    plan_dev_.reserve(plan_bytes);
    h_.reserve(pairs * size_t(ff) * 4);
    if (!large_.empty()) {
      abf_.reserve(pairs * size_t(d) * 2);
      hbf_.reserve(pairs * size_t(ff) * 2);
    }
    if (shape.format == HMOE_FORMAT_INT4) {
      // int8 activation rows (q, scale, sum) for both int4 paths.
      xq_.reserve(q_area(size_t(plan.n_tokens), pad32(d)));
      hq_.reserve(q_area(pairs, pad32(ff)));
    }
    x_host_.reserve(x_bytes);
    plan_host_.reserve(plan_bytes);
    std::memcpy(x_host_.as<void>(), x, x_bytes);
    int32_t* w = plan_host_.as<int32_t>();
    auto put = [&](const std::vector<int32_t>& v) {
      std::memcpy(w, v.data(), v.size() * 4);
      w += v.size();
    };
    put(plan.run_slot);
    put(plan.run_offset);
    put(plan.pair_token);
    put(small_);
    put(large_);
    std::memcpy(w, plan.pair_weight.data(), plan.pair_weight.size() * 4);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(x_dev_.as<void>(), x_host_.as<void>(), x_bytes, cudaMemcpyHostToDevice, s));
    HMOE_CUDA_CHECK(cudaMemcpyAsync(plan_dev_.as<void>(), plan_host_.as<void>(), plan_bytes, cudaMemcpyHostToDevice, s));
    HMOE_CUDA_CHECK(cudaEventRecord(inputs_consumed_, s));
    for (int32_t slot : plan.run_slot) HMOE_CUDA_CHECK(cudaStreamWaitEvent(s, ready_[size_t(slot)], 0));
    Timed timed = timed_begin(timing, s);
    launch(plan, s);
    timed_end(timed, s);
    for (int32_t slot : plan.run_slot) {
      HMOE_CUDA_CHECK(cudaEventRecord(released_[size_t(slot)], s));
      used_[size_t(slot)] = 1;
    }
  }

  void launch(const MoePlan& plan, cudaStream_t s) {
    const size_t x_bytes = size_t(plan.n_tokens) * size_t(shape.d_model) * 4;
    HMOE_CUDA_CHECK(cudaMemsetAsync(out_dev_.as<void>(), 0, x_bytes, s));
    if (plan.runs() == 0) return;
    const int32_t* base = plan_dev_.as<int32_t>();
    ExpertArgs a;
    a.slots = static_cast<const unsigned char*>(pool_);
    a.slot_bytes = slot_bytes;
    a.int4 = shape.format == HMOE_FORMAT_INT4;
    a.group = a.int4 ? shape.group_size : 0;
    for (int p = 0; p < 3; ++p) {
      a.weights_at[p] = layout.weights_at[p];
      a.scales_at[p] = layout.scales_at[p];
      a.row_bytes[p] = layout.row_bytes[p];
      a.scales_per_row[p] = layout.scales_per_row[p];
    }
    a.d = shape.d_model;
    a.ff = shape.d_ff;
    a.x = x_dev_.as<float>();
    a.run_slot = base;
    a.run_offset = a.run_slot + plan.run_slot.size();
    a.pair_token = a.run_offset + plan.run_offset.size();
    const int32_t* small = a.pair_token + plan.pair_token.size();
    const int32_t* large = small + small_.size();
    a.pair_weight = reinterpret_cast<const float*>(large + large_.size());
    a.h = h_.as<float>();
    a.a_bf16 = abf_.as<__nv_bfloat16>();
    a.h_bf16 = hbf_.as<__nv_bfloat16>();
    a.out = out_dev_.as<float>();
    a.n_tokens = plan.n_tokens;
    a.n_pairs = plan.pairs();
    a.d_pad = pad32(shape.d_model);
    a.ff_pad = pad32(shape.d_ff);
    // Each activation block area: q bytes, then f32 scales, then int sums (16-byte aligned parts).
    auto carve = [](void* base, size_t rows, int pad, int8_t*& q, float*& s, int*& sum) {
      char* p = static_cast<char*>(base);
      q = reinterpret_cast<int8_t*>(p);
      p += (rows * size_t(pad) + 15) / 16 * 16;
      s = reinterpret_cast<float*>(p);
      p += (rows * size_t(pad / 32) * 4 + 15) / 16 * 16;
      sum = reinterpret_cast<int*>(p);
    };
    a.xq = nullptr; a.xq_scale = nullptr; a.xq_sum = nullptr;
    a.hq = nullptr; a.hq_scale = nullptr; a.hq_sum = nullptr;
    if (a.int4 && xq_.capacity() > 0) {
      carve(xq_.as<void>(), size_t(plan.n_tokens), a.d_pad, a.xq, a.xq_scale, a.xq_sum);
      carve(hq_.as<void>(), size_t(std::max(plan.pairs(), 1)), a.ff_pad, a.hq, a.hq_scale, a.hq_sum);
    }
    launch_expert_ffn(a, small, int(small_.size()), max_small_, large, int(large_.size()), max_large_, s);
  }

  void finish_pending_output() {
    if (pending_out_ == nullptr) return;
    HMOE_CUDA_CHECK(cudaStreamSynchronize(streams_[HMOE_STREAM_COMPUTE]));
    std::memcpy(pending_out_, out_host_.as<void>(), pending_out_bytes_);
    pending_out_ = nullptr;
  }

  void release() noexcept {
    cudaSetDevice(index_);
    for (auto& st : streams_)
      if (st) cudaStreamSynchronize(st);
    for (auto& kv : registered_) cudaHostUnregister(reinterpret_cast<void*>(kv.first));
    registered_.clear();
    for (auto e : ready_) if (e) cudaEventDestroy(e);
    for (auto e : released_) if (e) cudaEventDestroy(e);
    ready_.clear();
    released_.clear();
    for (int i = 0; i < 2; ++i) {
      if (stage_[i]) cudaFreeHost(stage_[i]);
      if (stage_done_[i]) cudaEventDestroy(stage_done_[i]);
      stage_[i] = nullptr;
      stage_done_[i] = nullptr;
    }
    if (inputs_consumed_) cudaEventDestroy(inputs_consumed_);
    inputs_consumed_ = nullptr;
    if (order_) cudaEventDestroy(order_);
    if (epoch_) cudaEventDestroy(epoch_);
    order_ = epoch_ = nullptr;
    for (auto& t : timed_) {
      cudaEventDestroy(t.start);
      cudaEventDestroy(t.end);
    }
    timed_.clear();
    for (auto e : spare_events_) cudaEventDestroy(e);
    spare_events_.clear();
    for (auto& st : streams_) {
      if (st) cudaStreamDestroy(st);
      st = nullptr;
    }
    if (pool_) cudaFree(pool_);
    pool_ = nullptr;
    (void)cudaGetLastError();
  }

  int index_;
  void* pool_ = nullptr;                       // [slots, slot_bytes]
  cudaStream_t streams_[3] = {nullptr, nullptr, nullptr};  // indexed by HMOE_STREAM_*
  std::vector<cudaEvent_t> ready_;             // per slot: its last load completed
  std::vector<cudaEvent_t> released_;          // per slot: the last kernel reading it completed
  std::vector<char> loaded_, used_;            // per slot: ever loaded / ever read by a kernel
  std::map<uintptr_t, int64_t> registered_;    // pinned host regions: start -> bytes
  void* stage_[2] = {nullptr, nullptr};        // pinned staging for pageable sources
  cudaEvent_t stage_done_[2] = {nullptr, nullptr};
  int stage_next_ = 0;
  cudaEvent_t inputs_consumed_ = nullptr;      // x/plan staging may be rewritten once this fires
  cudaEvent_t order_ = nullptr;                // order_streams' barrier
  cudaEvent_t epoch_ = nullptr;                // timeline origin, passed at epoch_host_ms_
  double epoch_host_ms_ = 0;
  std::list<Timed> timed_;                     // queued timed work not yet resolved
  std::vector<cudaEvent_t> spare_events_;      // timing events to reuse
  DeviceBuffer x_dev_, out_dev_, plan_dev_, h_, abf_, hbf_, xq_, hq_;
  static int pad32(int n) { return (n + 31) / 32 * 32; }
  // Bytes of an int8 activation area for `rows` rows of `pad` columns: q, scales, sums (see carve).
  static size_t q_area(size_t rows, int pad) {
    auto r16 = [](size_t b) { return (b + 15) / 16 * 16; };
    return r16(rows * size_t(pad)) + 2 * r16(rows * size_t(pad / 32) * 4);
  }
  PinnedBuffer x_host_, out_host_, plan_host_;
  std::vector<int32_t> small_, large_;
  int max_large_ = 0, max_small_ = 0;
  float* pending_out_ = nullptr;               // caller's out, filled from out_host_ on wait
  size_t pending_out_bytes_ = 0;
};

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace
}  // namespace hmoe::cuda

extern "C" {

int hmoe_device_create_cuda(int32_t index, const hmoe_expert_shape_t* shape, int32_t slots, hmoe_device_t** out) {
  return hmoe::guarded("hmoe_device_create_cuda", [&] {
    HMOE_REQUIRE_PTR(shape);
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (slots < 1 || slots > (1 << 20))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "slots must be in [1, 1048576], got %d", slots);
    const int n = hmoe::cuda::device_count();
    if (index < 0 || index >= n)
      hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d does not exist (%d device(s))", index, n);
    *out = new hmoe::cuda::CudaDevice(index, *shape, slots);
  });
}

int hmoe_device_cuda_max_slots(int32_t index, const hmoe_expert_shape_t* shape, int64_t reserve_bytes,
                               int32_t* out) {
  return hmoe::guarded("hmoe_device_cuda_max_slots", [&] {
    HMOE_REQUIRE_PTR(shape);
    HMOE_REQUIRE_PTR(out);
    HMOE_REQUIRE_NONNEG(reserve_bytes);
    const int64_t per = hmoe::expert_bytes(*shape);
    const int n = hmoe::cuda::device_count();
    if (index < 0 || index >= n)
      hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d does not exist (%d device(s))", index, n);
    hmoe::cuda::DeviceScope scope(index);
    size_t fr = 0, tot = 0;
    HMOE_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    const int64_t avail = int64_t(fr) - reserve_bytes;
    *out = avail <= 0 ? 0 : int32_t(std::min<int64_t>(avail / per, INT32_MAX));
  });
}

}  // extern "C"
