// Dense transformer operations on the CPU (dense.h): linear, RMSNorm, RoPE, KV-cached attention.
//
// Parallelism: linear splits the output rows into chunks, each running over every token so that
// weights are read once per call; attention runs one task per (token, query head). Both use the
// engine's pool under its run mutex, like the MoE operator.
//
// Linear kernels follow the engine's arithmetic rule (cpu_moe.h): f32 and f16 weights against
// f32 activations; bf16 weights against activations rounded to bf16 first (every product exact),
// on every path. f32 and bf16 weights go through the expert engine's row kernels (the ones it
// picks for the format: AVX-512 VDPBF16PS where the CPU has it, else AVX-512 or AVX2+FMA with bf16
// widened exactly) when the selected kernel variant has them; f16 weights, and the
// scalar variant, widen each row once per chunk and use a plain dot product.
#include "hybrimoe/dense.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "cpu/attn_kernels.hpp"
#include "cpu/convert_kernels.hpp"
#include "cpu/moe_kernels.hpp"
#include "internal/act_rule.hpp"
#include "internal/bf16.hpp"
#include "internal/cpu.hpp"
#include "internal/engine.hpp"
#include "internal/onednn_ffn.hpp"
#include "internal/status.hpp"

namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { ++e; man <<= 1; } while ((man & 0x400u) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void widen_row(const void* w, int32_t dtype, int64_t row, int64_t in, float* dst) {
  switch (dtype) {
    case HMOE_DTYPE_F32:
      std::memcpy(dst, static_cast<const char*>(w) + row * in * 4, size_t(in) * 4);
      return;
    case HMOE_DTYPE_BF16: {
      const char* p = static_cast<const char*>(w) + row * in * 2;
      for (int64_t i = 0; i < in; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = hmoe::bf16_to_f32(h);
      }
      return;
    }
    default: {
      const char* p = static_cast<const char*>(w) + row * in * 2;
      for (int64_t i = 0; i < in; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    }
  }
}

// Dot product with 8 independent accumulators (vectorizable without -ffast-math).
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

using RowKernel = void (*)(const hmoe::cpu::MatView&, int64_t, int64_t, const hmoe::cpu::ActView&, int,
                          float*, int64_t);

// The vector row kernel for f32/bf16 weights under the current variant, or null (scalar path):
// the one the MoE operator picks for the format (cpu_moe.cpp's choose_path), so that a linear here
// and the same weights as an expert there add their products in the same order (a shared expert
// run as a dense MLP or as routed-shaped pieces on a device gives the same H, bit for bit).
RowKernel vector_kernel(int32_t w_dtype) {
  if (w_dtype != HMOE_DTYPE_F32 && w_dtype != HMOE_DTYPE_BF16) return nullptr;
  const int v = hmoe::kernel_variant();
  const uint32_t f = hmoe::cpu_features();
#ifdef HMOE_HAVE_AVX512
  if (v == HMOE_KERNEL_AVX512 && (f & HMOE_CPU_AVX512F)) {
    if (w_dtype == HMOE_DTYPE_BF16 && (f & HMOE_CPU_AVX512_BF16)) return &hmoe::cpu::matmul_avx512_bf16;
    return &hmoe::cpu::matmul_avx512;
  }
#endif
#ifdef HMOE_HAVE_AVX2
  if (v >= HMOE_KERNEL_AVX2 && (f & HMOE_CPU_AVX2)) return &hmoe::cpu::matmul_avx2;
#endif
  (void)v;
  (void)f;
  return nullptr;
}

// Below this many multiply-adds a call runs on the calling thread: waking the pool and joining
// it costs tens of microseconds, more than a small decode-step operation takes on one core.
constexpr double kInlineWork = 32768;

// Positions per attention task (hmoe_dense_attention): long contexts split into this many so
// that even a single KV head (MLA) spreads over the pool; a chunk's keys stay in L2 between the
// score and value passes (256 x 576 floats = 576 KiB for V2-Lite's latent).
constexpr int64_t kChunk = 256;
// Floats of partial softmax results one attention call holds at most (4 MiB).
constexpr int64_t kPartialFloats = int64_t(1) << 20;

// Runs fn(0..tasks-1) on the engine's pool, or inline when the whole call is `work` small.
void run_on(hmoe_engine_t* engine, int64_t tasks, double work, const std::function<void(int64_t)>& fn) {
  if (work < kInlineWork || engine->threads <= 1) {
    for (int64_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> lock(engine->run_mu);
  engine->pool->parallel_for(tasks, fn);
}

void require_dim(const char* name, int64_t v) {
  if (v < 1 || v > kMaxDim)
    hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "%s must be in 1..2^31, got %lld", name, (long long)v);
}

// y [n, out] = x [n, in] W^T (+ bias) through oneDNN's matmul, for prefill-sized n: a blocked
// GEMM reuses each weight for many tokens, where the row kernels reuse it for 4. bf16 weights:
// the activations are rounded to bf16 (the rule), then go to oneDNN's bf16 matmul where it has
// one (AVX-512, AMX), else the weights are widened to f32 a block of rows at a time
// (onednn_ffn.hpp); both compute the same exact products. Runs on the caller's OpenMP team
// sized to the engine, with the engine's pool idle (run_mu held).
void linear_onednn(hmoe_engine_t* engine, const float* x, int64_t n, int64_t in, const void* w, int32_t w_dtype,
                   int64_t out, const float* bias, float* y) {
  std::lock_guard<std::mutex> lock(engine->run_mu);
  hmoe::set_omp_threads(engine->threads);
  if (w_dtype == HMOE_DTYPE_F32) {
    if (!hmoe::onednn_matmul(HMOE_DTYPE_F32, n, in, out, x, in, w, y, out))
      hmoe::fail(HMOE_ERR_INTERNAL, "oneDNN has no f32 matmul on this CPU");
  } else {
    std::vector<float> xr(x, x + n * in);  // the bf16 rule: activations rounded first
    hmoe::round_bf16_row(xr.data(), n * in);
    hmoe::onednn_matmul_bf16_any(n, in, out, xr.data(), in, nullptr, w, y, out);
  }
  if (bias != nullptr)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < out; ++r) y[t * out + r] += bias[r];
}

// y[t, h, r] (at y + t * ldy_t + h * ldy_h + r) = x[t, h, :] (at x + t * ldx_t + h * ldx_h) . W_h[r, :]
// (+ bias[r]) for t < n, h < heads, r < out; W_h [out, in] at w + h * w_head_stride elements.
// Every (head, row chunk) is a task of one pool call, so per-head products that are each too
// small for the pool (MLA's absorbed W_uk^T and W_uv) still share it.
void linear_heads(hmoe_engine_t* engine, const float* x, int64_t n, int64_t heads, int64_t in, int64_t ldx_t,
                  int64_t ldx_h, const void* w, int32_t w_dtype, int64_t w_head_stride, int64_t out,
                  const float* bias, float* y, int64_t ldy_t, int64_t ldy_h) {
  const int64_t es = w_dtype == HMOE_DTYPE_F32 ? 4 : 2;
  const auto head_w = [&](int64_t h) { return static_cast<const char*>(w) + h * w_head_stride * es; };
  // Rows per task: enough tasks to balance, few enough that widening a row is amortized.
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(64, out * heads / (4 * engine->threads)));
  const int64_t chunks = (out + rows - 1) / rows;
  const double work = double(n) * double(in) * double(out) * double(heads);
  if (RowKernel kernel = vector_kernel(w_dtype)) {
    // Activations as the row kernels read them: [heads, n, ld] f32, zero-padded to a multiple of 128.
    const int64_t ld = (in + 127) / 128 * 128;
    std::vector<float> xp(static_cast<size_t>(heads * n * ld), 0.0f);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < n; ++t) {
        float* row = xp.data() + (h * n + t) * ld;
        std::memcpy(row, x + t * ldx_t + h * ldx_h, size_t(in) * 4);
        if (w_dtype == HMOE_DTYPE_BF16) hmoe::round_bf16_row(row, in);  // the bf16 rule
      }
    // VDPBF16PS reads the rounded rows as bf16 bits (exact: they are bf16 values already).
    std::vector<uint16_t> xb;
#ifdef HMOE_HAVE_AVX512
    if (kernel == &hmoe::cpu::matmul_avx512_bf16) {
      xb.resize(xp.size());
      hmoe::cpu::f32_to_bf16_avx512(xp.data(), xb.data(), int64_t(xp.size()));
    }
#endif
    // One token against bf16 weights on AVX2 also gets the permuted copy its kernel reads.
    std::vector<float> xperm;
#ifdef HMOE_HAVE_AVX2
    if (n == 1 && w_dtype == HMOE_DTYPE_BF16 && kernel == &hmoe::cpu::matmul_avx2) {
      xperm.resize(size_t(heads * ld));
      for (int64_t h = 0; h < heads; ++h) hmoe::cpu::permute_for_bf16(xp.data() + h * ld, xperm.data() + h * ld, ld);
    }
#endif
    const int32_t fmt = w_dtype == HMOE_DTYPE_F32 ? HMOE_FORMAT_F32 : HMOE_FORMAT_BF16;
    run_on(engine, heads * chunks, work, [&](int64_t c) {
      const int64_t h = c / chunks, r0 = (c % chunks) * rows, r1 = std::min(out, r0 + rows);
      const hmoe::cpu::MatView m{head_w(h), nullptr, out, in, in * es, 0, fmt, 0};
      const hmoe::cpu::ActView a{xp.data() + h * n * ld, xperm.empty() ? nullptr : xperm.data() + h * ld,
                                 xb.empty() ? nullptr : xb.data() + h * n * ld, nullptr, nullptr, ld};
      float* yh = y + h * ldy_h;
      kernel(m, r0, r1, a, int(n), yh + r0, ldy_t);  // yh[t * ldy_t + r] for r in [r0, r1)
      if (bias != nullptr)
        for (int64_t t = 0; t < n; ++t)
          for (int64_t r = r0; r < r1; ++r) yh[t * ldy_t + r] += bias[r];
    });
    return;
  }
  std::vector<float> xr;  // bf16 weights: the activations rounded to bf16, [n, heads, in]
  if (w_dtype == HMOE_DTYPE_BF16) {
    xr.resize(size_t(n * heads * in));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        float* row = xr.data() + (t * heads + h) * in;
        std::memcpy(row, x + t * ldx_t + h * ldx_h, size_t(in) * 4);
        hmoe::round_bf16_row(row, in);
      }
    x = xr.data(), ldx_t = heads * in, ldx_h = in;
  }
  run_on(engine, heads * chunks, work, [&](int64_t c) {
    const int64_t h = c / chunks, r0 = (c % chunks) * rows, r1 = std::min(out, r0 + rows);
    std::vector<float> wr(static_cast<size_t>(in));
    for (int64_t r = r0; r < r1; ++r) {
      widen_row(head_w(h), w_dtype, r, in, wr.data());
      const float b = bias != nullptr ? bias[r] : 0.0f;
      for (int64_t t = 0; t < n; ++t) y[t * ldy_t + h * ldy_h + r] = dot(x + t * ldx_t + h * ldx_h, wr.data(), in) + b;
    }
  });
}

