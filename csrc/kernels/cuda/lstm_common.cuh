// Device helpers shared by lstm_fwd.cu and lstm_bwd.cu (the math policy of gulm/lstm_cell.h,
// launch checks, grid-stride loops, dtype dispatch). Kernel layer: CUDA runtime only, no torch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "gulm/lstm.h"
#include "gulm/lstm_cell.h"
#include "gulm/macros.h"

namespace gulm {
namespace cuda_detail {

template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// The math and element policy of gulm/lstm_cell.h on the GPU. expf is accurate enough for
// fp32 tolerances (a few ulp; __expf would be ~2 ulp plus flush to zero).
struct CudaMath {
  static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
  static __device__ __forceinline__ double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
  static __device__ __forceinline__ float tanh(float x) { return tanhf(x); }
  static __device__ __forceinline__ double tanh(double x) { return ::tanh(x); }
  static __device__ __forceinline__ float ld(const float* p) { return *p; }
  static __device__ __forceinline__ double ld(const double* p) { return *p; }
  static __device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
  static __device__ __forceinline__ float ld(const __half* p) { return __half2float(*p); }
  static __device__ __forceinline__ void st(float* p, float v) { *p = v; }
  static __device__ __forceinline__ void st(double* p, double v) { *p = v; }
  static __device__ __forceinline__ void st(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
  static __device__ __forceinline__ void st(__half* p, float v) { *p = __float2half_rn(v); }
};

template <class T>
__device__ __forceinline__ acc_t<T> ld(const T* p) {
  return CudaMath::ld(p);
}
template <class T>
__device__ __forceinline__ void st(T* p, acc_t<T> v) {
  CudaMath::st(p, v);
}

// f(k) for every k in [0, n), spread over the whole grid.
template <class F>
__device__ __forceinline__ void grid_stride(int64_t n, F&& f) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    f(k);
  }
}

inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": CUDA error " + cudaGetErrorString(e));
  }
}

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": CUDA error " + cudaGetErrorString(e));
  }
}

inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));
}

// Cell-state conversions (c0 / grad_cT in, cT / dc0 out): `sd` is F32 or the compute dtype.
template <class A>
__global__ void load_state_kernel(const void* src, DType sd, int64_t n, A* dst) {
  grid_stride(n, [&](int64_t k) {
    A v = A(0);
    if (src) {
      switch (sd) {
        case DType::F32: v = A(static_cast<const float*>(src)[k]); break;
        case DType::F64: v = A(static_cast<const double*>(src)[k]); break;
        case DType::BF16: v = A(ld(static_cast<const __nv_bfloat16*>(src) + k)); break;
        case DType::F16: v = A(ld(static_cast<const __half*>(src) + k)); break;
      }
    }
    dst[k] = v;
  });
}

template <class A>
__global__ void store_state_kernel(void* dst, DType sd, int64_t n, const A* src) {
  grid_stride(n, [&](int64_t k) {
    const A v = src[k];
    switch (sd) {
      case DType::F32: static_cast<float*>(dst)[k] = float(v); break;
      case DType::F64: static_cast<double*>(dst)[k] = double(v); break;
      case DType::BF16: st(static_cast<__nv_bfloat16*>(dst) + k, float(v)); break;
      case DType::F16: st(static_cast<__half*>(dst) + k, float(v)); break;
    }
  });
}

template <class A>
void load_state(const void* src, DType sd, int64_t n, A* dst, cudaStream_t s) {
  if (n == 0) return;
  load_state_kernel<A><<<blocks_for(n, 256), 256, 0, s>>>(src, sd, n, dst);
  check_launch("gulm wd_lstm load_state");
}

template <class A>
void store_state(void* dst, DType sd, int64_t n, const A* src, cudaStream_t s) {
  if (n == 0) return;
  store_state_kernel<A><<<blocks_for(n, 256), 256, 0, s>>>(dst, sd, n, src);
  check_launch("gulm wd_lstm store_state");
}

template <class Fn>
void dispatch(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::F32: fn(float{}); return;
    case DType::BF16: fn(__nv_bfloat16{}); return;
    case DType::F16: fn(__half{}); return;
    case DType::F64: fn(double{}); return;
  }
  throw std::invalid_argument("gulm::wd_lstm (CUDA): unsupported dtype");
}

}  // namespace cuda_detail
}  // namespace gulm
