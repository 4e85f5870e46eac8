// The CPU MoE operator and expert layers (cpu_moe.h).
//
// Dataflow of one hmoe_cpu_moe_run, every phase on the engine's pool:
//   1. route   count selected (token, slot) pairs per expert, prefix offsets, and give each pair a
//              packed row: rows of expert e are [off[e], off[e] + cnt[e]) (serial, O(n * k))
//   2. pack    gather x into packed rows in the form the kernel path reads (f32, bf16 or
//              quantized u8, zero-padded)                                         [R, ld_d]
//   3. gate/up one task per (expert, ff chunk, token chunk): gate and up rows of the chunk,
//              then H = silu(gate) * up                                          [R, ld_ff] f32
//   4. pack H  for the down projection's path                                      [R, ld_ff]
//   5. down    one task per (expert, d chunk, token chunk)                          Y [R, d] f32
//   6. combine per token: out[t] += w[t, j] * Y[row(t, j)] over its selected slots
// Experts with at least the engine's oneDNN threshold of tokens (f32/bf16 weights) run phases 3
// and 5 through oneDNN's matmul instead, on the caller's thread with OpenMP sized to the pool
// while the pool is idle (so the two never oversubscribe the cores).
// One token and one expert gives ff / chunk tasks in phase 3 and d / chunk in phase 5: the
// intermediate dimension is split across threads and every weight byte is read once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "cpu/convert_kernels.hpp"
#include "cpu/moe_kernels.hpp"
#include "internal/act_rule.hpp"
#include "internal/bf16.hpp"
#include "internal/cpu.hpp"
#include "internal/engine.hpp"
#include "internal/onednn_ffn.hpp"
#include "internal/expert_layer.hpp"
#include "internal/status.hpp"

namespace {

constexpr int64_t kMaxDim = 262144;  // keeps VPDPBUSD's int32 lane sums far from overflow
constexpr int64_t kMaxExperts = 65536;

struct ExpertSlot {
  bool set = false;
  const void* w[3] = {nullptr, nullptr, nullptr};  // gate, up, down
  const float* s[3] = {nullptr, nullptr, nullptr};
  std::unique_ptr<uint8_t[]> owned;  // quantized copy, when the engine made one
};

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

void row_bytes(int32_t format, int64_t in, int32_t group, int64_t* rb, int64_t* spr) {
  switch (format) {
    case HMOE_FORMAT_F32: *rb = in * 4; *spr = 0; return;
    case HMOE_FORMAT_BF16: *rb = in * 2; *spr = 0; return;
    case HMOE_FORMAT_INT8: *rb = in; *spr = 1; return;
    case HMOE_FORMAT_INT4:
      if (group != 32 && group != 64 && group != 128)
        hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "group_size must be 32, 64 or 128 for INT4, got %d", group);
      *rb = round_up(in, group) / 2;
      *spr = round_up(in, group) / group;
      return;
    default:
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "format must be HMOE_FORMAT_F32/BF16/INT8/INT4 (0..3), got %d", format);
  }
}

}  // namespace

struct hmoe_expert_layer {
  int32_t format;
  int64_t n_experts, d, ff;
  int32_t group;
  int64_t rb_d, spr_d;    // row bytes / scales per row of gate and up (in = d)
  int64_t rb_ff, spr_ff;  // of down (in = ff)
  std::vector<ExpertSlot> experts;

  hmoe::cpu::MatView mat(int64_t e, int proj) const {
    const ExpertSlot& x = experts[size_t(e)];
    const bool down = proj == HMOE_PROJ_DOWN;
    return hmoe::cpu::MatView{x.w[proj], x.s[proj], down ? d : ff, down ? ff : d,
                              down ? rb_ff : rb_d, down ? spr_ff : spr_d, format, group};
  }
};

