// Internal: the engine's worker pool. parallel_for(n, fn) runs fn(i) for every i in [0, n) on
// the pool's threads and the calling thread, and returns when all are done (a join per call).
//
// Scheduling: the index space is cut into one contiguous range per participant (good locality:
// neighbouring tasks touch neighbouring weights); a participant that finishes its own range
// steals single indices from the others' ranges (atomic fetch_add on the victim's cursor), so an
// uneven split (experts with many tokens next to experts with one) still balances.
//
// Joining: a worker takes part in a call only if it joins before the caller closes the call.
// The caller closes it once every index is claimed (it steals what nobody took), then waits for
// the workers that joined. A worker that is asleep or preempted when the call is issued therefore
// never delays it: on a busy machine the caller does the work alone instead of waiting for a
// thread the OS has not scheduled. (Join and close are a Dekker pair of seq_cst operations.)
//
// Waking: a decode step issues a hundred-odd short calls (every dense linear, the attention, each
// MoE phase) a few microseconds apart, and a futex sleep plus wake-up costs tens of microseconds
// on each side, as long as the work on small matrices. So a worker that finishes a call spins
// for the next one (pause for kWorkerSpinUs, then sched_yield up to kWorkerYieldUs, which lets
// other runnable threads on its core go first), then sleeps; the caller waiting for joined
// workers spins, then yields, then sleeps, likewise.
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
  static constexpr int kWorkerSpinUs = 100;
  static constexpr int kWorkerYieldUs = 1000;
  static constexpr int kCallerSpinUs = 50;
  static constexpr int kCallerYieldUs = 500;

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
  std::atomic<uint64_t> generation_{0};  // the current call; written under mu_
  std::atomic<uint64_t> closed_{0};      // the last call closed to joining
  std::atomic<int> inside_{0};           // workers that joined the current call and are in it
  bool stop_ = false;                    // guarded by mu_
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;  // first failure, guarded by mu_
};

}  // namespace hmoe
