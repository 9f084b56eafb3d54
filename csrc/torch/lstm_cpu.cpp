// CPU implementation of gulm::wd_lstm, gulm::wd_lstm_backward and gulm::wd_lstm_table:
// argument checks, contiguity, allocation and dtype mapping (lstm_common.h), scratch memory kept
// between calls (ScratchCache); the kernels get the per-shape Gemm (gemm_cpu.h: MKL, oneDNN or
// gulm's AVX-512 kernel) and the task pool's ParallelFor (parallel.h). The math lives in
// csrc/kernels/cpu/lstm.cpp.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "gemm_cpu.h"
#include "lstm_cpu.h"
#include "gulm/lstm.h"
#include "lstm_common.h"
#include "parallel.h"

namespace gulm_torch {
namespace {

using at::Tensor;

const std::array<at::ScalarType, 3> kCpuDtypes = {at::kFloat, at::kBFloat16, at::kDouble};

// The kernels' scratch memory (the dropped weight, the gate-gradient block of the backward:
// about 110 MB for an AWD-LSTM layer at B=64, T=70) kept between calls on each thread. A fresh
// allocation of that size is mapped anew by the OS, which faults in and zeroes every page on
// first touch: perf put 9-10 % of an fp32 AWD training step in the kernel's clear_page. A
// call takes a kept buffer of its exact size (a model's layers repeat a few sizes) and gives it
// back when done; at most kept_limit() bytes stay kept per thread, the most recently used.
// GULM_LSTM_SCRATCH_MB sets that limit (default 1024 MiB; 0 keeps nothing: every call allocates).
int64_t kept_limit() {
  static const int64_t limit = [] {
    const char* env = std::getenv("GULM_LSTM_SCRATCH_MB");
    if (env == nullptr || *env == '\0') return int64_t(1) << 30;
    char* end = nullptr;
    const long long mb = std::strtoll(env, &end, 10);
    TORCH_CHECK(end != env && *end == '\0' && mb >= 0 && mb <= (std::numeric_limits<int64_t>::max() >> 20),
                "GULM_LSTM_SCRATCH_MB must be a whole number of MiB (0 keeps no scratch memory), got '", env, "'");
    return int64_t(mb) << 20;
  }();
  return limit;
}

class ScratchCache {
 public:
  Tensor take(int64_t bytes, const at::TensorOptions& options) {
    kept_limit();  // a bad GULM_LSTM_SCRATCH_MB fails before the kernels run, not after
    for (size_t i = kept_.size(); i-- > 0;) {
      if (kept_[i].numel() == bytes) {
        Tensor t = std::move(kept_[i]);
        kept_.erase(kept_.begin() + std::ptrdiff_t(i));
        return t;
      }
    }
    return at::empty({bytes}, options);
  }

  int64_t bytes() const {
    int64_t total = 0;
    for (const Tensor& k : kept_) total += k.numel();
    return total;
  }

  int64_t release() {
    const int64_t total = bytes();
    kept_.clear();
    return total;
  }

  void give(Tensor t) {
    if (!t.defined() || t.numel() == 0) return;
    kept_.push_back(std::move(t));
    int64_t total = bytes();
    const int64_t limit = kept_limit();
    while (total > limit && !kept_.empty()) {  // the least recently given first
      total -= kept_.front().numel();
      kept_.erase(kept_.begin());
    }
  }

 private:
  std::vector<Tensor> kept_;
};

ScratchCache& scratch_cache() {
  thread_local ScratchCache cache;
  return cache;
}

const ScratchFn kCachedScratch = [](int64_t bytes, const at::TensorOptions& options) {
  return scratch_cache().take(bytes, options);
};

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_cpu(
    const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
    const Tensor& b_hh, const Tensor& h0, const Tensor& c0, const std::optional<Tensor>& mask,
    bool save_workspace) {
  apply_cpu_isa_env();
  FwdCall c = prepare_fwd("gulm::wd_lstm (CPU)", at::kCPU, kCpuDtypes, x, w_ih, w_hh, b_ih, b_hh,
                          h0, c0, mask, save_workspace, kCachedScratch);
  CpuGemm gemm;
  gulm::wd_lstm_fwd_cpu(c.p, gemm.gemm(), cpu_parallel());
  scratch_cache().give(std::move(c.workspace));
  return c.outputs();
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> wd_lstm_backward_cpu(
    const Tensor& grad_y, const std::optional<Tensor>& grad_hT,
    const std::optional<Tensor>& grad_cT, const Tensor& x, const Tensor& w_ih,
    const Tensor& w_hh, const std::optional<Tensor>& mask, const Tensor& h0, const Tensor& c0,
    const Tensor& y, const Tensor& gates, const Tensor& cell) {
  apply_cpu_isa_env();
  BwdCall c = prepare_bwd("gulm::wd_lstm_backward (CPU)", at::kCPU, kCpuDtypes, grad_y, grad_hT,
                          grad_cT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell, kCachedScratch);
  CpuGemm gemm;
  gulm::wd_lstm_bwd_cpu(c.p, gemm.gemm(), cpu_parallel());
  scratch_cache().give(std::move(c.workspace));
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
                          c0, std::nullopt, /*save=*/false, kCachedScratch);
  c.x = table.contiguous();
  c.p.x = c.x.data_ptr();
  c.p.I = 4 * H;
  c.p.w_ih = nullptr;
  c.p.ids = ids_c.data_ptr<int64_t>();
  CpuGemm gemm;
  gulm::wd_lstm_fwd_cpu(c.p, gemm.gemm(), cpu_parallel());
  scratch_cache().give(std::move(c.workspace));
  return {c.y, c.hT, c.cT};
}

}  // namespace

int64_t lstm_scratch_bytes() { return scratch_cache().bytes(); }
int64_t release_lstm_scratch() { return scratch_cache().release(); }

}  // namespace gulm_torch

TORCH_LIBRARY_IMPL(gulm, CPU, m) {
  m.impl("wd_lstm", &gulm_torch::wd_lstm_cpu);
  m.impl("wd_lstm_backward", &gulm_torch::wd_lstm_backward_cpu);
  m.impl("wd_lstm_table", &gulm_torch::wd_lstm_table_cpu);
}