namespace hmoe {

void expert_pointers(const hmoe_expert_layer_t* layer, int64_t e, const void* w[3], const float* s[3]) {
  if (layer == nullptr) fail(HMOE_ERR_INVALID_ARGUMENT, "expert layer must not be NULL");
  if (e < 0 || e >= layer->n_experts)
    fail(HMOE_ERR_INVALID_ARGUMENT, "expert %lld out of range [0, %lld)", (long long)e, (long long)layer->n_experts);
  const ExpertSlot& x = layer->experts[size_t(e)];
  if (!x.set) fail(HMOE_ERR_STATE, "expert %lld has no weights", (long long)e);
  for (int p = 0; p < 3; ++p) {
    w[p] = x.w[p];
    s[p] = x.s[p];
  }
}

}  // namespace hmoe

namespace {

// ---- quantization (load time; plain C++) ---------------------------------------------------

// Converts rows [r0, r1) (src points at row r0: f32 [r1 - r0, in]) into the format at dst/scales
// (whole projection: [rows, rb] bytes and [rows, spr] scales).
void quantize_rows(const float* src, int64_t in, int64_t r0, int64_t r1, int32_t format, int32_t group,
                   int64_t rb, int64_t spr, uint8_t* dst, float* scales) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = src + (r - r0) * in;
    uint8_t* o = dst + r * rb;
    switch (format) {
      case HMOE_FORMAT_F32: std::memcpy(o, x, size_t(in) * 4); break;
      case HMOE_FORMAT_BF16:
        for (int64_t k = 0; k < in; ++k) {
          const uint16_t h = hmoe::f32_to_bf16(x[k]);
          std::memcpy(o + 2 * k, &h, 2);
        }
        break;
      case HMOE_FORMAT_INT8: {
        float amax = 0;
        for (int64_t k = 0; k < in; ++k) amax = std::max(amax, std::fabs(x[k]));
        const float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        scales[r] = s;
        for (int64_t k = 0; k < in; ++k) {
          const float q = std::nearbyint(std::min(127.0f, std::max(-127.0f, x[k] * inv)));
          o[k] = static_cast<uint8_t>(static_cast<int8_t>(q));
        }
        break;
      }
      case HMOE_FORMAT_INT4: {
        std::memset(o, 0x88, size_t(rb));  // q = 0 everywhere, padding included
        for (int64_t g = 0; g < spr; ++g) {
          const int64_t k0 = g * group, k1 = std::min(in, k0 + group);
          float amax = 0;
          for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x[k]));
          const float inv = amax > 0 ? 7.0f / amax : 0.0f;
          scales[r * spr + g] = amax / 7.0f;
          for (int64_t k = k0; k < k1; ++k) {
            const int q = int(std::nearbyint(std::min(7.0f, std::max(-7.0f, x[k] * inv)))) + 8;
            uint8_t& byte = o[(k / 32) * 16 + (k % 32) % 16];
            byte = (k % 32) < 16 ? uint8_t((byte & 0xf0) | q) : uint8_t((byte & 0x0f) | (q << 4));
          }
        }
        break;
      }
      default: break;
    }
  }
}

// ---- the operator ----------------------------------------------------------------------------

// The kernel path per format and variant. Every path computes cpu_moe.h's rule for its format;
// they differ in summation order only. kAvx2Q: int8/int4 against per-token int8 activations
// (VPMADDUBSW); kAvx2Bf16: bf16 weights on AVX2, which also prepares the permuted rows of its
// one-token kernel; kAvx512Bf16: VDPBF16PS on the rounded activations' bf16 bits.
enum class Path { kScalar, kAvx2, kAvx2Bf16, kAvx2Q, kAvx512, kAvx512Bf16, kAvx512Vnni };

Path choose_path(int32_t format) {
  const int v = hmoe::kernel_variant();
  const uint32_t f = hmoe::cpu_features();
  const bool quantized = format == HMOE_FORMAT_INT8 || format == HMOE_FORMAT_INT4;
#ifdef HMOE_HAVE_AVX512
  if (v == HMOE_KERNEL_AVX512) {
    if (format == HMOE_FORMAT_BF16 && (f & HMOE_CPU_AVX512_BF16)) return Path::kAvx512Bf16;
    if (quantized) {
      if (f & HMOE_CPU_AVX512_VNNI) return Path::kAvx512Vnni;
#ifdef HMOE_HAVE_AVX2
      return Path::kAvx2Q;  // AVX-512 without VNNI
#else
      return Path::kScalar;
#endif
    }
    return Path::kAvx512;
  }
#endif
#ifdef HMOE_HAVE_AVX2
  if (v >= HMOE_KERNEL_AVX2 && (f & HMOE_CPU_AVX2))
    return quantized ? Path::kAvx2Q : format == HMOE_FORMAT_BF16 ? Path::kAvx2Bf16 : Path::kAvx2;
#endif
  (void)f;
  (void)v;
  (void)quantized;
  return Path::kScalar;
}