// Scalar attention kernels (attn_kernels.hpp has the contract) over f32 or bf16 cache elements;
// the AVX2 ones when the CPU has it.
float elem(float v) { return v; }
float elem(uint16_t h) { return hmoe::bf16_to_f32(h); }

template <typename T>
void attn_scores_scalar(const float* q, int64_t nq, int64_t q_stride, const T* k0, int64_t k_stride, int64_t nk,
                        int64_t kd, float scale, float* out, int64_t out_stride) {
  std::vector<float> kf(static_cast<size_t>(kd));
  for (int64_t j = 0; j < nk; ++j) {
    for (int64_t c = 0; c < kd; ++c) kf[size_t(c)] = elem(k0[j * k_stride + c]);
    for (int64_t i = 0; i < nq; ++i) out[i * out_stride + j] = scale * dot(q + i * q_stride, kf.data(), kd);
  }
}

template <typename T>
void attn_values_scalar(const float* p, int64_t nq, int64_t p_stride, const T* v0, int64_t v_stride, int64_t nv,
                        int64_t vd, float* acc, int64_t acc_stride) {
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < nv; ++j) {
      const float pj = p[i * p_stride + j];
      const T* vj = v0 + j * v_stride;
      float* a = acc + i * acc_stride;
      for (int64_t e = 0; e < vd; ++e) a[e] += pj * elem(vj[e]);
    }
}

