// Internal: the engine handle. Owns the CPU worker pool that every CPU kernel runs on; run_mu
// serializes operator calls on one engine (the pool runs one parallel_for at a time).
#pragma once

#include <memory>
#include <mutex>

#include "internal/pool.hpp"

struct hmoe_engine {
  int threads;  // participants of the pool (workers + the calling thread), >= 1
  std::unique_ptr<hmoe::ThreadPool> pool;
  std::mutex run_mu;
};