void matmul(Path p, const hmoe::cpu::MatView& m, int64_t r0, int64_t r1, const hmoe::cpu::ActView& x,
            int n, float* y, int64_t ldy) {
  switch (p) {
#ifdef HMOE_HAVE_AVX512
    case Path::kAvx512: hmoe::cpu::matmul_avx512(m, r0, r1, x, n, y, ldy); return;
    case Path::kAvx512Bf16: hmoe::cpu::matmul_avx512_bf16(m, r0, r1, x, n, y, ldy); return;
    case Path::kAvx512Vnni: hmoe::cpu::matmul_avx512_vnni(m, r0, r1, x, n, y, ldy); return;
#endif
#ifdef HMOE_HAVE_AVX2
    case Path::kAvx2:
    case Path::kAvx2Bf16: hmoe::cpu::matmul_avx2(m, r0, r1, x, n, y, ldy); return;
    case Path::kAvx2Q: hmoe::cpu::matmul_avx2_q(m, r0, r1, x, n, y, ldy); return;
#endif
    default: hmoe::cpu::matmul_scalar(m, r0, r1, x, n, y, ldy); return;
  }
}

// Activations of R packed rows in every form the format's rule and the path need. f32 is always
// there (the others are made from it); ld is a multiple of 128 and the padding is zero (128 for qu).
struct Acts {
  int64_t ld = 0;
  std::vector<float> f32;   // bf16 weights: already rounded to bf16 values (the rule)
  std::vector<float> f32p;  // kAvx2Bf16: f32 permuted for the one-token kernel
  std::vector<uint16_t> bf16;
  std::vector<uint8_t> qu;  // int8/int4 weights: the per-token int8 activations, every path
  std::vector<float> qscale;
  hmoe::cpu::ActView view() const {
    return {f32.data(), f32p.empty() ? nullptr : f32p.data(), bf16.empty() ? nullptr : bf16.data(),
            qu.empty() ? nullptr : qu.data(),
            qscale.empty() ? nullptr : qscale.data(), ld};
  }
};

bool quantized(int32_t format) { return format == HMOE_FORMAT_INT8 || format == HMOE_FORMAT_INT4; }

// Applies the format's activation rule to row r (K valid values of its f32 form): bf16 weights
// round it to bf16 in place (then derive the permuted or bf16-bits form the path reads); int8 and
// int4 weights quantize it per token to int8 (internal/act_rule.hpp).
void derive_row(Path p, int32_t format, Acts& a, int64_t r, int64_t K) {
  float* x = a.f32.data() + r * a.ld;
  if (format == HMOE_FORMAT_BF16) {
    hmoe::round_bf16_row(x, K);
    if (p == Path::kAvx2Bf16) {
      hmoe::cpu::permute_for_bf16(x, a.f32p.data() + r * a.ld, a.ld);
    } else if (p == Path::kAvx512Bf16) {
      uint16_t* o = a.bf16.data() + r * a.ld;
#ifdef HMOE_HAVE_AVX512
      hmoe::cpu::f32_to_bf16_avx512(x, o, a.ld);
#else
      for (int64_t k = 0; k < a.ld; ++k) o[k] = hmoe::f32_to_bf16(x[k]);
#endif
    }
  } else if (quantized(format)) {
    a.qscale[size_t(r)] = hmoe::quantize_row_i8(x, K, a.ld, a.qu.data() + r * a.ld);
  }
}

void alloc_acts(Path p, int32_t format, Acts& a, int64_t rows, int64_t K) {
  a.ld = round_up(K, 128);
  a.f32.assign(size_t(rows * a.ld), 0.0f);
  if (p == Path::kAvx2Bf16) a.f32p.assign(size_t(rows * a.ld), 0.0f);
  if (p == Path::kAvx512Bf16) a.bf16.assign(size_t(rows * a.ld), 0);
  if (quantized(format)) {
    a.qu.assign(size_t(rows * a.ld), 128);
    a.qscale.assign(size_t(rows), 0.0f);
  }
}

