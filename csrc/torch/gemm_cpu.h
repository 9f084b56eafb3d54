// The CPU Gemm (gulm/gemm.h) the bindings inject into the LSTM kernels: three backends, chosen
// per GEMM shape.
//
//   mkl     at::cpu::mm_out on from_blob views: MKL sgemm/dgemm in fp32/fp64 (for bfloat16
//           ATen itself routes to oneDNN/AMX). An announced fp32 B operand (Gemm::pack_b) is
//           packed once per kernel call with cblas_sgemm_pack and every step runs
//           cblas_sgemm_compute on it (plain sgemm repacks B on every call).
//   onednn  oneDNN's inner product through the mkldnn::_linear_pointwise op that torch ships,
//           with the B operand pre-packed once per kernel call into oneDNN's blocked layout
//           (mkldnn::_reorder_linear_weight) when the kernel announces it (Gemm::pack_b: the
//           recurrent weight of every time step). fp32 and bfloat16.
//   avx512  gulm's own fp32 kernel on AVX-512 CPUs (gulm/sgemm.h, in the kernel layer): an
//           announced B is packed once and each step's GEMM runs on its calling thread, as the
//           LSTM's per-chunk recurrent GEMMs do; a one-off GEMM packs B and splits C's rows over
//           the task pool. MKL's sgemm takes its AVX2 path on AMD CPUs.
//
// MKL is fast on Intel and known to take slow code paths on other x86 CPUs (measured 0.44x of
// nn.LSTM on AMD Zen 4, issue 16), while oneDNN is tuned for both; on Intel either may win
// depending on the shape. So under GULM_GEMM=auto (the default) each distinct GEMM shape is
// timed once per process with every backend that can run it, on scratch operands of that shape
// (five alternating runs after a warm-up, the best of each; large GEMMs on their first 512
// rows; one-off GEMMs' m and k rounded up to powers of two, so a new sequence length is not
// timed again); MKL is kept unless another is faster by 10%, else the fastest of those, and a
// one-off GEMM goes to gulm's kernel (the task pool) wherever that is faster than the kept one.
// GULM_GEMM=mkl, onednn or avx512 forces a backend (read at every kernel call, so tests can
// switch); where the forced one cannot run (oneDNN: float64, alpha/beta other than 1/0, no
// mkldnn ops in this torch; avx512: anything but fp32 with alpha 1 and beta 0 on an AVX-512
// CPU) mkl runs.
//
// GemmArgs::single_thread is honoured by pinning MKL (mkl_set_num_threads_local) and OpenMP
// (omp_set_num_threads, which oneDNN follows) to one thread for the call.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "gulm/gemm.h"

namespace gulm_torch {

enum class GemmBackend { Auto, Mkl, OneDnn, Avx512 };

// One Gemm per kernel call: owns the packed copies of announced B operands.
class CpuGemm {
 public:
  CpuGemm();
  gulm::Gemm gemm() { return gulm::Gemm{&CpuGemm::call, this, &CpuGemm::pack}; }

 private:
  struct Slot {
    GemmBackend backend = GemmBackend::Mkl;
    at::Tensor packed;  // oneDNN's layout of op(B)^T [n,k], or MKL's packed op(B) (fp32)
  };
  static void call(void* self, const gulm::GemmArgs& g);
  static int32_t pack(void* self, const gulm::GemmArgs& g, int64_t uses);

  GemmBackend request_;
  std::vector<Slot> slots_;
};

// What the auto selection measured and chose so far in this process (for benchmarks, tests
// and gulm.ops.lstm.gemm_backend_report()).
struct GemmChoice {
  int64_t m, n, k;  // m: the shape timed (large GEMMs: a 512-row proxy)
  bool trans_a, trans_b, packed, single_thread;
  std::string dtype;
  GemmBackend backend;  // the one kept (never Auto)
  double mkl_us, onednn_us, avx512_us;  // best time of each (< 0: could not run)
};
// "auto", "mkl", "onednn" or "avx512": GULM_GEMM's spelling of each backend.
const char* gemm_backend_name(GemmBackend backend);
std::vector<GemmChoice> gemm_choices();
void clear_gemm_choices();
// The backend GULM_GEMM asks for: "auto", "mkl", "onednn" or "avx512" (throws on anything else).
std::string gemm_request();
// Whether torch provides the oneDNN ops the onednn backend calls.
bool onednn_available();

}  // namespace gulm_torch
