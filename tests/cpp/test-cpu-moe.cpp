// The CPU MoE operator against a double-precision reference, for every kernel variant the CPU
// has (or only the one HMOE_KERNEL forces), every weight format, awkward shapes (d and ff not
// multiples of 16), k = 1 and 8, experts with zero tokens, a mask, negative ids and bf16 inputs.
//
// The reference is cpu_moe.h's arithmetic rule in double precision: the layer's own dequantized
// weights (hmoe_expert_layer_dequantize, so weight quantization is excluded), activations and H
// rounded to bf16 (bf16 weights) or quantized per token to int8 (int8/int4 weights) exactly as the
// rule says, every product and sum in double. What remains between a variant and the reference:
//   - f32 summation order (any variant): ~sqrt(K) * 2^-24 relative;
//   - H's own rounding: the kernel rounds (or quantizes) its f32 H, the reference its double H
//     rounded to f32; the two differ by a few f32 ulps, so now and then one element of H falls on
//     the other side of a bf16 rounding or int8 quantization boundary, moving one term of the down
//     projection by one bf16 ulp (2^-8) or one int8 step (amax / 127).
// So one tolerance per format, the same on every variant and every CPU, as max |out - ref| /
// max |ref| over the call: f32 1e-5, bf16 5e-4 (one such flip measured 1.1e-4), int8/int4 2e-3. Each case also prints the rule's
// own cost: its distance to the exact float64 FFN (no activation rounding at all).
// Quantization itself is checked separately: |w - deq(q(w))| <= scale / 2 (+ rounding slack).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "hybrimoe/hmoe.h"
#include "internal/bf16.hpp"

namespace {

std::mt19937 rng(20251122);

std::vector<float> randn(size_t n, float scale) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

const char* fmt_name(int f) {
  static const char* names[] = {"f32", "bf16", "int8", "int4"};
  return names[f];
}

// The per-format tolerance (see the top of this file): the rule's, not the variant's.
double tolerance(int fmt) {
  switch (fmt) {
    case HMOE_FORMAT_F32: return 1e-5;
    case HMOE_FORMAT_BF16: return 5e-4;
    default: return 2e-3;
  }
}

// The rule's activation step for a format, on one row of n values (double in, double out):
// bf16 rounds each f32 value to bf16; int8/int4 quantize the f32 row per token and return q * s_x.
void apply_rule(int fmt, double* v, int64_t n) {
  if (fmt == HMOE_FORMAT_F32) return;
  if (fmt == HMOE_FORMAT_BF16) {
    for (int64_t i = 0; i < n; ++i) v[i] = double(hmoe::bf16_to_f32(hmoe::f32_to_bf16(float(v[i]))));
    return;
  }
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(float(v[i])));
  const float inv = amax > 0 ? 127.0f / amax : 0.0f, sx = amax / 127.0f;
  for (int64_t i = 0; i < n; ++i)
    v[i] = std::nearbyint(std::min(127.0f, std::max(-127.0f, float(v[i]) * inv))) * double(sx);
}

struct Case {
  int fmt, group;
  int64_t E, d, ff, n;
  int k;
  bool bf16_input, use_mask, packed_borrowed, bf16_source;
};

