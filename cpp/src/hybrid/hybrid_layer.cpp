// Hybrid MoE layer execution (hybrid.h): one call runs a Java-made plan on the CPU pool and the
// expert device at once. Order of work inside hmoe_hybrid_run:
//   1. validate the whole plan against the routing and the slots' contents (nothing queued yet);
//   2. the device worker runs wave 0 (the resident and pinned shared experts), then one wave per
//      demand load in the plan's link order (queue the load, run its expert behind it), then the
//      prefetches behind the demand loads, and waits for the compute stream;
//   3. meanwhile the calling thread runs the CPU experts one by one in the plan's queue order,
//      accumulating into out, each timed;
//   4. join, add the device's sum, write the timeline.
#include "hybrimoe/hybrid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "device/device.hpp"
#include "internal/expert_layer.hpp"
#include "internal/serial_queue.hpp"
#include "internal/status.hpp"

namespace hmoe::hybrid {
namespace {

constexpr int64_t kPinned = -2;  // slot_key of a slot holding a shared expert for good

struct Layer {
  const hmoe_expert_layer_t* routed = nullptr;
  const hmoe_expert_layer_t* shared = nullptr;
  int32_t n_shared = 0;
  std::vector<int32_t> shared_slots;  // empty: shared experts run on the CPU
};

// One transfer of the plan, validated.
struct Transfer {
  int32_t layer, expert, slot, kind, wave;
};

// One expert computation of the plan, validated.
struct Work {
  int32_t id, device, order;
  int32_t wave = -1, slot = -1;  // GPU only
};

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

}  // namespace
}  // namespace hmoe::hybrid

struct hmoe_hybrid {
  hmoe_engine_t* engine;
  hmoe_device_t* device;  // null: CPU only
  int32_t n_layers, n_experts;
  std::vector<hmoe::hybrid::Layer> layers;
  std::vector<int64_t> slot_key;  // [device slots] layer * n_experts + expert, -1 empty, kPinned
  std::vector<int32_t> key_slot;  // [n_layers * n_experts] the slot holding it, -1 none
  int64_t next_seq = 0;
  std::deque<std::pair<int64_t, hmoe::IntervalPtr>> pending;  // prefetch timings not yet reported
  hmoe::SerialQueue worker;  // drives the device side of a layer
  // Scratch reused across calls.
  std::vector<float> dev_sum;
  std::vector<std::vector<float>> wave_out;

  hmoe_hybrid(hmoe_engine_t* e, hmoe_device_t* d, int32_t nl, int32_t ne)
      : engine(e), device(d), n_layers(nl), n_experts(ne), layers(size_t(nl)),
        slot_key(d ? size_t(d->slots) : 0, -1), key_slot(size_t(nl) * size_t(ne), -1) {}

  ~hmoe_hybrid() {
    if (device) {
      try {
        device->wait();  // transfers read the borrowed layers: finish them first
      } catch (...) {
      }
    }
  }

  void record_load(int64_t key, int32_t slot) {
    const int64_t old = slot_key[size_t(slot)];
    if (old >= 0 && key_slot[size_t(old)] == slot) key_slot[size_t(old)] = -1;
    slot_key[size_t(slot)] = key;
    if (key >= 0) key_slot[size_t(key)] = slot;
  }

  void queue_load(const hmoe_expert_layer_t* src, int32_t expert, int32_t slot, int32_t stream,
                  const hmoe::IntervalPtr& timing) {
    const void* w[3];
    const float* s[3];
    hmoe::expert_pointers(src, expert, w, s);
    device->load(slot, w, s, stream, timing);
  }
};

