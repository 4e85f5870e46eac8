// The host-emulated expert device: the CUDA device's contract (slots, three streams, events,
// hazards) on host threads, computing with the CPU MoE operator. Each stream is one worker thread
// running its queue in order; an event is a generation counter: recording returns the next
// generation, a wait captured at enqueue time blocks until that generation completed, exactly
// what cudaEventRecord / cudaStreamWaitEvent do.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "device/device.hpp"
#include "internal/serial_queue.hpp"
#include "internal/status.hpp"

namespace hmoe::emu {
namespace {

class Event {
 public:
  uint64_t record() {
    std::lock_guard<std::mutex> l(m_);
    return ++recorded_;
  }
  uint64_t last() {
    std::lock_guard<std::mutex> l(m_);
    return recorded_;
  }
  void complete(uint64_t g) {
    {
      std::lock_guard<std::mutex> l(m_);
      completed_ = std::max(completed_, g);
    }
    cv_.notify_all();
  }
  void wait(uint64_t g) {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return completed_ >= g; });
  }
  bool done(uint64_t g) {
    std::lock_guard<std::mutex> l(m_);
    return completed_ >= g;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t recorded_ = 0, completed_ = 0;
};

using Stream = hmoe::SerialQueue;

void sleep_us(int us) {
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

class EmulatedDevice final : public hmoe_device {
 public:
  EmulatedDevice(int32_t threads, const hmoe_expert_shape_t& shape, int32_t slots)
      : hmoe_device(shape, slots), pool_(allocate(slots, slot_bytes)), ready_(size_t(slots)),
        released_(size_t(slots)), loaded_(size_t(slots)), used_(size_t(slots)) {
    check(hmoe_engine_create(threads < 1 ? 1 : threads, &engine_));
    try {
      check(hmoe_expert_layer_create(shape.format, slots, shape.d_model, shape.d_ff,
                                     shape.format == HMOE_FORMAT_INT4 ? shape.group_size : 0, &layer_));
      // The CPU layer borrows the slots for good: a load changes the bytes, not the pointers.
      for (int32_t s = 0; s < slots; ++s) {
        const unsigned char* base = slot(s);
        const bool q = shape.format == HMOE_FORMAT_INT4;
        check(hmoe_expert_layer_set_expert(
            layer_, s, base + layout.weights_at[0], base + layout.weights_at[1], base + layout.weights_at[2],
            q ? reinterpret_cast<const float*>(base + layout.scales_at[0]) : nullptr,
            q ? reinterpret_cast<const float*>(base + layout.scales_at[1]) : nullptr,
            q ? reinterpret_cast<const float*>(base + layout.scales_at[2]) : nullptr));
      }
      for (auto& st : streams_) st = std::make_unique<Stream>();
    } catch (...) {
      hmoe_expert_layer_free(layer_);
      hmoe_engine_free(engine_);
      throw;
    }
  }

  ~EmulatedDevice() override {
    for (auto& st : streams_) st.reset();  // joins the workers after their queues drain
    hmoe_expert_layer_free(layer_);
    hmoe_engine_free(engine_);
  }

  int32_t kind() const override { return HMOE_DEVICE_EMULATED; }

  bool register_host(const void* ptr, int64_t bytes) override {
    registered_[reinterpret_cast<uintptr_t>(ptr)] = bytes;  // host memory needs no pinning here
    return true;
  }

  void unregister_host(const void* ptr) override {
    if (registered_.erase(reinterpret_cast<uintptr_t>(ptr)) == 0)
      fail(HMOE_ERR_INVALID_ARGUMENT, "pointer %p was not registered with this device", ptr);
    for (int s : {HMOE_STREAM_COPY, HMOE_STREAM_PREFETCH}) streams_[s]->drain();
  }

  void load(int32_t s, const void* const src[3], const float* const scales[3], int32_t stream,
            const IntervalPtr& timing) override {
    const size_t i = size_t(s);
    const uint64_t after_use = used_[i] ? released_[i].last() : 0;  // never overwrite while read
    const uint64_t after_load = ready_[i].last();                      // nor race an earlier load
    const uint64_t gen = ready_[i].record();
    loaded_[i] = 1;
    const void* p[3] = {src[0], src[1], src[2]};
    const float* q[3] = {scales[0], scales[1], scales[2]};
    streams_[stream]->submit([this, i, after_use, after_load, gen, p, q, timing] {
      released_[i].wait(after_use);
      ready_[i].wait(after_load);
      const double t0 = now_ms();
      sleep_us(copy_delay_us_.load());
      unsigned char* dst = slot(int32_t(i));
      for (int k = 0; k < 3; ++k) {
        std::memcpy(dst + layout.weights_at[k], p[k], size_t(layout.rows[k] * layout.row_bytes[k]));
        if (layout.scales_per_row[k] > 0)
          std::memcpy(dst + layout.scales_at[k], q[k], size_t(layout.rows[k] * layout.scales_per_row[k] * 4));
      }
      if (timing) {
        timing->start_ms = t0;
        timing->end_ms = now_ms();
        timing->done.store(true, std::memory_order_release);
      }
      ready_[i].complete(gen);
    });
  }

  int32_t slot_state(int32_t s) override {
    const size_t i = size_t(s);
    if (!loaded_[i]) return HMOE_SLOT_FREE;
    if (!ready_[i].done(ready_[i].last())) return HMOE_SLOT_LOADING;
    if (used_[i] && !released_[i].done(released_[i].last())) return HMOE_SLOT_IN_USE;
    return HMOE_SLOT_READY;
  }

  void moe_run(const MoePlan& plan, const float* x, float* out, std::vector<IntervalPtr>* run_timing) override {
    finish_pending_output();
    auto job = prepare(plan, x);  // inputs are read (copied) before returning
    if (run_timing) job->timing = *run_timing;
    pending_out_ = out;
    pending_elems_ = job->out.size();
    result_ = job;
    streams_[HMOE_STREAM_COMPUTE]->submit([this, job] { run(*job); });
  }

  void wait() override {
    for (auto& st : streams_) st->drain();
    finish_pending_output();
  }

  bool per_run_timing() const override { return true; }

  void wait_compute() override {
    streams_[HMOE_STREAM_COMPUTE]->drain();
    finish_pending_output();
  }

  void order_streams(int32_t before, int32_t after) override {
    auto ev = std::make_shared<Event>();
    const uint64_t g = ev->record();
    streams_[before]->submit([ev, g] { ev->complete(g); });
    streams_[after]->submit([ev, g] { ev->wait(g); });
  }

  float time_moe(const MoePlan& plan, const float* x, int32_t reps) override {
    wait();
    std::vector<float> ms;
    for (int32_t r = 0; r <= reps; ++r) {  // the first run warms up
      auto job = prepare(plan, x);
      const auto t0 = std::chrono::steady_clock::now();
      streams_[HMOE_STREAM_COMPUTE]->submit([this, job] { run(*job); });
      streams_[HMOE_STREAM_COMPUTE]->drain();
      const auto t1 = std::chrono::steady_clock::now();
      rethrow(*job);
      if (r > 0) ms.push_back(std::chrono::duration<float, std::milli>(t1 - t0).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    return ms[ms.size() / 2];
  }

  void set_delays(int copy_us, int compute_us) {
    copy_delay_us_ = copy_us;
    compute_delay_us_ = compute_us;
  }

 private:
  // One queued expert run: the copied inputs, the slot-indexed routing, the events it waits on
  // and completes, and its outcome.
  struct Job {
    int32_t n_tokens = 0, top_k = 0;
    std::vector<float> x, weights, out;
    std::vector<int32_t> ids;  // [n_tokens, top_k] slot ids, -1 = padding
    std::vector<std::pair<size_t, uint64_t>> wait_ready, complete_released;
    std::vector<int32_t> run_slot;      // the plan's runs, in order
    std::vector<IntervalPtr> timing;    // per run, or empty
    int status = HMOE_OK;
    std::string error;
  };

  std::shared_ptr<Job> prepare(const MoePlan& plan, const float* x) {
    for (int32_t r = 0; r < plan.runs(); ++r)
      if (!loaded_[size_t(plan.run_slot[size_t(r)])])
        fail(HMOE_ERR_STATE, "slot %d holds no expert: load it before computing with it", plan.run_slot[size_t(r)]);
    auto job = std::make_shared<Job>();
    const size_t d = size_t(shape.d_model);
    job->n_tokens = plan.n_tokens;
    job->x.assign(x, x + size_t(plan.n_tokens) * d);
    job->out.assign(size_t(plan.n_tokens) * d, 0.0f);
    // Back from (slot, token) pairs to a per-token list of slots for the CPU operator.
    std::vector<int32_t> per_token(size_t(plan.n_tokens), 0);
    for (int32_t t : plan.pair_token) ++per_token[size_t(t)];
    job->top_k = std::max(1, per_token.empty() ? 1 : *std::max_element(per_token.begin(), per_token.end()));
    job->ids.assign(size_t(plan.n_tokens) * size_t(job->top_k), -1);
    job->weights.assign(job->ids.size(), 0.0f);
    std::fill(per_token.begin(), per_token.end(), 0);
    for (int32_t r = 0; r < plan.runs(); ++r) {
      for (int32_t p = plan.run_offset[size_t(r)]; p < plan.run_offset[size_t(r) + 1]; ++p) {
        const size_t t = size_t(plan.pair_token[size_t(p)]);
        const size_t at = t * size_t(job->top_k) + size_t(per_token[t]++);
        job->ids[at] = plan.run_slot[size_t(r)];
        job->weights[at] = plan.pair_weight[size_t(p)];
      }
    }
    job->run_slot = plan.run_slot;
    for (int32_t s : plan.run_slot) {
      const size_t i = size_t(s);
      job->wait_ready.emplace_back(i, ready_[i].last());
      job->complete_released.emplace_back(i, released_[i].record());
      used_[i] = 1;
    }
    return job;
  }

  void run(Job& job) {
    for (auto& [i, g] : job.wait_ready) ready_[i].wait(g);
    sleep_us(compute_delay_us_.load());
    if (job.n_tokens > 0 && !job.complete_released.empty()) {
      if (job.timing.empty()) {
        job.status = hmoe_cpu_moe_run(engine_, layer_, job.x.data(), HMOE_DTYPE_F32, job.n_tokens, job.top_k,
                                      job.ids.data(), job.weights.data(), nullptr, job.out.data());
      } else {
        // Timed: one run (slot) at a time, in plan order, as a GPU runs its kernels.
        std::vector<uint8_t> mask(size_t(slots), 0);
        for (size_t r = 0; r < job.run_slot.size() && job.status == HMOE_OK; ++r) {
          mask[size_t(job.run_slot[r])] = 1;
          const double t0 = now_ms();
          job.status = hmoe_cpu_moe_run(engine_, layer_, job.x.data(), HMOE_DTYPE_F32, job.n_tokens, job.top_k,
                                        job.ids.data(), job.weights.data(), mask.data(), job.out.data());
          mask[size_t(job.run_slot[r])] = 0;
          if (r < job.timing.size() && job.timing[r]) {
            job.timing[r]->start_ms = t0;
            job.timing[r]->end_ms = now_ms();
            job.timing[r]->done.store(true, std::memory_order_release);
          }
        }
      }
      if (job.status != HMOE_OK) job.error = hmoe_last_error();
    }
    for (auto& [i, g] : job.complete_released) released_[i].complete(g);
  }

  static void rethrow(const Job& job) {
    if (job.status != HMOE_OK) fail(job.status, "expert run failed on the emulated device: %s", job.error.c_str());
  }

  void finish_pending_output() {
    if (pending_out_ == nullptr) return;
    streams_[HMOE_STREAM_COMPUTE]->drain();
    auto job = std::move(result_);
    float* out = pending_out_;
    pending_out_ = nullptr;
    rethrow(*job);
    std::memcpy(out, job->out.data(), pending_elems_ * sizeof(float));
  }

  unsigned char* slot(int32_t s) const { return pool_.get() + size_t(s) * size_t(slot_bytes); }

  static void check(int status) {
    if (status != HMOE_OK) fail(status, "%s", hmoe_last_error());
  }

  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  // malloc, not new: an absurd pool is an out-of-memory status, not an exception (or, under
  // AddressSanitizer, an abort). First, before any per-slot state is built.
  static unsigned char* allocate(int32_t slots, int64_t bytes) {
    auto* p = static_cast<unsigned char*>(std::malloc(size_t(slots) * size_t(bytes)));
    if (p == nullptr)
      fail(HMOE_ERR_OUT_OF_MEMORY, "cannot allocate %d slots of %lld bytes in host memory", slots, (long long)bytes);
    return p;
  }
  std::unique_ptr<unsigned char, Free> pool_;  // [slots, slot_bytes]
  hmoe_engine_t* engine_ = nullptr;        // owned; the CPU kernels run on its pool
  hmoe_expert_layer_t* layer_ = nullptr;   // owned; expert s borrows slot s
  std::vector<Event> ready_, released_;    // per slot, as in the CUDA device
  std::vector<std::atomic<char>> loaded_, used_;
  std::map<uintptr_t, int64_t> registered_;
  std::unique_ptr<Stream> streams_[3];     // indexed by HMOE_STREAM_*; destroyed first
  std::shared_ptr<Job> result_;
  float* pending_out_ = nullptr;
  size_t pending_elems_ = 0;
  std::atomic<int> copy_delay_us_{0}, compute_delay_us_{0};
};

}  // namespace
}  // namespace hmoe::emu

extern "C" {

int hmoe_device_create_emulated(int32_t threads, const hmoe_expert_shape_t* shape, int32_t slots,
                                hmoe_device_t** out) {
  return hmoe::guarded("hmoe_device_create_emulated", [&] {
    HMOE_REQUIRE_PTR(shape);
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (slots < 1 || slots > (1 << 20))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "slots must be in [1, 1048576], got %d", slots);
    if (threads < 0 || threads > 4096)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "threads must be in [0, 4096], got %d", threads);
    *out = new hmoe::emu::EmulatedDevice(threads, *shape, slots);
  });
}

int hmoe_device_emulated_delays(hmoe_device_t* device, int32_t copy_us, int32_t compute_us) {
  return hmoe::guarded("hmoe_device_emulated_delays", [&] {
    HMOE_REQUIRE_PTR(device);
    if (copy_us < 0 || compute_us < 0) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "delays must be >= 0");
    auto* emu = dynamic_cast<hmoe::emu::EmulatedDevice*>(device);
    if (emu == nullptr) hmoe::fail(HMOE_ERR_UNSUPPORTED, "delays apply to the emulated device only");
    emu->set_delays(copy_us, compute_us);
  });
}

}  // extern "C"