// out[t] += sum_j w * FFN_e(x[t]) in double, from dequantized weights; with_rule: the format's
// activation rule applied to x and to H (else the exact FFN).
void reference(hmoe_expert_layer_t* layer, const Case& c, const std::vector<double>& x,
               const std::vector<int32_t>& ids, const std::vector<float>& w,
               const std::vector<uint8_t>& mask, bool with_rule, std::vector<double>& out) {
  std::vector<std::vector<float>> deq(size_t(c.E * 3));
  for (int64_t e = 0; e < c.E; ++e)
    for (int p = 0; p < 3; ++p) {
      deq[size_t(e * 3 + p)].resize(size_t(c.d * c.ff));
      CHECK_OK(hmoe_expert_layer_dequantize(layer, e, p, deq[size_t(e * 3 + p)].data()));
    }
  std::vector<double> h(size_t(c.ff)), xt(size_t(c.d));
  for (int64_t t = 0; t < c.n; ++t)
    for (int j = 0; j < c.k; ++j) {
      const int e = ids[size_t(t * c.k + j)];
      if (e < 0 || (c.use_mask && !mask[size_t(e)])) continue;
      const auto& G = deq[size_t(e * 3)];
      const auto& U = deq[size_t(e * 3 + 1)];
      const auto& D = deq[size_t(e * 3 + 2)];
      std::copy(x.begin() + t * c.d, x.begin() + (t + 1) * c.d, xt.begin());
      if (with_rule) apply_rule(c.fmt, xt.data(), c.d);
      for (int64_t f = 0; f < c.ff; ++f) {
        double g = 0, u = 0;
        for (int64_t i = 0; i < c.d; ++i) {
          g += double(G[size_t(f * c.d + i)]) * xt[size_t(i)];
          u += double(U[size_t(f * c.d + i)]) * xt[size_t(i)];
        }
        h[size_t(f)] = g / (1.0 + std::exp(-g)) * u;
      }
      if (with_rule) apply_rule(c.fmt, h.data(), c.ff);
      for (int64_t i = 0; i < c.d; ++i) {
        double y = 0;
        for (int64_t f = 0; f < c.ff; ++f) y += double(D[size_t(i * c.ff + f)]) * h[size_t(f)];
        out[size_t(t * c.d + i)] += double(w[size_t(t * c.k + j)]) * y;
      }
    }
}