struct AttnKernels {
  decltype(&attn_scores_scalar<float>) scores;
  decltype(&attn_values_scalar<float>) values;
  decltype(&attn_scores_scalar<uint16_t>) scores_bf16;
  decltype(&attn_values_scalar<uint16_t>) values_bf16;
};

AttnKernels attn_kernels() {
#ifdef HMOE_HAVE_AVX2
  if (hmoe::kernel_variant() >= HMOE_KERNEL_AVX2 && (hmoe::cpu_features() & HMOE_CPU_AVX2))
    return {&hmoe::cpu::attn_scores_avx2, &hmoe::cpu::attn_values_avx2, &hmoe::cpu::attn_scores_bf16_avx2,
            &hmoe::cpu::attn_values_bf16_avx2};
#endif
  return {&attn_scores_scalar<float>, &attn_values_scalar<float>, &attn_scores_scalar<uint16_t>,
          &attn_values_scalar<uint16_t>};
}

void require_dtype(int32_t w_dtype) {
  if (w_dtype != HMOE_DTYPE_F32 && w_dtype != HMOE_DTYPE_BF16 && w_dtype != HMOE_DTYPE_F16)
    hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "w_dtype must be HMOE_DTYPE_F32, _BF16 or _F16, got %d", w_dtype);
}

}  // namespace

