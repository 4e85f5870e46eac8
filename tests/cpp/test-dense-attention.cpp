// Attention sublayers on a dense device (dense_device.h: add_gqa, add_mla, kv_*, attend) against
// a float64 reference written here: grouped-query attention with every q/k norm form, biases,
// clipping and a sliding window; MLA with and without q-lora; a prompt (the many-token paths)
// then decode steps; f32 and bf16 caches; and the refused arguments (shapes, a cache of the
// wrong geometry, a full cache, a freed cache, negative positions), after which the device and
// the cache go on. Argument "emulated" (label cpu) or "cuda" (exits 77, skipped, without a GPU).
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "dense-test-weights.hpp"
#include "hybrimoe/dense_device.h"
#include "hybrimoe/device.h"

namespace {

std::vector<float> uniform(size_t count, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(count);
  for (auto& f : v) f = u(rng);
  return v;
}

std::vector<float> inv_freq(int dim) {
  std::vector<float> f(size_t(dim / 2));
  for (int i = 0; i < dim / 2; ++i) f[size_t(i)] = float(std::pow(10000.0, -2.0 * i / dim));
  return f;
}

// RMSNorm of `dim` values at p (stride 1), in place.
void ref_rmsnorm(double* p, int64_t dim, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < dim; ++i) ss += p[i] * p[i];
  const double inv = 1.0 / std::sqrt(ss / double(dim) + eps);
  for (int64_t i = 0; i < dim; ++i) p[i] = w[size_t(i)] * p[i] * inv;
}

// RoPE of one head's first rot values at p; the angle is the f32 product the engine specifies.
void ref_rope(double* p, int64_t rot, int32_t pos, const std::vector<float>& f, double scale, bool interleaved) {
  const int64_t half = rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double ang = double(float(pos) * f[size_t(i)]);
    const double c = std::cos(ang) * scale, s = std::sin(ang) * scale;
    const int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    const double x0 = p[a], x1 = p[b];
    p[a] = x0 * c - x1 * s;
    p[b] = x1 * c + x0 * s;
  }
}

// What a cache of dtype stores of v.
double stored(double v, int32_t dtype) {
  return dtype == HMOE_DTYPE_BF16 ? double(hmoe::bf16_to_f32(hmoe::f32_to_bf16(float(v)))) : double(float(v));
}

// softmax(scale * q . keys) values, over positions lo..hi of a [pos, heads, dim] history.
void ref_attend(const double* q, const std::vector<double>& keys, int64_t kstride, int64_t koff, int64_t kdim,
                const std::vector<double>& vals, int64_t vstride, int64_t voff, int64_t vdim, int64_t lo, int64_t hi,
                double scale, double* out) {
  std::vector<double> s(size_t(hi - lo + 1));
  double m = -INFINITY;
  for (int64_t p = lo; p <= hi; ++p) {
    double d = 0;
    for (int64_t i = 0; i < kdim; ++i) d += q[i] * keys[size_t(p * kstride + koff + i)];
    s[size_t(p - lo)] = scale * d;
    m = std::max(m, s[size_t(p - lo)]);
  }
  double z = 0;
  for (auto& e : s) z += (e = std::exp(e - m));
  for (int64_t i = 0; i < vdim; ++i) out[i] = 0;
  for (int64_t p = lo; p <= hi; ++p)
    for (int64_t i = 0; i < vdim; ++i) out[i] += s[size_t(p - lo)] / z * vals[size_t(p * vstride + voff + i)];
}

struct Gqa {
  Weight q, k, v, o;
  int heads, kv, hd, norm;
  std::vector<float> qn, kn, freq;
  float eps, rope_scale, clip, scale;
  int window;
  int32_t cache_dtype;
  std::vector<double> keys, vals;  // history [pos, kv, hd]
  int64_t len = 0;

