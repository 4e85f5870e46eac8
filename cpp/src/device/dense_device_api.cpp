// The dense device C ABI: argument checks against the weight table, shared by both
// implementations (see dense_device.hpp).
#include <algorithm>
#include <cmath>
#include <vector>

#include "device/dense_device.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/device.h"
#include "internal/status.hpp"

namespace {

using hmoe::fail;

hmoe_dense_device_t* require_device(hmoe_dense_device_t* d) {
  if (d == nullptr) fail(HMOE_ERR_INVALID_ARGUMENT, "device must not be NULL");
  return d;
}

const hmoe_dense_device::Weight& require_weight(const hmoe_dense_device_t* d, const char* what, int32_t id) {
  if (id < 0 || size_t(id) >= d->weights.size())
    fail(HMOE_ERR_INVALID_ARGUMENT, "%s: weight id %d is not on this device (it holds %zu)", what, id,
         d->weights.size());
  return d->weights[size_t(id)];
}

void require_rows(int64_t n) {
  if (n < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "n must be >= 0, got %lld", (long long)n);
  if (n > INT32_MAX) fail(HMOE_ERR_INVALID_ARGUMENT, "n must fit in int32, got %lld", (long long)n);
}

}  // namespace

extern "C" {

void hmoe_dense_device_free(hmoe_dense_device_t* device) { delete device; }

int hmoe_dense_device_describe(const hmoe_dense_device_t* device, int32_t* kind, int32_t* weights,
                               int64_t* bytes) {
  return hmoe::guarded("hmoe_dense_device_describe", [&] {
    HMOE_REQUIRE_PTR(device);
    if (kind) *kind = device->kind();
    if (weights) *weights = int32_t(device->weights.size());
    if (bytes) *bytes = device->bytes;
  });
}

int hmoe_dense_device_upload(hmoe_dense_device_t* device, const void* w, int32_t w_dtype, int64_t out,
                             int64_t in, const float* bias, int32_t* id) {
  return hmoe::guarded("hmoe_dense_device_upload", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(w);
    HMOE_REQUIRE_PTR(id);
    *id = -1;
    if (out < 1 || in < 1 || out > INT32_MAX || in > INT32_MAX)
      fail(HMOE_ERR_INVALID_ARGUMENT, "weight shape must be [out, in] with 1 <= out, in < 2^31, got [%lld, %lld]",
           (long long)out, (long long)in);
    int64_t es = 0;
    switch (w_dtype) {
      case HMOE_DTYPE_F32: es = 4; break;
      case HMOE_DTYPE_BF16:
      case HMOE_DTYPE_F16: es = 2; break;
      default:
        fail(HMOE_ERR_INVALID_ARGUMENT, "w_dtype must be HMOE_DTYPE_F32, _BF16 or _F16, got %d", w_dtype);
    }
    if (device->weights.size() >= size_t(INT32_MAX))
      fail(HMOE_ERR_STATE, "the device holds %zu weights, the most it can", device->weights.size());
    int64_t wbytes = 0;
    if (__builtin_mul_overflow(out * in, es, &wbytes) || wbytes > INT64_MAX - out * 4)
      fail(HMOE_ERR_OUT_OF_MEMORY, "a [%lld, %lld] weight is larger than any memory", (long long)out, (long long)in);
    hmoe_dense_device::Weight wt{w_dtype, out, in, bias != nullptr, wbytes + (bias ? out * 4 : 0)};
    device->weights.reserve(device->weights.size() + 1);  // the push_back below cannot fail after the upload
    device->upload(wt, w, bias);
    device->weights.push_back(wt);
    device->bytes += wt.bytes;
    *id = int32_t(device->weights.size() - 1);
  });
}

