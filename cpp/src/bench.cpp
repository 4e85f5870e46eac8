// Measurement helpers for `bench-cpu` (cpu_moe.h): the read-bandwidth probe and oneDNN's matmul
// on an expert FFN's shapes. Not used on inference paths.
//
// oneDNN threads: the org.bytedeco build of oneDNN runs on OpenMP (libgomp). While it runs, the
// engine's pool is idle (the engine's run lock is held), and OpenMP gets exactly the engine's
// thread count through omp_set_num_threads, looked up in the already loaded libgomp (dlopen with
// RTLD_NOLOAD), so that the two pools never run at once and never exceed the engine's size.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <vector>

#include "cpu/moe_kernels.hpp"
#include "internal/cpu.hpp"
#include "internal/engine.hpp"
#include "internal/onednn_ffn.hpp"
#include "internal/status.hpp"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

uint64_t read_sum(const uint8_t* p, int64_t n) {
#ifdef HMOE_HAVE_AVX2
  if (hmoe::cpu_features() & HMOE_CPU_AVX2) return hmoe::cpu::read_sum_avx2(p, n);
#endif
  uint64_t s = 0;
  for (int64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    s += w;
  }
  return s;
}

}  // namespace

extern "C" {

int hmoe_cpu_bandwidth_probe(hmoe_engine_t* engine, int64_t bytes, int32_t iters, double* gbps) {
  return hmoe::guarded("hmoe_cpu_bandwidth_probe", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(gbps);
    if (bytes < (int64_t(64) << 20))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "bytes must be >= 64 MiB, got %lld", (long long)bytes);
    if (iters < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "iters must be >= 1, got %d", iters);
    std::lock_guard<std::mutex> lock(engine->run_mu);
    constexpr int64_t kChunk = int64_t(1) << 20;
    const int64_t chunks = bytes / kChunk;
    std::unique_ptr<uint8_t[]> buf(new uint8_t[size_t(chunks * kChunk)]);
    std::vector<uint64_t> sums(static_cast<size_t>(chunks), 0);
    // First touch from the pool's threads, as the reads will be.
    engine->pool->parallel_for(chunks, [&](int64_t c) { std::memset(buf.get() + c * kChunk, int(c & 0x7f), size_t(kChunk)); });
    std::vector<double> rates;
    for (int i = 0; i <= iters; ++i) {
      const double t0 = now_s();
      engine->pool->parallel_for(chunks, [&](int64_t c) { sums[size_t(c)] += read_sum(buf.get() + c * kChunk, kChunk); });
      const double dt = now_s() - t0;
      if (i > 0) rates.push_back(double(chunks * kChunk) / dt / 1e9);  // pass 0 warms up
    }
    uint64_t all = 0;
    for (uint64_t s : sums) all += s;
    *gbps = median(rates) + (all == 42 ? 1e-12 : 0.0);  // keeps the sums live
  });
}

int hmoe_onednn_ffn_time(hmoe_engine_t* engine, int32_t dtype, int64_t m, int64_t d, int64_t ff,
                         int32_t experts, int32_t iters, double* seconds) {
  return hmoe::guarded("hmoe_onednn_ffn_time", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(seconds);
    if (dtype != HMOE_DTYPE_F32 && dtype != HMOE_DTYPE_BF16)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "dtype must be HMOE_DTYPE_F32 or HMOE_DTYPE_BF16, got %d", dtype);
    if (m < 1 || d < 1 || ff < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "m, d and ff must be >= 1");
    if (experts < 1 || iters < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "experts and iters must be >= 1");
    std::lock_guard<std::mutex> lock(engine->run_mu);
    hmoe::set_omp_threads(engine->threads);
    using namespace dnnl;
    using dt = memory::data_type;
    using tag = memory::format_tag;
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    stream s(eng);
    const dt wdt = dtype == HMOE_DTYPE_BF16 ? dt::bf16 : dt::f32;
    // One matmul per shape: src [m, in] x weights [in, out] (the [out, in] row-major tensor seen
    // transposed, strides {1, in}) -> dst [m, out] f32. Weights in oneDNN's preferred layout
    // (format "any", reordered once, as a loader would), which is oneDNN's best case.
    struct Mm {
      matmul prim;
      memory src, dst;
      std::vector<memory> w;  // per expert copy
    };
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    auto make = [&](int64_t in, int64_t out) {
      memory::desc src_md({m, in}, wdt, tag::ab), dst_md({m, out}, dt::f32, tag::ab);
      memory::desc w_any({in, out}, wdt, tag::any), w_plain({in, out}, wdt, memory::dims{1, in});
      matmul::primitive_desc pd(eng, src_md, w_any, dst_md);
      Mm mm{matmul(pd), memory(pd.src_desc(), eng), memory(pd.dst_desc(), eng), {}};
      std::vector<float> tmp(size_t(in * out));
      for (auto& v : tmp) v = uni(rng) * 0.05f;
      memory plain_f32({{in, out}, dt::f32, memory::dims{1, in}}, eng, tmp.data());
      for (int e = 0; e < experts; ++e) {
        memory plain(w_plain, eng);
        reorder(plain_f32, plain).execute(s, plain_f32, plain);
        memory w(pd.weights_desc(), eng);
        reorder(plain, w).execute(s, plain, w);
        mm.w.push_back(w);
      }
      std::vector<float> xs(size_t(m * in));
      for (auto& v : xs) v = uni(rng);
      memory xf({{m, in}, dt::f32, tag::ab}, eng, xs.data());
      reorder(xf, mm.src).execute(s, xf, mm.src);
      s.wait();
      return mm;
    };
    Mm gate = make(d, ff), up = make(d, ff), down = make(ff, d);
    auto run = [&](Mm& mm, int e) {
      mm.prim.execute(s, {{DNNL_ARG_SRC, mm.src}, {DNNL_ARG_WEIGHTS, mm.w[size_t(e)]}, {DNNL_ARG_DST, mm.dst}});
    };
    std::vector<double> times;
    for (int i = 0; i <= iters; ++i) {
      const int e = i % experts;
      const double t0 = now_s();
      run(gate, e);
      run(up, e);
      run(down, e);
      s.wait();
      if (i > 0) times.push_back(now_s() - t0);  // the first pass creates oneDNN's kernels
    }
    *seconds = median(times);
  });
}

}  // extern "C"
