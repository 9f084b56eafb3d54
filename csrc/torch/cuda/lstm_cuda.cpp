// CUDA implementation of gulm::wd_lstm and gulm::wd_lstm_backward: the same checks and
// allocation as the CPU binding (lstm_common.h), the device guard and current stream, and a
// Gemm that runs at::cuda::mm_out (cuBLAS on the current stream) on from_blob views. The
// kernels live in csrc/kernels/cuda/lstm_{fwd,bwd}.cu. Only c10/cuda headers are included (no
// ATen/cuda/CUDAContext.h, which needs the cuBLAS/cuSPARSE headers) so the file can be
// syntax-checked on machines with the CUDA runtime headers alone.
#include <ATen/ATen.h>
#include <ATen/ops/addmm_cuda_dispatch.h>
#include <ATen/ops/mm_cuda_dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "../lstm_common.h"
#include "gulm/lstm.h"

namespace gulm_torch {
namespace {

using at::Tensor;

struct CudaGemmCtx {
  at::Device device;
};

// The views carry the device explicitly (target_device), so from_blob does not query the
// driver for every per-step GEMM.
Tensor cuda_view(const void* p, int64_t rows, int64_t cols, int64_t ld, bool stored_transposed,
                 const at::TensorOptions& opts) {
  void* q = const_cast<void*>(p);
  if (stored_transposed) {
    return at::for_blob(q, {cols, rows})
        .strides({ld, 1})
        .options(opts)
        .target_device(opts.device())
        .make_tensor()
        .t();
  }
  return at::for_blob(q, {rows, cols})
      .strides({ld, 1})
      .options(opts)
      .target_device(opts.device())
      .make_tensor();
}

void aten_cuda_gemm(void* ctx, const gulm::GemmArgs& g) {
  const auto& dev = static_cast<CudaGemmCtx*>(ctx)->device;
  const auto opts = at::TensorOptions().dtype(to_scalar_type(g.dtype)).device(dev);
  const Tensor a = cuda_view(g.a, g.m, g.k, g.lda, g.trans_a, opts);
  const Tensor b = cuda_view(g.b, g.k, g.n, g.ldb, g.trans_b, opts);
  Tensor c = cuda_view(g.c, g.m, g.n, g.ldc, false, opts);
  if (g.alpha == 1.f && g.beta == 0.f) {
    at::cuda::mm_out(c, a, b);
  } else {
    at::cuda::addmm_out(c, c, a, b, g.beta, g.alpha);
  }
}

const std::array<at::ScalarType, 4> kCudaDtypes = {at::kFloat, at::kBFloat16, at::kHalf,
                                                    at::kDouble};

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_cuda(
    const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
    const Tensor& b_hh, const Tensor& h0, const Tensor& c0, const std::optional<Tensor>& mask,
    bool save_workspace) {
  const c10::cuda::CUDAGuard guard(x.device());
  FwdCall c = prepare_fwd("gulm::wd_lstm (CUDA)", at::kCUDA, kCudaDtypes, x, w_ih, w_hh, b_ih,
                          b_hh, h0, c0, mask, save_workspace);
  c.p.stream = c10::cuda::getCurrentCUDAStream().stream();
  CudaGemmCtx ctx{x.device()};
  gulm::wd_lstm_fwd_cuda(c.p, gulm::Gemm{&aten_cuda_gemm, &ctx});
  return c.outputs();
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_backward_cuda(
    const Tensor& grad_y, const std::optional<Tensor>& grad_hT,
    const std::optional<Tensor>& grad_cT, const Tensor& x, const Tensor& w_ih,
    const Tensor& w_hh, const std::optional<Tensor>& mask, const Tensor& h0, const Tensor& c0,
    const Tensor& y, const Tensor& gates, const Tensor& cell) {
  const c10::cuda::CUDAGuard guard(x.device());
  BwdCall c = prepare_bwd("gulm::wd_lstm_backward (CUDA)", at::kCUDA, kCudaDtypes, grad_y,
                          grad_hT, grad_cT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell);
  c.p.stream = c10::cuda::getCurrentCUDAStream().stream();
  CudaGemmCtx ctx{x.device()};
  gulm::wd_lstm_bwd_cuda(c.p, gulm::Gemm{&aten_cuda_gemm, &ctx});
  return c.grads();
}

}  // namespace
}  // namespace gulm_torch

TORCH_LIBRARY_IMPL(gulm, CUDA, m) {
  m.impl("wd_lstm", &gulm_torch::wd_lstm_cuda);
  m.impl("wd_lstm_backward", &gulm_torch::wd_lstm_backward_cuda);
}