// Layer-major storage: layer l's keys are [max_seq, n_kv, k_dim] at element l * max_seq * n_kv *
// k_dim, in f32 or bf16 (es bytes an element). Shared mode (hmoe_kv_cache_create_shared_kv) has
// no value storage: a head's value is the first v_dim elements of its key, so values() points
// into the keys with a head stride of k_dim.
struct hmoe_kv_cache {
  int64_t n_layers, max_seq, n_kv, k_dim, v_dim;
  bool shared = false;
  bool bf16 = false;  // elements stored as bf16 (rounded to nearest even on append), else f32
  std::vector<int64_t> length;  // [n_layers]
  std::unique_ptr<uint8_t[]> k, v;
  int64_t es() const { return bf16 ? 2 : 4; }
  uint8_t* keys(int64_t l, int64_t pos) { return k.get() + (l * max_seq + pos) * n_kv * k_dim * es(); }
  uint8_t* values(int64_t l, int64_t pos) {
    return shared ? keys(l, pos) : v.get() + (l * max_seq + pos) * n_kv * v_dim * es();
  }
  int64_t value_head_stride() const { return shared ? k_dim : v_dim; }
  // Stores count f32 values at dst in the cache's element type.
  void store(uint8_t* dst, const float* src, int64_t count) const {
    if (!bf16) {
      std::memcpy(dst, src, size_t(count) * 4);
      return;
    }
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t h = hmoe::f32_to_bf16(src[i]);
      std::memcpy(dst + 2 * i, &h, 2);
    }
  }
};

