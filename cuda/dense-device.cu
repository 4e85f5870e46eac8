// The CUDA dense device (dense_device.h): linear weights copied into GPU memory once, linears
// computed on a stream of the device's own, activations staged through pinned host buffers.
//   few tokens (decode, n <= kGemvTokens): one warp per output row streams the row once for all
//     tokens, 16-byte weight loads (8 values), activations from L1/L2;
//   more tokens (prefill): a shared-memory tiled GEMM, 64 tokens x 64 outputs per block, f32 FMA.
// Both accumulate in f32 on exact (widened) weights, as the CPU kernels do; neither rounds
// activations to bf16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "cuda-buffers.cuh"
#include "device/dense_device.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/device.h"

namespace hmoe::cuda {
namespace {

constexpr int kGemvTokens = 8;  // calls with at most this many tokens take the streaming kernel
constexpr int kWarps = 8;       // warps per block of the streaming kernel

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One weight element as f32.
template <typename T> __device__ __forceinline__ float widen(T v);
template <> __device__ __forceinline__ float widen<float>(float v) { return v; }
template <> __device__ __forceinline__ float widen<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float widen<__half>(__half v) { return __half2float(v); }

// Eight consecutive weight elements from a 16-byte (f32: 32-byte) aligned address, as f32.
template <typename T> __device__ __forceinline__ void load8(const T* p, float (&f)[8]);
template <> __device__ __forceinline__ void load8<float>(const float* p, float (&f)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}
template <> __device__ __forceinline__ void load8<__nv_bfloat16>(const __nv_bfloat16* p, float (&f)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
template <> __device__ __forceinline__ void load8<__half>(const __half* p, float (&f)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __half22float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

// y[t, r] = x[t, :] . w[r, :] + bias[r] for t < n <= kGemvTokens; one warp per row r.
// kVec: in % 8 == 0, so that every row and every x row starts 16-byte aligned (bases are
// cudaMalloc'd) and the row splits into whole groups of 8.
template <typename T, bool kVec>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(const T* __restrict__ w, const float* __restrict__ bias,
                                                           const float* __restrict__ x, int n, int64_t in,
                                                           int64_t out, float* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= out) return;
  const T* row = w + r * in;
  float acc[kGemvTokens];
#pragma unroll
  for (int t = 0; t < kGemvTokens; ++t) acc[t] = 0.0f;
  if (kVec) {
    for (int64_t c = int64_t(lane) * 8; c < in; c += 32 * 8) {
      float f[8];
      load8<T>(row + c, f);
#pragma unroll
      for (int t = 0; t < kGemvTokens; ++t) {
        if (t < n) {
          const float4* xp = reinterpret_cast<const float4*>(x + int64_t(t) * in + c);
          const float4 a = xp[0], b = xp[1];
          acc[t] += f[0] * a.x + f[1] * a.y + f[2] * a.z + f[3] * a.w + f[4] * b.x + f[5] * b.y + f[6] * b.z +
                    f[7] * b.w;
        }
      }
    }
  } else {
    for (int64_t c = lane; c < in; c += 32) {
      const float v = widen<T>(row[c]);
#pragma unroll
      for (int t = 0; t < kGemvTokens; ++t)
        if (t < n) acc[t] += v * x[int64_t(t) * in + c];
    }
  }
  const float b = bias ? bias[r] : 0.0f;
#pragma unroll
  for (int t = 0; t < kGemvTokens; ++t) {
    if (t < n) {
      const float s = warp_sum(acc[t]);
      if (lane == 0) y[int64_t(t) * out + r] = s + b;
    }
  }
}

// Tiled GEMM for many tokens: y[n, out] = x[n, in] . w[out, in]^T + bias. A block of 16 x 16
// threads owns 64 tokens x 64 outputs, each thread 4 x 4; K advances 16 at a time through shared
// memory (tiles stored k-major so that the inner loop reads broadcast-friendly rows).
constexpr int kTm = 64, kTn = 64, kTk = 16;

template <typename T>
__global__ void __launch_bounds__(256) gemm_kernel(const T* __restrict__ w, const float* __restrict__ bias,
                                                   const float* __restrict__ x, int n, int64_t in, int64_t out,
                                                   float* __restrict__ y) {
  __shared__ float xs[kTk][kTm + 4];
  __shared__ float ws[kTk][kTn + 4];
  const int tid = threadIdx.x;
  const int tx = tid & 15, ty = tid >> 4;
  const int64_t m0 = int64_t(blockIdx.y) * kTm;  // first token
  const int64_t n0 = int64_t(blockIdx.x) * kTn;  // first output
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < in; k0 += kTk) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int idx = tid + i * 256;  // 64 rows x 16 k
      const int row = idx >> 4, k = idx & 15;
      const int64_t kk = k0 + k;
      const int64_t tm = m0 + row, on = n0 + row;
      xs[k][row] = (tm < n && kk < in) ? x[tm * in + kk] : 0.0f;
      ws[k][row] = (on < out && kk < in) ? widen<T>(w[on * in + kk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTk; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[k][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[k][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t tm = m0 + ty * 4 + i;
    if (tm >= n) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t on = n0 + tx * 4 + j;
      if (on < out) y[tm * out + on] = acc[i][j] + (bias ? bias[on] : 0.0f);
    }
  }
}

// g[i] = silu(g[i]) * u[i].
__global__ void silu_mul_kernel(float* __restrict__ g, const float* __restrict__ u, int64_t count) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const float a = g[i];
    g[i] = a / (1.0f + expf(-a)) * u[i];
  }
}

template <typename T>
void launch_typed(const void* w, const float* bias, const float* x, int n, int64_t in, int64_t out, float* y,
                  cudaStream_t s) {
  const T* wt = static_cast<const T*>(w);
  if (n <= kGemvTokens) {
    const dim3 grid(unsigned((out + kWarps - 1) / kWarps));
    if (in % 8 == 0)
      gemv_kernel<T, true><<<grid, kWarps * 32, 0, s>>>(wt, bias, x, n, in, out, y);
    else
      gemv_kernel<T, false><<<grid, kWarps * 32, 0, s>>>(wt, bias, x, n, in, out, y);
  } else {
    // gridDim.y is at most 65535: token chunks of 65535 tiles.
    constexpr int64_t kChunk = int64_t(65535) * kTm;
    for (int64_t t0 = 0; t0 < n; t0 += kChunk) {
      const int nt = int(std::min<int64_t>(kChunk, n - t0));
      const dim3 grid(unsigned((out + kTn - 1) / kTn), unsigned((nt + kTm - 1) / kTm));
      gemm_kernel<T><<<grid, 256, 0, s>>>(wt, bias, x + t0 * in, nt, in, out, y + t0 * out);
    }
  }
  HMOE_CUDA_CHECK(cudaGetLastError());
}

class CudaDenseDevice final : public hmoe_dense_device {
 public:
  explicit CudaDenseDevice(int index) : index_(index) {
    DeviceScope scope(index_);
    HMOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }

