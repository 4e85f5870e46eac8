// The engine's work-stealing pool; see internal/pool.hpp.
#include "internal/pool.hpp"

#include <chrono>

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
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
    // Spin a little for the next call (see the header), then sleep.
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    bool got = false;
    for (int i = 0; !got; ++i) {
      got = generation_.load(std::memory_order_acquire) != seen;
      if (!got && (i & 63) == 63 && std::chrono::steady_clock::now() > spin_until) break;
      cpu_relax();
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
    }
    participate(id);
    if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    error_ = nullptr;
    running_.store(p - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  participate(0);
  // The workers usually finish within microseconds of the caller: spin for them before sleeping.
  const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (int i = 0; running_.load(std::memory_order_acquire) != 0; ++i) {
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_until) break;
    cpu_relax();
  }
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return running_.load(std::memory_order_acquire) == 0; });
    fn_ = nullptr;
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace hmoe