namespace hmoe::hybrid {
namespace {

void check_layer_shape(const hmoe_hybrid_t* h, const hmoe_expert_layer_t* l, const char* what, int64_t want_experts) {
  int32_t format = 0, group = 0;
  int64_t n = 0, d = 0, ff = 0;
  int st = hmoe_expert_layer_info(l, &format, &n, &d, &ff, &group);
  if (st != HMOE_OK) fail(st, "%s: %s", what, hmoe_last_error());
  if (want_experts >= 0 && n != want_experts)
    fail(HMOE_ERR_INVALID_ARGUMENT, "%s has %lld experts, the executor %lld", what, (long long)n,
         (long long)want_experts);
  if (h->device == nullptr) return;
  const hmoe_expert_shape_t& s = h->device->shape;
  if (format != s.format || d != s.d_model || ff != s.d_ff || (format == HMOE_FORMAT_INT4 && group != s.group_size))
    fail(HMOE_ERR_INVALID_ARGUMENT,
         "%s (format %d, %lld x %lld, group %d) does not match the device's expert shape (format %d, %d x %d, group %d)",
         what, format, (long long)d, (long long)ff, group, s.format, s.d_model, s.d_ff, s.group_size);
}

// Everything hmoe_hybrid_run needs, validated before anything is queued.
struct Checked {
  int32_t layer = 0;
  std::vector<Work> work;        // plan order
  std::vector<Transfer> xfers;   // plan order
  int32_t waves = 0;
};

Checked check_plan(hmoe_hybrid_t* h, const int32_t* plan, int64_t plan_ints, const int32_t* ids, int32_t n_tokens,
                   int32_t top_k) {
  if (plan_ints < 4) fail(HMOE_ERR_INVALID_ARGUMENT, "plan has %lld ints, the header alone needs 4", (long long)plan_ints);
  if (plan[0] != HMOE_PLAN_LAYOUT_VERSION)
    fail(HMOE_ERR_INVALID_ARGUMENT, "plan layout version %d, this engine reads %d", plan[0], HMOE_PLAN_LAYOUT_VERSION);
  Checked c;
  c.layer = plan[1];
  const int32_t n = plan[2], m = plan[3];
  if (c.layer < 0 || c.layer >= h->n_layers)
    fail(HMOE_ERR_INVALID_ARGUMENT, "plan layer %d out of range [0, %d)", c.layer, h->n_layers);
  const Layer& L = h->layers[size_t(c.layer)];
  if (L.routed == nullptr) fail(HMOE_ERR_STATE, "layer %d has no experts registered (hmoe_hybrid_set_layer)", c.layer);
  if (n < 0 || m < 0 || plan_ints != 4 + 4 * int64_t(n) + 6 * int64_t(m))
    fail(HMOE_ERR_INVALID_ARGUMENT, "plan of %d experts and %d transfers needs %lld ints, got %lld", n, m,
         (long long)(4 + 4 * int64_t(n) + 6 * int64_t(m)), (long long)plan_ints);
  const int32_t E = h->n_experts;
  std::vector<char> routed(size_t(E), 0);
  for (int64_t i = 0; i < int64_t(n_tokens) * top_k; ++i) {
    if (ids[i] < 0 || ids[i] >= E)
      fail(HMOE_ERR_INVALID_ARGUMENT, "ids[%lld] = %d out of range [0, %d)", (long long)i, ids[i], E);
    routed[size_t(ids[i])] = 1;
  }
  std::vector<char> planned(size_t(E), 0), shared_planned(size_t(L.n_shared), 0);
  std::vector<int32_t> work_of(size_t(E), -1);
  const int32_t* p = plan + 4;
  for (int32_t i = 0; i < n; ++i, p += 4) {
    Work w{p[0], p[1], p[2]};
    if (w.device != HMOE_PLAN_CPU && w.device != HMOE_PLAN_GPU)
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan expert %d: device %d is neither CPU (0) nor GPU (1)", i, w.device);
    if (w.device == HMOE_PLAN_GPU && h->device == nullptr)
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan expert %d is on the GPU but the executor has no device", i);
    if (w.id >= 0) {
      if (w.id >= E) fail(HMOE_ERR_INVALID_ARGUMENT, "plan expert %d: id %d out of range [0, %d)", i, w.id, E);
      if (planned[size_t(w.id)]) fail(HMOE_ERR_INVALID_ARGUMENT, "expert %d appears twice in the plan", w.id);
      if (!routed[size_t(w.id)])
        fail(HMOE_ERR_INVALID_ARGUMENT, "plan computes expert %d, which no token is routed to", w.id);
      planned[size_t(w.id)] = 1;
      work_of[size_t(w.id)] = i;
    } else {
      const int32_t s = -1 - w.id;
      if (s >= L.n_shared)
        fail(HMOE_ERR_INVALID_ARGUMENT, "plan computes shared expert %d, layer %d has %d", s, c.layer, L.n_shared);
      if (shared_planned[size_t(s)]) fail(HMOE_ERR_INVALID_ARGUMENT, "shared expert %d appears twice in the plan", s);
      if (w.device == HMOE_PLAN_GPU && L.shared_slots.empty())
        fail(HMOE_ERR_INVALID_ARGUMENT, "shared expert %d is planned on the GPU but has no device slot", s);
      shared_planned[size_t(s)] = 1;
      if (w.device == HMOE_PLAN_GPU) {
        w.wave = 0;
        w.slot = L.shared_slots[size_t(s)];
      }
    }
    c.work.push_back(w);
  }
  for (int32_t e = 0; e < E; ++e)
    if (routed[size_t(e)] && !planned[size_t(e)])
      fail(HMOE_ERR_INVALID_ARGUMENT, "tokens are routed to expert %d but the plan does not compute it", e);
  for (int32_t s = 0; s < L.n_shared; ++s)
    if (!shared_planned[size_t(s)])
      fail(HMOE_ERR_INVALID_ARGUMENT, "the plan does not compute shared expert %d of layer %d", s, c.layer);

  // Transfers, and the waves of device work they imply.
  const int32_t slots = h->device ? h->device->slots : 0;
  std::vector<char> demanded(size_t(E), 0);
  for (int32_t j = 0; j < m; ++j, p += 6) {
    Transfer t{p[0], p[1], p[2], p[5], -1};
    if (h->device == nullptr) fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d but the executor has no device", j);
    if (t.layer < 0 || t.layer >= h->n_layers || h->layers[size_t(t.layer)].routed == nullptr)
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: layer %d is not registered", j, t.layer);
    if (t.expert < 0 || t.expert >= E)
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: expert %d out of range [0, %d)", j, t.expert, E);
    if (t.slot < 0 || t.slot >= slots)
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: slot %d out of range [0, %d) (staging must be resolved to a slot)",
           j, t.slot, slots);
    if (h->slot_key[size_t(t.slot)] == kPinned)
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: slot %d holds a shared expert for good", j, t.slot);
    if (t.kind == HMOE_PLAN_DEMAND) {
      if (t.layer != c.layer)
        fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: a demand transfer for layer %d in layer %d's plan", j,
             t.layer, c.layer);
      const int32_t wi = work_of[size_t(t.expert)];
      if (wi < 0 || c.work[size_t(wi)].device != HMOE_PLAN_GPU)
        fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: demand transfer of expert %d, which the plan does not compute on the GPU",
             j, t.expert);
      if (demanded[size_t(t.expert)]) fail(HMOE_ERR_INVALID_ARGUMENT, "expert %d is transferred twice on demand", t.expert);
      demanded[size_t(t.expert)] = 1;
    } else if (t.kind != HMOE_PLAN_PREFETCH) {
      fail(HMOE_ERR_INVALID_ARGUMENT, "plan transfer %d: kind %d is neither demand (0) nor prefetch (1)", j, t.kind);
    }
    const void* w[3];
    const float* sc[3];
    try {
      expert_pointers(h->layers[size_t(t.layer)].routed, t.expert, w, sc);  // its bytes exist
    } catch (const Error& e) {
      fail(e.status(), "plan transfer %d (layer %d expert %d): %s", j, t.layer, t.expert, e.what());
    }
    c.xfers.push_back(t);
  }
  // Wave 0 runs the resident GPU experts (and the pinned shared ones) alone, so that they compute
  // while this layer's demand loads are in flight, as the scheduler's plan assumes; then every
  // demand load is a wave of its own: its expert starts when its own transfer lands (the device
  // orders a run after the loads of its slots), not when a whole group of transfers has, which
  // is the timeline the scheduler planned (ALGORITHMS.md section 2). (The device itself keeps a
  // load from overwriting a slot that an earlier wave's kernel still reads.)
  bool any_gpu = false;
  bool resident = false;
  for (Work& w : c.work) {
    if (w.device != HMOE_PLAN_GPU) continue;
    any_gpu = true;
    if (w.id < 0) {
      resident = true;
      continue;
    }
    if (demanded[size_t(w.id)]) continue;
    const int32_t s = h->key_slot[size_t(c.layer) * size_t(E) + size_t(w.id)];
    if (s < 0)
      fail(HMOE_ERR_STATE, "expert %d of layer %d is planned on the GPU but is neither resident nor transferred", w.id,
           c.layer);
    w.wave = 0;
    w.slot = s;
    resident = true;
  }
  int32_t wave = resident ? 1 : 0;  // the first wave that takes demand loads
  int32_t last = resident ? 0 : -1;  // the last wave with work
  for (Transfer& t : c.xfers) {
    if (t.kind != HMOE_PLAN_DEMAND) continue;
    if (last >= wave) ++wave;  // one wave per demand load: each expert right behind its own load
    last = wave;
    t.wave = wave;
    Work& w = c.work[size_t(work_of[size_t(t.expert)])];
    w.wave = wave;
    w.slot = t.slot;
  }
  c.waves = any_gpu ? last + 1 : 0;
  return c;
}