  std::vector<double> step(const std::vector<float>& x, int64_t n, const int32_t* pos) {
    auto qv = ref_linear(q, x, n), kv_ = ref_linear(k, x, n), vv = ref_linear(v, x, n);
    for (int64_t t = 0; t < n; ++t) {
      double* qt = &qv[size_t(t * heads * hd)];
      double* kt = &kv_[size_t(t * kv * hd)];
      double* vt = &vv[size_t(t * kv * hd)];
      if (norm == HMOE_QK_NORM_PER_HEAD) {
        for (int h = 0; h < heads; ++h) ref_rmsnorm(qt + h * hd, hd, qn, eps);
        for (int h = 0; h < kv; ++h) ref_rmsnorm(kt + h * hd, hd, kn, eps);
      } else if (norm == HMOE_QK_NORM_FULL) {
        ref_rmsnorm(qt, int64_t(heads) * hd, qn, eps);
        ref_rmsnorm(kt, int64_t(kv) * hd, kn, eps);
      }
      if (clip > 0) {
        for (auto* p : {qt, kt, vt}) {
          const int64_t count = p == qt ? int64_t(heads) * hd : int64_t(kv) * hd;
          for (int64_t i = 0; i < count; ++i) p[i] = std::max(-double(clip), std::min(double(clip), p[i]));
        }
      }
      for (int h = 0; h < heads; ++h) ref_rope(qt + h * hd, hd, pos[t], freq, rope_scale, false);
      for (int h = 0; h < kv; ++h) ref_rope(kt + h * hd, hd, pos[t], freq, rope_scale, false);
      for (int64_t i = 0; i < int64_t(kv) * hd; ++i) {
        keys.push_back(stored(kt[i], cache_dtype));
        vals.push_back(stored(vt[i], cache_dtype));
      }
    }
    std::vector<double> att(size_t(n * heads * hd));
    for (int64_t t = 0; t < n; ++t) {
      const int64_t hi = len + t, lo = window > 0 ? std::max<int64_t>(0, hi - window + 1) : 0;
      for (int h = 0; h < heads; ++h) {
        const int g = h / (heads / kv);
        ref_attend(&qv[size_t((t * heads + h) * hd)], keys, int64_t(kv) * hd, int64_t(g) * hd, hd, vals,
                   int64_t(kv) * hd, int64_t(g) * hd, hd, lo, hi, scale, &att[size_t((t * heads + h) * hd)]);
      }
    }
    len += n;
    return ref_linear(o, att, n);
  }
};

struct Mla {
  bool lora;
  Weight q_proj, q_a, q_b, kv_a, uk_t, kv_b, o;
  std::vector<float> q_a_norm, kv_a_norm, freq;
  int heads, nope, rope, vd, rank;
  float eps, rope_scale, scale;
  int32_t cache_dtype;
  std::vector<double> keys;  // history [pos, rank + rope]
  int64_t len = 0;

  std::vector<double> step(const std::vector<float>& x, int64_t n, const int32_t* pos) {
    const int64_t qk = nope + rope, aw = rank + rope;
    std::vector<double> qv;
    if (lora) {
      auto qa = ref_linear(q_a, x, n);
      for (int64_t t = 0; t < n; ++t) ref_rmsnorm(&qa[size_t(t * q_a.out)], q_a.out, q_a_norm, eps);
      qv = ref_linear(q_b, qa, n);
    } else {
      qv = ref_linear(q_proj, x, n);
    }
    auto kv = ref_linear(kv_a, x, n);
    for (int64_t t = 0; t < n; ++t) {
      double* kt = &kv[size_t(t * aw)];
      ref_rmsnorm(kt, rank, kv_a_norm, eps);
      ref_rope(kt + rank, rope, pos[t], freq, rope_scale, true);
      for (int h = 0; h < heads; ++h) ref_rope(&qv[size_t((t * heads + h) * qk + nope)], rope, pos[t], freq, rope_scale, true);
      for (int64_t i = 0; i < aw; ++i) keys.push_back(stored(kt[i], cache_dtype));
    }
    std::vector<double> att(size_t(n * heads * vd));
    std::vector<double> qp(static_cast<size_t>(aw)), lat(static_cast<size_t>(rank));
    for (int64_t t = 0; t < n; ++t)
      for (int h = 0; h < heads; ++h) {
        const double* q = &qv[size_t((t * heads + h) * qk)];
        for (int r = 0; r < rank; ++r) {  // W_uk_h^T q_nope: uk_t rows h*rank + r
          double s = 0;
          for (int i = 0; i < nope; ++i)
            s += uk_t.value[size_t((int64_t(h) * rank + r) * nope + i)] * rule_input(uk_t.dtype, q[i]);
          qp[size_t(r)] = s;
        }
        for (int i = 0; i < rope; ++i) qp[size_t(rank + i)] = q[nope + i];
        ref_attend(qp.data(), keys, aw, 0, aw, keys, aw, 0, rank, 0, len + t, scale, lat.data());
        for (int r = 0; r < vd; ++r) {  // W_uv_h: kv_b rows h*(nope+vd) + nope + r
          double s = 0;
          for (int i = 0; i < rank; ++i)
            s += kv_b.value[size_t((int64_t(h) * (nope + vd) + nope + r) * rank + i)] * rule_input(kv_b.dtype, lat[size_t(i)]);
          att[size_t((t * heads + h) * vd + r)] = s;
        }
      }
    len += n;
    return ref_linear(o, att, n);
  }
};