struct Task {
  int64_t e, r0, r1, t0, t1;  // expert, output rows [r0, r1), packed rows [t0, t1) of the expert
};

constexpr int64_t kTokenChunk = 32;

// Tasks over (expert, row chunk, token chunk), aiming at ~4 per thread for balance.
std::vector<Task> make_tasks(const std::vector<int64_t>& cnt, const std::vector<int64_t>& off,
                             int64_t rows, int threads) {
  int64_t token_chunks = 0;
  for (int64_t c : cnt) token_chunks += (c + kTokenChunk - 1) / kTokenChunk;
  const int64_t want = 4 * int64_t(threads);
  const int64_t splits = std::max<int64_t>(1, (want + token_chunks - 1) / std::max<int64_t>(1, token_chunks));
  const int64_t chunk = std::min(rows, std::max<int64_t>(16, round_up((rows + splits - 1) / splits, 16)));
  std::vector<Task> tasks;
  for (size_t e = 0; e < cnt.size(); ++e) {
    for (int64_t t0 = 0; t0 < cnt[e]; t0 += kTokenChunk)
      for (int64_t r0 = 0; r0 < rows; r0 += chunk)
        tasks.push_back({int64_t(e), r0, std::min(rows, r0 + chunk), off[e] + t0,
                         off[e] + std::min(cnt[e], t0 + kTokenChunk)});
  }
  return tasks;
}