int hmoe_dense_device_linears(hmoe_dense_device_t* device, int32_t count, const int32_t* ids, const float* x,
                              int64_t n, float* y) {
  return hmoe::guarded("hmoe_dense_device_linears", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(ids);
    if (count < 1 || count > HMOE_DENSE_MAX_GROUP)
      fail(HMOE_ERR_INVALID_ARGUMENT, "count must be in [1, %d], got %d", HMOE_DENSE_MAX_GROUP, count);
    require_rows(n);
    const int64_t in = require_weight(device, "ids[0]", ids[0]).in;
    for (int32_t i = 1; i < count; ++i) {
      const auto& w = require_weight(device, "ids[i]", ids[i]);
      if (w.in != in)
        fail(HMOE_ERR_INVALID_ARGUMENT, "weights of one group must share their input size: ids[0] takes %lld, "
             "ids[%d] takes %lld", (long long)in, i, (long long)w.in);
    }
    if (n == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(y);
    device->linears(count, ids, x, n, y);
  });
}

int hmoe_dense_device_mlp(hmoe_dense_device_t* device, int32_t gate, int32_t up, int32_t down, const float* x,
                          int64_t n, float* y) {
  return hmoe::guarded("hmoe_dense_device_mlp", [&] {
    require_device(device);
    const auto& g = require_weight(device, "gate", gate);
    const auto& u = require_weight(device, "up", up);
    const auto& dn = require_weight(device, "down", down);
    if (u.out != g.out || u.in != g.in || dn.in != g.out || dn.out != g.in)
      fail(HMOE_ERR_INVALID_ARGUMENT, "MLP shapes disagree: gate [%lld, %lld], up [%lld, %lld], down [%lld, %lld]; "
           "need gate and up [ff, d], down [d, ff]", (long long)g.out, (long long)g.in, (long long)u.out,
           (long long)u.in, (long long)dn.out, (long long)dn.in);
    require_rows(n);
    if (n == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(y);
    device->mlp(gate, up, down, x, n, y);
  });
}

}  // extern "C"

// ---- Attention sublayers ----

namespace {

void require_positive(const char* what, int64_t v) {
  if (v < 1) fail(HMOE_ERR_INVALID_ARGUMENT, "%s must be >= 1, got %lld", what, (long long)v);
}

// Weight `id` must be [out, in]; what names its role in the error.
void require_shape(const hmoe_dense_device_t* d, const char* what, int32_t id, int64_t out, int64_t in) {
  const auto& w = require_weight(d, what, id);
  if (w.out != out || w.in != in)
    fail(HMOE_ERR_INVALID_ARGUMENT, "%s (weight %d) must be [%lld, %lld], it is [%lld, %lld]", what, id,
         (long long)out, (long long)in, (long long)w.out, (long long)w.in);
}

std::vector<float> copy_vector(const char* what, const float* p, int64_t n) {
  if (p == nullptr) fail(HMOE_ERR_INVALID_ARGUMENT, "%s must not be NULL", what);
  return std::vector<float>(p, p + n);
}

void require_common(float eps, float rope_scale, float scale) {
  if (!(eps >= 0.0f) || !std::isfinite(eps)) fail(HMOE_ERR_INVALID_ARGUMENT, "eps must be finite and >= 0, got %g", double(eps));
  if (!std::isfinite(rope_scale)) fail(HMOE_ERR_INVALID_ARGUMENT, "rope_scale must be finite, got %g", double(rope_scale));
  if (!std::isfinite(scale)) fail(HMOE_ERR_INVALID_ARGUMENT, "scale must be finite, got %g", double(scale));
}

void add(hmoe_dense_device_t* device, hmoe_dense_device::Attention&& a, int32_t* attn) {
  if (device->attentions.size() >= size_t(INT32_MAX))
    fail(HMOE_ERR_STATE, "the device holds %zu attention sublayers, the most it can", device->attentions.size());
  device->attentions.reserve(device->attentions.size() + 1);  // no failure after the implementation kept it
  device->add_attention(a);
  device->attentions.push_back(std::move(a));
  *attn = int32_t(device->attentions.size() - 1);
}

hmoe_dense_device::Kv& require_kv(hmoe_dense_device_t* d, int32_t kv) {
  if (kv < 0 || size_t(kv) >= d->kvs.size())
    fail(HMOE_ERR_INVALID_ARGUMENT, "kv cache id %d is not on this device (it made %zu)", kv, d->kvs.size());
  auto& c = d->kvs[size_t(kv)];
  if (!c.live) fail(HMOE_ERR_INVALID_ARGUMENT, "kv cache %d was freed", kv);
  return c;
}

}  // namespace