Gqa make_gqa(int norm, float clip, int window, int32_t dtype, int32_t cache_dtype, std::mt19937& rng, int hd = 24) {
  Gqa g;
  const int d = 44;
  g.heads = 6, g.kv = 2, g.hd = hd, g.norm = norm;
  g.q = make_weight(dtype, g.heads * g.hd, d, true, rng);
  g.k = make_weight(dtype, g.kv * g.hd, d, true, rng);
  g.v = make_weight(HMOE_DTYPE_F32, g.kv * g.hd, d, true, rng);
  g.o = make_weight(dtype, d, g.heads * g.hd, false, rng);
  if (norm == HMOE_QK_NORM_PER_HEAD) {
    g.qn = uniform(size_t(g.hd), 0.5f, 1.5f, rng);
    g.kn = uniform(size_t(g.hd), 0.5f, 1.5f, rng);
  } else if (norm == HMOE_QK_NORM_FULL) {
    g.qn = uniform(size_t(g.heads * g.hd), 0.5f, 1.5f, rng);
    g.kn = uniform(size_t(g.kv * g.hd), 0.5f, 1.5f, rng);
  }
  g.freq = inv_freq(g.hd);
  g.eps = 1e-6f, g.rope_scale = 1.07f, g.clip = clip, g.window = window, g.scale = 1.0f / std::sqrt(float(g.hd));
  g.cache_dtype = cache_dtype;
  return g;
}

Mla make_mla(bool lora, int32_t dtype, int32_t cache_dtype, std::mt19937& rng, int nope = 16, int rank = 40) {
  Mla m;
  const int d = 52;
  m.lora = lora, m.heads = 5, m.nope = nope, m.rope = 8, m.vd = 12, m.rank = rank;
  const int qk = m.heads * (m.nope + m.rope);
  if (lora) {
    m.q_a = make_weight(dtype, 20, d, false, rng);
    m.q_b = make_weight(dtype, qk, 20, false, rng);
    m.q_a_norm = uniform(20, 0.5f, 1.5f, rng);
  } else {
    m.q_proj = make_weight(dtype, qk, d, false, rng);
  }
  m.kv_a = make_weight(dtype, m.rank + m.rope, d, false, rng);
  m.kv_a_norm = uniform(size_t(m.rank), 0.5f, 1.5f, rng);
  m.uk_t = make_weight(dtype, int64_t(m.heads) * m.rank, m.nope, false, rng);
  m.kv_b = make_weight(dtype, int64_t(m.heads) * (m.nope + m.vd), m.rank, false, rng);
  m.o = make_weight(dtype, d, int64_t(m.heads) * m.vd, false, rng);
  m.freq = inv_freq(m.rope);
  m.eps = 1e-6f, m.rope_scale = 1.05f, m.scale = 0.3f;
  m.cache_dtype = cache_dtype;
  return m;
}