void run_moe(hmoe_engine_t* engine, const hmoe_expert_layer* L, const void* x, int32_t x_dtype,
             int64_t n, int32_t k, const int32_t* ids, const float* wts, const uint8_t* mask, float* out) {
  const int64_t E = L->n_experts, d = L->d, ff = L->ff;
  // 1. route
  std::vector<int64_t> cnt(size_t(E), 0), off(size_t(E), 0), pos(size_t(n * k), -1);
  for (int64_t i = 0; i < n * k; ++i) {
    const int32_t e = ids[i];
    if (e < 0) continue;
    if (e >= E) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "ids[%lld] = %d is not an expert (n_experts %lld)",
                           (long long)i, e, (long long)E);
    if (mask != nullptr && mask[e] == 0) continue;
    if (!L->experts[size_t(e)].set)
      hmoe::fail(HMOE_ERR_STATE, "expert %d is selected but has no weights set", e);
    ++cnt[size_t(e)];
  }
  int64_t R = 0;
  for (int64_t e = 0; e < E; ++e) off[size_t(e)] = R, R += cnt[size_t(e)];
  if (R == 0) return;
  std::vector<int64_t> fill(off);
  std::vector<int64_t> row_token(static_cast<size_t>(R));
  for (int64_t i = 0; i < n * k; ++i) {
    const int32_t e = ids[i];
    if (e < 0 || (mask != nullptr && mask[e] == 0)) continue;
    const int64_t r = fill[size_t(e)]++;
    pos[size_t(i)] = r;
    row_token[size_t(r)] = i / k;
  }

  hmoe::ThreadPool& pool = *engine->pool;
  const Path path = choose_path(L->format);
  const int64_t blk = 16;  // rows per pack task

  // 2. pack x
  Acts ax;
  alloc_acts(path, L->format, ax, R, d);
  pool.parallel_for((R + blk - 1) / blk, [&](int64_t b) {
    for (int64_t r = b * blk; r < std::min(R, (b + 1) * blk); ++r) {
      float* o = ax.f32.data() + r * ax.ld;
      const int64_t t = row_token[size_t(r)];
      if (x_dtype == HMOE_DTYPE_F32) {
        std::memcpy(o, static_cast<const float*>(x) + t * d, size_t(d) * 4);
      } else {
        const uint16_t* h = static_cast<const uint16_t*>(x) + t * d;
        for (int64_t i = 0; i < d; ++i) o[i] = hmoe::bf16_to_f32(h[i]);
      }
      derive_row(path, L->format, ax, r, d);
    }
  });

  // Experts with many tokens go to oneDNN (f32/bf16 weights) when the engine says so; the scalar
  // variant never does (it is the reference).
  const bool dense_fmt = L->format == HMOE_FORMAT_F32 || L->format == HMOE_FORMAT_BF16;
  const int min_dnnl = engine->onednn_min_tokens;
  std::vector<int64_t> cnt_ours(cnt), dnnl_experts;
  if (dense_fmt && min_dnnl > 0 && path != Path::kScalar)
    for (int64_t e = 0; e < E; ++e)
      if (cnt[size_t(e)] >= min_dnnl) dnnl_experts.push_back(e), cnt_ours[size_t(e)] = 0;
  const int dnnl_dtype = L->format == HMOE_FORMAT_F32 ? HMOE_DTYPE_F32 : HMOE_DTYPE_BF16;

  // 3. gate/up -> H
  Acts ah;
  alloc_acts(path, L->format, ah, R, ff);
  const hmoe::cpu::ActView axv = ax.view();
  auto up_phase = [&](const std::vector<int64_t>& counts) {
    const std::vector<Task> tasks = make_tasks(counts, off, ff, pool.size());
    pool.parallel_for(int64_t(tasks.size()), [&](int64_t i) {
      const Task& tk = tasks[size_t(i)];
      const int64_t nr = tk.r1 - tk.r0, nt = tk.t1 - tk.t0;
      thread_local std::vector<float> g, u;
      g.resize(size_t(nr * nt));
      u.resize(size_t(nr * nt));
      hmoe::cpu::ActView xv = axv;
      xv.f32 += tk.t0 * ax.ld;
      if (xv.f32p) xv.f32p += tk.t0 * ax.ld;
      if (xv.bf16) xv.bf16 += tk.t0 * ax.ld;
      if (xv.qu) xv.qu += tk.t0 * ax.ld, xv.qscale += tk.t0;
      matmul(path, L->mat(tk.e, HMOE_PROJ_GATE), tk.r0, tk.r1, xv, int(nt), g.data(), nr);
      matmul(path, L->mat(tk.e, HMOE_PROJ_UP), tk.r0, tk.r1, xv, int(nt), u.data(), nr);
      for (int64_t t = 0; t < nt; ++t) {
        float* h = ah.f32.data() + (tk.t0 + t) * ah.ld + tk.r0;
        for (int64_t j = 0; j < nr; ++j) {
          const float gv = g[size_t(t * nr + j)];
          h[j] = gv / (1.0f + std::exp(-gv)) * u[size_t(t * nr + j)];
        }
      }
    });
  };
  up_phase(cnt_ours);
  // One projection of expert e through oneDNN, from this thread while the pool is idle, on an
  // OpenMP team of the pool's size: f32 weights on the packed f32 rows; bf16 weights through
  // onednn_matmul_bf16_any (oneDNN's bf16 matmul on the rows' bf16 form where the path derived
  // one, else rounded there; or the weights widened to f32 where oneDNN has no bf16).
  auto dnnl_mm = [&](const Acts& a, int64_t e, const hmoe::cpu::MatView& W, int64_t K, int64_t N, float* dst) {
    const int64_t m = cnt[size_t(e)], r0 = off[size_t(e)];
    const float* src = a.f32.data() + r0 * a.ld;
    if (dnnl_dtype == HMOE_DTYPE_F32) {
      if (!hmoe::onednn_matmul(HMOE_DTYPE_F32, m, K, N, src, a.ld, W.w, dst, N))
        hmoe::fail(HMOE_ERR_INTERNAL, "oneDNN has no f32 matmul on this CPU");
    } else {
      hmoe::onednn_matmul_bf16_any(m, K, N, src, a.ld, a.bf16.empty() ? nullptr : a.bf16.data() + r0 * a.ld, W.w,
                                   dst, N);
    }
  };
  std::vector<int64_t> dnnl_done;
  if (!dnnl_experts.empty()) hmoe::set_omp_threads(pool.size());
  for (int64_t e : dnnl_experts) {
    const int64_t m = cnt[size_t(e)], r0 = off[size_t(e)];
    std::vector<float> g(size_t(m * ff)), u(size_t(m * ff));
    dnnl_mm(ax, e, L->mat(e, HMOE_PROJ_GATE), d, ff, g.data());
    dnnl_mm(ax, e, L->mat(e, HMOE_PROJ_UP), d, ff, u.data());
    for (int64_t t = 0; t < m; ++t) {
      float* h = ah.f32.data() + (r0 + t) * ah.ld;
      for (int64_t j = 0; j < ff; ++j) {
        const float gv = g[size_t(t * ff + j)];
        h[j] = gv / (1.0f + std::exp(-gv)) * u[size_t(t * ff + j)];
      }
    }
    dnnl_done.push_back(e);
  }

  // 4. H under the format's rule, in the down path's form
  if (L->format != HMOE_FORMAT_F32)
    pool.parallel_for((R + blk - 1) / blk, [&](int64_t b) {
      for (int64_t r = b * blk; r < std::min(R, (b + 1) * blk); ++r) derive_row(path, L->format, ah, r, ff);
    });

  // 5. down -> Y [R, d]
  std::vector<float> Y(size_t(R * d));
  const std::vector<Task> down_tasks = make_tasks(cnt_ours, off, d, pool.size());
  const hmoe::cpu::ActView ahv = ah.view();
  pool.parallel_for(int64_t(down_tasks.size()), [&](int64_t i) {
    const Task& tk = down_tasks[size_t(i)];
    hmoe::cpu::ActView hv = ahv;
    hv.f32 += tk.t0 * ah.ld;
    if (hv.f32p) hv.f32p += tk.t0 * ah.ld;
    if (hv.bf16) hv.bf16 += tk.t0 * ah.ld;
    if (hv.qu) hv.qu += tk.t0 * ah.ld, hv.qscale += tk.t0;
    matmul(path, L->mat(tk.e, HMOE_PROJ_DOWN), tk.r0, tk.r1, hv, int(tk.t1 - tk.t0),
           Y.data() + tk.t0 * d + tk.r0, d);
  });
  for (int64_t e : dnnl_done) dnnl_mm(ah, e, L->mat(e, HMOE_PROJ_DOWN), ff, d, Y.data() + off[size_t(e)] * d);

  // 6. combine, in slot order per token (deterministic)
  pool.parallel_for((n + blk - 1) / blk, [&](int64_t b) {
    for (int64_t t = b * blk; t < std::min(n, (b + 1) * blk); ++t)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t r = pos[size_t(t * k + j)];
        if (r < 0) continue;
        const float w = wts[t * k + j];
        const float* y = Y.data() + r * d;
        float* o = out + t * d;
        for (int64_t i = 0; i < d; ++i) o[i] += w * y[i];
      }
  });
}

