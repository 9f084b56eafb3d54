// CPU implementation of gulm::wd_lstm and gulm::wd_lstm_backward: argument checks,
// contiguity, allocation, dtype mapping and the ATen-backed Gemm the kernels call. The math
// lives in csrc/kernels/cpu/lstm.cpp.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ops/addmm_cpu_dispatch.h>
#include <ATen/ops/mm_cpu_dispatch.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <tuple>

#include "gulm/lstm.h"
#include "lstm_common.h"

namespace gulm_torch {
namespace {

using at::Tensor;

// Gemm over raw pointers -> at::cpu::mm_out on from_blob views. at::cpu:: calls the CPU
// kernel directly (MKL sgemm/dgemm, oneDNN/AMX for bfloat16) without a second trip through
// the dispatcher, which matters for the per-step GEMMs of small models.
void aten_cpu_gemm(void* /*ctx*/, const gulm::GemmArgs& g) {
  const auto opts = at::TensorOptions().dtype(to_scalar_type(g.dtype)).device(at::kCPU);
  const Tensor a = gemm_view(g.a, g.m, g.k, g.lda, g.trans_a, opts);
  const Tensor b = gemm_view(g.b, g.k, g.n, g.ldb, g.trans_b, opts);
  Tensor c = at::from_blob(g.c, {g.m, g.n}, {g.ldc, 1}, opts);
  if (g.alpha == 1.f && g.beta == 0.f) {
    at::cpu::mm_out(c, a, b);
  } else {
    at::cpu::addmm_out(c, c, a, b, g.beta, g.alpha);
  }
}

// ParallelFor -> at::parallel_for: the intra-op pool MKL/oneDNN use (torch.set_num_threads).
void aten_parallel_for(void* /*ctx*/, int64_t n, int64_t grain, gulm::ParallelFor::Body body,
                       void* body_ctx) {
  at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { body(body_ctx, b, e); });
}

// GULM_CPU_SERIAL=1 runs the pointwise passes on the calling thread only (for A/B timing).
gulm::ParallelFor parallel() {
  static const bool serial = [] {
    const char* s = std::getenv("GULM_CPU_SERIAL");
    return s && s[0] == '1';
  }();
  return serial ? gulm::ParallelFor{} : gulm::ParallelFor{&aten_parallel_for, nullptr};
}

void apply_isa_env() {
  static const bool done = [] {
    if (const char* s = std::getenv("GULM_CPU_ISA")) {
      if (!std::strcmp(s, "baseline")) gulm::set_cpu_isa(gulm::CpuIsa::Baseline);
      if (!std::strcmp(s, "avx2")) gulm::set_cpu_isa(gulm::CpuIsa::Avx2);
      if (!std::strcmp(s, "avx512")) gulm::set_cpu_isa(gulm::CpuIsa::Avx512);
    }
    return true;
  }();
  (void)done;
}

const std::array<at::ScalarType, 3> kCpuDtypes = {at::kFloat, at::kBFloat16, at::kDouble};

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_cpu(
    const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
    const Tensor& b_hh, const Tensor& h0, const Tensor& c0, const std::optional<Tensor>& mask,
    bool save_workspace) {
  apply_isa_env();
  const FwdArgs a = check_fwd_args("gulm::wd_lstm (CPU)", at::kCPU, kCpuDtypes, x, w_ih, w_hh,
                                   b_ih, b_hh, h0, c0, mask);
  FwdOutputs out = alloc_fwd_outputs(a, save_workspace);
  gulm::WdLstmFwdParams p = fwd_params(a, out, save_workspace);
  const auto ws = gulm::wd_lstm_fwd_workspace(a.T, a.B, a.H, p.dtype, save_workspace);
  Tensor workspace = at::empty({int64_t(ws.bytes)}, a.x.options().dtype(at::kByte));
  p.workspace = workspace.data_ptr();
  gulm::wd_lstm_fwd_cpu(p, gulm::Gemm{&aten_cpu_gemm, nullptr}, parallel());
  return {out.y, out.hT, out.cT, out.gates, out.cell};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_backward_cpu(
    const Tensor& grad_y, const std::optional<Tensor>& grad_hT,
    const std::optional<Tensor>& grad_cT, const Tensor& x, const Tensor& w_ih,
    const Tensor& w_hh, const std::optional<Tensor>& mask, const Tensor& h0, const Tensor& c0,
    const Tensor& y, const Tensor& gates, const Tensor& cell) {
  apply_isa_env();
  const BwdArgs a = check_bwd_args("gulm::wd_lstm_backward (CPU)", at::kCPU, kCpuDtypes, grad_y,
                                   grad_hT, grad_cT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell);
  BwdOutputs out = alloc_bwd_outputs(a);
  gulm::WdLstmBwdParams p = bwd_params(a, out);
  const auto ws = gulm::wd_lstm_bwd_workspace(a.T, a.B, a.H, p.dtype);
  Tensor workspace = at::empty({int64_t(ws.bytes)}, a.x.options().dtype(at::kByte));
  p.workspace = workspace.data_ptr();
  gulm::wd_lstm_bwd_cpu(p, gulm::Gemm{&aten_cpu_gemm, nullptr}, parallel());
  return {out.dx, out.dw_ih, out.dw_hh, out.db, out.dh0, out.dc0};
}

std::tuple<Tensor, Tensor, Tensor> wd_lstm_table_cpu(const Tensor& ids, const Tensor& table,
                                                     const Tensor& w_hh, const Tensor& b_ih,
                                                     const Tensor& b_hh, const Tensor& h0,
                                                     const Tensor& c0) {
  apply_isa_env();
  const char* op = "gulm::wd_lstm_table (CPU)";
  TORCH_CHECK(ids.dim() == 2, op, ": ids must be [T,B], got ", shape_str(ids.sizes()));
  TORCH_CHECK(ids.scalar_type() == at::kLong && ids.device().is_cpu(), op,
              ": ids must be int64 on the CPU, got ", ids.scalar_type(), " on ", ids.device());
  TORCH_CHECK(table.dim() == 2 && table.size(0) > 0, op, ": table must be [V,4H] with V > 0, got ",
              shape_str(table.sizes()));
  TORCH_CHECK(table.device().is_cpu(), op, ": table must be on the CPU, got ", table.device());
  bool ok = false;
  for (auto d : kCpuDtypes) ok = ok || table.scalar_type() == d;
  TORCH_CHECK(ok, op, ": table has dtype ", table.scalar_type(), "; supported dtypes are ",
              at::ArrayRef<at::ScalarType>(kCpuDtypes.data(), kCpuDtypes.size()));
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(1) > 0 && w_hh.size(0) == 4 * w_hh.size(1), op,
              ": w_hh must be [4H,H] with H > 0, got ", shape_str(w_hh.sizes()));
  const int64_t T = ids.size(0), B = ids.size(1), H = w_hh.size(1), V = table.size(0);
  const auto dt = table.scalar_type();
  const auto dev = table.device();
  check_tensor(op, "table", table, {V, 4 * H}, dt, dev);
  check_recurrent_args(op, w_hh, b_ih, b_hh, h0, c0, B, H, dt, dev);
  const Tensor ids_c = ids.contiguous();
  if (ids_c.numel() > 0) {
    const auto mm = at::aminmax(ids_c);
    const int64_t lo = std::get<0>(mm).item<int64_t>(), hi = std::get<1>(mm).item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < V, op, ": ids must lie in [0, ", V, ") (the table's rows), got [",
                lo, ", ", hi, "]");
  }
  FwdArgs a{T, B, 4 * H, H, table.contiguous(), Tensor(), w_hh.contiguous(), b_ih.contiguous(),
            b_hh.contiguous(), h0.contiguous(), c0.contiguous(), std::nullopt};  // x = the table
  FwdOutputs out;
  out.y = at::empty({T, B, H}, table.options());
  out.hT = at::empty({B, H}, table.options());
  out.cT = at::empty({B, H}, a.c0.options());
  gulm::WdLstmFwdParams p;
  p.T = T;
  p.B = B;
  p.I = 4 * H;
  p.H = H;
  p.dtype = to_dtype(dt);
  p.state_dtype = to_dtype(a.c0.scalar_type());
  p.x = a.x.data_ptr();
  p.ids = ids_c.data_ptr<int64_t>();
  p.w_hh = a.w_hh.data_ptr();
  p.b_ih = a.b_ih.data_ptr();
  p.b_hh = a.b_hh.data_ptr();
  p.h0 = a.h0.data_ptr();
  p.c0 = a.c0.data_ptr();
  p.y = out.y.data_ptr();
  p.hT = out.hT.data_ptr();
  p.cT = out.cT.data_ptr();
  const auto ws = gulm::wd_lstm_fwd_workspace(T, B, H, p.dtype, /*save=*/false);
  Tensor workspace = at::empty({int64_t(ws.bytes)}, table.options().dtype(at::kByte));
  p.workspace = workspace.data_ptr();
  gulm::wd_lstm_fwd_cpu(p, gulm::Gemm{&aten_cpu_gemm, nullptr}, parallel());
  return {out.y, out.hT, out.cT};
}

}  // namespace
}  // namespace gulm_torch

TORCH_LIBRARY_IMPL(gulm, CPU, m) {
  m.impl("wd_lstm", &gulm_torch::wd_lstm_cpu);
  m.impl("wd_lstm_backward", &gulm_torch::wd_lstm_backward_cpu);
  m.impl("wd_lstm_table", &gulm_torch::wd_lstm_table_cpu);
}
