// The engine handle: per-process configuration for CPU kernels (worker threads).
#include "internal/cpu.hpp"
#include "internal/status.hpp"

struct hmoe_engine {
  int threads;  // worker threads for CPU kernels, >= 1
};

extern "C" {

int hmoe_engine_create(int32_t threads, hmoe_engine_t** out) {
  return hmoe::guarded("hmoe_engine_create", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    HMOE_REQUIRE_NONNEG(threads);
    constexpr int kMaxThreads = 4096;
    if (threads > kMaxThreads)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "threads must be <= %d, got %d", kMaxThreads, threads);
    auto* e = new hmoe_engine{threads == 0 ? hmoe::physical_cores() : threads};
    *out = e;
  });
}

void hmoe_engine_free(hmoe_engine_t* engine) { delete engine; }

int hmoe_engine_threads(const hmoe_engine_t* engine, int32_t* out) {
  return hmoe::guarded("hmoe_engine_threads", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(out);
    *out = engine->threads;
  });
}

}  // extern "C"