int32_t add(hmoe_dense_device_t* dev, Gqa& g) {
  int32_t id = -1;
  CHECK_OK(hmoe_dense_device_add_gqa(dev, upload(dev, g.q), upload(dev, g.k), upload(dev, g.v), upload(dev, g.o),
                                     g.heads, g.kv, g.hd, g.norm, g.qn.empty() ? nullptr : g.qn.data(),
                                     g.kn.empty() ? nullptr : g.kn.data(), g.eps, g.freq.data(), g.rope_scale, g.clip,
                                     g.window, g.scale, &id));
  return id;
}

int32_t add(hmoe_dense_device_t* dev, Mla& m) {
  int32_t id = -1;
  const int32_t qp = m.lora ? -1 : upload(dev, m.q_proj), qa = m.lora ? upload(dev, m.q_a) : -1,
                qb = m.lora ? upload(dev, m.q_b) : -1;
  CHECK_OK(hmoe_dense_device_add_mla(dev, qp, qa, m.lora ? m.q_a_norm.data() : nullptr, qb, upload(dev, m.kv_a),
                                     m.kv_a_norm.data(), upload(dev, m.uk_t), upload(dev, m.kv_b), upload(dev, m.o),
                                     m.heads, m.nope, m.rope, m.vd, m.rank, m.eps, m.freq.data(), m.rope_scale, m.scale,
                                     &id));
  return id;
}

// A prompt of `prompt` tokens, then decode steps, on `layers` layers of one cache (each layer its
// own reference history), against the reference; positions start at `first`.
template <typename Ref>
void run(hmoe_dense_device_t* dev, Ref& proto, int64_t d, int64_t cache_heads, int64_t k_dim, int64_t v_dim,
         bool shared, int64_t prompt, const char* what, std::mt19937& rng) {
  const int32_t attn = add(dev, proto);
  const int layers = 2;
  const int64_t max_seq = prompt + 4;
  int32_t kv = -1;
  CHECK_OK(hmoe_dense_device_kv_create(dev, layers, max_seq, cache_heads, k_dim, v_dim, proto.cache_dtype,
                                       shared ? 1 : 0, &kv));
  std::vector<Ref> refs(size_t(layers), proto);
  // bf16 caches round every key and value; bf16 weights round every linear's input (the engine's
  // rule, which the reference follows), and where the device's f32 input and the reference's
  // differ by an ulp, an element can round to the other bf16 neighbour, which the softmax of a
  // long MLA latent amplifies (measured 1.0e-3 at rank 520): both get 2e-3, f32 throughout 1e-4.
  const double tol = proto.cache_dtype == HMOE_DTYPE_BF16 || proto.o.dtype == HMOE_DTYPE_BF16 ? 2e-3 : 1e-4;
  int64_t at = 0;
  for (int64_t n : {prompt, int64_t(1), int64_t(1), int64_t(2)}) {
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) pos[size_t(t)] = int32_t(100 + at + t);  // a continued sequence's positions
    for (int l = 0; l < layers; ++l) {
      const auto x = uniform(size_t(n * d), -1.0f, 1.0f, rng);
      std::vector<float> out(size_t(n * d), NAN);
      CHECK_OK(hmoe_dense_device_attend(dev, attn, kv, l, x.data(), n, pos.data(), out.data()));
      const auto want = refs[size_t(l)].step(x, n, pos.data());
      const double e = max_err(out.data(), want.data(), want.size());
      if (!(e < tol)) std::fprintf(stderr, "%s: layer %d, %lld tokens at %lld: error %g\n", what, l, (long long)n,
                                   (long long)at, e);
      CHECK(e < tol);
      int64_t len = -1;
      CHECK_OK(hmoe_dense_device_kv_length(dev, kv, l, &len));
      CHECK(len == at + n);
    }
    at += n;
  }
  // Full: refused with the layer untouched; after a truncation the layer goes on from there.
  const auto x = uniform(size_t(d), -1.0f, 1.0f, rng);
  std::vector<float> out(static_cast<size_t>(d));
  const int32_t p0 = 0;
  CHECK(hmoe_dense_device_attend(dev, attn, kv, 0, x.data(), 1, &p0, out.data()) == HMOE_ERR_STATE);
  int64_t len = -1;
  CHECK_OK(hmoe_dense_device_kv_length(dev, kv, 0, &len));
  CHECK(len == max_seq);
  CHECK_OK(hmoe_dense_device_kv_truncate(dev, kv, 0));
  CHECK_OK(hmoe_dense_device_attend(dev, attn, kv, 0, x.data(), 1, &p0, out.data()));
  Ref fresh = proto;
  const auto want = fresh.step(x, 1, &p0);
  CHECK(max_err(out.data(), want.data(), want.size()) < tol);
  CHECK_OK(hmoe_dense_device_kv_free(dev, kv));
  CHECK(hmoe_dense_device_attend(dev, attn, kv, 0, x.data(), 1, &p0, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("freed") != std::string::npos);
}

