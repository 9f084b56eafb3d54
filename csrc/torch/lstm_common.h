// Shared by the CPU and CUDA bindings of gulm::wd_lstm / gulm::wd_lstm_backward: argument
// checks (messages name the argument and the expected shape or dtype), contiguity,
// allocation of the outputs and translation to the kernels' Params structs. No math.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include "gulm/lstm.h"

namespace gulm_torch {

inline gulm::DType to_dtype(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return gulm::DType::F32;
    case at::kBFloat16: return gulm::DType::BF16;
    case at::kHalf: return gulm::DType::F16;
    case at::kDouble: return gulm::DType::F64;
    default: TORCH_CHECK(false, "gulm: no kernel dtype for ", s);
  }
}

inline at::ScalarType to_scalar_type(gulm::DType d) {
  switch (d) {
    case gulm::DType::F32: return at::kFloat;
    case gulm::DType::BF16: return at::kBFloat16;
    case gulm::DType::F16: return at::kHalf;
    case gulm::DType::F64: return at::kDouble;
  }
  TORCH_CHECK(false, "gulm: unknown kernel dtype");
}

// The acc type of the kernels (cell state): float32, or float64 for float64 inputs.
inline at::ScalarType acc_scalar_type(at::ScalarType s) {
  return s == at::kDouble ? at::kDouble : at::kFloat;
}

// A row-major [rows, cols] matrix with row stride ld; as its transpose when `stored_transposed`
// (then the memory holds [cols, rows] with row stride ld). For the Gemm callbacks.
inline at::Tensor gemm_view(const void* p, int64_t rows, int64_t cols, int64_t ld,
                            bool stored_transposed, const at::TensorOptions& opts) {
  void* q = const_cast<void*>(p);
  if (stored_transposed) return at::from_blob(q, {cols, rows}, {ld, 1}, opts).t();
  return at::from_blob(q, {rows, cols}, {ld, 1}, opts);
}

inline std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

inline void check_tensor(const char* op, const char* name, const at::Tensor& t,
                         at::IntArrayRef shape, at::ScalarType dtype, const at::Device& device) {
  TORCH_CHECK(t.sizes() == shape, op, ": ", name, " must have shape ", shape_str(shape),
              ", got ", shape_str(t.sizes()));
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must have dtype ", dtype, ", got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == device, op, ": ", name, " must be on ", device, ", got ",
              t.device());
}

template <size_t N>
inline void check_x(const char* op, at::DeviceType device_type,
                    const std::array<at::ScalarType, N>& dtypes, const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, op, ": x must be [T,B,I], got ", shape_str(x.sizes()));
  TORCH_CHECK(x.device().type() == device_type, op, ": x must be on ", device_type, ", got ",
              x.device());
  bool ok = false;
  for (auto d : dtypes) ok = ok || x.scalar_type() == d;
  TORCH_CHECK(ok, op, ": x has dtype ", x.scalar_type(), "; supported dtypes are ",
              at::ArrayRef<at::ScalarType>(dtypes.data(), N));
}

inline void check_state_dtype(const char* op, const char* name, const at::Tensor& t,
                              at::ScalarType dtype) {
  TORCH_CHECK(t.scalar_type() == dtype || t.scalar_type() == at::kFloat, op, ": ", name,
              " must have the dtype of x (", dtype, ") or float32, got ", t.scalar_type());
}

// H of a w_hh [4H,H] (H > 0).
inline int64_t check_w_hh(const char* op, const at::Tensor& w_hh) {
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(1) > 0 && w_hh.size(0) == 4 * w_hh.size(1), op,
              ": w_hh must be [4H,H] with H > 0, got ", shape_str(w_hh.sizes()));
  return w_hh.size(1);
}

// h0 [B,H] in the compute dtype, c0 [B,H] in it or float32.
inline void check_states(const char* op, const at::Tensor& h0, const at::Tensor& c0, int64_t B,
                         int64_t H, at::ScalarType dt, const at::Device& dev) {
  check_tensor(op, "h0", h0, {B, H}, dt, dev);
  check_state_dtype(op, "c0", c0, dt);
  check_tensor(op, "c0", c0, {B, H}, c0.scalar_type(), dev);
}

// The recurrent half of a forward's arguments: w_hh [4H,H], b_ih/b_hh [4H], h0 [B,H] in the
// compute dtype, c0 [B,H] in it or float32.
inline void check_recurrent_args(const char* op, const at::Tensor& w_hh, const at::Tensor& b_ih,
                                 const at::Tensor& b_hh, const at::Tensor& h0,
                                 const at::Tensor& c0, int64_t B, int64_t H,
                                 at::ScalarType dt, const at::Device& dev) {
  check_tensor(op, "w_hh", w_hh, {4 * H, H}, dt, dev);
  check_tensor(op, "b_ih", b_ih, {4 * H}, dt, dev);
  check_tensor(op, "b_hh", b_hh, {4 * H}, dt, dev);
  check_states(op, h0, c0, B, H, dt, dev);
}

