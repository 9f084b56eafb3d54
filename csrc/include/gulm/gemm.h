// The GEMM contract between the kernel layer and whoever owns a BLAS.
//
// Kernels own their algorithms (loops over time steps, which GEMMs to issue and in which
// layout) but must not include torch. The binding layer injects a `Gemm` that forwards to
// ATen (MKL/oneDNN on CPU, cuBLAS on the current CUDA stream); the C++ unit tests inject a
// naive triple loop. Either way the kernel code is identical.
#pragma once
#include <cstdint>

namespace gulm {

// F64 exists for gradcheck-style tests on small sizes; the fast paths are F32/BF16/F16.
enum class DType : int32_t { F32 = 0, BF16 = 1, F16 = 2, F64 = 3 };

inline int64_t dtype_size(DType t) {
  return t == DType::F64 ? 8 : (t == DType::F32 ? 4 : 2);
}

// Row-major GEMM:  C[m,n] = alpha * op(A)[m,k] @ op(B)[k,n] + beta * C[m,n]
//   op(A) = A (A is [m,k], row stride lda) or A^T (A is [k,m], row stride lda) when trans_a,
//   op(B) likewise with ldb. C is [m,n] with row stride ldc. A, B and C have element type
//   `dtype`; accumulation is at least fp32. C must not alias A or B. beta == 0 means C is
//   write-only (its old contents, even NaN, are ignored).
struct GemmArgs {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 0;
  const void* b = nullptr;
  int64_t ldb = 0;
  void* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1.f;
  float beta = 0.f;
  DType dtype = DType::F32;
};

using GemmFn = void (*)(void* ctx, const GemmArgs& args);

struct Gemm {
  GemmFn fn = nullptr;
  void* ctx = nullptr;
  void operator()(const GemmArgs& args) const { fn(ctx, args); }
};

}  // namespace gulm
