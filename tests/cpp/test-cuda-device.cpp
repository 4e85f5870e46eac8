// The CUDA expert device against a float64 host reference: both kernel paths (streaming for few
// tokens per expert, tensor cores for many), awkward and aligned sizes, pageable and registered
// sources, the load/compute hazards, recoverable out-of-memory, and the device router.
// Exits 77 (skipped) without a CUDA device.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "hybrimoe/device.h"
#include "device-common.hpp"
#include "internal/bf16.hpp"

namespace {

using namespace device_test;

void check_case(int format, int group, int d, int ff, int n, int k, std::mt19937& rng) {
  const int E = 6, slots = 4;
  auto ex = make_experts(E, d, ff, format, group, rng);
  hmoe_expert_shape_t shape{format, d, ff, group};
  hmoe_device_t* dev = nullptr;
  CHECK_OK(hmoe_device_create_cuda(0, &shape, slots, &dev));
  if (!dev) return;
  int32_t st = -1;
  CHECK_OK(hmoe_device_slot_state(dev, 0, &st));
  CHECK(st == HMOE_SLOT_FREE);
  // Experts 0..3 in slots 3..0; 4 and 5 stay off the device. Expert 1 from registered memory.
  std::vector<int32_t> slot_of = {3, 2, 1, 0, -1, -1};
  int32_t pinned = 0;
  CHECK_OK(hmoe_device_register_host(dev, ex[1].w[0].data(), int64_t(ex[1].w[0].size()), &pinned));
  for (int e = 0; e < 4; ++e)
    CHECK_OK(load(dev, slot_of[size_t(e)], ex[size_t(e)], e % 2 ? HMOE_STREAM_PREFETCH : HMOE_STREAM_COPY));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(n) * d);
  for (auto& v : x) v = nd(rng);
  std::vector<int32_t> ids(size_t(n) * k);
  std::vector<float> w(size_t(n) * k);
  for (int t = 0; t < n; ++t) {
    std::vector<int> perm = {0, 1, 2, 3, 4, 5};
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < k; ++j) {
      ids[size_t(t) * k + j] = perm[size_t(j)];
      w[size_t(t) * k + j] = 0.25f + 0.5f * float(j);
    }
  }
  std::vector<float> out(size_t(n) * d, NAN);
  CHECK_OK(hmoe_device_moe_run(dev, x.data(), n, ids.data(), w.data(), k, slot_of.data(), E, out.data()));
  // Evict the slot of expert 0 while the kernel may still read it: load expert 4 over it.
  CHECK_OK(load(dev, 3, ex[4], HMOE_STREAM_COPY));
  std::vector<int32_t> slot_after = {-1, 2, 1, 0, 3, -1};
  std::vector<float> out2(size_t(n) * d, NAN);
  CHECK_OK(hmoe_device_moe_run(dev, x.data(), n, ids.data(), w.data(), k, slot_after.data(), E, out2.data()));
  CHECK_OK(hmoe_device_wait(dev));
  // Per-run tokens decide the path: the tensor-core path rounds activations to bf16.
  const bool tensor_path = n * k / 6 > 8;
  // Streaming path: bf16 is f32 math on exact weights; int4 quantizes activations per block of 32
  // to int8 for dp4a (about 0.4% per element). Tensor cores: the reference mimics bf16 rounding.
  const double tol = tensor_path ? 2e-2 : (format == HMOE_FORMAT_INT4 ? 2e-2 : 1e-4);
  const double e1 = rel_err(out, reference(ex, d, ff, x, n, ids, w, k, slot_of, tensor_path));
  const double e2 = rel_err(out2, reference(ex, d, ff, x, n, ids, w, k, slot_after, tensor_path));
  std::printf("%s d=%d ff=%d n=%d k=%d pinned=%d: rel err %.2e, after eviction %.2e (tol %.0e)\n",
              format == HMOE_FORMAT_INT4 ? "int4" : "bf16", d, ff, n, k, pinned, e1, e2, tol);
  CHECK(e1 < tol);
  CHECK(e2 < tol);
  CHECK_OK(hmoe_device_slot_state(dev, 3, &st));
  CHECK(st == HMOE_SLOT_READY);
  float ms = 0;
  CHECK_OK(hmoe_device_time_moe(dev, x.data(), n, ids.data(), w.data(), k, slot_after.data(), E, 3, &ms));
  CHECK(ms > 0);
  if (pinned) CHECK_OK(hmoe_device_unregister_host(dev, ex[1].w[0].data()));
  hmoe_device_free(dev);
}