// What the forward and the backward both take: x [T,B,I], w_ih [4H,I], w_hh [4H,H] and the
// optional mask [4H,H], all in x's dtype and on its device.
struct Dims {
  int64_t T, B, I, H;
  at::ScalarType dt;
  at::Device dev;
};

template <size_t N>
inline Dims check_inputs(const char* op, at::DeviceType device_type,
                         const std::array<at::ScalarType, N>& dtypes, const at::Tensor& x,
                         const at::Tensor& w_ih, const at::Tensor& w_hh,
                         const std::optional<at::Tensor>& mask) {
  check_x(op, device_type, dtypes, x);
  const int64_t H = check_w_hh(op, w_hh);
  const Dims d{x.size(0), x.size(1), x.size(2), H, x.scalar_type(), x.device()};
  check_tensor(op, "w_hh", w_hh, {4 * H, H}, d.dt, d.dev);
  check_tensor(op, "w_ih", w_ih, {4 * H, d.I}, d.dt, d.dev);
  if (mask) check_tensor(op, "mask", *mask, {4 * H, H}, d.dt, d.dev);
  return d;
}

inline std::optional<at::Tensor> contiguous(const std::optional<at::Tensor>& t) {
  if (!t) return std::nullopt;
  return t->contiguous();
}

inline void* data_or_null(const std::optional<at::Tensor>& t) { return t ? t->data_ptr() : nullptr; }

// A checked call of a kernel: its contiguous inputs, its outputs, the kernel's Params filled
// in, and the workspace (allocated, already in the Params).
struct FwdCall {
  int64_t T, B, I, H;
  at::Tensor x, w_ih, w_hh, b_ih, b_hh, h0, c0;
  std::optional<at::Tensor> mask;
  at::Tensor y, hT, cT, gates, cell, workspace;
  gulm::WdLstmFwdParams p;

  // The op's results: y, hT, cT and the saved gates and cell (empty when not saved).
  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> outputs() const {
    return {y, hT, cT, gates, cell};
  }
};

// Allocates a kernel's scratch memory: `bytes` uint8 elements (at::empty when not given).
using ScratchFn = std::function<at::Tensor(int64_t bytes, const at::TensorOptions& options)>;

inline at::Tensor scratch_bytes(const ScratchFn& scratch, size_t bytes, const at::TensorOptions& o) {
  const auto opts = o.dtype(at::kByte);
  return scratch ? scratch(int64_t(bytes), opts) : at::empty({int64_t(bytes)}, opts);
}

template <size_t N>
inline FwdCall prepare_fwd(const char* op, at::DeviceType device_type,
                           const std::array<at::ScalarType, N>& dtypes, const at::Tensor& x,
                           const at::Tensor& w_ih, const at::Tensor& w_hh,
                           const at::Tensor& b_ih, const at::Tensor& b_hh, const at::Tensor& h0,
                           const at::Tensor& c0, const std::optional<at::Tensor>& mask,
                           bool save, const ScratchFn& scratch = {}) {
  const Dims d = check_inputs(op, device_type, dtypes, x, w_ih, w_hh, mask);
  check_recurrent_args(op, w_hh, b_ih, b_hh, h0, c0, d.B, d.H, d.dt, d.dev);
  FwdCall c{d.T, d.B, d.I, d.H, x.contiguous(), w_ih.contiguous(), w_hh.contiguous(),
            b_ih.contiguous(), b_hh.contiguous(), h0.contiguous(), c0.contiguous(),
            contiguous(mask)};
  const auto o = c.x.options();
  c.y = at::empty({c.T, c.B, c.H}, o);
  c.hT = at::empty({c.B, c.H}, o);
  c.cT = at::empty({c.B, c.H}, c.c0.options());
  const auto acc = o.dtype(acc_scalar_type(d.dt));
  c.gates = save ? at::empty({c.T, c.B, 4 * c.H}, o) : at::empty({0}, o);
  c.cell = save ? at::empty({c.T, c.B, c.H}, acc) : at::empty({0}, acc);
  const auto ws = gulm::wd_lstm_fwd_workspace(c.T, c.B, c.H, to_dtype(d.dt), save);
  c.workspace = scratch_bytes(scratch, ws.bytes, o);
  c.p = gulm::WdLstmFwdParams{
      c.T, c.B, c.I, c.H, to_dtype(d.dt), to_dtype(c.c0.scalar_type()), c.x.data_ptr(),
      c.w_ih.data_ptr(), c.w_hh.data_ptr(), c.b_ih.data_ptr(), c.b_hh.data_ptr(), c.h0.data_ptr(),
      c.c0.data_ptr(), data_or_null(c.mask), c.y.data_ptr(), c.hT.data_ptr(), c.cT.data_ptr(),
      save ? c.gates.data_ptr() : nullptr, save ? c.cell.data_ptr() : nullptr,
      c.workspace.data_ptr()};
  return c;
}