hmoe_expert_layer* checked_layer(const hmoe_expert_layer_t* layer, int64_t e) {
  if (layer == nullptr) hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "layer must not be NULL");
  if (e < 0 || e >= layer->n_experts)
    hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "expert %lld out of range 0..%lld", (long long)e,
               (long long)layer->n_experts - 1);
  return const_cast<hmoe_expert_layer*>(layer);
}

}  // namespace

extern "C" {

int hmoe_expert_format_row_bytes(int32_t format, int64_t in, int32_t group_size, int64_t* rb, int64_t* spr) {
  return hmoe::guarded("hmoe_expert_format_row_bytes", [&] {
    HMOE_REQUIRE_PTR(rb);
    HMOE_REQUIRE_PTR(spr);
    HMOE_REQUIRE_NONNEG(in);
    row_bytes(format, in, group_size, rb, spr);
  });
}

int hmoe_expert_layer_create(int32_t format, int64_t n_experts, int64_t d_model, int64_t d_ff,
                             int32_t group_size, hmoe_expert_layer_t** out) {
  return hmoe::guarded("hmoe_expert_layer_create", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    if (n_experts < 1 || n_experts > kMaxExperts)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "n_experts must be in 1..%lld, got %lld", (long long)kMaxExperts,
                 (long long)n_experts);
    if (d_model < 1 || d_model > kMaxDim)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "d_model must be in 1..%lld, got %lld", (long long)kMaxDim,
                 (long long)d_model);
    if (d_ff < 1 || d_ff > kMaxDim)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "d_ff must be in 1..%lld, got %lld", (long long)kMaxDim,
                 (long long)d_ff);
    auto L = std::make_unique<hmoe_expert_layer>();
    L->format = format;
    L->n_experts = n_experts;
    L->d = d_model;
    L->ff = d_ff;
    L->group = format == HMOE_FORMAT_INT4 ? group_size : 0;
    row_bytes(format, d_model, group_size, &L->rb_d, &L->spr_d);
    row_bytes(format, d_ff, group_size, &L->rb_ff, &L->spr_ff);
    L->experts.resize(size_t(n_experts));
    *out = L.release();
  });
}

