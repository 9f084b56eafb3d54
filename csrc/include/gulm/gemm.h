// The GEMM contract between the kernel layer and whoever owns a BLAS.
//
// Kernels own their algorithms (loops over time steps, which GEMMs to issue and in which
// layout) but must not include torch. The binding layer injects a `Gemm` that forwards to
// ATen (MKL or oneDNN on CPU, chosen per shape; cuBLAS on the current CUDA stream); the C++
// unit tests inject a naive triple loop. Either way the kernel code is identical.
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
  // Issued from inside a ParallelFor body: the GEMM must run on the calling thread only (the
  // other threads are busy with their own chunks).
  bool single_thread = false;
  // >= 0: op(B) is the matrix announced under this slot with Gemm::pack_b (same pointer, ldb,
  // trans_b, k and n, unchanged since); the Gemm may use its packed copy. -1: no packing.
  int32_t b_slot = -1;
};

// A no-transpose-flags shorthand used by the kernels: C[m,n] = op(A) @ op(B), beta 0.
inline GemmArgs gemm_args(DType dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                          const void* a, int64_t lda, const void* b, int64_t ldb, void* c,
                          int64_t ldc) {
  return GemmArgs{trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, 1.f, 0.f, dt};
}

using GemmFn = void (*)(void* ctx, const GemmArgs& args);
// Announces op(B) of `args` (b, ldb, trans_b, k, n, dtype; m is the row count of the later
// A's, single_thread how they will run) as a matrix that `uses` later GEMMs will reuse
// unchanged, so the Gemm can pre-pack it once. Returns the slot to put in GemmArgs::b_slot,
// or -1 (then pass -1). Slots live as long as the Gemm's ctx (one kernel call in the
// bindings).
using GemmPackFn = int32_t (*)(void* ctx, const GemmArgs& args, int64_t uses);

struct Gemm {
  GemmFn fn = nullptr;
  void* ctx = nullptr;
  GemmPackFn pack = nullptr;  // optional
  void operator()(const GemmArgs& args) const { fn(ctx, args); }
  int32_t pack_b(const GemmArgs& args, int64_t uses) const {
    return pack ? pack(ctx, args, uses) : -1;
  }
};

}  // namespace gulm