// tol_override > 0 replaces the per-format tolerance.
void run_case(hmoe_engine_t* engine, const Case& c, double tol_override = 0) {
  hmoe_expert_layer_t* layer = nullptr;
  CHECK_OK(hmoe_expert_layer_create(c.fmt, c.E, c.d, c.ff, c.group, &layer));
  if (layer == nullptr) return;
  // Weights: HF packed layout gate_up [E, 2ff, d], down [E, d, ff] (random, f32).
  std::vector<float> gate_up = randn(size_t(c.E * 2 * c.ff * c.d), 0.3f);
  std::vector<float> down = randn(size_t(c.E * c.d * c.ff), 0.3f);
  std::vector<uint16_t> gate_up_h, down_h;
  if (c.bf16_source || c.fmt == HMOE_FORMAT_BF16) {
    gate_up_h.resize(gate_up.size());
    down_h.resize(down.size());
    for (size_t i = 0; i < gate_up.size(); ++i) gate_up_h[i] = hmoe::f32_to_bf16(gate_up[i]);
    for (size_t i = 0; i < down.size(); ++i) down_h[i] = hmoe::f32_to_bf16(down[i]);
  }
  for (int64_t e = 0; e < c.E; ++e) {
    if (c.packed_borrowed && c.fmt == HMOE_FORMAT_F32) {  // pointer arithmetic, no copy
      const float* g = gate_up.data() + e * 2 * c.ff * c.d;
      CHECK_OK(hmoe_expert_layer_set_expert(layer, e, g, g + c.ff * c.d, down.data() + e * c.d * c.ff,
                                            nullptr, nullptr, nullptr));
    } else if (c.packed_borrowed && c.fmt == HMOE_FORMAT_BF16) {
      const uint16_t* g = gate_up_h.data() + e * 2 * c.ff * c.d;
      CHECK_OK(hmoe_expert_layer_set_expert(layer, e, g, g + c.ff * c.d, down_h.data() + e * c.d * c.ff,
                                            nullptr, nullptr, nullptr));
    } else if (c.bf16_source) {
      const uint16_t* g = gate_up_h.data() + e * 2 * c.ff * c.d;
      CHECK_OK(hmoe_expert_layer_quantize_expert(layer, e % 2 ? engine : nullptr, e, HMOE_DTYPE_BF16, g,
                                                 g + c.ff * c.d, down_h.data() + e * c.d * c.ff));
    } else {
      const float* g = gate_up.data() + e * 2 * c.ff * c.d;
      CHECK_OK(hmoe_expert_layer_quantize_expert(layer, e % 2 ? engine : nullptr, e, HMOE_DTYPE_F32, g,
                                                 g + c.ff * c.d, down.data() + e * c.d * c.ff));
    }
  }
  // Routing: experts 0..E-1 but never the last two (zero tokens), some -1 ids.
  std::vector<int32_t> ids(size_t(c.n * c.k));
  std::vector<float> w(ids.size());
  std::uniform_int_distribution<int> pick(0, int(c.E) - 3);
  std::uniform_real_distribution<float> uw(0.05f, 1.0f);
  for (int64_t t = 0; t < c.n; ++t)
    for (int j = 0; j < c.k; ++j) {
      ids[size_t(t * c.k + j)] = (t % 7 == 3 && j == 0 && c.k > 1) ? -1 : pick(rng);
      w[size_t(t * c.k + j)] = uw(rng);
    }
  std::vector<uint8_t> mask(size_t(c.E), 1);
  if (c.use_mask)
    for (int64_t e = 0; e < c.E; e += 3) mask[size_t(e)] = 0;
  std::vector<float> xf = randn(size_t(c.n * c.d), 1.0f);
  std::vector<uint16_t> xh(xf.size());
  std::vector<double> xd(xf.size());
  for (size_t i = 0; i < xf.size(); ++i) {
    xh[i] = hmoe::f32_to_bf16(xf[i]);
    xd[i] = c.bf16_input ? double(hmoe::bf16_to_f32(xh[i])) : double(xf[i]);
  }
  std::vector<float> out = randn(size_t(c.n * c.d), 0.5f);
  std::vector<double> ref(out.begin(), out.end()), exact(out.begin(), out.end());
  reference(layer, c, xd, ids, w, mask, true, ref);
  reference(layer, c, xd, ids, w, mask, false, exact);
  CHECK_OK(hmoe_cpu_moe_run(engine, layer, c.bf16_input ? static_cast<const void*>(xh.data()) : xf.data(),
                            c.bf16_input ? HMOE_DTYPE_BF16 : HMOE_DTYPE_F32, c.n, c.k, ids.data(), w.data(),
                            c.use_mask ? mask.data() : nullptr, out.data()));
  double maxref = 0, maxerr = 0, maxcost = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    maxref = std::max(maxref, std::fabs(ref[i]));
    maxerr = std::max(maxerr, std::fabs(double(out[i]) - ref[i]));
    maxcost = std::max(maxcost, std::fabs(double(out[i]) - exact[i]));
  }
  const double rel = maxerr / std::max(maxref, 1e-30);
  const double cost = maxcost / std::max(maxref, 1e-30);
  const double tol = tol_override > 0 ? tol_override : tolerance(c.fmt);
  const bool ok = rel <= tol && std::isfinite(rel);
  std::printf("  %-4s g=%-3d E=%lld d=%lld ff=%lld n=%lld k=%d%s%s%s%s: rel err %.2e (tol %.1e), vs exact %.2e%s\n",
              fmt_name(c.fmt), c.group, (long long)c.E, (long long)c.d, (long long)c.ff, (long long)c.n, c.k,
              c.bf16_input ? " x=bf16" : "", c.use_mask ? " mask" : "", c.packed_borrowed ? " borrowed" : "",
              c.bf16_source ? " src=bf16" : "", rel, tol, cost, ok ? "" : "  <-- FAIL");
  CHECK(ok);
  hmoe_expert_layer_free(layer);
}