void hmoe_expert_layer_free(hmoe_expert_layer_t* layer) { delete layer; }

int hmoe_expert_layer_set_expert(hmoe_expert_layer_t* layer, int64_t e, const void* gate, const void* up,
                                 const void* down, const float* gate_scales, const float* up_scales,
                                 const float* down_scales) {
  return hmoe::guarded("hmoe_expert_layer_set_expert", [&] {
    hmoe_expert_layer* L = checked_layer(layer, e);
    HMOE_REQUIRE_PTR(gate);
    HMOE_REQUIRE_PTR(up);
    HMOE_REQUIRE_PTR(down);
    if (L->format == HMOE_FORMAT_INT8 || L->format == HMOE_FORMAT_INT4) {
      HMOE_REQUIRE_PTR(gate_scales);
      HMOE_REQUIRE_PTR(up_scales);
      HMOE_REQUIRE_PTR(down_scales);
    }
    ExpertSlot& s = L->experts[size_t(e)];
    s.owned.reset();
    s.w[0] = gate, s.w[1] = up, s.w[2] = down;
    s.s[0] = gate_scales, s.s[1] = up_scales, s.s[2] = down_scales;
    s.set = true;
  });
}

int hmoe_expert_layer_quantize_expert(hmoe_expert_layer_t* layer, hmoe_engine_t* engine, int64_t e,
                                      int32_t src_dtype, const void* gate, const void* up, const void* down) {
  return hmoe::guarded("hmoe_expert_layer_quantize_expert", [&] {
    hmoe_expert_layer* L = checked_layer(layer, e);
    HMOE_REQUIRE_PTR(gate);
    HMOE_REQUIRE_PTR(up);
    HMOE_REQUIRE_PTR(down);
    if (src_dtype != HMOE_DTYPE_F32 && src_dtype != HMOE_DTYPE_BF16)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "src_dtype must be HMOE_DTYPE_F32 or HMOE_DTYPE_BF16, got %d", src_dtype);
    const int64_t d = L->d, ff = L->ff;
    const int64_t wbytes[3] = {ff * L->rb_d, ff * L->rb_d, d * L->rb_ff};
    const int64_t sbytes[3] = {ff * L->spr_d * 4, ff * L->spr_d * 4, d * L->spr_ff * 4};
    int64_t total = 0;
    for (int p = 0; p < 3; ++p) total += round_up(wbytes[p], 64) + round_up(sbytes[p], 64);
    std::unique_ptr<uint8_t[]> mem(new uint8_t[size_t(total)]);
    uint8_t* w[3];
    float* s[3];
    int64_t at = 0;
    for (int p = 0; p < 3; ++p) {
      w[p] = mem.get() + at;
      at += round_up(wbytes[p], 64);
      s[p] = sbytes[p] ? reinterpret_cast<float*>(mem.get() + at) : nullptr;
      at += round_up(sbytes[p], 64);
    }
    const void* src[3] = {gate, up, down};
    for (int p = 0; p < 3; ++p) {
      const int64_t rows = p == 2 ? d : ff, in = p == 2 ? ff : d;
      const int64_t rb = p == 2 ? L->rb_ff : L->rb_d, spr = p == 2 ? L->spr_ff : L->spr_d;
      auto work = [&](int64_t chunk) {
        const int64_t r0 = chunk * 64, r1 = std::min(rows, r0 + 64);
        std::vector<float> f32;
        const float* base = static_cast<const float*>(src[p]) + (src_dtype == HMOE_DTYPE_F32 ? r0 * in : 0);
        if (src_dtype == HMOE_DTYPE_BF16) {
          f32.resize(size_t((r1 - r0) * in));
          const uint16_t* h = static_cast<const uint16_t*>(src[p]) + r0 * in;
          for (size_t i = 0; i < f32.size(); ++i) f32[i] = hmoe::bf16_to_f32(h[i]);
          base = f32.data();
        }
        quantize_rows(base, in, r0, r1, L->format, L->group, rb, spr, w[p], s[p]);
      };
      const int64_t chunks = (rows + 63) / 64;
      if (engine != nullptr) {
        std::lock_guard<std::mutex> lock(engine->run_mu);
        engine->pool->parallel_for(chunks, work);
      } else {
        for (int64_t c = 0; c < chunks; ++c) work(c);
      }
    }
    ExpertSlot& slot = L->experts[size_t(e)];
    slot.owned = std::move(mem);
    for (int p = 0; p < 3; ++p) slot.w[p] = w[p], slot.s[p] = s[p];
    slot.set = true;
  });
}

