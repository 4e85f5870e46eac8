// Dense operations (dense.h) against straightforward double-precision references: linear with
// f32/bf16/f16 weights and bias under each kernel variant the CPU has (the reference follows the
// engine's rule: bf16 weights multiply x rounded to bf16, so one tolerance holds everywhere), RMSNorm (in place), both RoPE pairings at offsets, and GQA
// attention appended over two calls (prefill then decode) equal to one full causal pass, and the
// key-only (shared-KV) cache equal to a normal one holding V = K[..., :v_dim].
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.hpp"
#include "hybrimoe/dense.h"
#include "internal/bf16.hpp"

namespace {

std::mt19937 rng(7);
std::vector<float> randv(size_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// f16 bits of a value that is exactly representable (small integers / 64 here).
uint16_t to_f16(float f) {
  if (f == 0) return 0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const int32_t exp = int32_t((u >> 23) & 0xff) - 127 + 15;
  return uint16_t(sign | uint32_t(exp) << 10 | ((u >> 13) & 0x3ffu));
}

// Small shapes run inline on the caller, large ones on the pool (dense.cpp's kInlineWork).
void test_linear(hmoe_engine_t* eng, int64_t n, int64_t in, int64_t out) {
  std::vector<float> x = randv(size_t(n * in)), bias = randv(size_t(out));
  // Weights k/64 with |k| <= 64: exact in f32, bf16 and f16, so one reference serves all three.
  std::vector<float> w(size_t(out * in));
  std::uniform_int_distribution<int> ki(-64, 64);
  for (auto& v : w) v = float(ki(rng)) / 64.0f;
  std::vector<uint16_t> wb(w.size()), wh(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = hmoe::f32_to_bf16(w[i]), wh[i] = to_f16(w[i]);
  // ref: x as given (f32, f16 weights); ref_b: x rounded to bf16 first (bf16 weights, the rule).
  std::vector<double> ref(size_t(n * out)), ref_b(size_t(n * out));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < out; ++r) {
      double s = bias[size_t(r)], sb = bias[size_t(r)];
      for (int64_t i = 0; i < in; ++i) {
        const float xv = x[size_t(t * in + i)];
        s += double(xv) * w[size_t(r * in + i)];
        sb += double(hmoe::bf16_to_f32(hmoe::f32_to_bf16(xv))) * w[size_t(r * in + i)];
      }
      ref[size_t(t * out + r)] = s;
      ref_b[size_t(t * out + r)] = sb;
    }
  const void* ws[3] = {w.data(), wb.data(), wh.data()};
  const int32_t dts[3] = {HMOE_DTYPE_F32, HMOE_DTYPE_BF16, HMOE_DTYPE_F16};
  for (int k = 0; k < 3; ++k) {
    std::vector<float> y(size_t(n * out), 123.0f);
    CHECK_OK(hmoe_dense_linear(eng, x.data(), n, in, ws[k], dts[k], out, bias.data(), y.data()));
    const double err = max_abs_diff(y, dts[k] == HMOE_DTYPE_BF16 ? ref_b : ref);
    if (err > 1e-5) std::fprintf(stderr, "linear dtype %d: max error %g\n", dts[k], err);
    // oneDNN's GEMM (n >= 128 here) sums in another order: 6.5e-5 at in 1100 against sums of
    // about 17 (4e-6 relative), where the row kernels give 1.5e-5. Same bound for every dtype.
    CHECK(err < (n >= 128 ? 4e-5 : 1e-5) * std::sqrt(double(in) / 37.0));
  }
  // Without bias, and invalid arguments.
  std::vector<float> y(size_t(n * out));
  CHECK_OK(hmoe_dense_linear(eng, x.data(), n, in, w.data(), HMOE_DTYPE_F32, out, nullptr, y.data()));
  CHECK(std::fabs(y[3] - (ref[3] - bias[3])) < 1e-5);
  CHECK(hmoe_dense_linear(eng, x.data(), n, in, w.data(), 9, out, nullptr, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hmoe_last_error(), "w_dtype") != nullptr);
  CHECK(hmoe_dense_linear(eng, x.data(), n, 0, w.data(), HMOE_DTYPE_F32, out, nullptr, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_linear(nullptr, x.data(), n, in, w.data(), HMOE_DTYPE_F32, out, nullptr, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
}

void test_rmsnorm() {
  const int64_t n = 3, dim = 19, stride = 24;
  std::vector<float> x = randv(size_t(n * stride)), w = randv(size_t(dim));
  std::vector<float> y(x);
  CHECK_OK(hmoe_dense_rmsnorm(y.data(), n, dim, stride, w.data(), 1e-5f, y.data(), stride));
  double err = 0;
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[size_t(r * stride + i)]) * x[size_t(r * stride + i)];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i)
      err = std::max(err, std::fabs(y[size_t(r * stride + i)] - w[size_t(i)] * x[size_t(r * stride + i)] * inv));
    for (int64_t i = dim; i < stride; ++i) CHECK(y[size_t(r * stride + i)] == x[size_t(r * stride + i)]);
  }
  CHECK(err < 1e-5);
  CHECK(hmoe_dense_rmsnorm(x.data(), n, dim, dim - 1, nullptr, 1e-5f, y.data(), stride) == HMOE_ERR_INVALID_ARGUMENT);
}

void test_rope() {
  const int64_t n = 3, heads = 2, hd = 12, rot = 8, stride = heads * hd + 4;
  std::vector<float> x = randv(size_t(n * stride));
  std::vector<int32_t> pos = {5, 6, 40};
  std::vector<float> inv(size_t(rot / 2));
  for (int64_t i = 0; i < rot / 2; ++i) inv[size_t(i)] = float(std::pow(10000.0, -2.0 * double(i) / double(rot)));
  for (int32_t style : {HMOE_ROPE_HALF, HMOE_ROPE_INTERLEAVED}) {
    std::vector<float> y(x);
    CHECK_OK(hmoe_dense_rope(y.data(), n, heads, stride, hd, rot, pos.data(), inv.data(), 1.5f, style));
    double err = 0;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        const float* a = x.data() + t * stride + h * hd;
        const float* b = y.data() + t * stride + h * hd;
        for (int64_t i = 0; i < rot / 2; ++i) {
          const int64_t p0 = style == HMOE_ROPE_HALF ? i : 2 * i;
          const int64_t p1 = style == HMOE_ROPE_HALF ? i + rot / 2 : 2 * i + 1;
          const double ang = double(pos[size_t(t)]) * inv[size_t(i)];
          err = std::max(err, std::fabs(b[p0] - 1.5 * (a[p0] * std::cos(ang) - a[p1] * std::sin(ang))));
          err = std::max(err, std::fabs(b[p1] - 1.5 * (a[p1] * std::cos(ang) + a[p0] * std::sin(ang))));
        }
        for (int64_t i = rot; i < hd; ++i) CHECK(b[i] == a[i]);  // beyond rot_dim: untouched
      }
    CHECK(err < 2e-5);
  }
  CHECK(hmoe_dense_rope(x.data(), n, heads, stride, hd, 7, pos.data(), inv.data(), 1.0f, 0) == HMOE_ERR_INVALID_ARGUMENT);
  pos[1] = -1;
  CHECK(hmoe_dense_rope(x.data(), n, heads, stride, hd, rot, pos.data(), inv.data(), 1.0f, 0) == HMOE_ERR_INVALID_ARGUMENT);
}

// Causal (grouped-query) attention in double: token t, head h attends to positions
// max(0, t - window + 1)..t (window 0: all), q [n, heads, kd], k [n, kv, kd], v [n, kv, vd].
std::vector<double> ref_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                                  int64_t n, int64_t heads, int64_t kv, int64_t kd, int64_t vd, float scale,
                                  int64_t window) {
  std::vector<double> ref(size_t(n * heads * vd));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / (heads / kv), lo = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
      std::vector<double> p(size_t(t + 1 - lo));
      double mx = -1e300, sum = 0;
      for (int64_t j = lo; j <= t; ++j) {
        double d = 0;
        for (int64_t i = 0; i < kd; ++i) d += double(q[size_t((t * heads + h) * kd + i)]) * k[size_t((j * kv + g) * kd + i)];
        mx = std::max(mx, p[size_t(j - lo)] = scale * d);
      }
      for (auto& e : p) sum += (e = std::exp(e - mx));
      for (int64_t i = 0; i < vd; ++i) {
        double o = 0;
        for (int64_t j = lo; j <= t; ++j) o += p[size_t(j - lo)] / sum * v[size_t((j * kv + g) * vd + i)];
        ref[size_t((t * heads + h) * vd + i)] = o;
      }
    }
  return ref;
}