// The device side of one layer, on the worker: waves of loads and runs, then prefetches.
struct DeviceSide {
  std::vector<IntervalPtr> xfer_timing;                 // per plan transfer
  std::vector<std::vector<IntervalPtr>> run_timing;     // per wave, per run
  std::vector<std::vector<int32_t>> run_slot;           // per wave, the runs' slots
  int status = HMOE_OK;
  std::string error;
};

void run_device(hmoe_hybrid_t* h, const Checked& c, const float* x, int32_t n_tokens, const int32_t* ids,
                const float* weights, int32_t top_k, const float* shared_weights, DeviceSide& out) {
  const Layer& L = h->layers[size_t(c.layer)];
  const int32_t E = h->n_experts;
  int32_t n_shared_gpu = 0;
  for (const Work& w : c.work)
    if (w.id < 0 && w.device == HMOE_PLAN_GPU) ++n_shared_gpu;
  // Routing extended with one column per shared expert on the device (pseudo-id E + s).
  const int32_t k2 = top_k + n_shared_gpu;
  std::vector<int32_t> ids2(size_t(n_tokens) * size_t(k2));
  std::vector<float> w2(ids2.size());
  for (int32_t t = 0; t < n_tokens; ++t) {
    for (int32_t j = 0; j < top_k; ++j) {
      ids2[size_t(t) * k2 + j] = ids[size_t(t) * top_k + j];
      w2[size_t(t) * k2 + j] = weights[size_t(t) * top_k + j];
    }
    int32_t col = top_k;
    for (const Work& w : c.work) {
      if (w.id >= 0 || w.device != HMOE_PLAN_GPU) continue;
      const int32_t s = -1 - w.id;
      ids2[size_t(t) * k2 + col] = E + s;
      w2[size_t(t) * k2 + col] = shared_weights ? shared_weights[size_t(t) * L.n_shared + s] : 1.0f;
      ++col;
    }
  }
  const int32_t E2 = E + L.n_shared;
  h->wave_out.resize(size_t(c.waves));
  out.run_timing.resize(size_t(c.waves));
  out.run_slot.resize(size_t(c.waves));
  for (int32_t wave = 0; wave < c.waves; ++wave) {
    for (size_t j = 0; j < c.xfers.size(); ++j) {
      const Transfer& t = c.xfers[j];
      if (t.kind != HMOE_PLAN_DEMAND || t.wave != wave) continue;
      h->queue_load(L.routed, t.expert, t.slot, HMOE_STREAM_COPY, out.xfer_timing[j]);
      h->record_load(int64_t(t.layer) * E + t.expert, t.slot);
    }
    std::vector<int32_t> slot_of(size_t(E2), -1);
    for (const Work& w : c.work) {
      if (w.device != HMOE_PLAN_GPU || w.wave != wave) continue;
      slot_of[size_t(w.id >= 0 ? w.id : E + (-1 - w.id))] = w.slot;
    }
    MoePlan mp = build_plan(h->device, n_tokens, ids2.data(), w2.data(), k2, slot_of.data(), E2);
    out.run_slot[size_t(wave)] = mp.run_slot;
    auto& rt = out.run_timing[size_t(wave)];
    rt.clear();
    for (int32_t r = 0; r < mp.runs(); ++r) rt.push_back(std::make_shared<Interval>());
    h->wave_out[size_t(wave)].assign(size_t(n_tokens) * size_t(h->device->shape.d_model), 0.0f);
    h->device->moe_run(mp, x, h->wave_out[size_t(wave)].data(), &rt);
  }
  bool first_prefetch = true;
  for (size_t j = 0; j < c.xfers.size(); ++j) {
    const Transfer& t = c.xfers[j];
    if (t.kind != HMOE_PLAN_PREFETCH) continue;
    if (first_prefetch) h->device->order_streams(HMOE_STREAM_COPY, HMOE_STREAM_PREFETCH);
    first_prefetch = false;
    h->queue_load(h->layers[size_t(t.layer)].routed, t.expert, t.slot, HMOE_STREAM_PREFETCH, out.xfer_timing[j]);
    h->record_load(int64_t(t.layer) * E + t.expert, t.slot);
  }
  if (c.waves > 0) h->device->wait_compute();
}

}  // namespace
}  // namespace hmoe::hybrid

