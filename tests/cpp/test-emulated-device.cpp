// The host-emulated device against the float64 reference: bf16 and int4 experts computed by the
// CPU kernels, the load/compute hazards with deliberately slow copies and kernels, a long random
// run of loads, evictions and expert runs, and its errors. Runs everywhere (label cpu).
#include <cstdio>
#include <string>

#include "check.hpp"
#include "device-common.hpp"

using namespace device_test;

namespace {

// The CPU kernels may round activations (bf16 via VDPBF16PS, int8 for int4): a wrong expert or a
// read of a half-loaded slot is off by O(1), far beyond this.
constexpr double kTol = 3e-2;

// The same routed experts through the CPU operator directly (an expert layer borrowing the same
// bytes, the experts with a slot selected by the mask): the emulated device must equal it up to
// the order of float additions.
constexpr double kSameAsCpu = 1e-5;

std::vector<double> cpu_result(const std::vector<Expert>& ex, const hmoe_expert_shape_t& shape,
                               const std::vector<float>& x, int n, const std::vector<int32_t>& ids,
                               const std::vector<float>& w, int k, const std::vector<int32_t>& slot_of) {
  const int E = int(ex.size());
  hmoe_engine_t* eng = nullptr;
  hmoe_expert_layer_t* layer = nullptr;
  CHECK_OK(hmoe_engine_create(2, &eng));
  CHECK_OK(hmoe_expert_layer_create(shape.format, E, shape.d_model, shape.d_ff, shape.group_size, &layer));
  std::vector<uint8_t> mask(static_cast<size_t>(E));
  for (int e = 0; e < E; ++e) {
    const bool q = !ex[size_t(e)].s[0].empty();
    CHECK_OK(hmoe_expert_layer_set_expert(layer, e, ex[size_t(e)].w[0].data(), ex[size_t(e)].w[1].data(),
                                          ex[size_t(e)].w[2].data(), q ? ex[size_t(e)].s[0].data() : nullptr,
                                          q ? ex[size_t(e)].s[1].data() : nullptr,
                                          q ? ex[size_t(e)].s[2].data() : nullptr));
    mask[size_t(e)] = slot_of[size_t(e)] >= 0;
  }
  std::vector<float> out(size_t(n) * shape.d_model, 0.0f);
  CHECK_OK(hmoe_cpu_moe_run(eng, layer, x.data(), HMOE_DTYPE_F32, n, k, ids.data(), w.data(), mask.data(),
                            out.data()));
  hmoe_expert_layer_free(layer);
  hmoe_engine_free(eng);
  return std::vector<double>(out.begin(), out.end());
}

hmoe_device_t* make(const hmoe_expert_shape_t& shape, int slots) {
  hmoe_device_t* dev = nullptr;
  CHECK_OK(hmoe_device_create_emulated(2, &shape, slots, &dev));
  return dev;
}

void check_results(int format, int group, int d, int ff, int n, int k, std::mt19937& rng) {
  const int E = 6;
  auto ex = make_experts(E, d, ff, format, group, rng);
  hmoe_expert_shape_t shape{format, d, ff, group};
  hmoe_device_t* dev = make(shape, 4);
  if (!dev) return;
  int32_t kind = 0;
  CHECK_OK(hmoe_device_describe(dev, &kind, nullptr, nullptr));
  CHECK(kind == HMOE_DEVICE_EMULATED);
  std::vector<int32_t> slot_of = {3, 2, 1, 0, -1, -1};
  for (int e = 0; e < 4; ++e) CHECK_OK(load(dev, slot_of[size_t(e)], ex[size_t(e)], HMOE_STREAM_COPY));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(n) * d);
  for (auto& v : x) v = nd(rng);
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routing(n, k, E, rng, ids, w);
  std::vector<float> out(size_t(n) * d, NAN);
  CHECK_OK(hmoe_device_moe_run(dev, x.data(), n, ids.data(), w.data(), k, slot_of.data(), E, out.data()));
  CHECK_OK(hmoe_device_wait(dev));
  const double err = rel_err(out, reference(ex, d, ff, x, n, ids, w, k, slot_of, false));
  std::printf("%s d=%d ff=%d n=%d k=%d: rel err %.2e\n", format == HMOE_FORMAT_INT4 ? "int4" : "bf16", d, ff, n,
              k, err);
  CHECK(err < kTol);
  CHECK(rel_err(out, cpu_result(ex, shape, x, n, ids, w, k, slot_of)) < kSameAsCpu);
  hmoe_device_free(dev);
}