void test_variant(hmoe_engine_t* engine, int variant) {
  std::printf("variant %d (%s)\n", variant, hmoe_kernel_variant_note());
  const int fmts[] = {HMOE_FORMAT_F32, HMOE_FORMAT_BF16, HMOE_FORMAT_INT8, HMOE_FORMAT_INT4};
  for (int fmt : fmts) {
    const int groups[] = {32, 64, 128};
    for (int gi = 0; gi < (fmt == HMOE_FORMAT_INT4 ? 3 : 1); ++gi) {
      const int g = fmt == HMOE_FORMAT_INT4 ? groups[gi] : 0;
      const bool borrow = fmt == HMOE_FORMAT_F32 || fmt == HMOE_FORMAT_BF16;
      run_case(engine, {fmt, g, 16, 67, 45, 1, 8, false, false, borrow, false});
      run_case(engine, {fmt, g, 16, 67, 45, 17, 8, true, true, borrow, false});
      run_case(engine, {fmt, g, 5, 131, 200, 130, 1, false, false, false, gi == 1});
      if (gi == 0) run_case(engine, {fmt, g, 4, 64, 96, 3, 8 > 4 ? 2 : 1, false, true, false, true});
    }
  }
  // One larger batch: tokens per expert in the hundreds, several token chunks per expert.
  run_case(engine, {HMOE_FORMAT_BF16, 0, 4, 96, 80, 1024, 1, false, false, true, false});
  run_case(engine, {HMOE_FORMAT_INT4, 32, 4, 96, 80, 1024, 1, true, false, false, false});
}

// The oneDNN path (threshold 1: every expert with tokens), f32 and bf16 weights, under the same
// rule and tolerances as the engine's kernels. bf16 goes to oneDNN's bf16 matmul where it has one,
// else to its f32 matmul with the weights widened in blocks of rows (onednn_matmul_bf16_widened).
void test_onednn_path(hmoe_engine_t* engine, int variant) {
  std::printf("oneDNN path (min tokens 1), variant %d\n", variant);
  CHECK_OK(hmoe_engine_set_onednn_min_tokens(engine, 1));
  run_case(engine, {HMOE_FORMAT_F32, 0, 6, 67, 45, 40, 2, false, false, true, false});
  run_case(engine, {HMOE_FORMAT_BF16, 0, 6, 67, 45, 40, 2, true, true, true, false});
  run_case(engine, {HMOE_FORMAT_BF16, 0, 3, 200, 136, 300, 1, false, false, true, false});
  run_case(engine, {HMOE_FORMAT_INT8, 0, 6, 67, 45, 40, 2, false, false, false, false});
  CHECK_OK(hmoe_engine_set_onednn_min_tokens(engine, 0));
}

void test_quantization_bounds() {
  const int64_t d = 100, ff = 37;
  for (int fmt : {HMOE_FORMAT_BF16, HMOE_FORMAT_INT8, HMOE_FORMAT_INT4}) {
    for (int g : {32, 64, 128}) {
      if (fmt != HMOE_FORMAT_INT4 && g != 32) continue;
      hmoe_expert_layer_t* layer = nullptr;
      CHECK_OK(hmoe_expert_layer_create(fmt, 1, d, ff, g, &layer));
      std::vector<float> gate = randn(size_t(ff * d), 1.0f), up = randn(size_t(ff * d), 1.0f),
                         down = randn(size_t(d * ff), 1.0f);
      CHECK_OK(hmoe_expert_layer_quantize_expert(layer, nullptr, 0, HMOE_DTYPE_F32, gate.data(), up.data(), down.data()));
      std::vector<float> deq(size_t(ff * d));
      CHECK_OK(hmoe_expert_layer_dequantize(layer, 0, HMOE_PROJ_GATE, deq.data()));
      double worst = 0;  // max |w - deq| / bound
      for (int64_t r = 0; r < ff; ++r) {
        float amax_row = 0;
        for (int64_t i = 0; i < d; ++i) amax_row = std::max(amax_row, std::fabs(gate[size_t(r * d + i)]));
        for (int64_t i = 0; i < d; ++i) {
          const float v = gate[size_t(r * d + i)];
          double bound;
          if (fmt == HMOE_FORMAT_BF16) {
            bound = std::fabs(v) * std::ldexp(1.0, -8) + 1e-30;
          } else if (fmt == HMOE_FORMAT_INT8) {
            bound = amax_row / 127.0 / 2 * (1 + 1e-5);
          } else {
            float amax = 0;
            const int64_t g0 = i / g * g;
            for (int64_t j = g0; j < std::min(d, g0 + g); ++j) amax = std::max(amax, std::fabs(gate[size_t(r * d + j)]));
            bound = amax / 7.0 / 2 * (1 + 1e-5);
          }
          worst = std::max(worst, std::fabs(double(v) - deq[size_t(r * d + i)]) / bound);
        }
      }
      std::printf("quantize %s g=%d: max error / bound = %.3f\n", fmt_name(fmt), g, worst);
      CHECK(worst <= 1.0);
      hmoe_expert_layer_free(layer);
    }
  }
}