extern "C" {

int hmoe_hybrid_create(hmoe_engine_t* engine, hmoe_device_t* device, int32_t n_layers, int32_t n_experts,
                       hmoe_hybrid_t** out) {
  return hmoe::guarded("hmoe_hybrid_create", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (n_layers < 1 || n_experts < 1 || int64_t(n_layers) * n_experts > (int64_t(1) << 26))
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "need n_layers >= 1 and n_experts >= 1 (at most 2^26 in all), got %d x %d",
                 n_layers, n_experts);
    *out = new hmoe_hybrid(engine, device, n_layers, n_experts);
  });
}

void hmoe_hybrid_free(hmoe_hybrid_t* hybrid) {
  try {
    delete hybrid;
  } catch (...) {
  }
}

int hmoe_hybrid_set_layer(hmoe_hybrid_t* h, int32_t layer, const hmoe_expert_layer_t* routed,
                          const hmoe_expert_layer_t* shared, const int32_t* shared_slots) {
  return hmoe::guarded("hmoe_hybrid_set_layer", [&] {
    HMOE_REQUIRE_PTR(h);
    HMOE_REQUIRE_PTR(routed);
    if (layer < 0 || layer >= h->n_layers)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "layer %d out of range [0, %d)", layer, h->n_layers);
    hmoe::hybrid::check_layer_shape(h, routed, "routed experts", h->n_experts);
    hmoe::hybrid::Layer L;
    L.routed = routed;
    if (shared != nullptr) {
      hmoe::hybrid::check_layer_shape(h, shared, "shared experts", -1);
      int64_t n = 0;
      hmoe_expert_layer_info(shared, nullptr, &n, nullptr, nullptr, nullptr);
      L.shared = shared;
      L.n_shared = int32_t(n);
      if (shared_slots != nullptr) {
        if (h->device == nullptr)
          hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "shared_slots given but the executor has no device");
        for (int32_t s = 0; s < L.n_shared; ++s) {
          const int32_t slot = shared_slots[s];
          if (slot < 0 || slot >= h->device->slots)
            hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "shared_slots[%d] = %d out of range [0, %d)", s, slot, h->device->slots);
          if (h->slot_key[size_t(slot)] != -1)
            hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "shared_slots[%d] = %d is not an unused slot", s, slot);
          for (int32_t q = 0; q < s; ++q)
            if (shared_slots[q] == slot) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "shared slot %d given twice", slot);
          const void* w[3];
          const float* sc[3];
          hmoe::expert_pointers(shared, s, w, sc);  // every shared expert must have weights
        }
        for (int32_t s = 0; s < L.n_shared; ++s) {
          L.shared_slots.push_back(shared_slots[s]);
          h->queue_load(shared, s, shared_slots[s], HMOE_STREAM_COPY, nullptr);
          h->slot_key[size_t(shared_slots[s])] = hmoe::hybrid::kPinned;
        }
      }
    } else if (shared_slots != nullptr) {
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "shared_slots given without shared experts");
    }
    if (!h->layers[size_t(layer)].shared_slots.empty())
      hmoe::fail(HMOE_ERR_STATE, "layer %d is registered already with pinned shared experts", layer);
    h->layers[size_t(layer)] = std::move(L);
  });
}

