// The device C ABI: argument checks and the routing plan shared by both implementations.
#include <cstring>

#include "device/device.hpp"
#include "internal/status.hpp"

namespace hmoe {

SlotLayout slot_layout(const hmoe_expert_shape_t& s) {
  if (s.d_model < 1 || s.d_ff < 1)
    fail(HMOE_ERR_INVALID_ARGUMENT, "expert shape needs d_model >= 1 and d_ff >= 1, got %d x %d",
         s.d_model, s.d_ff);
  if (s.format != HMOE_FORMAT_BF16 && s.format != HMOE_FORMAT_INT4)
    fail(HMOE_ERR_UNSUPPORTED, "expert format %d is not supported by devices (bf16 = %d, int4 = %d)",
         s.format, HMOE_FORMAT_BF16, HMOE_FORMAT_INT4);
  const bool int4 = s.format == HMOE_FORMAT_INT4;
  if (int4 && s.group_size != 32 && s.group_size != 64 && s.group_size != 128)
    fail(HMOE_ERR_INVALID_ARGUMENT, "int4 group_size must be 32, 64 or 128, got %d", s.group_size);
  auto up256 = [](int64_t b) { return (b + 255) / 256 * 256; };
  SlotLayout l{};
  const int64_t in[3] = {s.d_model, s.d_model, s.d_ff};
  const int64_t rows[3] = {s.d_ff, s.d_ff, s.d_model};
  int64_t at = 0;
  for (int p = 0; p < 3; ++p) {
    l.rows[p] = rows[p];
    if (int4) {
      const int64_t in_pad = (in[p] + s.group_size - 1) / s.group_size * s.group_size;
      l.row_bytes[p] = in_pad / 2;
      l.scales_per_row[p] = in_pad / s.group_size;
    } else {
      l.row_bytes[p] = in[p] * 2;
      l.scales_per_row[p] = 0;
    }
    l.weights_at[p] = at;
    at = up256(at + rows[p] * l.row_bytes[p]);
  }
  for (int p = 0; p < 3; ++p) {
    l.scales_at[p] = at;
    at = up256(at + rows[p] * l.scales_per_row[p] * 4);
  }
  l.slot_bytes = at;
  return l;
}

int64_t expert_bytes(const hmoe_expert_shape_t& s) { return slot_layout(s).slot_bytes; }

namespace {

hmoe_device_t* require_device(hmoe_device_t* d) {
  if (d == nullptr) fail(HMOE_ERR_INVALID_ARGUMENT, "device must not be NULL");
  return d;
}

void require_slot(const hmoe_device_t* d, int32_t slot) {
  if (slot < 0 || slot >= d->slots)
    fail(HMOE_ERR_INVALID_ARGUMENT, "slot %d out of range [0, %d)", slot, d->slots);
}

}  // namespace

// Groups the (token, j) routing entries whose expert lives in a slot by slot: count per slot,
// prefix offsets, then pack. Validates ids and slot mapping as it goes.
MoePlan build_plan(const hmoe_device_t* d, int32_t n_tokens, const int32_t* ids, const float* weights,
                   int32_t top_k, const int32_t* slot_of_expert, int32_t n_experts) {
  if (n_tokens < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "n_tokens must be >= 0, got %d", n_tokens);
  if (top_k < 1) fail(HMOE_ERR_INVALID_ARGUMENT, "top_k must be >= 1, got %d", top_k);
  if (n_experts < 1) fail(HMOE_ERR_INVALID_ARGUMENT, "n_experts must be >= 1, got %d", n_experts);
  HMOE_REQUIRE_PTR(slot_of_expert);
  if (n_tokens > 0) {
    HMOE_REQUIRE_PTR(ids);
    HMOE_REQUIRE_PTR(weights);
  }
  for (int32_t e = 0; e < n_experts; ++e) {
    const int32_t s = slot_of_expert[e];
    if (s < -1 || s >= d->slots)
      fail(HMOE_ERR_INVALID_ARGUMENT, "slot_of_expert[%d] = %d out of range [-1, %d)", e, s, d->slots);
  }
  std::vector<int32_t> count(size_t(d->slots), 0);
  const int64_t entries = int64_t(n_tokens) * top_k;
  for (int64_t i = 0; i < entries; ++i) {
    const int32_t e = ids[i];
    if (e < 0 || e >= n_experts)
      fail(HMOE_ERR_INVALID_ARGUMENT, "ids[%lld] = %d out of range [0, %d)", (long long)i, e, n_experts);
    if (slot_of_expert[e] >= 0) ++count[size_t(slot_of_expert[e])];
  }
  MoePlan p;
  p.n_tokens = n_tokens;
  std::vector<int32_t> run_of_slot(size_t(d->slots), -1);
  p.run_offset.push_back(0);
  for (int32_t s = 0; s < d->slots; ++s) {
    if (count[size_t(s)] == 0) continue;  // experts with no tokens cost nothing
    run_of_slot[size_t(s)] = p.runs();
    p.run_slot.push_back(s);
    p.run_offset.push_back(p.run_offset.back() + count[size_t(s)]);
  }
  p.pair_token.resize(size_t(p.run_offset.back()));
  p.pair_weight.resize(size_t(p.run_offset.back()));
  std::vector<int32_t> fill(p.run_offset.begin(), p.run_offset.end() - 1);
  for (int64_t i = 0; i < entries; ++i) {
    const int32_t s = slot_of_expert[ids[i]];
    if (s < 0) continue;
    const int32_t at = fill[size_t(run_of_slot[size_t(s)])]++;
    p.pair_token[size_t(at)] = static_cast<int32_t>(i / top_k);
    p.pair_weight[size_t(at)] = weights[i];
  }
  return p;
}

}  // namespace hmoe

