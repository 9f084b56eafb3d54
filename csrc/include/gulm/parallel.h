// The threading contract between CPU kernels and whoever owns a thread pool.
//
// Kernels must not include torch, yet their pointwise passes should use the same threads as
// the BLAS (two cores here: one idle core while the other runs a pointwise pass is half the
// machine). The binding injects a ParallelFor backed by at::parallel_for (the intra-op pool
// that MKL/oneDNN also use, so its threads are warm); tests and other callers may leave it
// empty, and the kernel then runs serially. No OpenMP in the kernel library itself.
#pragma once
#include <cstdint>
#include <type_traits>

namespace gulm {

struct ParallelFor {
  using Body = void (*)(void* body_ctx, int64_t begin, int64_t end);
  // Calls body(body_ctx, begin, end) on disjoint ranges covering [0, n), possibly
  // concurrently, and returns when all are done. `grain` is a hint (the smallest range worth a
  // task); kernels must be correct for any partition.
  void (*fn)(void* ctx, int64_t n, int64_t grain, Body body, void* body_ctx) = nullptr;
  void* ctx = nullptr;

  template <class F>
  void operator()(int64_t n, int64_t grain, F&& f) const {
    using Fn = std::remove_reference_t<F>;
    if (n <= 0) return;
    if (!fn) {
      f(int64_t(0), n);
      return;
    }
    fn(ctx, n, grain,
       [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); },
       const_cast<void*>(static_cast<const void*>(&f)));
  }
};

}  // namespace gulm
