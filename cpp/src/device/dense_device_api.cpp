// The dense device C ABI: argument checks against the weight table, shared by both
// implementations (see dense_device.hpp).
#include "device/dense_device.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/device.h"
#include "internal/status.hpp"

namespace {

using hmoe::fail;

hmoe_dense_device_t* require_device(hmoe_dense_device_t* d) {
  if (d == nullptr) fail(HMOE_ERR_INVALID_ARGUMENT, "device must not be NULL");
  return d;
}

const hmoe_dense_device::Weight& require_weight(const hmoe_dense_device_t* d, const char* what, int32_t id) {
  if (id < 0 || size_t(id) >= d->weights.size())
    fail(HMOE_ERR_INVALID_ARGUMENT, "%s: weight id %d is not on this device (it holds %zu)", what, id,
         d->weights.size());
  return d->weights[size_t(id)];
}

void require_rows(int64_t n) {
  if (n < 0) fail(HMOE_ERR_INVALID_ARGUMENT, "n must be >= 0, got %lld", (long long)n);
  if (n > INT32_MAX) fail(HMOE_ERR_INVALID_ARGUMENT, "n must fit in int32, got %lld", (long long)n);
}

}  // namespace

extern "C" {

void hmoe_dense_device_free(hmoe_dense_device_t* device) { delete device; }

int hmoe_dense_device_describe(const hmoe_dense_device_t* device, int32_t* kind, int32_t* weights,
                               int64_t* bytes) {
  return hmoe::guarded("hmoe_dense_device_describe", [&] {
    HMOE_REQUIRE_PTR(device);
    if (kind) *kind = device->kind();
    if (weights) *weights = int32_t(device->weights.size());
    if (bytes) *bytes = device->bytes;
  });
}

int hmoe_dense_device_upload(hmoe_dense_device_t* device, const void* w, int32_t w_dtype, int64_t out,
                             int64_t in, const float* bias, int32_t* id) {
  return hmoe::guarded("hmoe_dense_device_upload", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(w);
    HMOE_REQUIRE_PTR(id);
    *id = -1;
    if (out < 1 || in < 1 || out > INT32_MAX || in > INT32_MAX)
      fail(HMOE_ERR_INVALID_ARGUMENT, "weight shape must be [out, in] with 1 <= out, in < 2^31, got [%lld, %lld]",
           (long long)out, (long long)in);
    int64_t es = 0;
    switch (w_dtype) {
      case HMOE_DTYPE_F32: es = 4; break;
      case HMOE_DTYPE_BF16:
      case HMOE_DTYPE_F16: es = 2; break;
      default:
        fail(HMOE_ERR_INVALID_ARGUMENT, "w_dtype must be HMOE_DTYPE_F32, _BF16 or _F16, got %d", w_dtype);
    }
    if (device->weights.size() >= size_t(INT32_MAX))
      fail(HMOE_ERR_STATE, "the device holds %zu weights, the most it can", device->weights.size());
    int64_t wbytes = 0;
    if (__builtin_mul_overflow(out * in, es, &wbytes) || wbytes > INT64_MAX - out * 4)
      fail(HMOE_ERR_OUT_OF_MEMORY, "a [%lld, %lld] weight is larger than any memory", (long long)out, (long long)in);
    hmoe_dense_device::Weight wt{w_dtype, out, in, bias != nullptr, wbytes + (bias ? out * 4 : 0)};
    device->weights.reserve(device->weights.size() + 1);  // the push_back below cannot fail after the upload
    device->upload(wt, w, bias);
    device->weights.push_back(wt);
    device->bytes += wt.bytes;
    *id = int32_t(device->weights.size() - 1);
  });
}

int hmoe_dense_device_linears(hmoe_dense_device_t* device, int32_t count, const int32_t* ids, const float* x,
                              int64_t n, float* y) {
  return hmoe::guarded("hmoe_dense_device_linears", [&] {
    require_device(device);
    HMOE_REQUIRE_PTR(ids);
    if (count < 1 || count > HMOE_DENSE_MAX_GROUP)
      fail(HMOE_ERR_INVALID_ARGUMENT, "count must be in [1, %d], got %d", HMOE_DENSE_MAX_GROUP, count);
    require_rows(n);
    const int64_t in = require_weight(device, "ids[0]", ids[0]).in;
    for (int32_t i = 1; i < count; ++i) {
      const auto& w = require_weight(device, "ids[i]", ids[i]);
      if (w.in != in)
        fail(HMOE_ERR_INVALID_ARGUMENT, "weights of one group must share their input size: ids[0] takes %lld, "
             "ids[%d] takes %lld", (long long)in, i, (long long)w.in);
    }
    if (n == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(y);
    device->linears(count, ids, x, n, y);
  });
}

int hmoe_dense_device_mlp(hmoe_dense_device_t* device, int32_t gate, int32_t up, int32_t down, const float* x,
                          int64_t n, float* y) {
  return hmoe::guarded("hmoe_dense_device_mlp", [&] {
    require_device(device);
    const auto& g = require_weight(device, "gate", gate);
    const auto& u = require_weight(device, "up", up);
    const auto& dn = require_weight(device, "down", down);
    if (u.out != g.out || u.in != g.in || dn.in != g.out || dn.out != g.in)
      fail(HMOE_ERR_INVALID_ARGUMENT, "MLP shapes disagree: gate [%lld, %lld], up [%lld, %lld], down [%lld, %lld]; "
           "need gate and up [ff, d], down [d, ff]", (long long)g.out, (long long)g.in, (long long)u.out,
           (long long)u.in, (long long)dn.out, (long long)dn.in);
    require_rows(n);
    if (n == 0) return;
    HMOE_REQUIRE_PTR(x);
    HMOE_REQUIRE_PTR(y);
    device->mlp(gate, up, down, x, n, y);
  });
}

}  // extern "C"
