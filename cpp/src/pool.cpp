// The engine's work-stealing pool; see internal/pool.hpp.
#include "internal/pool.hpp"

#include <sched.h>

#include <chrono>

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

using Clock = std::chrono::steady_clock;

// Waits until done() holds: pause-spins up to spin_us, then yields the core up to yield_us;
// false if it still does not hold (the caller then sleeps).
template <typename Done>
bool spin_then_yield(const Done& done, int spin_us, int yield_us) {
  const auto start = Clock::now();
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 63) != 63) {
      cpu_relax();
      continue;
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    if (us > yield_us) return false;
    if (us > spin_us) sched_yield();
  }
}
}  // namespace

namespace hmoe {

ThreadPool::ThreadPool(int threads) : slots_(static_cast<size_t>(threads < 1 ? 1 : threads)) {
  workers_.reserve(slots_.size() - 1);
  for (size_t i = 1; i < slots_.size(); ++i) workers_.emplace_back([this, i] { worker_main(int(i)); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::participate(int id) {
  const auto& fn = *fn_;
  const int n = size();
  for (int k = 0; k < n && !failed_.load(std::memory_order_relaxed); ++k) {
    Slot& s = slots_[size_t((id + k) % n)];  // own range first, then steal from the others
    for (;;) {
      if (failed_.load(std::memory_order_relaxed)) return;
      const int64_t i = s.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= s.end) break;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true);
        return;
      }
    }
  }
}

void ThreadPool::worker_main(int id) {
  uint64_t seen = 0;
  for (;;) {
    if (!spin_then_yield([&] { return generation_.load(std::memory_order_acquire) != seen; }, kWorkerSpinUs,
                         kWorkerYieldUs)) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
    }
    const uint64_t g = generation_.load(std::memory_order_acquire);
    seen = g;
    // Join g unless the caller has closed it (then every index is taken and fn_ may be gone; a
    // worker that slept through several calls sees a later closed_, hence <, not !=).
    inside_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst) < g) participate(id);
    if (inside_.fetch_sub(1, std::memory_order_seq_cst) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // under mu_: a caller about to sleep cannot miss it
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  const int p = size();
  if (p == 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  // Contiguous ranges; set before the workers are woken (the mutex publishes them).
  for (int s = 0; s < p; ++s) {
    slots_[size_t(s)].next.store(n * s / p, std::memory_order_relaxed);
    slots_[size_t(s)].end = n * (s + 1) / p;
  }
  failed_.store(false);
  uint64_t g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    error_ = nullptr;
    g = generation_.fetch_add(1, std::memory_order_release) + 1;
  }
  wake_.notify_all();
  participate(0);  // returns when every index is claimed (by us or by joined workers)
  closed_.store(g, std::memory_order_seq_cst);
  const auto none_inside = [&] { return inside_.load(std::memory_order_seq_cst) == 0; };
  if (!spin_then_yield(none_inside, kCallerSpinUs, kCallerYieldUs)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, none_inside);
  }
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = nullptr;
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace hmoe
