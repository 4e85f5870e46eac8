// The hybrid layer executor on the host-emulated device: plans that mix CPU experts, resident GPU
// experts, demand transfers through a 2-slot staging ring (several waves), shared experts pinned
// on the device and prefetches for the next layer give the all-CPU output; bad plans are refused
// before anything runs and leave the executor usable. Runs everywhere (label cpu).
#include <cstdio>
#include <set>

#include "check.hpp"
#include "device-common.hpp"
#include "hybrimoe/hybrid.h"

using namespace device_test;

namespace {

constexpr int E = 8, K = 3, D = 64, FF = 48, SHARED = 2;
// Cache slots 0..3, staging 4..5, shared (pinned) 6..7.
constexpr int CACHE = 4, STAGE0 = 4, STAGING = 2, PIN0 = 6, SLOTS = 8;

hmoe_expert_layer_t* borrow(const std::vector<Expert>& ex) {
  hmoe_expert_layer_t* l = nullptr;
  CHECK_OK(hmoe_expert_layer_create(HMOE_FORMAT_BF16, int64_t(ex.size()), D, FF, 0, &l));
  for (size_t e = 0; e < ex.size(); ++e)
    CHECK_OK(hmoe_expert_layer_set_expert(l, int64_t(e), ex[e].w[0].data(), ex[e].w[1].data(), ex[e].w[2].data(),
                                          nullptr, nullptr, nullptr));
  return l;
}

// All-CPU: routed experts plus every shared expert with weight 1.
std::vector<float> all_cpu(hmoe_engine_t* eng, hmoe_expert_layer_t* routed, hmoe_expert_layer_t* shared,
                           const std::vector<float>& x, int n, const std::vector<int32_t>& ids,
                           const std::vector<float>& w) {
  std::vector<float> out(size_t(n) * D, 0.0f);
  CHECK_OK(hmoe_cpu_moe_run(eng, routed, x.data(), HMOE_DTYPE_F32, n, K, ids.data(), w.data(), nullptr, out.data()));
  std::vector<int32_t> sid(static_cast<size_t>(n));
  std::vector<float> sw(static_cast<size_t>(n), 1.0f);
  for (int s = 0; s < SHARED; ++s) {
    std::fill(sid.begin(), sid.end(), s);
    CHECK_OK(hmoe_cpu_moe_run(eng, shared, x.data(), HMOE_DTYPE_F32, n, 1, sid.data(), sw.data(), nullptr, out.data()));
  }
  return out;
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / (den > 0 ? den : 1);
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  auto routed0 = make_experts(E, D, FF, HMOE_FORMAT_BF16, 0, rng);
  auto routed1 = make_experts(E, D, FF, HMOE_FORMAT_BF16, 0, rng);
  auto shared0 = make_experts(SHARED, D, FF, HMOE_FORMAT_BF16, 0, rng);
  hmoe_expert_layer_t* l0 = borrow(routed0);
  hmoe_expert_layer_t* l1 = borrow(routed1);
  hmoe_expert_layer_t* s0 = borrow(shared0);
  hmoe_engine_t* eng = nullptr;
  CHECK_OK(hmoe_engine_create(2, &eng));
  hmoe_expert_shape_t shape{HMOE_FORMAT_BF16, D, FF, 0};
  hmoe_device_t* dev = nullptr;
  CHECK_OK(hmoe_device_create_emulated(1, &shape, SLOTS, &dev));
  // Slow link and kernels: hazards must hold. The link is 100x slower than a kernel so that the
  // overlap check below has 20 ms of margin against scheduling noise on a loaded CI machine
  // (with 300 us it once failed there by 0.05 ms).
  CHECK_OK(hmoe_device_emulated_delays(dev, 20000, 200));
  hmoe_hybrid_t* h = nullptr;
  CHECK_OK(hmoe_hybrid_create(eng, dev, 2, E, &h));
  const int32_t pins[SHARED] = {PIN0, PIN0 + 1};
  CHECK_OK(hmoe_hybrid_set_layer(h, 0, l0, s0, pins));
  CHECK_OK(hmoe_hybrid_set_layer(h, 1, l1, nullptr, nullptr));
  // Layer 0 holds experts 0, 1 in slots 0, 1; layer 1 holds expert 0 in slot 2.
  CHECK_OK(hmoe_hybrid_preload(h, 0, 0, 0));
  CHECK_OK(hmoe_hybrid_preload(h, 0, 1, 1));
  CHECK_OK(hmoe_hybrid_preload(h, 1, 0, 2));

  const int n = 5;
  std::vector<float> x(size_t(n) * D);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  // Every token routes to 0, 1 and one of 2..7 (so all of 0..7 appear with n >= 6; here 2..6).
  std::vector<int32_t> ids(size_t(n) * K);
  std::vector<float> w(ids.size());
  for (int t = 0; t < n; ++t) {
    ids[size_t(t) * K] = 0;
    ids[size_t(t) * K + 1] = 1;
    ids[size_t(t) * K + 2] = 2 + t;
    for (int j = 0; j < K; ++j) w[size_t(t) * K + j] = 0.2f + 0.3f * float(j);
  }
  const auto want = all_cpu(eng, l0, s0, x, n, ids, w);

  // Plan: 0, 1 resident on the GPU; 2 and 3 CPU; 4, 5, 6 transferred on demand through the
  // 2-slot staging ring (4 -> slot 4, 5 -> slot 5, 6 -> slot 4 again: a second wave); shared on
  // the GPU; a prefetch of layer 1's expert 3 into cache slot 3.
  std::vector<int32_t> plan = {HMOE_PLAN_LAYOUT_VERSION, 0, 9, 4};
  auto expert = [&](int id, int dev_, int order) { plan.insert(plan.end(), {id, dev_, order, 1}); };
  expert(0, HMOE_PLAN_GPU, 0);
  expert(1, HMOE_PLAN_GPU, 1);
  expert(2, HMOE_PLAN_CPU, 1);
  expert(3, HMOE_PLAN_CPU, 0);
  expert(4, HMOE_PLAN_GPU, 2);
  expert(5, HMOE_PLAN_GPU, 3);
  expert(6, HMOE_PLAN_GPU, 4);
  expert(-1, HMOE_PLAN_GPU, 5);
  expert(-2, HMOE_PLAN_GPU, 6);
  auto xfer = [&](int layer, int e, int slot, int kind) { plan.insert(plan.end(), {layer, e, slot, -1, -1, kind}); };
  xfer(0, 4, STAGE0, HMOE_PLAN_DEMAND);
  xfer(0, 5, STAGE0 + 1, HMOE_PLAN_DEMAND);
  xfer(0, 6, STAGE0, HMOE_PLAN_DEMAND);
  xfer(1, 3, 3, HMOE_PLAN_PREFETCH);
  std::vector<double> tl(256);
  std::vector<float> out(size_t(n) * D, 0.0f);
  CHECK_OK(hmoe_hybrid_run(h, plan.data(), int64_t(plan.size()), x.data(), n, ids.data(), w.data(), K, nullptr,
                           out.data(), tl.data(), int64_t(tl.size())));
  const double err = max_rel(out, want);
  std::printf("mixed plan: max rel error vs all-CPU %.2e, %g waves\n", err, tl[HMOE_TL_WAVES]);
  CHECK(err < 1e-5);
  CHECK(tl[HMOE_TL_WAVES] == 4);  // the resident experts alone, then one wave per demand load
  // Resident expert 0 computes while the first demand load (20 ms on this link) is in flight.
  const double x0_end = tl[size_t(HMOE_TL_HEADER + 2 * 9 + 1)];
  std::printf("resident expert 0 starts %.3f ms before demand load 0 lands\n", x0_end - tl[HMOE_TL_HEADER]);
  CHECK(tl[HMOE_TL_HEADER] < x0_end);
  CHECK(tl[HMOE_TL_PER_RUN] == 1);
  CHECK(tl[HMOE_TL_END] >= tl[HMOE_TL_BEGIN]);
  for (int i = 0; i < 9; ++i) {  // every expert ran, inside the call
    const double s = tl[size_t(HMOE_TL_HEADER + 2 * i)], e = tl[size_t(HMOE_TL_HEADER + 2 * i + 1)];
    CHECK(s >= tl[HMOE_TL_BEGIN] - 1e-6 && e >= s && e <= tl[HMOE_TL_END] + 1e-6);
  }
  for (int j = 0; j < 3; ++j) CHECK(!std::isnan(tl[size_t(HMOE_TL_HEADER + 18 + 2 * j)]));  // demand timed

  // Layer 1 computes expert 3 from the prefetched slot and expert 0 from slot 2, the rest on the CPU.
  std::vector<int32_t> ids1(size_t(n) * K);
  for (int t = 0; t < n; ++t) {
    ids1[size_t(t) * K] = 3;
    ids1[size_t(t) * K + 1] = 0;
    ids1[size_t(t) * K + 2] = 4 + (t % 2);
  }
  std::vector<float> want1(size_t(n) * D, 0.0f);
  CHECK_OK(hmoe_cpu_moe_run(eng, l1, x.data(), HMOE_DTYPE_F32, n, K, ids1.data(), w.data(), nullptr, want1.data()));
  std::vector<int32_t> plan1 = {HMOE_PLAN_LAYOUT_VERSION, 1, 4, 0, 3, HMOE_PLAN_GPU, 0, n, 0, HMOE_PLAN_GPU, 1, n,
                                4, HMOE_PLAN_CPU, 0, 3, 5, HMOE_PLAN_CPU, 1, 2};
  std::fill(out.begin(), out.end(), 0.0f);
  CHECK_OK(hmoe_hybrid_run(h, plan1.data(), int64_t(plan1.size()), x.data(), n, ids1.data(), w.data(), K, nullptr,
                           out.data(), tl.data(), int64_t(tl.size())));
  CHECK(max_rel(out, want1) < 1e-5);
  CHECK_OK(hmoe_hybrid_sync(h));

  // Refused plans: nothing runs, the next good plan still works.
  std::vector<int32_t> bad = plan1;
  bad[4 + 4 * 2] = 6;  // expert 6 is routed to by nobody (4 is)
  CHECK(hmoe_hybrid_run(h, bad.data(), int64_t(bad.size()), x.data(), n, ids1.data(), w.data(), K, nullptr,
                        out.data(), tl.data(), int64_t(tl.size())) == HMOE_ERR_INVALID_ARGUMENT);
  std::printf("refused: %s\n", hmoe_last_error());
  bad = plan1;
  bad[4 + 4 * 2 + 1] = HMOE_PLAN_GPU;  // expert 4 of layer 1 on the GPU: not resident, not moved
  CHECK(hmoe_hybrid_run(h, bad.data(), int64_t(bad.size()), x.data(), n, ids1.data(), w.data(), K, nullptr,
                        out.data(), tl.data(), int64_t(tl.size())) == HMOE_ERR_STATE);
  std::printf("refused: %s\n", hmoe_last_error());
  std::fill(out.begin(), out.end(), 0.0f);
  CHECK_OK(hmoe_hybrid_run(h, plan1.data(), int64_t(plan1.size()), x.data(), n, ids1.data(), w.data(), K, nullptr,
                           out.data(), tl.data(), int64_t(tl.size())));
  CHECK(max_rel(out, want1) < 1e-5);

  hmoe_hybrid_free(h);
  hmoe_device_free(dev);
  hmoe_engine_free(eng);
  hmoe_expert_layer_free(l0);
  hmoe_expert_layer_free(l1);
  hmoe_expert_layer_free(s0);
  return TEST_RESULT();
}
