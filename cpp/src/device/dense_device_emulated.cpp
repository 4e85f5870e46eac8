// The host-emulated dense device: weights copied into memory it owns (as a GPU would hold them),
// linears computed by the CPU kernels of dense.h on an engine of its own. It lets the model's
// dense placement run and be tested without a GPU; it makes no speed claim.
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "device/dense_device.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/device.h"
#include "internal/status.hpp"

namespace {

using hmoe::fail;

void check(int status) {
  if (status != HMOE_OK) fail(status, "%s", hmoe_last_error());
}

// q, k, v clamped to [-c, c] as the model's CPU path does (Math.max(-c, Math.min(c, v))): NaN stays NaN.
void clamp(float* p, int64_t count, float c) {
  for (int64_t i = 0; i < count; ++i) p[i] = p[i] > c ? c : (p[i] < -c ? -c : p[i]);
}

class EmulatedDenseDevice final : public hmoe_dense_device {
 public:
  explicit EmulatedDenseDevice(int32_t threads) { check(hmoe_engine_create(threads < 1 ? 1 : threads, &engine_)); }
  ~EmulatedDenseDevice() override {
    for (auto& layers : caches_)
      for (auto* c : layers) hmoe_kv_cache_free(c);
    hmoe_engine_free(engine_);
  }

  int32_t kind() const override { return HMOE_DEVICE_EMULATED; }

  void upload(const Weight& w, const void* data, const float* bias) override {
    Stored s;
    const size_t wb = size_t(w.bytes - (w.has_bias ? w.out * 4 : 0));
    s.w.reset(new unsigned char[wb]);
    std::memcpy(s.w.get(), data, wb);
    if (bias) s.bias.assign(bias, bias + w.out);
    stored_.push_back(std::move(s));
  }

  void linears(int32_t count, const int32_t* ids, const float* x, int64_t n, float* y) override {
    int64_t at = 0;
    for (int32_t i = 0; i < count; ++i) {
      linear(ids[i], x, n, y + at);
      at += n * weights[size_t(ids[i])].out;
    }
  }

  // The sublayer's description is read from `attentions` when it runs: nothing to copy.
  void add_attention(const Attention&) override {}

  // One single-layer host cache per layer, so that each layer's length can follow the ABI's
  // (a failed call leaves the ABI's length behind; the next call truncates that layer back).
  void kv_create(const Kv& kv) override {
    std::vector<hmoe_kv_cache_t*> layers;
    try {
      for (int64_t l = 0; l < kv.layers; ++l) {
        hmoe_kv_cache_t* c = nullptr;
        check(hmoe_kv_cache_create_typed(1, kv.max_seq, kv.heads, kv.k_dim, kv.v_dim, kv.dtype, kv.shared ? 1 : 0, &c));
        layers.push_back(c);
      }
      caches_.push_back(layers);
    } catch (...) {
      for (auto* c : layers) hmoe_kv_cache_free(c);
      throw;
    }
  }

  void kv_free(int32_t id) override {
    for (auto*& c : caches_[size_t(id)]) {
      hmoe_kv_cache_free(c);
      c = nullptr;
    }
  }

  void attend(int32_t attn, int32_t kv, int64_t layer, const float* x, int64_t n, const int32_t* positions,
              float* out) override {
    const Attention& a = attentions[size_t(attn)];
    hmoe_kv_cache_t* cache = caches_[size_t(kv)][size_t(layer)];
    check(hmoe_kv_cache_truncate(cache, kvs[size_t(kv)].length[size_t(layer)]));
    if (a.mla)
      attend_mla(a, cache, x, n, positions, out);
    else
      attend_gqa(a, cache, x, n, positions, out);
  }

  void mlp(int32_t gate, int32_t up, int32_t down, const float* x, int64_t n, float* y) override {
    const int64_t ff = weights[size_t(gate)].out;
    g_.resize(size_t(n * ff));
    u_.resize(size_t(n * ff));
    linear(gate, x, n, g_.data());
    linear(up, x, n, u_.data());
    for (size_t i = 0; i < g_.size(); ++i) {
      const double a = g_[i];
      g_[i] = float(a / (1.0 + std::exp(-a))) * u_[i];  // as the model's CPU path (Act.siluMul)
    }
    linear(down, g_.data(), n, y);
  }

 private:
  struct Stored {
    std::unique_ptr<unsigned char[]> w;
    std::vector<float> bias;
  };

  void linear(int32_t id, const float* x, int64_t n, float* y) {
    const Weight& w = weights[size_t(id)];
    const Stored& s = stored_[size_t(id)];
    check(hmoe_dense_linear(engine_, x, n, w.in, s.w.get(), w.dtype, w.out, s.bias.empty() ? nullptr : s.bias.data(),
                            y));
  }