int hmoe_expert_layer_dequantize(const hmoe_expert_layer_t* layer, int64_t e, int32_t proj, float* out) {
  return hmoe::guarded("hmoe_expert_layer_dequantize", [&] {
    hmoe_expert_layer* L = checked_layer(layer, e);
    HMOE_REQUIRE_PTR(out);
    if (proj < HMOE_PROJ_GATE || proj > HMOE_PROJ_DOWN)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "proj must be HMOE_PROJ_GATE/UP/DOWN (0..2), got %d", proj);
    if (!L->experts[size_t(e)].set) hmoe::fail(HMOE_ERR_STATE, "expert %lld has no weights set", (long long)e);
    const hmoe::cpu::MatView m = L->mat(e, proj);
    for (int64_t r = 0; r < m.rows; ++r) hmoe::cpu::widen_row(m, r, out + r * m.K);
  });
}

int hmoe_expert_layer_info(const hmoe_expert_layer_t* layer, int32_t* format, int64_t* n_experts,
                           int64_t* d_model, int64_t* d_ff, int32_t* group_size) {
  return hmoe::guarded("hmoe_expert_layer_info", [&] {
    HMOE_REQUIRE_PTR(layer);
    if (format) *format = layer->format;
    if (n_experts) *n_experts = layer->n_experts;
    if (d_model) *d_model = layer->d;
    if (d_ff) *d_ff = layer->ff;
    if (group_size) *group_size = layer->group;
  });
}

int hmoe_engine_set_onednn_min_tokens(hmoe_engine_t* engine, int32_t min_tokens) {
  return hmoe::guarded("hmoe_engine_set_onednn_min_tokens", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_NONNEG(min_tokens);
    std::lock_guard<std::mutex> lock(engine->run_mu);
    engine->onednn_min_tokens = min_tokens;
  });
}

int hmoe_cpu_moe_run(hmoe_engine_t* engine, const hmoe_expert_layer_t* layer, const void* x, int32_t x_dtype,
                     int64_t n_tokens, int32_t top_k, const int32_t* ids, const float* weights,
                     const uint8_t* expert_mask, float* out) {
  return hmoe::guarded("hmoe_cpu_moe_run", [&] {
    HMOE_REQUIRE_PTR(engine);
    HMOE_REQUIRE_PTR(layer);
    HMOE_REQUIRE_NONNEG(n_tokens);
    if (top_k < 1 || top_k > 1024)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "top_k must be in 1..1024, got %d", top_k);
    if (x_dtype != HMOE_DTYPE_F32 && x_dtype != HMOE_DTYPE_BF16)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "x_dtype must be HMOE_DTYPE_F32 or HMOE_DTYPE_BF16, got %d", x_dtype);
    if (n_tokens == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(ids);
    HMOE_REQUIRE_PTR(weights);
    HMOE_REQUIRE_PTR(out);
    std::lock_guard<std::mutex> lock(engine->run_mu);
    run_moe(engine, layer, x, x_dtype, n_tokens, top_k, ids, weights, expert_mask, out);
  });
}

}  // extern "C"
