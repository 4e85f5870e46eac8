// oneDNN matmul on caller-held weights: the operator's path for experts with many tokens.
// The weights stay where they are (an [N, K] row-major tensor is oneDNN's [K, N] with strides
// {1, K}); primitives come from oneDNN's own primitive cache, so repeated shapes are cheap.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>
#include <oneapi/dnnl/dnnl.hpp>

#include "hybrimoe/hmoe.h"
#include "internal/bf16.hpp"
#include "internal/onednn_ffn.hpp"
#include "internal/status.hpp"

namespace hmoe {

void set_omp_threads(int n) {
  void* h = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return;
  using Fn = void (*)(int);
  if (auto fn = reinterpret_cast<Fn>(dlsym(h, "omp_set_num_threads"))) fn(n);
  dlclose(h);
}

bool onednn_matmul(int dtype, int64_t m, int64_t K, int64_t N, const void* src, int64_t lds,
                   const void* w, float* dst, int64_t ldd) {
  using namespace dnnl;
  using dt = memory::data_type;
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  const dt wdt = dtype == HMOE_DTYPE_BF16 ? dt::bf16 : dt::f32;
  memory::desc src_md({m, K}, wdt, memory::dims{lds, 1});
  memory::desc w_md({K, N}, wdt, memory::dims{1, K});
  memory::desc dst_md({m, N}, dt::f32, memory::dims{ldd, 1});
  matmul::primitive_desc pd;
  try {
    pd = matmul::primitive_desc(eng, src_md, w_md, dst_md);
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_unimplemented) return false;
    throw;
  }
  matmul prim(pd);
  stream s(eng);
  memory ms(src_md, eng, const_cast<void*>(src)), mw(w_md, eng, const_cast<void*>(w)), md(dst_md, eng, dst);
  prim.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}});
  s.wait();
  return true;
}

namespace {
constexpr int64_t kWidenValues = int64_t(2) << 20;
std::atomic<bool> g_bf16_missing{false};
}  // namespace

void onednn_matmul_bf16_widened(int64_t m, int64_t K, int64_t N, const float* src, int64_t lds,
                                const void* w, float* dst, int64_t ldd) {
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(N, kWidenValues / K));
  std::vector<float> wf(static_cast<size_t>(rows * K));
  const auto* wb = static_cast<const uint16_t*>(w);
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t nr = std::min(rows, N - r0);
    for (int64_t i = 0; i < nr * K; ++i) {
      uint16_t h;
      std::memcpy(&h, wb + r0 * K + i, 2);
      wf[size_t(i)] = hmoe::bf16_to_f32(h);
    }
    if (!onednn_matmul(HMOE_DTYPE_F32, m, K, nr, src, lds, wf.data(), dst + r0, ldd))
      hmoe::fail(HMOE_ERR_INTERNAL, "oneDNN has no f32 matmul on this CPU");
  }
}

void onednn_matmul_bf16_any(int64_t m, int64_t K, int64_t N, const float* src, int64_t lds, const uint16_t* src_bf16,
                            const void* w, float* dst, int64_t ldd) {
  if (!g_bf16_missing.load(std::memory_order_relaxed)) {
    std::vector<uint16_t> rounded;
    if (src_bf16 == nullptr) {
      rounded.resize(size_t(m * lds));
      for (int64_t t = 0; t < m; ++t)
        for (int64_t k = 0; k < K; ++k) rounded[size_t(t * lds + k)] = hmoe::f32_to_bf16(src[t * lds + k]);
      src_bf16 = rounded.data();
    }
    if (onednn_matmul(HMOE_DTYPE_BF16, m, K, N, src_bf16, lds, w, dst, ldd)) return;
    g_bf16_missing.store(true, std::memory_order_relaxed);
  }
  onednn_matmul_bf16_widened(m, K, N, src, lds, w, dst, ldd);
}

}  // namespace hmoe