namespace {

// Both creators: validates, allocates keys (and values unless shared), sets *out.
void kv_cache_create(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads, int64_t k_dim, int64_t v_dim,
                     bool shared, int32_t dtype, hmoe_kv_cache_t** out) {
  HMOE_REQUIRE_PTR(out);
  *out = nullptr;
  require_dim("n_layers", n_layers);
  require_dim("max_seq", max_seq);
  require_dim("n_kv_heads", n_kv_heads);
  require_dim("k_dim", k_dim);
  require_dim("v_dim", v_dim);
  if (dtype != HMOE_DTYPE_F32 && dtype != HMOE_DTYPE_BF16)
    hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "dtype must be HMOE_DTYPE_F32 or HMOE_DTYPE_BF16, got %d", dtype);
  if (shared && v_dim > k_dim)
    hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "a shared-KV cache needs v_dim (%lld) <= k_dim (%lld)",
               (long long)v_dim, (long long)k_dim);
  const double elems =
      double(n_layers) * double(max_seq) * double(n_kv_heads) * double(shared ? k_dim : k_dim + v_dim);
  if (elems > double(int64_t(1) << 40))
    hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "a cache of %.3g elements is too large", elems);
  auto c = std::make_unique<hmoe_kv_cache>();
  c->n_layers = n_layers;
  c->max_seq = max_seq;
  c->n_kv = n_kv_heads;
  c->k_dim = k_dim;
  c->v_dim = v_dim;
  c->shared = shared;
  c->bf16 = dtype == HMOE_DTYPE_BF16;
  c->length.assign(size_t(n_layers), 0);
  c->k.reset(new uint8_t[size_t(n_layers * max_seq * n_kv_heads * k_dim * c->es())]);
  if (!shared) c->v.reset(new uint8_t[size_t(n_layers * max_seq * n_kv_heads * v_dim * c->es())]);
  *out = c.release();
}

}  // namespace

extern "C" {

int hmoe_dense_linear(hmoe_engine_t* engine, const float* x, int64_t n, int64_t in, const void* w,
                      int32_t w_dtype, int64_t out, const float* bias, float* y) {
  return hmoe::guarded("hmoe_dense_linear", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(w);
    HMOE_REQUIRE_PTR(y);
    HMOE_REQUIRE_NONNEG(n);
    require_dim("in", in);
    require_dim("out", out);
    require_dtype(w_dtype);
    if (n == 0) return;
    if (n > INT32_MAX) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n must fit in int32, got %lld", (long long)n);
    // Prefill-sized calls (the engine's oneDNN threshold, as for experts) go to oneDNN's GEMM; the
    // scalar variant (the reference) and f16 weights stay on the engine's kernels.
    const int min_dnnl = engine->onednn_min_tokens;
    if (min_dnnl > 0 && n >= min_dnnl && w_dtype != HMOE_DTYPE_F16 && vector_kernel(w_dtype) != nullptr) {
      linear_onednn(engine, x, n, in, w, w_dtype, out, bias, y);
      return;
    }
    linear_heads(engine, x, n, 1, in, in, 0, w, w_dtype, 0, out, bias, y, out, 0);
  });
}

int hmoe_dense_linear_heads(hmoe_engine_t* engine, const float* x, int64_t n, int64_t heads, int64_t in,
                            int64_t ldx_token, int64_t ldx_head, const void* w, int32_t w_dtype,
                            int64_t w_head_stride, int64_t out, float* y, int64_t ldy_token, int64_t ldy_head) {
  return hmoe::guarded("hmoe_dense_linear_heads", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(w);
    HMOE_REQUIRE_PTR(y);
    HMOE_REQUIRE_NONNEG(n);
    require_dim("heads", heads);
    require_dim("in", in);
    require_dim("out", out);
    require_dtype(w_dtype);
    HMOE_REQUIRE_NONNEG(ldx_token);
    HMOE_REQUIRE_NONNEG(ldx_head);
    HMOE_REQUIRE_NONNEG(w_head_stride);
    HMOE_REQUIRE_NONNEG(ldy_token);
    HMOE_REQUIRE_NONNEG(ldy_head);
    if (n == 0) return;
    if (n > INT32_MAX) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n must fit in int32, got %lld", (long long)n);
    // Outputs are written concurrently: distinct (token, head) rows must not overlap, which holds
    // for token-major [n, heads, out] and head-major [heads, n, out] layouts and their padding.
    const bool token_major = (heads == 1 || ldy_head >= out) && (n == 1 || ldy_token >= heads * std::max(ldy_head, out));
    const bool head_major = (n == 1 || ldy_token >= out) && (heads == 1 || ldy_head >= n * std::max(ldy_token, out));
    if (!token_major && !head_major)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT,
                 "output rows overlap: ldy_token %lld, ldy_head %lld for %lld tokens, %lld heads of %lld",
                 (long long)ldy_token, (long long)ldy_head, (long long)n, (long long)heads, (long long)out);
    linear_heads(engine, x, n, heads, in, ldx_token, ldx_head, w, w_dtype, w_head_stride, out, nullptr, y,
                 ldy_token, ldy_head);
  });
}