  ~CudaDenseDevice() override {
    // No DeviceScope here: a destructor must not throw. Errors are ignored (nothing to report to).
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(index_);
    if (stream_) cudaStreamSynchronize(stream_);
    for (auto& s : stored_) {
      cudaFree(s.w);
      if (s.bias) cudaFree(s.bias);
    }
    if (stream_) cudaStreamDestroy(stream_);
    cudaSetDevice(prev);
    (void)cudaGetLastError();
  }

  int32_t kind() const override { return HMOE_DEVICE_CUDA; }

  void upload(const Weight& wt, const void* data, const float* bias) override {
    DeviceScope scope(index_);
    Stored s;
    const size_t wb = size_t(wt.bytes - (wt.has_bias ? wt.out * 4 : 0));
    try {
      HMOE_CUDA_CHECK(cudaMalloc(&s.w, wb));
      if (bias) HMOE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s.bias), size_t(wt.out) * 4));
      // On the device's own stream, then synchronized: a plain cudaMemcpy from pageable memory goes
      // on the legacy stream, which this non-blocking stream does not wait for, and may return
      // before its DMA has landed.
      HMOE_CUDA_CHECK(cudaMemcpyAsync(s.w, data, wb, cudaMemcpyHostToDevice, stream_));
      if (bias) HMOE_CUDA_CHECK(cudaMemcpyAsync(s.bias, bias, size_t(wt.out) * 4, cudaMemcpyHostToDevice, stream_));
      HMOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      stored_.push_back(s);
    } catch (...) {
      cudaStreamSynchronize(stream_);  // no copy may still target what is freed
      if (s.w) cudaFree(s.w);
      if (s.bias) cudaFree(s.bias);
      throw;
    }
  }

  void linears(int32_t count, const int32_t* ids, const float* x, int64_t n, float* y) override {
    DeviceScope scope(index_);
    Drain drain{stream_};
    const int64_t in = weights[size_t(ids[0])].in;
    int64_t total = 0;
    for (int32_t i = 0; i < count; ++i) total += weights[size_t(ids[i])].out;
    stage_in(x, n * in);
    dy_.reserve(size_t(n * total) * 4);
    int64_t at = 0;
    for (int32_t i = 0; i < count; ++i) {
      launch(ids[i], dx_.as<float>(), n, dy_.as<float>() + at);
      at += n * weights[size_t(ids[i])].out;
    }
    stage_out(dy_.as<float>(), y, n * total);
  }

  void mlp(int32_t gate, int32_t up, int32_t down, const float* x, int64_t n, float* y) override {
    DeviceScope scope(index_);
    Drain drain{stream_};
    const int64_t d = weights[size_t(gate)].in, ff = weights[size_t(gate)].out;
    stage_in(x, n * d);
    dg_.reserve(size_t(n * ff) * 4);
    du_.reserve(size_t(n * ff) * 4);
    dy_.reserve(size_t(n * d) * 4);
    launch(gate, dx_.as<float>(), n, dg_.as<float>());
    launch(up, dx_.as<float>(), n, du_.as<float>());
    const int64_t count = n * ff;
    const unsigned blocks = unsigned(std::min<int64_t>((count + 255) / 256, 4096));
    silu_mul_kernel<<<blocks, 256, 0, stream_>>>(dg_.as<float>(), du_.as<float>(), count);
    HMOE_CUDA_CHECK(cudaGetLastError());
    launch(down, dg_.as<float>(), n, dy_.as<float>());
    stage_out(dy_.as<float>(), y, n * d);
  }

 private:
  struct Stored {
    void* w = nullptr;
    float* bias = nullptr;
  };

  // Every call ends with the stream drained, so that the next may refill the pinned buffers and
  // grow the device ones: stage_out drains it on success; this drains it when the call throws
  // after queueing work.
  struct Drain {
    cudaStream_t s;
    int pending = std::uncaught_exceptions();
    ~Drain() {
      if (std::uncaught_exceptions() > pending && cudaStreamSynchronize(s) != cudaSuccess) (void)cudaGetLastError();
    }
  };

  void launch(int32_t id, const float* x, int64_t n, float* y) {
    const Weight& wt = weights[size_t(id)];
    const Stored& s = stored_[size_t(id)];
    switch (wt.dtype) {
      case HMOE_DTYPE_F32: launch_typed<float>(s.w, s.bias, x, int(n), wt.in, wt.out, y, stream_); break;
      case HMOE_DTYPE_BF16: launch_typed<__nv_bfloat16>(s.w, s.bias, x, int(n), wt.in, wt.out, y, stream_); break;
      default: launch_typed<__half>(s.w, s.bias, x, int(n), wt.in, wt.out, y, stream_); break;
    }
  }

  // x [count] host -> dx_ through the pinned buffer. The previous call has finished (every call
  // ends synchronized), so the buffers are free to grow.
  void stage_in(const float* x, int64_t count) {
    const size_t b = size_t(count) * 4;
    pin_in_.reserve(b);
    dx_.reserve(b);
    std::memcpy(pin_in_.as<float>(), x, b);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(dx_.as<float>(), pin_in_.as<float>(), b, cudaMemcpyHostToDevice, stream_));
  }

  void stage_out(const float* dsrc, float* y, int64_t count) {
    const size_t b = size_t(count) * 4;
    pin_out_.reserve(b);
    HMOE_CUDA_CHECK(cudaMemcpyAsync(pin_out_.as<float>(), dsrc, b, cudaMemcpyDeviceToHost, stream_));
    HMOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::memcpy(y, pin_out_.as<float>(), b);
  }

  int index_;
  cudaStream_t stream_ = nullptr;
  std::vector<Stored> stored_;  // per weight id
  DeviceBuffer dx_, dy_, dg_, du_;
  PinnedBuffer pin_in_, pin_out_;
};

}  // namespace
}  // namespace hmoe::cuda

extern "C" int hmoe_dense_device_create_cuda(int32_t index, hmoe_dense_device_t** out) {
  return hmoe::guarded("hmoe_dense_device_create_cuda", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = nullptr;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      count = 0;
    }
    if (index < 0 || index >= count)
      hmoe::fail(HMOE_ERR_NO_DEVICE, "CUDA device %d does not exist (%d found)", index, count);
    *out = new hmoe::cuda::CudaDenseDevice(index);
  });
}
