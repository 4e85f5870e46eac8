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
  // Experts with at least this many tokens in one call go to oneDNN's matmul (f32 and bf16
  // weights, where oneDNN implements them); 0 = never. Default: HMOE_ONEDNN_MIN_TOKENS or 128.
  int onednn_min_tokens = 128;
};