// The pool under repetition: an engine with more threads than cores (stealing, late wake-ups),
// 200 calls of mixed sizes, each output bit-identical to the first call's (the combine order is
// fixed, so any lost or doubled task shows).
void test_pool_repeatability() {
  hmoe_engine_t* e5 = nullptr;
  CHECK_OK(hmoe_engine_create(5, &e5));
  CHECK_OK(hmoe_engine_set_onednn_min_tokens(e5, 0));
  const int64_t E = 8, d = 40, ff = 72;
  hmoe_expert_layer_t* layer = nullptr;
  CHECK_OK(hmoe_expert_layer_create(HMOE_FORMAT_F32, E, d, ff, 0, &layer));
  std::vector<float> w = randn(size_t(E * 3 * d * ff), 0.2f);
  for (int64_t e = 0; e < E; ++e) {
    const float* b = w.data() + e * 3 * d * ff;
    CHECK_OK(hmoe_expert_layer_set_expert(layer, e, b, b + d * ff, b + 2 * d * ff, nullptr, nullptr, nullptr));
  }
  for (int64_t n : {1, 7, 64}) {
    const int k = 2;
    std::vector<float> x = randn(size_t(n * d), 1.0f), rw(size_t(n * k), 0.5f);
    std::vector<int32_t> ids(size_t(n * k));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 5 + 3) % E);
    std::vector<float> first(size_t(n * d), 0.0f);
    CHECK_OK(hmoe_cpu_moe_run(e5, layer, x.data(), HMOE_DTYPE_F32, n, k, ids.data(), rw.data(), nullptr, first.data()));
    int mismatches = 0;
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<float> out(size_t(n * d), 0.0f);
      CHECK_OK(hmoe_cpu_moe_run(e5, layer, x.data(), HMOE_DTYPE_F32, n, k, ids.data(), rw.data(), nullptr, out.data()));
      mismatches += std::memcmp(out.data(), first.data(), out.size() * 4) != 0;
    }
    std::printf("pool: n=%lld, 200 repeats, %d mismatches\n", (long long)n, mismatches);
    CHECK(mismatches == 0);
  }
  hmoe_expert_layer_free(layer);
  hmoe_engine_free(e5);
}