  // GqaAttention.forward, step by step.
  void attend_gqa(const Attention& a, hmoe_kv_cache_t* cache, const float* x, int64_t n, const int32_t* pos,
                  float* out) {
    const int64_t hd = a.head_dim, qd = a.heads * hd, kd = a.kv_heads * hd;
    qkv_.resize(size_t(n * (qd + 2 * kd)));
    float* q = qkv_.data();
    float* k = q + n * qd;
    float* v = k + n * kd;
    const int32_t qkv[3] = {a.q, a.k, a.v};
    linears(3, qkv, x, n, q);  // q, k, v in turn
    if (a.qk_norm == HMOE_QK_NORM_PER_HEAD) {
      check(hmoe_dense_rmsnorm(q, n * a.heads, hd, hd, a.q_norm.data(), a.eps, q, hd));
      check(hmoe_dense_rmsnorm(k, n * a.kv_heads, hd, hd, a.k_norm.data(), a.eps, k, hd));
    } else if (a.qk_norm == HMOE_QK_NORM_FULL) {
      check(hmoe_dense_rmsnorm(q, n, qd, qd, a.q_norm.data(), a.eps, q, qd));
      check(hmoe_dense_rmsnorm(k, n, kd, kd, a.k_norm.data(), a.eps, k, kd));
    }
    if (a.clip > 0) clamp(q, n * (qd + 2 * kd), a.clip);
    check(hmoe_dense_rope(q, n, a.heads, qd, hd, hd, pos, a.inv_freq.data(), a.rope_scale, HMOE_ROPE_HALF));
    check(hmoe_dense_rope(k, n, a.kv_heads, kd, hd, hd, pos, a.inv_freq.data(), a.rope_scale, HMOE_ROPE_HALF));
    att_.resize(size_t(n * qd));
    check(hmoe_dense_attention_window(engine_, cache, 0, q, k, v, n, a.heads, a.scale, a.window, att_.data()));
    linear(a.o, att_.data(), n, out);
  }

  // MlaAttention.forward, step by step.
  void attend_mla(const Attention& a, hmoe_kv_cache_t* cache, const float* x, int64_t n, const int32_t* pos,
                  float* out) {
    const int64_t h = a.heads, qk = a.nope + a.rope, aw = a.rank + a.rope;
    key_.resize(size_t(n * aw));
    qkv_.resize(size_t(n * h * qk));
    float* q = qkv_.data();
    if (a.q_proj >= 0) {
      linear(a.q_proj, x, n, q);
    } else {
      const int64_t qr = weights[size_t(a.q_a)].out;
      qa_.resize(size_t(n * qr));
      linear(a.q_a, x, n, qa_.data());
      check(hmoe_dense_rmsnorm(qa_.data(), n, qr, qr, a.q_a_norm.data(), a.eps, qa_.data(), qr));
      linear(a.q_b, qa_.data(), n, q);
    }
    float* key = key_.data();
    linear(a.kv_a, x, n, key);
    check(hmoe_dense_rmsnorm(key, n, a.rank, aw, a.kv_a_norm.data(), a.eps, key, aw));
    check(hmoe_dense_rope(key + a.rank, n, 1, aw, a.rope, a.rope, pos, a.inv_freq.data(), a.rope_scale,
                          HMOE_ROPE_INTERLEAVED));
    check(hmoe_dense_rope(q + a.nope, n, h, h * qk, qk, a.rope, pos, a.inv_freq.data(), a.rope_scale,
                          HMOE_ROPE_INTERLEAVED));
    // q'[n, H, rank + rope] = [W_uk_h^T q_nope_h | q_pe_h]
    qa_.resize(size_t(n * h * aw));
    const Weight& uk = weights[size_t(a.uk_t)];
    check(hmoe_dense_linear_heads(engine_, q, n, h, a.nope, h * qk, qk, stored_[size_t(a.uk_t)].w.get(), uk.dtype,
                                  int64_t(a.rank) * a.nope, a.rank, qa_.data(), h * aw, aw));
    for (int64_t t = 0; t < n * h; ++t)
      std::memcpy(qa_.data() + t * aw + a.rank, q + t * qk + a.nope, size_t(a.rope) * sizeof(float));
    lat_.resize(size_t(n * h * a.rank));
    check(hmoe_dense_attention(engine_, cache, 0, qa_.data(), key, nullptr, n, h, a.scale, lat_.data()));
    // W_uv_h: rows h*(nope+vd) + nope .. + vd of kv_b_proj.
    const Weight& kvb = weights[size_t(a.kv_b)];
    const int64_t es = kvb.dtype == HMOE_DTYPE_F32 ? 4 : 2;
    att_.resize(size_t(n * h * a.vd));
    check(hmoe_dense_linear_heads(engine_, lat_.data(), n, h, a.rank, h * a.rank, a.rank,
                                  stored_[size_t(a.kv_b)].w.get() + int64_t(a.nope) * a.rank * es, kvb.dtype,
                                  int64_t(a.nope + a.vd) * a.rank, a.vd, att_.data(), h * a.vd, a.vd));
    linear(a.o, att_.data(), n, out);
  }

  hmoe_engine_t* engine_ = nullptr;                   // owned
  std::vector<Stored> stored_;                        // per weight id
  std::vector<std::vector<hmoe_kv_cache_t*>> caches_; // per kv id, per layer (owned; null once freed)
  std::vector<float> g_, u_;                          // MLP intermediates [n, ff]
  std::vector<float> qkv_, key_, qa_, lat_, att_;     // attention intermediates
};

}  // namespace

extern "C" int hmoe_dense_device_create_emulated(int32_t threads, hmoe_dense_device_t** out) {
  return hmoe::guarded("hmoe_dense_device_create_emulated", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (threads < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "threads must be >= 0, got %d", threads);
    *out = new EmulatedDenseDevice(threads);
  });
}