extern "C" {

int hmoe_dense_device_add_gqa(hmoe_dense_device_t* device, int32_t q, int32_t k, int32_t v, int32_t o, int32_t heads,
                              int32_t kv_heads, int32_t head_dim, int32_t qk_norm, const float* q_norm,
                              const float* k_norm, float eps, const float* inv_freq, float rope_scale, float clip,
                              int32_t window, float scale, int32_t* attn) {
  return hmoe::guarded("hmoe_dense_device_add_gqa", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(attn);
    *attn = -1;
    require_positive("heads", heads);
    require_positive("kv_heads", kv_heads);
    require_positive("head_dim", head_dim);
    if (heads % kv_heads != 0)
      fail(HMOE_ERR_INVALID_ARGUMENT, "heads (%d) must be a multiple of kv_heads (%d)", heads, kv_heads);
    if (head_dim % 2 != 0) fail(HMOE_ERR_INVALID_ARGUMENT, "head_dim must be even for RoPE, got %d", head_dim);
    const int64_t qd = int64_t(heads) * head_dim, kd = int64_t(kv_heads) * head_dim;
    const int64_t d = require_weight(device, "q", q).in;
    require_shape(device, "q", q, qd, d);
    require_shape(device, "k", k, kd, d);
    require_shape(device, "v", v, kd, d);
    require_shape(device, "o", o, d, qd);
    require_common(eps, rope_scale, scale);
    if (!(clip >= 0.0f)) fail(HMOE_ERR_INVALID_ARGUMENT, "clip must be >= 0 (0: none), got %g", double(clip));
    if (window < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "window must be >= 0 (0: none), got %d", window);
    hmoe_dense_device::Attention a{};
    a.mla = false;
    a.d = int32_t(d);
    a.q = q, a.k = k, a.v = v, a.o = o;
    a.heads = heads, a.kv_heads = kv_heads, a.head_dim = head_dim;
    a.qk_norm = qk_norm;
    switch (qk_norm) {
      case HMOE_QK_NORM_NONE: break;
      case HMOE_QK_NORM_PER_HEAD:
        a.q_norm = copy_vector("q_norm", q_norm, head_dim);
        a.k_norm = copy_vector("k_norm", k_norm, head_dim);
        break;
      case HMOE_QK_NORM_FULL:
        a.q_norm = copy_vector("q_norm", q_norm, qd);
        a.k_norm = copy_vector("k_norm", k_norm, kd);
        break;
      default:
        fail(HMOE_ERR_INVALID_ARGUMENT, "qk_norm must be HMOE_QK_NORM_NONE, _PER_HEAD or _FULL, got %d", qk_norm);
    }
    a.clip = clip;
    a.window = window;
    a.q_proj = a.q_a = a.q_b = a.kv_a = a.uk_t = a.kv_b = -1;
    a.eps = eps;
    a.inv_freq = copy_vector("inv_freq", inv_freq, head_dim / 2);
    a.rope_scale = rope_scale;
    a.scale = scale;
    add(device, std::move(a), attn);
  });
}