void check_errors_and_oom() {
  hmoe_expert_shape_t shape{HMOE_FORMAT_BF16, 4096, 14336, 0};
  hmoe_device_t* dev = nullptr;
  CHECK(hmoe_device_create_cuda(0, &shape, 100000, &dev) == HMOE_ERR_OUT_OF_MEMORY);
  CHECK(dev == nullptr);
  std::printf("oom: %s\n", hmoe_last_error());
  CHECK_OK(hmoe_device_create_cuda(0, &shape, 2, &dev));  // recoverable: a smaller pool works
  int32_t fits = 0;
  CHECK_OK(hmoe_device_cuda_max_slots(0, &shape, 1LL << 30, &fits));
  CHECK(fits > 0);
  int32_t ids[1] = {0};
  float w[1] = {1}, x[4096], out[4096];
  std::memset(x, 0, sizeof x);
  int32_t slot_of[1] = {1};
  CHECK(hmoe_device_moe_run(dev, x, 1, ids, w, 1, slot_of, 1, out) == HMOE_ERR_STATE);
  CHECK(std::string(hmoe_last_error()).find("slot 1 holds no expert") != std::string::npos);
  CHECK(hmoe_device_load(dev, 2, x, x, x, nullptr, nullptr, nullptr, HMOE_STREAM_COPY) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_device_load(dev, 0, x, x, x, nullptr, nullptr, nullptr, HMOE_STREAM_COMPUTE) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_device_load(dev, 0, x, x, x, x, x, x, HMOE_STREAM_COPY) == HMOE_ERR_INVALID_ARGUMENT);  // bf16: no scales
  hmoe_expert_shape_t bad{HMOE_FORMAT_INT4, 64, 64, 48};
  hmoe_device_t* none = nullptr;
  CHECK(hmoe_device_create_cuda(0, &bad, 1, &none) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("group_size") != std::string::npos);
  int32_t bad_ids[1] = {7};
  CHECK(hmoe_device_moe_run(dev, x, 1, bad_ids, w, 1, slot_of, 1, out) == HMOE_ERR_INVALID_ARGUMENT);
  hmoe_device_free(dev);
}

void check_router(std::mt19937& rng) {
  const int E = 60, d = 96, k = 6, n = 33;
  hmoe_expert_shape_t shape{HMOE_FORMAT_BF16, 8, 8, 0};
  hmoe_device_t* dev = nullptr;
  CHECK_OK(hmoe_device_create_cuda(0, &shape, 1, &dev));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> W(size_t(E) * d), x(size_t(n) * d);
  for (auto& v : W) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  for (int scoring : {HMOE_SCORING_SOFTMAX, HMOE_SCORING_SIGMOID}) {
    for (int norm : {0, 1}) {
      hmoe_router_t* r = nullptr;
      CHECK_OK(hmoe_router_create(dev, W.data(), E, d, k, scoring, norm, 1.5f, &r));
      std::vector<int32_t> ids(size_t(n) * k);
      std::vector<float> wt(size_t(n) * k);
      CHECK_OK(hmoe_router_run(r, x.data(), n, ids.data(), wt.data()));
      int bad = 0;
      for (int t = 0; t < n; ++t) {
        std::vector<double> s(static_cast<size_t>(E));
        double mx = -1e300, sum = 0;
        for (int e = 0; e < E; ++e) {
          double v = 0;
          for (int c = 0; c < d; ++c) v += double(W[size_t(e) * d + c]) * x[size_t(t) * d + c];
          s[size_t(e)] = v;
          mx = std::max(mx, v);
        }
        for (auto& v : s) {
          if (scoring == HMOE_SCORING_SOFTMAX) sum += (v = std::exp(v - mx));
          else v = 1.0 / (1.0 + std::exp(-v));
        }
        if (scoring == HMOE_SCORING_SOFTMAX) for (auto& v : s) v /= sum;
        double chosen_sum = 0;
        for (int j = 0; j < k; ++j) chosen_sum += s[size_t(ids[size_t(t) * k + j])];
        for (int j = 0; j < k; ++j) {
          const int e = ids[size_t(t) * k + j];
          // Chosen experts are the top-k (ties within float error allowed) in descending order.
          int above = 0;
          for (int q = 0; q < E; ++q) above += s[size_t(q)] > s[size_t(e)] + 1e-5;
          if (above > j) ++bad;
          const double want = (norm ? s[size_t(e)] / chosen_sum : s[size_t(e)]) * 1.5;
          if (std::fabs(wt[size_t(t) * k + j] - want) > 1e-4 * std::max(1.0, std::fabs(want))) ++bad;
        }
      }
      CHECK(bad == 0);
      hmoe_router_free(r);
    }
  }
  hmoe_router_t* r = nullptr;
  CHECK(hmoe_router_create(dev, W.data(), E, d, E + 1, 0, 0, 1.0f, &r) == HMOE_ERR_INVALID_ARGUMENT);
  hmoe_device_free(dev);
}

}  // namespace

int main() {
  if (!hmoe_cuda_compiled()) SKIP("built without CUDA");
  int32_t n = 0;
  CHECK_OK(hmoe_cuda_device_count(&n));
  if (n == 0) SKIP("no CUDA device");
  std::mt19937 rng(42);
  for (int fmt : {HMOE_FORMAT_BF16, HMOE_FORMAT_INT4}) {
    const int g = fmt == HMOE_FORMAT_INT4 ? 32 : 0;
    check_case(fmt, g, 256, 72, 1, 2, rng);    // decode: streaming path, 16-byte loads
    check_case(fmt, g, 67, 45, 3, 2, rng);     // awkward sizes: bounds-checked tails
    check_case(fmt, g, 200, 136, 96, 2, rng);  // prefill: tensor-core path
    check_case(fmt, g, 67, 45, 130, 4, rng);   // prefill, awkward: zero-filled edges
  }
  check_case(HMOE_FORMAT_INT4, 128, 1024, 200, 5, 2, rng);  // int4 groups of 128, 4-deep loads
  check_case(HMOE_FORMAT_INT4, 64, 136, 256, 40, 3, rng);   // int4 groups of 64, tensor cores
  check_errors_and_oom();
  check_router(rng);
  return TEST_RESULT();
}