// Slow copies and kernels: a run queued right after a load must wait for it; a load queued right
// after a run must not overwrite the slot until the run has finished.
void check_hazards(std::mt19937& rng) {
  const int d = 48, ff = 40, E = 3, n = 4, k = 1;
  auto ex = make_experts(E, d, ff, HMOE_FORMAT_BF16, 0, rng);
  hmoe_expert_shape_t shape{HMOE_FORMAT_BF16, d, ff, 0};
  hmoe_device_t* dev = make(shape, 1);
  if (!dev) return;
  CHECK_OK(hmoe_device_emulated_delays(dev, 30000, 30000));
  std::vector<float> x(size_t(n) * d);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  std::vector<int32_t> ids(size_t(n), 0);
  std::vector<float> w(size_t(n), 1.0f);
  int32_t st = -1;
  CHECK_OK(load(dev, 0, ex[0], HMOE_STREAM_COPY));
  CHECK_OK(hmoe_device_slot_state(dev, 0, &st));
  CHECK(st == HMOE_SLOT_LOADING);
  std::vector<int32_t> slot_a = {0, -1, -1};
  std::vector<float> out_a(size_t(n) * d), out_b(size_t(n) * d);
  CHECK_OK(hmoe_device_moe_run(dev, x.data(), n, ids.data(), w.data(), k, slot_a.data(), E, out_a.data()));
  // Evict expert 0 for expert 2 while the run above has not even started.
  CHECK_OK(load(dev, 0, ex[2], HMOE_STREAM_PREFETCH));
  std::vector<int32_t> ids_b(size_t(n), 2);
  std::vector<int32_t> slot_b = {-1, -1, 0};
  CHECK_OK(hmoe_device_moe_run(dev, x.data(), n, ids_b.data(), w.data(), k, slot_b.data(), E, out_b.data()));
  CHECK_OK(hmoe_device_wait(dev));
  CHECK(rel_err(out_a, cpu_result(ex, shape, x, n, ids, w, k, slot_a)) < kSameAsCpu);
  CHECK(rel_err(out_b, cpu_result(ex, shape, x, n, ids_b, w, k, slot_b)) < kSameAsCpu);
  CHECK(rel_err(out_a, reference(ex, d, ff, x, n, ids, w, k, slot_a, false)) < kTol);
  CHECK_OK(hmoe_device_slot_state(dev, 0, &st));
  CHECK(st == HMOE_SLOT_READY);
  hmoe_device_free(dev);
}

