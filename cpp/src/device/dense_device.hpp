// Internal: the dense device behind cpp/include/hybrimoe/dense_device.h. The C ABI functions
// (dense_device_api.cpp) validate ids and shapes against the weight table kept here;
// implementations (CUDA in cuda/dense-device.cu, host-emulated in dense_device_emulated.cpp)
// only store bytes and compute.
#pragma once

#include <cstdint>
#include <vector>

#include "hybrimoe/dense_device.h"

struct hmoe_dense_device {
  // What the ABI layer knows of an uploaded weight; implementations keep the bytes, indexed alike.
  struct Weight {
    int32_t dtype;
    int64_t out, in;
    bool has_bias;
    int64_t bytes;  // device memory it takes, bias included
  };

  // A registered attention sublayer (dense_device.h's add_gqa / add_mla), validated: weight ids
  // exist with the shapes named there; vectors copied. The cache geometry it needs follows.
  struct Attention {
    bool mla;
    int32_t d;  // model width: x and out are [n, d]
    // GQA
    int32_t q, k, v;
    int32_t heads, kv_heads, head_dim;
    int32_t qk_norm;
    std::vector<float> q_norm, k_norm;  // empty for HMOE_QK_NORM_NONE
    float clip;
    int32_t window;
    // MLA (heads shared with GQA)
    int32_t q_proj, q_a, q_b, kv_a, uk_t, kv_b;  // q_proj -1 with q-lora, q_a and q_b -1 without
    std::vector<float> q_a_norm, kv_a_norm;
    int32_t nope, rope, vd, rank;
    // both
    int32_t o;
    float eps;
    std::vector<float> inv_freq;  // [rotated dims / 2]
    float rope_scale, scale;

    int64_t cache_heads() const { return mla ? 1 : kv_heads; }
    int64_t cache_k_dim() const { return mla ? rank + rope : head_dim; }
    int64_t cache_v_dim() const { return mla ? rank : head_dim; }
    bool cache_shared() const { return mla; }
  };

  // A KV cache's geometry and per-layer lengths (owned here; implementations keep the memory).
  struct Kv {
    int64_t layers, max_seq, heads, k_dim, v_dim;
    int32_t dtype;  // HMOE_DTYPE_F32 or _BF16
    bool shared;
    std::vector<int64_t> length;  // per layer
    bool live;                    // false once freed
  };

  hmoe_dense_device() = default;
  virtual ~hmoe_dense_device() = default;
  hmoe_dense_device(const hmoe_dense_device&) = delete;
  hmoe_dense_device& operator=(const hmoe_dense_device&) = delete;

  virtual int32_t kind() const = 0;
  // Stores weight number weights.size() (the caller appends its entry afterwards). Throws
  // HMOE_ERR_OUT_OF_MEMORY, keeping nothing, when it does not fit.
  virtual void upload(const Weight& w, const void* data, const float* bias) = 0;
  // Validated by the caller: ids exist, share `in`; y is the concatenation of the [n, out_i].
  virtual void linears(int32_t count, const int32_t* ids, const float* x, int64_t n, float* y) = 0;
  // Validated: gate, up [ff, d], down [d, ff].
  virtual void mlp(int32_t gate, int32_t up, int32_t down, const float* x, int64_t n, float* y) = 0;

  // Attention sublayer number attentions.size() (the caller appends its entry afterwards): copies
  // what the implementation needs of it. Throws HMOE_ERR_OUT_OF_MEMORY, keeping nothing.
  virtual void add_attention(const Attention& a) = 0;
  // KV cache number kvs.size() (appended afterwards), every layer empty. Throws
  // HMOE_ERR_OUT_OF_MEMORY, keeping nothing, when it does not fit.
  virtual void kv_create(const Kv& kv) = 0;
  // Frees cache `id`'s memory (the caller marks it dead).
  virtual void kv_free(int32_t id) = 0;
  // Validated: attn and kv exist and agree, kv live, layer in range, L + n <= max_seq with L =
  // kvs[kv].length[layer] (the caller adds n after a successful return), n >= 1. Writes the new
  // keys and values at L..L+n-1 and out [n, d].
  virtual void attend(int32_t attn, int32_t kv, int64_t layer, const float* x, int64_t n, const int32_t* positions,
                      float* out) = 0;

  std::vector<Weight> weights;
  std::vector<Attention> attentions;
  std::vector<Kv> kvs;
  int64_t bytes = 0;  // weights only (caches are per session)
};