struct BwdCall {
  int64_t T, B, I, H;
  at::Tensor grad_y;
  std::optional<at::Tensor> grad_hT, grad_cT;
  at::Tensor x, w_ih, w_hh;
  std::optional<at::Tensor> mask;
  at::Tensor h0, c0, y, gates, cell;
  at::Tensor dx, dw_ih, dw_hh, db, dh0, dc0, workspace;
  gulm::WdLstmBwdParams p;

  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> grads() const {
    return {dx, dw_ih, dw_hh, db, dh0, dc0};
  }
};

template <size_t N>
inline BwdCall prepare_bwd(const char* op, at::DeviceType device_type,
                           const std::array<at::ScalarType, N>& dtypes, const at::Tensor& grad_y,
                           const std::optional<at::Tensor>& grad_hT,
                           const std::optional<at::Tensor>& grad_cT, const at::Tensor& x,
                           const at::Tensor& w_ih, const at::Tensor& w_hh,
                           const std::optional<at::Tensor>& mask, const at::Tensor& h0,
                           const at::Tensor& c0, const at::Tensor& y, const at::Tensor& gates,
                           const at::Tensor& cell, const ScratchFn& scratch = {}) {
  const Dims d = check_inputs(op, device_type, dtypes, x, w_ih, w_hh, mask);
  const int64_t T = d.T, B = d.B, H = d.H;
  check_states(op, h0, c0, B, H, d.dt, d.dev);
  check_tensor(op, "grad_y", grad_y, {T, B, H}, d.dt, d.dev);
  if (grad_hT) check_tensor(op, "grad_hT", *grad_hT, {B, H}, d.dt, d.dev);
  if (grad_cT) check_tensor(op, "grad_cT", *grad_cT, {B, H}, c0.scalar_type(), d.dev);
  check_tensor(op, "y", y, {T, B, H}, d.dt, d.dev);
  TORCH_CHECK(gates.numel() > 0 || T * B == 0, op,
              ": gates is empty: the forward ran with save_workspace=False, so there is nothing "
              "to differentiate (call wd_lstm with save_workspace=True)");
  check_tensor(op, "gates", gates, {T, B, 4 * H}, d.dt, d.dev);
  check_tensor(op, "cell", cell, {T, B, H}, acc_scalar_type(d.dt), d.dev);
  BwdCall c{T, B, d.I, H, grad_y.contiguous(), contiguous(grad_hT), contiguous(grad_cT),
            x.contiguous(), w_ih.contiguous(), w_hh.contiguous(), contiguous(mask),
            h0.contiguous(), c0.contiguous(), y.contiguous(), gates.contiguous(),
            cell.contiguous()};
  const auto o = c.x.options();
  c.dx = at::empty({T, B, c.I}, o);
  c.dw_ih = at::empty({4 * H, c.I}, o);
  c.dw_hh = at::empty({4 * H, H}, o);
  c.db = at::empty({4 * H}, o);
  c.dh0 = at::empty({B, H}, o);
  c.dc0 = at::empty({B, H}, c.c0.options());
  const auto ws = gulm::wd_lstm_bwd_workspace(T, B, H, to_dtype(d.dt));
  c.workspace = scratch_bytes(scratch, ws.bytes, o);
  c.p = gulm::WdLstmBwdParams{
      T, B, c.I, H, to_dtype(d.dt), to_dtype(c.c0.scalar_type()), c.grad_y.data_ptr(),
      data_or_null(c.grad_hT), data_or_null(c.grad_cT), c.x.data_ptr(), c.w_ih.data_ptr(),
      c.w_hh.data_ptr(), data_or_null(c.mask), c.h0.data_ptr(), c.c0.data_ptr(), c.y.data_ptr(),
      c.gates.data_ptr(), c.cell.data_ptr(), c.dx.data_ptr(), c.dw_ih.data_ptr(),
      c.dw_hh.data_ptr(), c.db.data_ptr(), c.dh0.data_ptr(), c.dc0.data_ptr(),
      c.workspace.data_ptr()};
  return c;
}

}  // namespace gulm_torch
