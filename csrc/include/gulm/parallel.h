// The threading contract between CPU kernels and whoever owns threads.
//
// Kernels must not include torch, yet their per-step work should use every thread the user
// gave (two cores here: one idle core while the other runs a pointwise pass is half the
// machine). The binding injects a ParallelFor backed by gulm's task pool (csrc/torch/
// parallel.h); tests and other callers may leave it empty, and the kernel then runs serially.
// No OpenMP in the kernel library itself.
#pragma once
#include <cstdint>
#include <type_traits>

namespace gulm {

struct ParallelFor {
  using Body = void (*)(void* body_ctx, int64_t begin, int64_t end);
  // Calls body(body_ctx, begin, end) on disjoint ranges covering [0, n), possibly
  // concurrently, and returns when all are done. `grain` is a hint (the smallest range worth a
  // task); kernels must be correct for any partition, and must not assume that every thread
  // takes part (a descheduled thread's share is taken by the others).
  void (*fn)(void* ctx, int64_t n, int64_t grain, Body body, void* body_ctx) = nullptr;
  void* ctx = nullptr;
  // How many threads fn may run bodies on at once (1 when fn is empty). A hint for sizing
  // chunks; correctness never depends on it.
  int32_t threads = 1;

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
