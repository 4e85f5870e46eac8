// The engine's worker pool (internal/pool.hpp): every index of every call runs exactly once, with
// workers awake, asleep, preempted (tasks that sleep) and more threads than cores; a task's
// exception reaches the caller and leaves the pool usable. It guards the wake/join protocol: a
// late worker must never run an index of a finished call or of the next one.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "check.hpp"
#include "internal/pool.hpp"

namespace {

// calls parallel_for `calls` times with random sizes; each index counts itself; every count must
// be exactly 1 after each call.
void stress(int threads, int calls, int sleep_every, unsigned seed) {
  hmoe::ThreadPool pool(threads);
  std::mt19937 rng(seed);
  std::vector<std::atomic<int>> hits(4096);
  int bad = 0;
  for (int c = 0; c < calls; ++c) {
    const int64_t n = 2 + int64_t(rng() % 300);
    for (int64_t i = 0; i < n; ++i) hits[size_t(i)].store(0);
    const int slow = sleep_every > 0 ? int(rng() % uint32_t(sleep_every)) : -1;
    pool.parallel_for(n, [&](int64_t i) {
      hits[size_t(i)].fetch_add(1);
      if (i == slow) std::this_thread::sleep_for(std::chrono::microseconds(200));  // a preempted task
    });
    for (int64_t i = 0; i < n; ++i) bad += hits[size_t(i)].load() != 1;
    if (c % 97 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));  // let workers fall asleep
  }
  std::printf("pool of %d: %d calls, %d indices run other than once\n", threads, calls, bad);
  CHECK(bad == 0);
}

}  // namespace

int main() {
  stress(2, 3000, 0, 1);
  stress(2, 1000, 40, 2);
  stress(3, 2000, 100, 3);
  stress(8, 1000, 60, 4);  // more threads than this machine's cores: workers often not scheduled

  hmoe::ThreadPool pool(4);
  bool threw = false;
  try {
    pool.parallel_for(100, [](int64_t i) {
      if (i == 37) throw std::runtime_error("task 37");
    });
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()) == "task 37";
  }
  CHECK(threw);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(1000, [&](int64_t i) { sum += i; });
  CHECK(sum.load() == 999 * 1000 / 2);
  std::printf("exception passed through; the pool then summed 0..999 = %lld\n", (long long)sum.load());
  return hmoe_test::failures() == 0 ? 0 : 1;
}
