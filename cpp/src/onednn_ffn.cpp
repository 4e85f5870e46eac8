// oneDNN matmul on caller-held weights: the operator's path for experts with many tokens.
// The weights stay where they are (an [N, K] row-major tensor is oneDNN's [K, N] with strides
// {1, K}); primitives come from oneDNN's own primitive cache, so repeated shapes are cheap.
#include <dlfcn.h>

#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>

#include "hybrimoe/hmoe.h"
#include "internal/onednn_ffn.hpp"

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

}  // namespace hmoe
