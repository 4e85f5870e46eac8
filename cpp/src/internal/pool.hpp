// Internal: the engine's worker pool. parallel_for(n, fn) runs fn(i) for every i in [0, n) on
// the pool's threads and the calling thread, and returns when all are done (a join per call).
//
// Scheduling: the index space is cut into one contiguous range per participant (good locality:
// neighbouring tasks touch neighbouring weights); a participant that finishes its own range
// steals single indices from the others' ranges (atomic fetch_add on the victim's cursor), so an
// uneven split (experts with many tokens next to experts with one) still balances.
//
// Waking: a worker that finishes a call spins briefly (about 50 us) watching for the next one
// before it sleeps on the condition variable, because the operator issues several calls back to
// back (gate/up, down, combine) and a futex wake-up per call costs tens of microseconds. The
// caller likewise spins up to 50 us for the workers to finish before it sleeps: they are usually
// microseconds behind it. (bench-decode on the 2-core dev box: context switches per run 30-55k
// -> 13-18k, and no slower beside two CPU hogs; a longer worker spin, 500 us, cut them to 10-12k
// but lost a third beside the hogs, so it stays at 50 us.)
//
// Thread-safety: one parallel_for at a time per pool (the engine serializes runs); fn must not
// call parallel_for on the same pool. The first exception thrown by fn is rethrown to the caller
// after every participant has stopped; remaining indices are skipped.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace hmoe {

class ThreadPool {
 public:
  // threads: participants including the caller (>= 1); threads - 1 workers are started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(slots_.size()); }
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn);

 private:
  struct alignas(64) Slot {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  void worker_main(int id);
  void participate(int id);

  std::vector<Slot> slots_;  // [threads]; slot 0 is the caller's
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};  // written under mu_ (release); spinners read it
  std::atomic<int> running_{0};  // workers still inside the current generation
  bool stop_ = false;
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;  // first failure, guarded by mu_
};

}  // namespace hmoe