int hmoe_dense_device_add_mla(hmoe_dense_device_t* device, int32_t q_proj, int32_t q_a, const float* q_a_norm,
                              int32_t q_b, int32_t kv_a, const float* kv_a_norm, int32_t uk_t, int32_t kv_b,
                              int32_t o, int32_t heads, int32_t nope, int32_t rope, int32_t vd, int32_t rank,
                              float eps, const float* inv_freq, float rope_scale, float scale, int32_t* attn) {
  return hmoe::guarded("hmoe_dense_device_add_mla", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(attn);
    *attn = -1;
    require_positive("heads", heads);
    require_positive("nope", nope);
    require_positive("vd", vd);
    require_positive("rank", rank);
    if (rope < 2 || rope % 2 != 0) fail(HMOE_ERR_INVALID_ARGUMENT, "rope must be even and >= 2, got %d", rope);
    const int64_t qk = int64_t(heads) * (nope + rope);
    const int64_t d = require_weight(device, "kv_a", kv_a).in;
    require_shape(device, "kv_a", kv_a, int64_t(rank) + rope, d);
    hmoe_dense_device::Attention a{};
    a.mla = true;
    a.d = int32_t(d);
    a.q = a.k = a.v = -1;
    if ((q_proj >= 0) == (q_a >= 0 || q_b >= 0))
      fail(HMOE_ERR_INVALID_ARGUMENT, "give q_proj (%d) or q_a and q_b (%d, %d), exactly one of the two", q_proj, q_a,
           q_b);
    if (q_proj >= 0) {
      require_shape(device, "q_proj", q_proj, qk, d);
    } else {
      const int64_t q_rank = require_weight(device, "q_a", q_a).out;
      require_shape(device, "q_a", q_a, q_rank, d);
      require_shape(device, "q_b", q_b, qk, q_rank);
      a.q_a_norm = copy_vector("q_a_norm", q_a_norm, q_rank);
    }
    require_shape(device, "uk_t", uk_t, int64_t(heads) * rank, nope);
    require_shape(device, "kv_b", kv_b, int64_t(heads) * (nope + vd), rank);
    require_shape(device, "o", o, d, int64_t(heads) * vd);
    require_common(eps, rope_scale, scale);
    a.q_proj = q_proj, a.q_a = q_a, a.q_b = q_b, a.kv_a = kv_a, a.uk_t = uk_t, a.kv_b = kv_b, a.o = o;
    a.kv_a_norm = copy_vector("kv_a_norm", kv_a_norm, rank);
    a.heads = heads, a.kv_heads = 1, a.head_dim = 0;
    a.qk_norm = HMOE_QK_NORM_NONE;
    a.nope = nope, a.rope = rope, a.vd = vd, a.rank = rank;
    a.eps = eps;
    a.inv_freq = copy_vector("inv_freq", inv_freq, rope / 2);
    a.rope_scale = rope_scale;
    a.scale = scale;
    add(device, std::move(a), attn);
  });
}

int hmoe_dense_device_kv_create(hmoe_dense_device_t* device, int64_t n_layers, int64_t max_seq, int64_t n_kv_heads,
                                int64_t k_dim, int64_t v_dim, int32_t dtype, int32_t shared_kv, int32_t* kv) {
  return hmoe::guarded("hmoe_dense_device_kv_create", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(kv);
    *kv = -1;
    require_positive("n_layers", n_layers);
    require_positive("max_seq", max_seq);
    require_positive("n_kv_heads", n_kv_heads);
    require_positive("k_dim", k_dim);
    require_positive("v_dim", v_dim);
    if (dtype != HMOE_DTYPE_F32 && dtype != HMOE_DTYPE_BF16)
      fail(HMOE_ERR_INVALID_ARGUMENT, "dtype must be HMOE_DTYPE_F32 or _BF16, got %d", dtype);
    if (shared_kv && v_dim > k_dim)
      fail(HMOE_ERR_INVALID_ARGUMENT, "a shared-KV cache needs v_dim (%lld) <= k_dim (%lld)", (long long)v_dim,
           (long long)k_dim);
    if (device->kvs.size() >= size_t(INT32_MAX)) fail(HMOE_ERR_STATE, "the device made %zu caches, the most it can",
                                                      device->kvs.size());
    const int64_t per = k_dim + (shared_kv ? 0 : v_dim), es = dtype == HMOE_DTYPE_BF16 ? 2 : 4;
    int64_t b = 0;
    if (__builtin_mul_overflow(n_layers, max_seq, &b) || __builtin_mul_overflow(b, n_kv_heads, &b) ||
        __builtin_mul_overflow(b, per, &b) || __builtin_mul_overflow(b, es, &b))
      fail(HMOE_ERR_OUT_OF_MEMORY, "a KV cache of %lld layers x %lld positions is larger than any memory",
           (long long)n_layers, (long long)max_seq);
    hmoe_dense_device::Kv c{n_layers, max_seq, n_kv_heads, k_dim, v_dim, dtype, shared_kv != 0,
                            std::vector<int64_t>(size_t(n_layers), 0), true};
    device->kvs.reserve(device->kvs.size() + 1);
    device->kv_create(c);
    device->kvs.push_back(std::move(c));
    *kv = int32_t(device->kvs.size() - 1);
  });
}