// Many layers in a row: random evictions and prefetches racing demand loads and runs; every
// output must match the reference for the mapping it was queued with.
void check_long_run(std::mt19937& rng) {
  const int d = 40, ff = 24, E = 8, slots = 3, k = 2;
  auto ex = make_experts(E, d, ff, HMOE_FORMAT_INT4, 32, rng);
  hmoe_expert_shape_t shape{HMOE_FORMAT_INT4, d, ff, 32};
  hmoe_device_t* dev = make(shape, slots);
  if (!dev) return;
  CHECK_OK(hmoe_device_emulated_delays(dev, 300, 300));
  std::vector<int32_t> holder(size_t(slots), -1);  // expert in each slot
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct Pending { std::vector<float> x, w, out; std::vector<int32_t> ids, slot_of; int n; };
  std::vector<Pending> runs;
  for (int step = 0; step < 40; ++step) {
    // (Re)load one or two slots with random experts, alternating streams.
    for (int l = 0; l < 1 + step % 2; ++l) {
      const int s = int(rng() % slots), e = int(rng() % E);
      CHECK_OK(load(dev, s, ex[size_t(e)], step % 2 ? HMOE_STREAM_PREFETCH : HMOE_STREAM_COPY));
      for (auto& h : holder) if (h == e) h = -1;
      holder[size_t(s)] = e;
    }
    Pending p;
    p.n = 1 + int(rng() % 5);
    p.x.resize(size_t(p.n) * d);
    for (auto& v : p.x) v = nd(rng);
    random_routing(p.n, k, E, rng, p.ids, p.w);
    p.slot_of.assign(size_t(E), -1);
    for (int s = 0; s < slots; ++s) if (holder[size_t(s)] >= 0) p.slot_of[size_t(holder[size_t(s)])] = s;
    p.out.assign(size_t(p.n) * d, NAN);
    runs.push_back(std::move(p));
    Pending& q = runs.back();
    CHECK_OK(hmoe_device_moe_run(dev, q.x.data(), q.n, q.ids.data(), q.w.data(), k, q.slot_of.data(), E, q.out.data()));
    if (step % 7 == 6) CHECK_OK(hmoe_device_wait(dev));
  }
  CHECK_OK(hmoe_device_wait(dev));
  int bad = 0;
  for (auto& q : runs) {
    const double e = rel_err(q.out, cpu_result(ex, shape, q.x, q.n, q.ids, q.w, k, q.slot_of));
    if (e >= kSameAsCpu) std::printf("run off: rel err %.3e against the CPU operator (n=%d)\n", e, q.n);
    bad += e >= kSameAsCpu;
  }
  std::printf("long run: %zu runs, %d off\n", runs.size(), bad);
  CHECK(bad == 0);
  hmoe_device_free(dev);
}

void check_errors() {
  hmoe_expert_shape_t shape{HMOE_FORMAT_BF16, 16, 8, 0};
  hmoe_device_t* dev = make(shape, 2);
  if (!dev) return;
  float x[16] = {0}, out[16];
  int32_t ids[1] = {0}, slot_of[1] = {1};
  float w[1] = {1};
  CHECK(hmoe_device_moe_run(dev, x, 1, ids, w, 1, slot_of, 1, out) == HMOE_ERR_STATE);
  CHECK(std::string(hmoe_last_error()).find("slot 1 holds no expert") != std::string::npos);
  CHECK(hmoe_device_unregister_host(dev, x) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_device_emulated_delays(dev, -1, 0) == HMOE_ERR_INVALID_ARGUMENT);
  hmoe_device_free(dev);
  hmoe_device_t* none = nullptr;
  CHECK(hmoe_device_create_emulated(1, &shape, 0, &none) == HMOE_ERR_INVALID_ARGUMENT);
  hmoe_expert_shape_t huge{HMOE_FORMAT_BF16, 4096, 14336, 0};
  CHECK(hmoe_device_create_emulated(1, &huge, 1 << 30, &none) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_device_create_emulated(1, &huge, 1 << 20, &none) == HMOE_ERR_OUT_OF_MEMORY);  // 352 TiB
  CHECK(none == nullptr);
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  for (int fmt : {HMOE_FORMAT_BF16, HMOE_FORMAT_INT4}) {
    const int g = fmt == HMOE_FORMAT_INT4 ? 32 : 0;
    check_results(fmt, g, 64, 40, 1, 2, rng);
    check_results(fmt, g, 67, 45, 3, 2, rng);
    check_results(fmt, g, 72, 48, 37, 4, rng);
  }
  check_results(HMOE_FORMAT_INT4, 128, 200, 136, 5, 2, rng);
  check_hazards(rng);
  check_long_run(rng);
  check_errors();
  return TEST_RESULT();
}
