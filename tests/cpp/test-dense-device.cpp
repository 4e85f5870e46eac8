// Dense devices (dense_device.h) against a float64 reference: every weight dtype, awkward sizes
// (the vector and scalar streaming paths, partial GEMM tiles), biases, grouped linears whose
// outputs are concatenated, the SwiGLU MLP, and refused arguments. Argument "emulated" (label
// cpu): the host-emulated device, which must also equal the CPU kernels exactly. Argument
// "cuda": the CUDA device, exits 77 (skipped) without one; also a refused upload that does not
// fit, after which the device still works.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/dense_device.h"
#include "hybrimoe/device.h"
#include "dense-test-weights.hpp"

namespace {

// Three weights sharing `in` as one group, n tokens: against the reference, and (emulated) equal
// to the CPU kernels.
void check_group(hmoe_dense_device_t* dev, hmoe_engine_t* cpu, bool exact, int32_t dtype, int64_t in, int64_t n,
                 std::mt19937& rng) {
  const int64_t outs[3] = {5, 130, 1};
  Weight w[3] = {make_weight(dtype, outs[0], in, true, rng), make_weight(dtype, outs[1], in, false, rng),
                 make_weight(dtype, outs[2], in, true, rng)};
  int32_t ids[3];
  for (int i = 0; i < 3; ++i) ids[i] = upload(dev, w[i]);
  const auto x = randn(size_t(n * in), rng);
  std::vector<float> y(size_t(n * (outs[0] + outs[1] + outs[2])), NAN);
  CHECK_OK(hmoe_dense_device_linears(dev, 3, ids, x.data(), n, y.data()));
  int64_t at = 0;
  for (int i = 0; i < 3; ++i) {
    const auto ref = ref_linear(w[i], x, n);
    const double e = max_err(y.data() + at, ref.data(), ref.size());
    if (!(e < 2e-5)) std::fprintf(stderr, "dtype %d in %lld n %lld weight %d: error %g\n", dtype, (long long)in,
                                  (long long)n, i, e);
    CHECK(e < 2e-5);
    if (exact) {
      std::vector<float> cpu_y(ref.size());
      CHECK_OK(hmoe_dense_linear(cpu, x.data(), n, in, w[i].bytes.data(), dtype, w[i].out,
                                 w[i].bias.empty() ? nullptr : w[i].bias.data(), cpu_y.data()));
      CHECK(std::memcmp(cpu_y.data(), y.data() + at, cpu_y.size() * 4) == 0);
    }
    at += n * outs[i];
  }
}

void check_mlp(hmoe_dense_device_t* dev, int32_t dtype, int64_t d, int64_t ff, int64_t n, std::mt19937& rng) {
  Weight g = make_weight(dtype, ff, d, false, rng), u = make_weight(dtype, ff, d, false, rng),
         dn = make_weight(dtype, d, ff, false, rng);
  const int32_t gi = upload(dev, g), ui = upload(dev, u), di = upload(dev, dn);
  const auto x = randn(size_t(n * d), rng);
  std::vector<float> y(size_t(n * d), NAN);
  CHECK_OK(hmoe_dense_device_mlp(dev, gi, ui, di, x.data(), n, y.data()));
  const auto gr = ref_linear(g, x, n), ur = ref_linear(u, x, n);
  std::vector<double> hd(gr.size());
  for (size_t i = 0; i < gr.size(); ++i) hd[i] = gr[i] / (1.0 + std::exp(-gr[i])) * ur[i];
  // The reference's down projection over the double intermediate (rounded as the rule has it).
  const std::vector<double> ref = ref_linear(dn, hd, n);
  // f32/f16: summation order only. bf16 weights: the rule rounds H before the down projection, and
  // the device's f32 H and the reference's double H can round to neighbouring bf16 values: one
  // such element moves an output by a down weight (about 3 / sqrt(ff)) times one bf16 ulp of H
  // (2^-8 |H|, |H| a few units here), up to ~3e-3 / sqrt(ff) * |H|: 2e-3 covers a flip or two.
  const double tol = dtype == HMOE_DTYPE_BF16 ? 2e-3 : 5e-5;
  const double e = max_err(y.data(), ref.data(), ref.size());
  if (!(e < tol)) std::fprintf(stderr, "mlp dtype %d d %lld ff %lld n %lld: error %g\n", dtype, (long long)d,
                               (long long)ff, (long long)n, e);
  CHECK(e < tol);
}

void check_refusals(hmoe_dense_device_t* dev, std::mt19937& rng) {
  Weight a = make_weight(HMOE_DTYPE_BF16, 4, 16, false, rng), b = make_weight(HMOE_DTYPE_BF16, 4, 24, false, rng);
  const int32_t ia = upload(dev, a), ib = upload(dev, b);
  int32_t count = 0;
  CHECK_OK(hmoe_dense_device_describe(dev, nullptr, &count, nullptr));
  const auto x = randn(64, rng);
  std::vector<float> y(64);
  int32_t id = 7;
  CHECK(hmoe_dense_device_upload(dev, a.bytes.data(), 9, 4, 16, nullptr, &id) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(id == -1);
  CHECK(hmoe_dense_device_upload(dev, a.bytes.data(), HMOE_DTYPE_BF16, 0, 16, nullptr, &id) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_upload(dev, nullptr, HMOE_DTYPE_BF16, 4, 16, nullptr, &id) == HMOE_ERR_INVALID_ARGUMENT);
  // Larger than any memory, refused before anything is allocated or read (both devices).
  CHECK(hmoe_dense_device_upload(dev, a.bytes.data(), HMOE_DTYPE_F32, INT32_MAX, INT32_MAX, nullptr, &id) ==
        HMOE_ERR_OUT_OF_MEMORY);
  const int32_t mixed[2] = {ia, ib};
  CHECK(hmoe_dense_device_linears(dev, 2, mixed, x.data(), 1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("share their input") != std::string::npos);
  const int32_t missing[1] = {count};
  CHECK(hmoe_dense_device_linears(dev, 1, missing, x.data(), 1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_linears(dev, 0, mixed, x.data(), 1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  int32_t many[HMOE_DENSE_MAX_GROUP + 1] = {};
  CHECK(hmoe_dense_device_linears(dev, HMOE_DENSE_MAX_GROUP + 1, many, x.data(), 1, y.data()) ==
        HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_linears(dev, 1, mixed, x.data(), -1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(hmoe_dense_device_linears(dev, 1, mixed, nullptr, 1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK_OK(hmoe_dense_device_linears(dev, 1, mixed, nullptr, 0, nullptr));  // nothing to do
  CHECK(hmoe_dense_device_mlp(dev, ia, ia, ib, x.data(), 1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hmoe_last_error()).find("MLP shapes") != std::string::npos);
  CHECK(hmoe_dense_device_mlp(nullptr, ia, ia, ia, x.data(), 1, y.data()) == HMOE_ERR_INVALID_ARGUMENT);
  int32_t after = 0;
  CHECK_OK(hmoe_dense_device_describe(dev, nullptr, &after, nullptr));
  CHECK(after == count);  // refused uploads kept nothing
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "emulated";
  hmoe_dense_device_t* dev = open_device(which);
  if (!dev) return 1;
  hmoe_engine_t* cpu = nullptr;
  CHECK_OK(hmoe_engine_create(2, &cpu));
  const bool exact = which != "cuda";
  std::mt19937 rng(1234);
  for (int32_t dtype : {HMOE_DTYPE_F32, HMOE_DTYPE_BF16, HMOE_DTYPE_F16})
    for (int64_t in : {1, 7, 8, 40, 263, 264})
      for (int64_t n : {1, 3, 8, 9, 70}) check_group(dev, cpu, exact, dtype, in, n, rng);
  check_mlp(dev, HMOE_DTYPE_BF16, 64, 96, 1, rng);
  check_mlp(dev, HMOE_DTYPE_BF16, 40, 88, 9, rng);
  check_mlp(dev, HMOE_DTYPE_F32, 72, 130, 5, rng);
  check_mlp(dev, HMOE_DTYPE_F16, 48, 40, 66, rng);
  check_refusals(dev, rng);
  int32_t kind = 0, weights = 0;
  int64_t bytes = 0;
  CHECK_OK(hmoe_dense_device_describe(dev, &kind, &weights, &bytes));
  CHECK(kind == (which == "cuda" ? HMOE_DEVICE_CUDA : HMOE_DEVICE_EMULATED));
  CHECK(weights > 0 && bytes > 0);
  if (which == "cuda") {
    // Far more than any GPU holds: refused before the (small) source is read; the device goes on.
    std::vector<uint8_t> small(16);
    int32_t id = 0;
    CHECK(hmoe_dense_device_upload(dev, small.data(), HMOE_DTYPE_F32, 1 << 20, 1 << 20, nullptr, &id) ==
          HMOE_ERR_OUT_OF_MEMORY);  // 4 TiB
    int32_t after = 0;
    int64_t bytes_after = 0;
    CHECK_OK(hmoe_dense_device_describe(dev, nullptr, &after, &bytes_after));
    CHECK(after == weights && bytes_after == bytes);
    check_group(dev, cpu, false, HMOE_DTYPE_BF16, 264, 3, rng);
  }
  hmoe_dense_device_free(dev);
  hmoe_engine_free(cpu);
  return TEST_RESULT();
}