void test_attention(hmoe_engine_t* eng, int64_t n, int64_t heads, int64_t kv, int64_t kd, int64_t vd) {
  const float scale = 0.7f;
  std::vector<float> q = randv(size_t(n * heads * kd)), k = randv(size_t(n * kv * kd)), v = randv(size_t(n * kv * vd));
  const std::vector<double> ref = ref_attention(q, k, v, n, heads, kv, kd, vd, scale, 0);
  hmoe_kv_cache_t* cache = nullptr;
  CHECK_OK(hmoe_kv_cache_create(2, n + 2, kv, kd, vd, &cache));
  if (cache == nullptr) return;
  std::vector<float> out(size_t(n * heads * vd));
  const int64_t pre = n - 2;  // prefill into layer 1, then decode 2 tokens one at a time
  CHECK_OK(hmoe_dense_attention(eng, cache, 1, q.data(), k.data(), v.data(), pre, heads, scale, out.data()));
  for (int64_t t = pre; t < n; ++t)
    CHECK_OK(hmoe_dense_attention(eng, cache, 1, q.data() + t * heads * kd, k.data() + t * kv * kd,
                                  v.data() + t * kv * vd, 1, heads, scale, out.data() + t * heads * vd));
  CHECK(max_abs_diff(out, ref) < 1e-5);
  int64_t len = -1;
  CHECK_OK(hmoe_kv_cache_length(cache, 1, &len));
  CHECK(len == n);
  CHECK_OK(hmoe_kv_cache_length(cache, 0, &len));
  CHECK(len == 0);
  // Past max_seq: a state error, the cache unchanged.
  CHECK(hmoe_dense_attention(eng, cache, 1, q.data(), k.data(), v.data(), 3, heads, scale, out.data()) == HMOE_ERR_STATE);
  if (kv > 1)  // heads not a multiple of the KV heads
    CHECK(hmoe_dense_attention(eng, cache, 1, q.data(), k.data(), v.data(), 1, kv + 1, scale, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_attention(eng, cache, 2, q.data(), k.data(), v.data(), 1, heads, scale, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  // Truncate and recompute the whole sequence at once: same result.
  CHECK_OK(hmoe_kv_cache_truncate(cache, 0));
  std::vector<float> out2(out.size());
  CHECK_OK(hmoe_dense_attention(eng, cache, 1, q.data(), k.data(), v.data(), n, heads, scale, out2.data()));
  CHECK(max_abs_diff(out2, ref) < 1e-5);
  hmoe_kv_cache_free(cache);
  hmoe_kv_cache_free(nullptr);
  CHECK(hmoe_kv_cache_create(1, 0, 1, 1, 1, &cache) == HMOE_ERR_INVALID_ARGUMENT);
}

// A shared-KV cache (values = the keys' first vd elements) against a normal cache given
// V = K[:, :, :vd]: prefill then decode one at a time, same outputs (same arithmetic), v ignored.
void test_shared_kv_attention(hmoe_engine_t* eng, int64_t n, int64_t heads, int64_t kv, int64_t kd, int64_t vd) {
  const float scale = 0.37f;
  std::vector<float> q = randv(size_t(n * heads * kd)), k = randv(size_t(n * kv * kd)), v(size_t(n * kv * vd));
  for (int64_t r = 0; r < n * kv; ++r)
    std::memcpy(v.data() + r * vd, k.data() + r * kd, size_t(vd) * 4);
  hmoe_kv_cache_t* normal = nullptr;
  hmoe_kv_cache_t* shared = nullptr;
  CHECK_OK(hmoe_kv_cache_create(3, n + 1, kv, kd, vd, &normal));
  CHECK_OK(hmoe_kv_cache_create_shared_kv(3, n + 1, kv, kd, vd, &shared));
  if (normal == nullptr || shared == nullptr) return;
  std::vector<float> want(size_t(n * heads * vd)), got(want.size(), -7.0f);
  const int64_t pre = n - 3;
  CHECK_OK(hmoe_dense_attention(eng, normal, 2, q.data(), k.data(), v.data(), n, heads, scale, want.data()));
  // Prefill with v NULL, decode with a v that must be ignored (garbage of the wrong size).
  std::vector<float> junk(size_t(kv * vd), 1e30f);
  CHECK_OK(hmoe_dense_attention(eng, shared, 2, q.data(), k.data(), nullptr, pre, heads, scale, got.data()));
  for (int64_t t = pre; t < n; ++t)
    CHECK_OK(hmoe_dense_attention(eng, shared, 2, q.data() + t * heads * kd, k.data() + t * kv * kd,
                                  t % 2 == 0 ? nullptr : junk.data(), 1, heads, scale,
                                  got.data() + t * heads * vd));
  double err = 0;
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(double(got[i]) - want[i]));
  CHECK(err == 0);
  int64_t len = -1;
  CHECK_OK(hmoe_kv_cache_length(shared, 2, &len));
  CHECK(len == n);
  CHECK(hmoe_dense_attention(eng, shared, 2, q.data(), k.data(), nullptr, 2, heads, scale, got.data()) == HMOE_ERR_STATE);
  // Truncate and redo in one call: same result.
  CHECK_OK(hmoe_kv_cache_truncate(shared, 0));
  std::vector<float> again(want.size());
  CHECK_OK(hmoe_dense_attention(eng, shared, 2, q.data(), k.data(), nullptr, n, heads, scale, again.data()));
  CHECK(again == got);
  // A normal cache still requires v.
  CHECK(hmoe_dense_attention(eng, normal, 1, q.data(), k.data(), nullptr, 1, heads, scale, got.data()) == HMOE_ERR_INVALID_ARGUMENT);
  hmoe_kv_cache_free(normal);
  hmoe_kv_cache_free(shared);
  // v_dim == k_dim is allowed; v_dim > k_dim is not, with a message, and *out stays NULL.
  hmoe_kv_cache_t* c = nullptr;
  CHECK_OK(hmoe_kv_cache_create_shared_kv(1, 2, 1, kd, kd, &c));
  hmoe_kv_cache_free(c);
  c = reinterpret_cast<hmoe_kv_cache_t*>(&junk);
  CHECK(hmoe_kv_cache_create_shared_kv(1, 2, 1, kd, kd + 1, &c) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(c == nullptr);
  CHECK(std::strstr(hmoe_last_error(), "v_dim") != nullptr);
  CHECK(hmoe_kv_cache_create_shared_kv(1, 2, 1, kd, 0, &c) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_kv_cache_create_shared_kv(1, 2, 1, kd, vd, nullptr) == HMOE_ERR_INVALID_ARGUMENT);
}

// Per-head linears in one call (MLA's absorbed products): token-major and head-major outputs with
// padding, inputs strided like MLA's q rows, weights of every dtype at a head stride wider than a
// head (as W_uv's slices of kv_b_proj), against double references; overlapping outputs refused.
void test_linear_heads(hmoe_engine_t* eng, int64_t n, int64_t heads, int64_t in, int64_t out) {
  const int64_t ldx_h = in + 3, ldx_t = heads * ldx_h, wstride = out * in + 7 * in;  // gaps everywhere
  std::vector<float> x = randv(size_t(n * ldx_t));
  std::uniform_int_distribution<int> ki(-64, 64);
  std::vector<float> w(size_t((heads - 1) * wstride + out * in));
  for (auto& v : w) v = float(ki(rng)) / 64.0f;  // exact in f32, bf16 and f16
  std::vector<uint16_t> wb(w.size()), wh(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = hmoe::f32_to_bf16(w[i]), wh[i] = to_f16(w[i]);
  const void* ws[3] = {w.data(), wb.data(), wh.data()};
  const int32_t dts[3] = {HMOE_DTYPE_F32, HMOE_DTYPE_BF16, HMOE_DTYPE_F16};
  for (int layout = 0; layout < 2; ++layout) {
    // token-major [n, heads, out + 2] or head-major [heads, n, out + 1]
    const int64_t ldy_h = layout == 0 ? out + 2 : n * (out + 1), ldy_t = layout == 0 ? heads * (out + 2) : out + 1;
    std::vector<double> ref(size_t(n * heads * (out + 2) + n * heads * (out + 1)), 0.0), ref_b(ref);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t r = 0; r < out; ++r) {
          double s = 0, sb = 0;
          for (int64_t i = 0; i < in; ++i) {
            const float xv = x[size_t(t * ldx_t + h * ldx_h + i)];
            s += double(xv) * w[size_t(h * wstride + r * in + i)];
            sb += double(hmoe::bf16_to_f32(hmoe::f32_to_bf16(xv))) * w[size_t(h * wstride + r * in + i)];
          }
          ref[size_t(t * ldy_t + h * ldy_h + r)] = s;
          ref_b[size_t(t * ldy_t + h * ldy_h + r)] = sb;
        }
    for (int k = 0; k < 3; ++k) {
      const std::vector<double>& rk = dts[k] == HMOE_DTYPE_BF16 ? ref_b : ref;
      std::vector<float> y(ref.size(), 0.0f);
      CHECK_OK(hmoe_dense_linear_heads(eng, x.data(), n, heads, in, ldx_t, ldx_h, ws[k], dts[k], wstride, out,
                                       y.data(), ldy_t, ldy_h));
      double err = 0;
      for (int64_t t = 0; t < n; ++t)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t r = 0; r < out; ++r) {
            const size_t at = size_t(t * ldy_t + h * ldy_h + r);
            err = std::max(err, std::fabs(double(y[at]) - rk[at]));
          }
      if (err > 1e-5) std::fprintf(stderr, "linear_heads layout %d dtype %d: max error %g\n", layout, dts[k], err);
      CHECK(err < 1e-5 * std::sqrt(double(in) / 37.0));
    }
  }
  std::vector<float> y(size_t(n * heads * out + out));
  if (n > 1 && heads > 1)  // head rows out apart but tokens only out apart too: overlap
    CHECK(hmoe_dense_linear_heads(eng, x.data(), n, heads, in, ldx_t, ldx_h, w.data(), HMOE_DTYPE_F32, wstride,
                                  out, y.data(), out, out) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_linear_heads(eng, x.data(), n, 0, in, ldx_t, ldx_h, w.data(), HMOE_DTYPE_F32, wstride, out,
                                y.data(), heads * out, out) == HMOE_ERR_INVALID_ARGUMENT);
}

// A bf16 cache (hmoe_kv_cache_create_typed): attention over the rounded keys and values must
// match a double reference computed on the same bf16-rounded inputs as tightly as the f32 cache
// matches its own (the rounding is the only difference), normal and shared layouts, prefill then
// decode; an unknown dtype is refused.
void test_bf16_cache_attention(hmoe_engine_t* eng, int64_t n, int64_t heads, int64_t kv, int64_t kd, int64_t vd,
                               bool shared) {
  const float scale = 0.5f;
  std::vector<float> q = randv(size_t(n * heads * kd)), k = randv(size_t(n * kv * kd)), v = randv(size_t(n * kv * vd));
  if (shared)
    for (int64_t r = 0; r < n * kv; ++r) std::memcpy(v.data() + r * vd, k.data() + r * kd, size_t(vd) * 4);
  // The reference sees the keys and values the cache holds: rounded to bf16 (exact in f32).
  std::vector<float> kr(k), vr(v);
  for (auto* a : {&kr, &vr})
    for (float& x : *a) x = hmoe::bf16_to_f32(hmoe::f32_to_bf16(x));
  const std::vector<double> ref = ref_attention(q, kr, vr, n, heads, kv, kd, vd, scale, 0);
  hmoe_kv_cache_t* c = nullptr;
  CHECK_OK(hmoe_kv_cache_create_typed(2, n, kv, kd, vd, HMOE_DTYPE_BF16, shared ? 1 : 0, &c));
  if (c == nullptr) return;
  std::vector<float> out(ref.size());
  const int64_t pre = n - 2;
  CHECK_OK(hmoe_dense_attention(eng, c, 1, q.data(), k.data(), shared ? nullptr : v.data(), pre, heads, scale, out.data()));
  for (int64_t t = pre; t < n; ++t)
    CHECK_OK(hmoe_dense_attention(eng, c, 1, q.data() + t * heads * kd, k.data() + t * kv * kd,
                                  shared ? nullptr : v.data() + t * kv * vd, 1, heads, scale, out.data() + t * heads * vd));
  const double err = max_abs_diff(out, ref);
  if (err > 1e-5) std::fprintf(stderr, "bf16 cache (shared %d): max error %g\n", int(shared), err);
  CHECK(err < 1e-5);
  hmoe_kv_cache_free(c);
  hmoe_kv_cache_t* bad = nullptr;
  CHECK(hmoe_kv_cache_create_typed(1, 4, 1, 8, 8, HMOE_DTYPE_F16, 0, &bad) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(bad == nullptr);
}

// Sliding-window attention (hmoe_dense_attention_window): position p sees p - window + 1..p,
// against a double reference; prefill then decode, windows inside and across 256-position chunks;
// a negative window is refused.
void test_window_attention(hmoe_engine_t* eng, int64_t n, int64_t heads, int64_t kv, int64_t kd, int64_t vd,
                           int64_t window) {
  const float scale = 0.6f;
  std::vector<float> q = randv(size_t(n * heads * kd)), k = randv(size_t(n * kv * kd)), v = randv(size_t(n * kv * vd));
  const std::vector<double> ref = ref_attention(q, k, v, n, heads, kv, kd, vd, scale, window);
  hmoe_kv_cache_t* c = nullptr;
  CHECK_OK(hmoe_kv_cache_create(1, n, kv, kd, vd, &c));
  if (c == nullptr) return;
  std::vector<float> out(ref.size());
  const int64_t pre = n - 3;
  CHECK_OK(hmoe_dense_attention_window(eng, c, 0, q.data(), k.data(), v.data(), pre, heads, scale, window, out.data()));
  for (int64_t t = pre; t < n; ++t)
    CHECK_OK(hmoe_dense_attention_window(eng, c, 0, q.data() + t * heads * kd, k.data() + t * kv * kd,
                                         v.data() + t * kv * vd, 1, heads, scale, window, out.data() + t * heads * vd));
  const double err = max_abs_diff(out, ref);
  if (err > 1e-5) std::fprintf(stderr, "window %lld: max error %g\n", (long long)window, err);
  CHECK(err < 1e-5);
  CHECK(hmoe_dense_attention_window(eng, c, 0, q.data(), k.data(), v.data(), 1, heads, scale, -1, out.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  hmoe_kv_cache_free(c);
}

}  // namespace

int main() {
  hmoe_engine_t* eng = nullptr;
  CHECK_OK(hmoe_engine_create(3, &eng));
  if (eng == nullptr) return 1;
  // Linear and attention under every kernel variant this CPU has (vector kernels and the scalar path).
  int tested = 0;
  for (int v = HMOE_KERNEL_SCALAR; v <= HMOE_KERNEL_AVX512; ++v) {
    if (hmoe_kernel_variant_force(v) != HMOE_OK) {
      std::printf("variant %d skipped: %s\n", v, hmoe_last_error());
      continue;
    }
    test_linear(eng, 5, 37, 70);     // inline
    test_linear(eng, 1, 37, 70);     // one token (AVX2 bf16: the permuted kernel and its K tail)
    test_linear(eng, 1, 1000, 131);  // one token through the pool, K % 32 = 8, rows % 4 = 3
    test_linear(eng, 9, 200, 150);   // pool
    test_linear(eng, 131, 70, 45);   // prefill-sized: oneDNN's matmul (vector variants; f16 stays ours)
    test_linear(eng, 129, 1100, 1950);  // bf16 widened for oneDNN in two blocks of rows (2M floats each)
    test_linear_heads(eng, 1, 5, 37, 33);     // one token, inline
    test_linear_heads(eng, 1, 16, 128, 130);  // one token through the pool (MLA-like heads)
    test_linear_heads(eng, 3, 4, 70, 21);     // several tokens
    // Attention's inner kernels follow the variant too (scalar, or AVX2 tiles).
    test_attention(eng, 6, 4, 2, 5, 3);      // inline
    test_attention(eng, 40, 8, 2, 64, 48);   // pool
    test_attention(eng, 600, 8, 2, 32, 24);  // three 256-position chunks combined, prefill and decode
    test_shared_kv_attention(eng, 7, 6, 3, 13, 11);    // inline, GQA, odd dims
    test_shared_kv_attention(eng, 37, 16, 1, 99, 93);  // pool, MQA like MLA's latent head
    test_shared_kv_attention(eng, 530, 16, 1, 40, 32);  // chunked, one latent head for 16 queries
    test_attention(eng, 300, 32, 1, 16, 256);  // partials over 1M floats: the prefill runs in token batches
    test_bf16_cache_attention(eng, 9, 4, 2, 21, 13, false);   // inline, odd dims (AVX2 tails)
    test_bf16_cache_attention(eng, 300, 8, 1, 40, 32, true);  // chunked, shared (MLA-like) layout
    test_window_attention(eng, 12, 4, 2, 9, 7, 5);       // window inside one chunk
    test_window_attention(eng, 600, 4, 1, 16, 12, 300);  // window across chunk boundaries
    test_window_attention(eng, 20, 2, 2, 8, 8, 100);     // window longer than the sequence: plain causal
    ++tested;
  }
  hmoe_kernel_variant_force(-1);
  CHECK(tested >= 1);
  test_rmsnorm();
  test_rope();
  hmoe_engine_free(eng);
  return TEST_RESULT();
}