int hmoe_dense_device_kv_free(hmoe_dense_device_t* device, int32_t kv) {
  return hmoe::guarded("hmoe_dense_device_kv_free", [&] {
    require_device(device);
    auto& c = require_kv(device, kv);
    device->kv_free(kv);
    c.live = false;
  });
}

int hmoe_dense_device_kv_truncate(hmoe_dense_device_t* device, int32_t kv, int64_t length) {
  return hmoe::guarded("hmoe_dense_device_kv_truncate", [&] {
    require_device(device);
    HMOE_REQUIRE_NONNEG(length);
    for (auto& l : require_kv(device, kv).length) l = std::min(l, length);
  });
}

int hmoe_dense_device_kv_length(const hmoe_dense_device_t* device, int32_t kv, int64_t layer, int64_t* out) {
  return hmoe::guarded("hmoe_dense_device_kv_length", [&] {
    HMOE_REQUIRE_PTR(device);
    HMOE_REQUIRE_PTR(out);
    const auto& c = require_kv(const_cast<hmoe_dense_device_t*>(device), kv);
    if (layer < 0 || layer >= c.layers)
      fail(HMOE_ERR_INVALID_ARGUMENT, "layer %lld is outside the cache's %lld layers", (long long)layer,
           (long long)c.layers);
    *out = c.length[size_t(layer)];
  });
}

int hmoe_dense_device_attend(hmoe_dense_device_t* device, int32_t attn, int32_t kv, int64_t layer, const float* x,
                             int64_t n, const int32_t* positions, float* out) {
  return hmoe::guarded("hmoe_dense_device_attend", [&] {
    require_device(device);
    if (attn < 0 || size_t(attn) >= device->attentions.size())
      fail(HMOE_ERR_INVALID_ARGUMENT, "attention id %d is not on this device (it holds %zu)", attn,
           device->attentions.size());
    const auto& a = device->attentions[size_t(attn)];
    auto& c = require_kv(device, kv);
    if (c.heads != a.cache_heads() || c.k_dim != a.cache_k_dim() || c.v_dim != a.cache_v_dim() ||
        c.shared != a.cache_shared())
      fail(HMOE_ERR_INVALID_ARGUMENT, "kv cache %d (%lld heads, key %lld, value %lld%s) does not fit attention %d "
           "(%lld heads, key %lld, value %lld%s)", kv, (long long)c.heads, (long long)c.k_dim, (long long)c.v_dim,
           c.shared ? ", shared" : "", attn, (long long)a.cache_heads(), (long long)a.cache_k_dim(),
           (long long)a.cache_v_dim(), a.cache_shared() ? ", shared" : "");
    if (layer < 0 || layer >= c.layers)
      fail(HMOE_ERR_INVALID_ARGUMENT, "layer %lld is outside the cache's %lld layers", (long long)layer,
           (long long)c.layers);
    require_rows(n);
    const int64_t len = c.length[size_t(layer)];
    if (n > c.max_seq - len)
      fail(HMOE_ERR_STATE, "layer %lld holds %lld of %lld positions: %lld more do not fit", (long long)layer,
           (long long)len, (long long)c.max_seq, (long long)n);
    if (n == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(positions);
    HMOE_REQUIRE_PTR(out);
    for (int64_t t = 0; t < n; ++t)
      if (positions[t] < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "positions[%lld] is negative (%d)", (long long)t,
                                 positions[t]);
    device->attend(attn, kv, layer, x, n, positions, out);
    c.length[size_t(layer)] = len + n;
  });
}

}  // extern "C"