extern "C" {

int hmoe_expert_bytes(const hmoe_expert_shape_t* shape, int64_t* out) {
  return hmoe::guarded("hmoe_expert_bytes", [&] {
    HMOE_REQUIRE_PTR(shape);
    HMOE_REQUIRE_PTR(out);
    *out = hmoe::expert_bytes(*shape);
  });
}

void hmoe_device_free(hmoe_device_t* device) {
  // A destructor that meets a failing driver must not take the process down with it.
  try {
    delete device;
  } catch (...) {
  }
}

int hmoe_device_describe(const hmoe_device_t* device, int32_t* kind, int32_t* slots, int64_t* slot_bytes) {
  return hmoe::guarded("hmoe_device_describe", [&] {
    HMOE_REQUIRE_PTR(device);
    if (kind) *kind = device->kind();
    if (slots) *slots = device->slots;
    if (slot_bytes) *slot_bytes = device->slot_bytes;
  });
}

int hmoe_device_register_host(hmoe_device_t* device, const void* ptr, int64_t bytes, int32_t* pinned) {
  return hmoe::guarded("hmoe_device_register_host", [&] {
    hmoe::require_device(device);
    HMOE_REQUIRE_PTR(ptr);
    HMOE_REQUIRE_PTR(pinned);
    if (bytes < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "bytes must be >= 1, got %lld", (long long)bytes);
    *pinned = device->register_host(ptr, bytes) ? 1 : 0;
  });
}

int hmoe_device_unregister_host(hmoe_device_t* device, const void* ptr) {
  return hmoe::guarded("hmoe_device_unregister_host", [&] {
    hmoe::require_device(device);
    HMOE_REQUIRE_PTR(ptr);
    device->unregister_host(ptr);
  });
}

int hmoe_device_load(hmoe_device_t* device, int32_t slot, const void* gate, const void* up,
                     const void* down, const float* gate_scales, const float* up_scales,
                     const float* down_scales, int32_t stream) {
  return hmoe::guarded("hmoe_device_load", [&] {
    hmoe::require_device(device);
    hmoe::require_slot(device, slot);
    HMOE_REQUIRE_PTR(gate);
    HMOE_REQUIRE_PTR(up);
    HMOE_REQUIRE_PTR(down);
    const bool int4 = device->shape.format == HMOE_FORMAT_INT4;
    if (int4) {
      HMOE_REQUIRE_PTR(gate_scales);
      HMOE_REQUIRE_PTR(up_scales);
      HMOE_REQUIRE_PTR(down_scales);
    } else if (gate_scales || up_scales || down_scales) {
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "bf16 experts have no scales: pass NULL");
    }
    if (stream != HMOE_STREAM_COPY && stream != HMOE_STREAM_PREFETCH)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "stream must be HMOE_STREAM_COPY (1) or HMOE_STREAM_PREFETCH (2), got %d",
                 stream);
    const void* const src[3] = {gate, up, down};
    const float* const scales[3] = {gate_scales, up_scales, down_scales};
    device->load(slot, src, scales, stream, nullptr);
  });
}

int hmoe_device_slot_state(hmoe_device_t* device, int32_t slot, int32_t* out) {
  return hmoe::guarded("hmoe_device_slot_state", [&] {
    hmoe::require_device(device);
    hmoe::require_slot(device, slot);
    HMOE_REQUIRE_PTR(out);
    *out = device->slot_state(slot);
  });
}

int hmoe_device_moe_run(hmoe_device_t* device, const float* x, int32_t n_tokens, const int32_t* ids,
                        const float* weights, int32_t top_k, const int32_t* slot_of_expert,
                        int32_t n_experts, float* out) {
  return hmoe::guarded("hmoe_device_moe_run", [&] {
    hmoe::require_device(device);
    hmoe::MoePlan plan = hmoe::build_plan(device, n_tokens, ids, weights, top_k, slot_of_expert, n_experts);
    if (n_tokens == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(out);
    device->moe_run(plan, x, out, nullptr);
  });
}

int hmoe_device_wait(hmoe_device_t* device) {
  return hmoe::guarded("hmoe_device_wait", [&] {
    hmoe::require_device(device);
    device->wait();
  });
}

int hmoe_device_time_moe(hmoe_device_t* device, const float* x, int32_t n_tokens, const int32_t* ids,
                         const float* weights, int32_t top_k, const int32_t* slot_of_expert,
                         int32_t n_experts, int32_t reps, float* median_ms) {
  return hmoe::guarded("hmoe_device_time_moe", [&] {
    hmoe::require_device(device);
    HMOE_REQUIRE_PTR(median_ms);
    if (reps < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "reps must be >= 1, got %d", reps);
    hmoe::MoePlan plan = hmoe::build_plan(device, n_tokens, ids, weights, top_k, slot_of_expert, n_experts);
    if (n_tokens < 1) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n_tokens must be >= 1 to time a run");
    HMOE_REQUIRE_PTR(x);
    *median_ms = device->time_moe(plan, x, reps);
  });
}

}  // extern "C"