int hmoe_hybrid_preload(hmoe_hybrid_t* h, int32_t layer, int32_t expert, int32_t slot) {
  return hmoe::guarded("hmoe_hybrid_preload", [&] {
    HMOE_REQUIRE_PTR(h);
    if (h->device == nullptr) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "the executor has no device to preload");
    if (layer < 0 || layer >= h->n_layers || h->layers[size_t(layer)].routed == nullptr)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "layer %d is not registered", layer);
    if (expert < 0 || expert >= h->n_experts)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "expert %d out of range [0, %d)", expert, h->n_experts);
    if (slot < 0 || slot >= h->device->slots || h->slot_key[size_t(slot)] == hmoe::hybrid::kPinned)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "slot %d is out of range [0, %d) or holds a shared expert", slot,
                 h->device->slots);
    h->queue_load(h->layers[size_t(layer)].routed, expert, slot, HMOE_STREAM_COPY, nullptr);
    h->record_load(int64_t(layer) * h->n_experts + expert, slot);
  });
}

int hmoe_hybrid_sync(hmoe_hybrid_t* h) {
  return hmoe::guarded("hmoe_hybrid_sync", [&] {
    HMOE_REQUIRE_PTR(h);
    if (h->device) h->device->wait();
  });
}

double hmoe_clock_ms(void) { return hmoe::now_ms(); }