void test_errors(hmoe_engine_t* engine) {
  hmoe_expert_layer_t* layer = nullptr;
  CHECK(hmoe_expert_layer_create(HMOE_FORMAT_INT4, 2, 64, 64, 48, &layer) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("group_size") != std::string::npos);
  CHECK(hmoe_expert_layer_create(9, 2, 64, 64, 32, &layer) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("format") != std::string::npos);
  CHECK(hmoe_expert_layer_create(HMOE_FORMAT_F32, 2, 0, 64, 32, &layer) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("d_model") != std::string::npos);
  CHECK_OK(hmoe_expert_layer_create(HMOE_FORMAT_F32, 2, 8, 4, 0, &layer));
  std::vector<float> wg(32, 0.1f), x(8, 1.0f), out(8, 0.0f), wt(1, 1.0f);
  CHECK_OK(hmoe_expert_layer_set_expert(layer, 0, wg.data(), wg.data(), wg.data(), nullptr, nullptr, nullptr));
  int32_t id1 = 1, id0 = 0, id9 = 9;
  CHECK(hmoe_cpu_moe_run(engine, layer, x.data(), HMOE_DTYPE_F32, 1, 1, &id1, wt.data(), nullptr, out.data()) ==
        HMOE_ERR_STATE);
  CHECK(std::string(hmoe_last_error()).find("expert 1") != std::string::npos);
  uint8_t mask[2] = {1, 0};  // expert 1 masked out: no weights needed, nothing added
  CHECK_OK(hmoe_cpu_moe_run(engine, layer, x.data(), HMOE_DTYPE_F32, 1, 1, &id1, wt.data(), mask, out.data()));
  CHECK(out[0] == 0.0f);
  CHECK(hmoe_cpu_moe_run(engine, layer, x.data(), HMOE_DTYPE_F32, 1, 1, &id9, wt.data(), nullptr, out.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_cpu_moe_run(engine, layer, x.data(), 5, 1, 1, &id0, wt.data(), nullptr, out.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_cpu_moe_run(engine, layer, x.data(), HMOE_DTYPE_F32, 1, 0, &id0, wt.data(), nullptr, out.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_cpu_moe_run(engine, layer, nullptr, HMOE_DTYPE_F32, 1, 1, &id0, wt.data(), nullptr, out.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_engine_set_onednn_min_tokens(engine, -1) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_expert_layer_set_expert(layer, 2, wg.data(), wg.data(), wg.data(), nullptr, nullptr, nullptr) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK_OK(hmoe_cpu_moe_run(engine, layer, x.data(), HMOE_DTYPE_F32, 0, 1, nullptr, nullptr, nullptr, nullptr));
  hmoe_expert_layer_free(layer);
  hmoe_expert_layer_free(nullptr);
}

}  // namespace

int main() {
  uint32_t f = 0;
  CHECK_OK(hmoe_cpu_features(&f));
  hmoe_engine_t* engine = nullptr;
  CHECK_OK(hmoe_engine_create(0, &engine));
  CHECK_OK(hmoe_engine_set_onednn_min_tokens(engine, 0));  // our kernels; oneDNN tested apart
  int32_t current = 0;
  CHECK_OK(hmoe_kernel_variant(&current));
  const char* env = std::getenv("HMOE_KERNEL");
  if (env != nullptr && *env != '\0' && std::string(env) != "auto") {
    // One variant, as forced; a variant the CPU lacks is a skip, not a pass.
    if (std::string(hmoe_kernel_variant_note()).find("ignored") != std::string::npos) {
      hmoe_engine_free(engine);
      SKIP("forced kernel variant not supported by this CPU");
    }
    test_variant(engine, current);
    if (current != HMOE_KERNEL_SCALAR) test_onednn_path(engine, current);
  } else {
    for (int v = HMOE_KERNEL_SCALAR; v <= HMOE_KERNEL_AVX512; ++v) {
      if (hmoe_kernel_variant_force(v) != HMOE_OK) {
        std::printf("variant %d skipped: %s\n", v, hmoe_last_error());
        continue;
      }
      test_variant(engine, v);
      if (v != HMOE_KERNEL_SCALAR) test_onednn_path(engine, v);
    }
    hmoe_kernel_variant_force(-1);
  }
  test_quantization_bounds();
  test_pool_repeatability();
  test_errors(engine);
  hmoe_engine_free(engine);
  return TEST_RESULT();
}
