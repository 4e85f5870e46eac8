// The engine handle: the CPU worker pool (internal/engine.hpp), sized to physical cores by default.
#include "internal/cpu.hpp"
#include "internal/engine.hpp"
#include "internal/status.hpp"

#include <cstdlib>
#include <system_error>

extern "C" {

int hmoe_engine_create(int32_t threads, hmoe_engine_t** out) {
  return hmoe::guarded("hmoe_engine_create", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    HMOE_REQUIRE_NONNEG(threads);
    constexpr int kMaxThreads = 4096;
    if (threads > kMaxThreads)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "threads must be <= %d, got %d", kMaxThreads, threads);
    auto* e = new hmoe_engine();
    e->threads = threads == 0 ? hmoe::physical_cores() : threads;
    if (const char* env = std::getenv("HMOE_ONEDNN_MIN_TOKENS")) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && v >= 0 && v <= (1 << 30)) e->onednn_min_tokens = int(v);
    }
    try {
      e->pool = std::make_unique<hmoe::ThreadPool>(e->threads);
    } catch (const std::system_error& err) {
      const int n = e->threads;
      delete e;
      hmoe::fail(HMOE_ERR_OUT_OF_MEMORY, "cannot start %d worker threads: %s", n - 1, err.what());
    }
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