int hmoe_hybrid_run(hmoe_hybrid_t* h, const int32_t* plan, int64_t plan_ints, const float* x, int32_t n_tokens,
                    const int32_t* ids, const float* weights, int32_t top_k, const float* shared_weights, float* out,
                    double* timeline, int64_t timeline_cap) {
  return hmoe::guarded("hmoe_hybrid_run", [&] {
    using namespace hmoe::hybrid;
    HMOE_REQUIRE_PTR(h);
    HMOE_REQUIRE_PTR(plan);
    HMOE_REQUIRE_PTR(timeline);
    if (n_tokens < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n_tokens must be >= 1, got %d", n_tokens);
    if (top_k < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "top_k must be >= 1, got %d", top_k);
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(ids);
    HMOE_REQUIRE_PTR(weights);
    HMOE_REQUIRE_PTR(out);
    const double t_begin = hmoe::now_ms();
    Checked c = check_plan(h, plan, plan_ints, ids, n_tokens, top_k);
    const int64_t need = HMOE_TL_HEADER + 2 * int64_t(c.work.size() + c.xfers.size());
    if (timeline_cap < need)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "timeline has room for %lld doubles, this plan needs at least %lld",
                 (long long)timeline_cap, (long long)need);
    const Layer& L = h->layers[size_t(c.layer)];
    const int64_t seq0 = h->next_seq;
    h->next_seq += int64_t(c.xfers.size());

    // Device side on the worker, CPU side here.
    DeviceSide dev;
    for (size_t j = 0; j < c.xfers.size(); ++j) dev.xfer_timing.push_back(std::make_shared<hmoe::Interval>());
    const bool device_work = h->device != nullptr && (c.waves > 0 || !c.xfers.empty());
    if (device_work) {
      h->worker.submit([&] {
        try {
          run_device(h, c, x, n_tokens, ids, weights, top_k, shared_weights, dev);
        } catch (const hmoe::Error& e) {
          dev.status = e.status();
          dev.error = e.what();
        } catch (const std::bad_alloc&) {
          dev.status = HMOE_ERR_OUT_OF_MEMORY;
          dev.error = "out of host memory";
        } catch (const std::exception& e) {
          dev.status = HMOE_ERR_INTERNAL;
          dev.error = e.what();
        }
      });
    }
    std::vector<double> cpu_start(c.work.size(), nan()), cpu_end(c.work.size(), nan());
    int cpu_status = HMOE_OK;
    std::string cpu_error;
    {
      std::vector<size_t> queue;
      for (size_t i = 0; i < c.work.size(); ++i)
        if (c.work[i].device == HMOE_PLAN_CPU) queue.push_back(i);
      std::stable_sort(queue.begin(), queue.end(), [&](size_t a, size_t b) { return c.work[a].order < c.work[b].order; });
      std::vector<uint8_t> mask(size_t(h->n_experts), 0);
      std::vector<int32_t> sid(static_cast<size_t>(n_tokens));
      std::vector<float> sw(static_cast<size_t>(n_tokens));
      for (size_t i : queue) {
        const Work& w = c.work[i];
        cpu_start[i] = hmoe::now_ms();
        int st;
        if (w.id >= 0) {
          mask[size_t(w.id)] = 1;
          st = hmoe_cpu_moe_run(h->engine, L.routed, x, HMOE_DTYPE_F32, n_tokens, top_k, ids, weights, mask.data(), out);
          mask[size_t(w.id)] = 0;
        } else {
          const int32_t s = -1 - w.id;
          for (int32_t t = 0; t < n_tokens; ++t) {
            sid[size_t(t)] = s;
            sw[size_t(t)] = shared_weights ? shared_weights[size_t(t) * L.n_shared + s] : 1.0f;
          }
          st = hmoe_cpu_moe_run(h->engine, L.shared, x, HMOE_DTYPE_F32, n_tokens, 1, sid.data(), sw.data(), nullptr, out);
        }
        cpu_end[i] = hmoe::now_ms();
        if (st != HMOE_OK) {
          cpu_status = st;
          cpu_error = hmoe::format("CPU expert %d of layer %d: %s", w.id, c.layer, hmoe_last_error());
          break;
        }
      }
    }
    if (device_work) h->worker.drain();  // always joined, even when the CPU side failed
    if (cpu_status != HMOE_OK) hmoe::fail(cpu_status, "%s", cpu_error.c_str());
    if (dev.status != HMOE_OK) {
      try {
        h->device->wait();  // leave nothing of this layer running
      } catch (...) {
      }
      hmoe::fail(dev.status, "device side of layer %d: %s", c.layer, dev.error.c_str());
    }
    if (c.waves > 0) {
      const size_t elems = size_t(n_tokens) * size_t(h->device->shape.d_model);
      for (int32_t wv = 0; wv < c.waves; ++wv) {
        const float* src = h->wave_out[size_t(wv)].data();
        for (size_t i = 0; i < elems; ++i) out[i] += src[i];
      }
    }
    const double t_end = hmoe::now_ms();

    // Timeline.
    double* tl = timeline;
    tl[HMOE_TL_BEGIN] = t_begin;
    tl[HMOE_TL_END] = t_end;
    tl[HMOE_TL_FIRST_SEQ] = double(seq0);
    tl[HMOE_TL_PER_RUN] = h->device && h->device->per_run_timing() ? 1 : 0;
    tl[HMOE_TL_WAVES] = c.waves;
    double* p = tl + HMOE_TL_HEADER;
    for (size_t i = 0; i < c.work.size(); ++i, p += 2) {
      const Work& w = c.work[i];
      p[0] = cpu_start[i];
      p[1] = cpu_end[i];
      if (w.device != HMOE_PLAN_GPU) continue;
      const auto& slots = dev.run_slot[size_t(w.wave)];
      const auto at = std::find(slots.begin(), slots.end(), w.slot) - slots.begin();
      if (size_t(at) < slots.size()) {
        const auto& iv = dev.run_timing[size_t(w.wave)][size_t(at)];
        if (iv && iv->done.load(std::memory_order_acquire)) {
          p[0] = iv->start_ms;
          p[1] = iv->end_ms;
        }
      }
    }
    for (size_t j = 0; j < c.xfers.size(); ++j, p += 2) {
      const auto& iv = dev.xfer_timing[j];
      const bool done = iv->done.load(std::memory_order_acquire);
      p[0] = done ? iv->start_ms : nan();
      p[1] = done ? iv->end_ms : nan();
      if (c.xfers[j].kind == HMOE_PLAN_PREFETCH) h->pending.emplace_back(seq0 + int64_t(j), iv);
    }
    if (h->device) h->device->poll_timings();
    int64_t late = 0;
    for (auto it = h->pending.begin(); it != h->pending.end() && p + 3 <= timeline + timeline_cap;) {
      if (!it->second->done.load(std::memory_order_acquire)) {
        ++it;
        continue;
      }
      p[0] = double(it->first);
      p[1] = it->second->start_ms;
      p[2] = it->second->end_ms;
      p += 3;
      ++late;
      it = h->pending.erase(it);
    }
    tl[HMOE_TL_LATE] = double(late);
  });
}

}  // extern "C"
