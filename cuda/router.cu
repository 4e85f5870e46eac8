// Router on the device: logits = x . W^T, scoring (softmax or sigmoid), top-k, optional
// renormalisation and scale; only ids and weights go back to the host.
#include <cfloat>
#include <cstring>
#include <memory>
#include <vector>

#include "cuda-buffers.cuh"
#include "device/device.hpp"

namespace {

constexpr int kMaxTopK = 32;

__global__ void router_kernel(const float* __restrict__ w, const float* __restrict__ x, int E, int d,
                              int k, int scoring, int norm, float scale, int32_t* __restrict__ ids,
                              float* __restrict__ weights) {
  extern __shared__ float logits[];  // [E]
  const int t = blockIdx.x;
  const float* xt = x + int64_t(t) * d;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int e = warp; e < E; e += warps) {
    const float* we = w + int64_t(e) * d;
    float s = 0.0f;
    for (int i = lane; i < d; i += 32) s += we[i] * xt[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) logits[e] = s;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  // Scores; E is at most a few hundred, so one thread suffices next to the GEMV above.
  if (scoring == 0) {
    float mx = -FLT_MAX;
    for (int e = 0; e < E; ++e) mx = fmaxf(mx, logits[e]);
    float sum = 0.0f;
    for (int e = 0; e < E; ++e) sum += (logits[e] = __expf(logits[e] - mx));
    for (int e = 0; e < E; ++e) logits[e] /= sum;
  } else {
    for (int e = 0; e < E; ++e) logits[e] = 1.0f / (1.0f + __expf(-logits[e]));
  }
  int chosen[kMaxTopK];
  float val[kMaxTopK];
  float total = 0.0f;
  for (int j = 0; j < k; ++j) {
    int best = -1;
    for (int e = 0; e < E; ++e) {
      bool taken = false;
      for (int q = 0; q < j; ++q) taken |= chosen[q] == e;
      if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
    }
    chosen[j] = best;
    val[j] = logits[best];
    total += val[j];
  }
  for (int j = 0; j < k; ++j) {
    ids[int64_t(t) * k + j] = chosen[j];
    weights[int64_t(t) * k + j] = (norm ? val[j] / total : val[j]) * scale;
  }
}

}  // namespace

struct hmoe_router {
  int index;
  int E, d, k, scoring, norm;
  float scale;
  hmoe::cuda::DeviceBuffer w, x, ids, weights;
};

extern "C" {

int hmoe_router_create(hmoe_device_t* device, const float* weight, int32_t n_experts, int32_t d_model,
                       int32_t top_k, int32_t scoring, int32_t norm_topk, float scale,
                       hmoe_router_t** out) {
  return hmoe::guarded("hmoe_router_create", [&] {
    HMOE_REQUIRE_PTR(device);
    HMOE_REQUIRE_PTR(weight);
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (device->kind() != HMOE_DEVICE_CUDA)
      hmoe::fail(HMOE_ERR_UNSUPPORTED, "the device router needs a CUDA device; route on the CPU otherwise");
    if (n_experts < 1 || n_experts > 4096)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n_experts must be in [1, 4096], got %d", n_experts);
    if (d_model < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "d_model must be >= 1, got %d", d_model);
    if (top_k < 1 || top_k > kMaxTopK || top_k > n_experts)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "top_k must be in [1, min(%d, n_experts=%d)], got %d", kMaxTopK,
                 n_experts, top_k);
    if (scoring != HMOE_SCORING_SOFTMAX && scoring != HMOE_SCORING_SIGMOID)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "scoring must be HMOE_SCORING_SOFTMAX or _SIGMOID, got %d", scoring);
    int index = 0;
    HMOE_CUDA_CHECK(cudaGetDevice(&index));
    auto r = std::make_unique<hmoe_router>();
    r->index = index;
    r->E = n_experts; r->d = d_model; r->k = top_k; r->scoring = scoring; r->norm = norm_topk != 0;
    r->scale = scale;
    const size_t bytes = size_t(n_experts) * d_model * sizeof(float);
    r->w.reserve(bytes);
    HMOE_CUDA_CHECK(cudaMemcpy(r->w.as<float>(), weight, bytes, cudaMemcpyHostToDevice));
    *out = r.release();
  });
}

void hmoe_router_free(hmoe_router_t* router) { delete router; }

int hmoe_router_run(hmoe_router_t* r, const float* x, int32_t n_tokens, int32_t* ids, float* weights) {
  return hmoe::guarded("hmoe_router_run", [&] {
    HMOE_REQUIRE_PTR(r);
    if (n_tokens < 0) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n_tokens must be >= 0, got %d", n_tokens);
    if (n_tokens == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(ids);
    HMOE_REQUIRE_PTR(weights);
    hmoe::cuda::DeviceScope scope(r->index);
    const size_t xb = size_t(n_tokens) * r->d * 4, ob = size_t(n_tokens) * r->k * 4;
    r->x.reserve(xb);
    r->ids.reserve(ob);
    r->weights.reserve(ob);
    HMOE_CUDA_CHECK(cudaMemcpy(r->x.as<float>(), x, xb, cudaMemcpyHostToDevice));
    const size_t smem = size_t(r->E) * sizeof(float);
    router_kernel<<<n_tokens, 256, smem>>>(r->w.as<float>(), r->x.as<float>(), r->E, r->d, r->k, r->scoring,
                                           r->norm, r->scale, r->ids.as<int32_t>(), r->weights.as<float>());
    HMOE_CUDA_CHECK(cudaGetLastError());
    HMOE_CUDA_CHECK(cudaMemcpy(ids, r->ids.as<int32_t>(), ob, cudaMemcpyDeviceToHost));
    HMOE_CUDA_CHECK(cudaMemcpy(weights, r->weights.as<float>(), ob, cudaMemcpyDeviceToHost));
  });
}

}  // extern "C"
