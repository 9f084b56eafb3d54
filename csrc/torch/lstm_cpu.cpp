// CPU implementation of gulm::wd_lstm, gulm::wd_lstm_backward and gulm::wd_lstm_table:
// argument checks, contiguity, allocation and dtype mapping (lstm_common.h); the kernels get
// the per-shape MKL/oneDNN Gemm (gemm_cpu.h) and the task pool's ParallelFor (parallel.h). The
// math lives in csrc/kernels/cpu/lstm.cpp.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "gemm_cpu.h"
#include "gulm/lstm.h"
#include "lstm_common.h"
#include "parallel.h"

namespace gulm_torch {
namespace {

using at::Tensor;

const std::array<at::ScalarType, 3> kCpuDtypes = {at::kFloat, at::kBFloat16, at::kDouble};

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_cpu(
    const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
    const Tensor& b_hh, const Tensor& h0, const Tensor& c0, const std::optional<Tensor>& mask,
    bool save_workspace) {
  apply_cpu_isa_env();
  FwdCall c = prepare_fwd("gulm::wd_lstm (CPU)", at::kCPU, kCpuDtypes, x, w_ih, w_hh, b_ih, b_hh,
                          h0, c0, mask, save_workspace);
  CpuGemm gemm;
  gulm::wd_lstm_fwd_cpu(c.p, gemm.gemm(), cpu_parallel());
  return c.outputs();
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_backward_cpu(
    const Tensor& grad_y, const std::optional<Tensor>& grad_hT,
    const std::optional<Tensor>& grad_cT, const Tensor& x, const Tensor& w_ih,
    const Tensor& w_hh, const std::optional<Tensor>& mask, const Tensor& h0, const Tensor& c0,
    const Tensor& y, const Tensor& gates, const Tensor& cell) {
  apply_cpu_isa_env();
  BwdCall c = prepare_bwd("gulm::wd_lstm_backward (CPU)", at::kCPU, kCpuDtypes, grad_y, grad_hT,
                          grad_cT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell);
  CpuGemm gemm;
  gulm::wd_lstm_bwd_cpu(c.p, gemm.gemm(), cpu_parallel());
  return c.grads();
}

std::tuple<Tensor, Tensor, Tensor> wd_lstm_table_cpu(const Tensor& ids, const Tensor& table,
                                                     const Tensor& w_hh, const Tensor& b_ih,
                                                     const Tensor& b_hh, const Tensor& h0,
                                                     const Tensor& c0) {
  apply_cpu_isa_env();
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
  const int64_t H = check_w_hh(op, w_hh);
  const int64_t T = ids.size(0), B = ids.size(1), V = table.size(0);
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
  // The table is x with I = 4H and an identity "input projection" that never runs: the
  // forward's checks and allocation apply as they are, then x is swapped for the table.
  const Tensor w_ih_unused = at::empty({4 * H, 0}, table.options());
  const Tensor x_shape = at::empty({T, B, 0}, table.options());
  FwdCall c = prepare_fwd(op, at::kCPU, kCpuDtypes, x_shape, w_ih_unused, w_hh, b_ih, b_hh, h0,
                          c0, std::nullopt, /*save=*/false);
  c.x = table.contiguous();
  c.p.x = c.x.data_ptr();
  c.p.I = 4 * H;
  c.p.w_ih = nullptr;
  c.p.ids = ids_c.data_ptr<int64_t>();
  CpuGemm gemm;
  gulm::wd_lstm_fwd_cpu(c.p, gemm.gemm(), cpu_parallel());
  return {c.y, c.hT, c.cT};
}

}  // namespace
}  // namespace gulm_torch

TORCH_LIBRARY_IMPL(gulm, CPU, m) {
  m.impl("wd_lstm", &gulm_torch::wd_lstm_cpu);
  m.impl("wd_lstm_backward", &gulm_torch::wd_lstm_backward_cpu);
  m.impl("wd_lstm_table", &gulm_torch::wd_lstm_table_cpu);
}