void check_refusals(hmoe_dense_device_t* dev, std::mt19937& rng) {
  Gqa g = make_gqa(HMOE_QK_NORM_NONE, 0, 0, HMOE_DTYPE_BF16, HMOE_DTYPE_F32, rng);
  const int32_t q = upload(dev, g.q), k = upload(dev, g.k), v = upload(dev, g.v), o = upload(dev, g.o);
  int32_t id = 5;
  // k given where v belongs: [kv*hd, d] fits; o given as q does not.
  CHECK(hmoe_dense_device_add_gqa(dev, o, k, v, o, g.heads, g.kv, g.hd, 0, nullptr, nullptr, 1e-6f, g.freq.data(), 1,
                                  0, 0, 1, &id) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(id == -1);
  CHECK(std::string(hmoe_last_error()).find("q (weight") != std::string::npos);
  CHECK(hmoe_dense_device_add_gqa(dev, q, k, v, o, g.heads, 4, g.hd, 0, nullptr, nullptr, 1e-6f, g.freq.data(), 1, 0,
                                  0, 1, &id) == HMOE_ERR_INVALID_ARGUMENT);  // 6 heads over 4 KV heads
  CHECK(hmoe_dense_device_add_gqa(dev, q, k, v, o, g.heads, g.kv, g.hd, HMOE_QK_NORM_PER_HEAD, nullptr, nullptr,
                                  1e-6f, g.freq.data(), 1, 0, 0, 1, &id) == HMOE_ERR_INVALID_ARGUMENT);  // no norms
  CHECK(hmoe_dense_device_add_gqa(dev, q, k, v, o, g.heads, g.kv, g.hd, 7, nullptr, nullptr, 1e-6f, g.freq.data(), 1,
                                  0, 0, 1, &id) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_add_gqa(dev, q, k, v, o, g.heads, g.kv, g.hd, 0, nullptr, nullptr, 1e-6f, g.freq.data(), 1,
                                  0, -1, 1, &id) == HMOE_ERR_INVALID_ARGUMENT);  // window
  CHECK(hmoe_dense_device_add_mla(dev, q, q, nullptr, q, k, g.freq.data(), q, q, o, 1, 8, 8, 8, 8, 1e-6f,
                                  g.freq.data(), 1, 1, &id) == HMOE_ERR_INVALID_ARGUMENT);  // q_proj and q-lora
  int32_t attn = -1;
  CHECK_OK(hmoe_dense_device_add_gqa(dev, q, k, v, o, g.heads, g.kv, g.hd, 0, nullptr, nullptr, 1e-6f, g.freq.data(),
                                     1, 0, 0, g.scale, &attn));
  int32_t kv = 9;
  CHECK(hmoe_dense_device_kv_create(dev, 1, 4, 1, 8, 16, HMOE_DTYPE_F32, 1, &kv) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(kv == -1);
  CHECK(hmoe_dense_device_kv_create(dev, 1, 4, 1, 8, 8, 3, 0, &kv) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_kv_create(dev, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1, HMOE_DTYPE_F32, 0, &kv) ==
        HMOE_ERR_OUT_OF_MEMORY);  // past int64 bytes: refused before any allocation
  int32_t wrong = -1, right = -1;
  CHECK_OK(hmoe_dense_device_kv_create(dev, 2, 4, g.kv, g.hd, g.hd, HMOE_DTYPE_F32, 1, &wrong));  // shared: not GQA's
  CHECK_OK(hmoe_dense_device_kv_create(dev, 2, 4, g.kv, g.hd, g.hd, HMOE_DTYPE_F32, 0, &right));
  const auto x = uniform(44 * 2, -1, 1, rng);
  std::vector<float> out(44 * 2);
  const int32_t pos[2] = {0, 1}, bad[2] = {0, -3};
  CHECK(hmoe_dense_device_attend(dev, attn, wrong, 0, x.data(), 2, pos, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("does not fit") != std::string::npos);
  CHECK(hmoe_dense_device_attend(dev, attn, right, 2, x.data(), 2, pos, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_attend(dev, attn, right, 0, x.data(), 2, bad, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_attend(dev, attn + 1000, right, 0, x.data(), 2, pos, out.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_attend(dev, attn, right, 0, nullptr, 2, pos, out.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK_OK(hmoe_dense_device_attend(dev, attn, right, 0, nullptr, 0, nullptr, nullptr));  // nothing to do
  int64_t len = -1;
  CHECK_OK(hmoe_dense_device_kv_length(dev, right, 0, &len));
  CHECK(len == 0);  // every refusal left the layer as it was
  CHECK_OK(hmoe_dense_device_attend(dev, attn, right, 0, x.data(), 2, pos, out.data()));
  CHECK_OK(hmoe_dense_device_kv_length(dev, right, 0, &len));
  CHECK(len == 2);
  CHECK_OK(hmoe_dense_device_kv_free(dev, right));
  CHECK(hmoe_dense_device_kv_free(dev, right) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_kv_truncate(dev, right, 0) == HMOE_ERR_INVALID_ARGUMENT);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "emulated";
  hmoe_dense_device_t* dev = open_device(which);
  if (!dev) return 1;
  std::mt19937 rng(4321);
  // Head dims 24 and 136 (CUDA's attention holds 4 and 8 elements a lane); latent 48 and 528
  // (4 and 32 a lane), nope 16 and 12 (the per-head products' vector and scalar paths).
  struct G { int norm; float clip; int window; int32_t dtype, cache; int64_t prompt; int hd; };
  for (const G& c : {G{HMOE_QK_NORM_NONE, 0, 0, HMOE_DTYPE_BF16, HMOE_DTYPE_F32, 13, 24},
                     G{HMOE_QK_NORM_PER_HEAD, 0, 0, HMOE_DTYPE_F32, HMOE_DTYPE_F32, 3, 24},
                     G{HMOE_QK_NORM_FULL, 0.6f, 0, HMOE_DTYPE_F16, HMOE_DTYPE_F32, 9, 24},
                     G{HMOE_QK_NORM_NONE, 0, 5, HMOE_DTYPE_BF16, HMOE_DTYPE_F32, 11, 24},
                     G{HMOE_QK_NORM_PER_HEAD, 0, 0, HMOE_DTYPE_BF16, HMOE_DTYPE_BF16, 70, 24},
                     G{HMOE_QK_NORM_NONE, 0, 7, HMOE_DTYPE_BF16, HMOE_DTYPE_F32, 10, 136}}) {
    Gqa g = make_gqa(c.norm, c.clip, c.window, c.dtype, c.cache, rng, c.hd);
    run(dev, g, 44, g.kv, g.hd, g.hd, false, c.prompt, "gqa", rng);
  }
  for (bool lora : {false, true})
    for (int32_t cache : {HMOE_DTYPE_F32, HMOE_DTYPE_BF16}) {
      Mla m = make_mla(lora, lora ? HMOE_DTYPE_F32 : HMOE_DTYPE_BF16, cache, rng);
      run(dev, m, 52, 1, m.rank + m.rope, m.rank, true, lora ? 10 : 4, "mla", rng);
    }
  Mla wide = make_mla(true, HMOE_DTYPE_BF16, HMOE_DTYPE_F32, rng, 12, 520);
  run(dev, wide, 52, 1, wide.rank + wide.rope, wide.rank, true, 9, "mla rank 520", rng);
  check_refusals(dev, rng);
  hmoe_dense_device_free(dev);  // frees the caches still live
  return TEST_RESULT();
}