int hmoe_dense_rmsnorm(const float* x, int64_t n, int64_t dim, int64_t x_stride, const float* w,
                       float eps, float* y, int64_t y_stride) {
  return hmoe::guarded("hmoe_dense_rmsnorm", [&] {
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(y);
    HMOE_REQUIRE_NONNEG(n);
    require_dim("dim", dim);
    if (x_stride < dim || y_stride < dim)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "x_stride (%lld) and y_stride (%lld) must be >= dim (%lld)",
                 (long long)x_stride, (long long)y_stride, (long long)dim);
    if (!(eps >= 0.0f)) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "eps must be >= 0, got %g", double(eps));
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x + r * x_stride;
      float* yr = y + r * y_stride;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
      const float inv = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
      for (int64_t i = 0; i < dim; ++i) yr[i] = (w != nullptr ? w[i] : 1.0f) * (xr[i] * inv);
    }
  });
}

int hmoe_dense_rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride,
                    int64_t rot_dim, const int32_t* positions, const float* inv_freq, float mscale,
                    int32_t style) {
  return hmoe::guarded("hmoe_dense_rope", [&] {
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(positions);
    HMOE_REQUIRE_PTR(inv_freq);
    HMOE_REQUIRE_NONNEG(n);
    require_dim("n_heads", n_heads);
    if (rot_dim < 2 || rot_dim % 2 != 0 || rot_dim > kMaxDim)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "rot_dim must be even and >= 2, got %lld", (long long)rot_dim);
    if (head_stride < rot_dim && n_heads > 1)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "head_stride (%lld) must be >= rot_dim (%lld)",
                 (long long)head_stride, (long long)rot_dim);
    if (style != HMOE_ROPE_HALF && style != HMOE_ROPE_INTERLEAVED)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "style must be HMOE_ROPE_HALF or HMOE_ROPE_INTERLEAVED, got %d", style);
    const int64_t half = rot_dim / 2;
    std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t t = 0; t < n; ++t) {
      if (positions[t] < 0)
        hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "positions[%lld] is negative (%d)", (long long)t, positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        // HF computes the angle in f32 (pos * inv_freq), then cos/sin of that f32 value.
        const float ang = float(positions[t]) * inv_freq[i];
        c[size_t(i)] = float(std::cos(double(ang))) * mscale;
        s[size_t(i)] = float(std::sin(double(ang))) * mscale;
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* p = x + t * token_stride + h * head_stride;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = style == HMOE_ROPE_HALF ? i : 2 * i;
          const int64_t b = style == HMOE_ROPE_HALF ? i + half : 2 * i + 1;
          const float x0 = p[a], x1 = p[b];
          p[a] = x0 * c[size_t(i)] - x1 * s[size_t(i)];
          p[b] = x1 * c[size_t(i)] + x0 * s[size_t(i)];
        }
      }
    }
  });
}

int hmoe_kv_cache_create(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads, int64_t k_dim,
                         int64_t v_dim, hmoe_kv_cache_t** out) {
  return hmoe::guarded("hmoe_kv_cache_create", [&] {
    kv_cache_create(n_layers, max_seq, n_kv_heads, k_dim, v_dim, false, HMOE_DTYPE_F32, out);
  });
}

int hmoe_kv_cache_create_shared_kv(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads, int64_t k_dim,
                                   int64_t v_dim, hmoe_kv_cache_t** out) {
  return hmoe::guarded("hmoe_kv_cache_create_shared_kv", [&] {
    kv_cache_create(n_layers, max_seq, n_kv_heads, k_dim, v_dim, true, HMOE_DTYPE_F32, out);
  });
}

int hmoe_kv_cache_create_typed(int64_t n_layers, int64_t max_seq, int64_t n_kv_heads, int64_t k_dim, int64_t v_dim,
                               int32_t dtype, int32_t shared_kv, hmoe_kv_cache_t** out) {
  return hmoe::guarded("hmoe_kv_cache_create_typed", [&] {
    kv_cache_create(n_layers, max_seq, n_kv_heads, k_dim, v_dim, shared_kv != 0, dtype, out);
  });
}

void hmoe_kv_cache_free(hmoe_kv_cache_t* cache) { delete cache; }

int hmoe_kv_cache_length(const hmoe_kv_cache_t* cache, int64_t layer, int64_t* out) {
  return hmoe::guarded("hmoe_kv_cache_length", [&] {
    HMOE_REQUIRE_PTR(cache);
    HMOE_REQUIRE_PTR(out);
    if (layer < 0 || layer >= cache->n_layers)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "layer %lld outside 0..%lld", (long long)layer,
                 (long long)cache->n_layers - 1);
    *out = cache->length[size_t(layer)];
  });
}

int hmoe_kv_cache_truncate(hmoe_kv_cache_t* cache, int64_t length) {
  return hmoe::guarded("hmoe_kv_cache_truncate", [&] {
    HMOE_REQUIRE_PTR(cache);
    HMOE_REQUIRE_NONNEG(length);
    for (int64_t& l : cache->length) l = std::min(l, length);
  });
}

int hmoe_dense_attention(hmoe_engine_t* engine, hmoe_kv_cache_t* cache, int64_t layer, const float* q,
                         const float* k, const float* v, int64_t n, int64_t n_heads, float scale,
                         float* out) {
  return hmoe_dense_attention_window(engine, cache, layer, q, k, v, n, n_heads, scale, 0, out);
}

int hmoe_dense_attention_window(hmoe_engine_t* engine, hmoe_kv_cache_t* cache, int64_t layer, const float* q,
                                const float* k, const float* v, int64_t n, int64_t n_heads, float scale,
                                int64_t window, float* out) {
  return hmoe::guarded("hmoe_dense_attention", [&] {
    HMOE_REQUIRE_NONNEG(window);
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(cache);
    HMOE_REQUIRE_PTR(q);
    HMOE_REQUIRE_PTR(k);
    if (!cache->shared) HMOE_REQUIRE_PTR(v);  // shared mode: v is ignored (NULL allowed)
    HMOE_REQUIRE_PTR(out);
    HMOE_REQUIRE_NONNEG(n);
    if (layer < 0 || layer >= cache->n_layers)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "layer %lld outside 0..%lld", (long long)layer,
                 (long long)cache->n_layers - 1);
    require_dim("n_heads", n_heads);
    const int64_t kv = cache->n_kv, kd = cache->k_dim, vd = cache->v_dim;
    if (n_heads % kv != 0)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n_heads (%lld) must be a multiple of the cache's n_kv_heads (%lld)",
                 (long long)n_heads, (long long)kv);
    const int64_t L = cache->length[size_t(layer)];
    if (L + n > cache->max_seq)
      hmoe::fail(HMOE_ERR_STATE, "layer %lld holds %lld positions; %lld more exceed max_seq %lld",
                 (long long)layer, (long long)L, (long long)n, (long long)cache->max_seq);
    if (n == 0) return;
    cache->store(cache->keys(layer, L), k, n * kv * kd);
    if (!cache->shared) cache->store(cache->values(layer, L), v, n * kv * vd);
    const int64_t vs = cache->value_head_stride();
    cache->length[size_t(layer)] = L + n;
    const int64_t group = n_heads / kv;
    // Flash-decoding: a task is (token t, KV head g, chunk of kChunk positions); it reads each key
    // and value of its chunk once for all `group` query heads of g (MLA's 16 heads share one latent
    // head: reading the cache once per query head was 16x the traffic) and leaves a partial softmax
    // (max m, sum l, unnormalized output) that the second pass combines per head in chunk order.
    const int64_t chunks = (L + n + kChunk - 1) / kChunk;
    const AttnKernels ak = attn_kernels();
    const int64_t pw = 2 + vd;  // a partial: m, l, acc[vd]
    // Tokens go in batches whose partials fit kPartialFloats (a long prefill would need GBs).
    const int64_t per_token = kv * chunks * group * pw;
    const int64_t nb = std::max<int64_t>(1, std::min<int64_t>(n, kPartialFloats / per_token));
    // Not zeroed: every task writes its partials (m always; l and acc where the chunk is in range).
    std::unique_ptr<float[]> part(new float[size_t(nb * per_token)]);
    for (int64_t t0 = 0; t0 < n; t0 += nb) {
      const int64_t tn = std::min(nb, n - t0);
      // partials of batch token b (token t0 + b), KV head g, chunk c: group x pw floats
      const auto partial = [&](int64_t b, int64_t g, int64_t c) { return part.get() + ((b * kv + g) * chunks + c) * group * pw; };
      const double work = double(tn) * double(n_heads) * double(L + t0 + tn) * double(kd + vd);
      run_on(engine, tn * kv * chunks, work, [&](int64_t task) {
        const int64_t c = task % chunks, g = (task / chunks) % kv, b = task / (chunks * kv), t = t0 + b;
        // causal: positions 0..L+t, and with a window only the last `window` of them
        const int64_t lo = window > 0 ? std::max<int64_t>(0, L + t + 1 - window) : 0;
        const int64_t j0 = std::max(c * kChunk, lo), j1 = std::min(L + t + 1, c * kChunk + kChunk);
        float* pr = partial(b, g, c);
        if (j0 >= j1) {  // the chunk lies after this token's position or before its window
          for (int64_t i = 0; i < group; ++i) pr[i * pw] = -INFINITY;
          return;
        }
        thread_local std::vector<float> sc;
        sc.resize(size_t(group * kChunk));
        const int64_t nj = j1 - j0;
        const float* q0 = q + (t * n_heads + g * group) * kd;
        const uint8_t* k0 = cache->keys(layer, j0) + g * kd * cache->es();
        if (cache->bf16)
          ak.scores_bf16(q0, group, kd, reinterpret_cast<const uint16_t*>(k0), kv * kd, nj, kd, scale, sc.data(), kChunk);
        else
          ak.scores(q0, group, kd, reinterpret_cast<const float*>(k0), kv * kd, nj, kd, scale, sc.data(), kChunk);
        for (int64_t i = 0; i < group; ++i) {
          float* si = sc.data() + i * kChunk;
          float mx = -INFINITY;
          for (int64_t j = 0; j < nj; ++j) mx = std::max(mx, si[j]);
          float l = 0;
          for (int64_t j = 0; j < nj; ++j) l += (si[j] = std::exp(si[j] - mx));
          pr[i * pw] = mx;
          pr[i * pw + 1] = l;
          std::fill(pr + i * pw + 2, pr + (i + 1) * pw, 0.0f);
        }
        const uint8_t* v0 = cache->values(layer, j0) + g * vs * cache->es();
        if (cache->bf16)
          ak.values_bf16(sc.data(), group, kChunk, reinterpret_cast<const uint16_t*>(v0), kv * vs, nj, vd, pr + 2, pw);
        else
          ak.values(sc.data(), group, kChunk, reinterpret_cast<const float*>(v0), kv * vs, nj, vd, pr + 2, pw);
      });
      // Combine per head: o = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c, chunks in order.
      run_on(engine, tn * n_heads, double(tn) * double(n_heads) * double(chunks) * double(vd), [&](int64_t task) {
        const int64_t b = task / n_heads, h = task % n_heads, g = h / group, i = h % group;
        float mx = -INFINITY;
        for (int64_t c = 0; c < chunks; ++c) mx = std::max(mx, partial(b, g, c)[i * pw]);
        float* o = out + ((t0 + b) * n_heads + h) * vd;
        std::fill(o, o + vd, 0.0f);
        float l = 0;
        for (int64_t c = 0; c < chunks; ++c) {
          const float* pr = partial(b, g, c) + i * pw;
          if (pr[0] == -INFINITY) continue;
          const float f = std::exp(pr[0] - mx);
          l += f * pr[1];
          for (int64_t e = 0; e < vd; ++e) o[e] += f * pr[2 + e];
        }
        const float inv = 1.0f / l;
        for (int64_t e = 0; e < vd; ++e) o[e] *= inv;
      });
    }
  });
}

}  // extern "C"
