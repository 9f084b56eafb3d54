// Shared by the CPU and CUDA bindings of gulm::wd_lstm / gulm::wd_lstm_backward: argument
// checks (messages name the argument and the expected shape or dtype), contiguity,
// allocation of the outputs and translation to the kernels' Params structs. No math.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <sstream>
#include <string>

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

// The recurrent half of a forward's arguments: w_hh [4H,H], b_ih/b_hh [4H], h0 [B,H] in the
// compute dtype, c0 [B,H] in it or float32.
inline void check_recurrent_args(const char* op, const at::Tensor& w_hh, const at::Tensor& b_ih,
                                 const at::Tensor& b_hh, const at::Tensor& h0,
                                 const at::Tensor& c0, int64_t B, int64_t H,
                                 at::ScalarType dt, const at::Device& dev) {
  check_tensor(op, "w_hh", w_hh, {4 * H, H}, dt, dev);
  check_tensor(op, "b_ih", b_ih, {4 * H}, dt, dev);
  check_tensor(op, "b_hh", b_hh, {4 * H}, dt, dev);
  check_tensor(op, "h0", h0, {B, H}, dt, dev);
  check_state_dtype(op, "c0", c0, dt);
  check_tensor(op, "c0", c0, {B, H}, c0.scalar_type(), dev);
}

struct FwdArgs {
  int64_t T, B, I, H;
  at::Tensor x, w_ih, w_hh, b_ih, b_hh, h0, c0;
  std::optional<at::Tensor> mask;
};

template <size_t N>
inline FwdArgs check_fwd_args(const char* op, at::DeviceType device_type,
                              const std::array<at::ScalarType, N>& dtypes, const at::Tensor& x,
                              const at::Tensor& w_ih, const at::Tensor& w_hh,
                              const at::Tensor& b_ih, const at::Tensor& b_hh,
                              const at::Tensor& h0, const at::Tensor& c0,
                              const std::optional<at::Tensor>& mask) {
  check_x(op, device_type, dtypes, x);
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(1) > 0 && w_hh.size(0) == 4 * w_hh.size(1), op,
              ": w_hh must be [4H,H] with H > 0, got ", shape_str(w_hh.sizes()));
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  const auto dt = x.scalar_type();
  const auto dev = x.device();
  check_recurrent_args(op, w_hh, b_ih, b_hh, h0, c0, B, H, dt, dev);
  check_tensor(op, "w_ih", w_ih, {4 * H, I}, dt, dev);
  if (mask) check_tensor(op, "mask", *mask, {4 * H, H}, dt, dev);
  FwdArgs a{T, B, I, H, x.contiguous(), w_ih.contiguous(), w_hh.contiguous(),
            b_ih.contiguous(), b_hh.contiguous(), h0.contiguous(), c0.contiguous(),
            std::nullopt};
  if (mask) a.mask = mask->contiguous();
  return a;
}

struct FwdOutputs {
  at::Tensor y, hT, cT, gates, cell;
};

inline FwdOutputs alloc_fwd_outputs(const FwdArgs& a, bool save) {
  const auto o = a.x.options();
  FwdOutputs r;
  r.y = at::empty({a.T, a.B, a.H}, o);
  r.hT = at::empty({a.B, a.H}, o);
  r.cT = at::empty({a.B, a.H}, a.c0.options());
  const auto acc = o.dtype(acc_scalar_type(a.x.scalar_type()));
  r.gates = save ? at::empty({a.T, a.B, 4 * a.H}, o) : at::empty({0}, o);
  r.cell = save ? at::empty({a.T, a.B, a.H}, acc) : at::empty({0}, acc);
  return r;
}

inline gulm::WdLstmFwdParams fwd_params(const FwdArgs& a, FwdOutputs& out, bool save) {
  gulm::WdLstmFwdParams p;
  p.T = a.T;
  p.B = a.B;
  p.I = a.I;
  p.H = a.H;
  p.dtype = to_dtype(a.x.scalar_type());
  p.state_dtype = to_dtype(a.c0.scalar_type());
  p.x = a.x.data_ptr();
  p.w_ih = a.w_ih.data_ptr();
  p.w_hh = a.w_hh.data_ptr();
  p.b_ih = a.b_ih.data_ptr();
  p.b_hh = a.b_hh.data_ptr();
  p.h0 = a.h0.data_ptr();
  p.c0 = a.c0.data_ptr();
  p.mask = a.mask ? a.mask->data_ptr() : nullptr;
  p.y = out.y.data_ptr();
  p.hT = out.hT.data_ptr();
  p.cT = out.cT.data_ptr();
  p.gates = save ? out.gates.data_ptr() : nullptr;
  p.cell = save ? out.cell.data_ptr() : nullptr;
  return p;
}

struct BwdArgs {
  int64_t T, B, I, H;
  at::Tensor grad_y;
  std::optional<at::Tensor> grad_hT, grad_cT;
  at::Tensor x, w_ih, w_hh;
  std::optional<at::Tensor> mask;
  at::Tensor h0, c0, y, gates, cell;
};

template <size_t N>
inline BwdArgs check_bwd_args(const char* op, at::DeviceType device_type,
                              const std::array<at::ScalarType, N>& dtypes,
                              const at::Tensor& grad_y, const std::optional<at::Tensor>& grad_hT,
                              const std::optional<at::Tensor>& grad_cT, const at::Tensor& x,
                              const at::Tensor& w_ih, const at::Tensor& w_hh,
                              const std::optional<at::Tensor>& mask, const at::Tensor& h0,
                              const at::Tensor& c0, const at::Tensor& y,
                              const at::Tensor& gates, const at::Tensor& cell) {
  check_x(op, device_type, dtypes, x);
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(1) > 0 && w_hh.size(0) == 4 * w_hh.size(1), op,
              ": w_hh must be [4H,H] with H > 0, got ", shape_str(w_hh.sizes()));
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1);
  const auto dt = x.scalar_type();
  const auto dev = x.device();
  check_tensor(op, "w_hh", w_hh, {4 * H, H}, dt, dev);
  check_tensor(op, "w_ih", w_ih, {4 * H, I}, dt, dev);
  if (mask) check_tensor(op, "mask", *mask, {4 * H, H}, dt, dev);
  check_tensor(op, "h0", h0, {B, H}, dt, dev);
  check_state_dtype(op, "c0", c0, dt);
  check_tensor(op, "c0", c0, {B, H}, c0.scalar_type(), dev);
  check_tensor(op, "grad_y", grad_y, {T, B, H}, dt, dev);
  if (grad_hT) check_tensor(op, "grad_hT", *grad_hT, {B, H}, dt, dev);
  if (grad_cT) check_tensor(op, "grad_cT", *grad_cT, {B, H}, c0.scalar_type(), dev);
  check_tensor(op, "y", y, {T, B, H}, dt, dev);
  TORCH_CHECK(gates.numel() > 0 || T * B == 0, op,
              ": gates is empty: the forward ran with save_workspace=False, so there is nothing "
              "to differentiate (call wd_lstm with save_workspace=True)");
  check_tensor(op, "gates", gates, {T, B, 4 * H}, dt, dev);
  check_tensor(op, "cell", cell, {T, B, H}, acc_scalar_type(dt), dev);
  BwdArgs a{T, B, I, H, grad_y.contiguous(), std::nullopt, std::nullopt, x.contiguous(),
            w_ih.contiguous(), w_hh.contiguous(), std::nullopt, h0.contiguous(),
            c0.contiguous(), y.contiguous(), gates.contiguous(), cell.contiguous()};
  if (grad_hT) a.grad_hT = grad_hT->contiguous();
  if (grad_cT) a.grad_cT = grad_cT->contiguous();
  if (mask) a.mask = mask->contiguous();
  return a;
}

struct BwdOutputs {
  at::Tensor dx, dw_ih, dw_hh, db, dh0, dc0;
};

inline BwdOutputs alloc_bwd_outputs(const BwdArgs& a) {
  const auto o = a.x.options();
  return {at::empty({a.T, a.B, a.I}, o), at::empty({4 * a.H, a.I}, o),
          at::empty({4 * a.H, a.H}, o),  at::empty({4 * a.H}, o),
          at::empty({a.B, a.H}, o),      at::empty({a.B, a.H}, a.c0.options())};
}

inline gulm::WdLstmBwdParams bwd_params(const BwdArgs& a, BwdOutputs& out) {
  gulm::WdLstmBwdParams p;
  p.T = a.T;
  p.B = a.B;
  p.I = a.I;
  p.H = a.H;
  p.dtype = to_dtype(a.x.scalar_type());
  p.state_dtype = to_dtype(a.c0.scalar_type());
  p.grad_y = a.grad_y.data_ptr();
  p.grad_hT = a.grad_hT ? a.grad_hT->data_ptr() : nullptr;
  p.grad_cT = a.grad_cT ? a.grad_cT->data_ptr() : nullptr;
  p.x = a.x.data_ptr();
  p.w_ih = a.w_ih.data_ptr();
  p.w_hh = a.w_hh.data_ptr();
  p.mask = a.mask ? a.mask->data_ptr() : nullptr;
  p.h0 = a.h0.data_ptr();
  p.c0 = a.c0.data_ptr();
  p.y = a.y.data_ptr();
  p.gates = a.gates.data_ptr();
  p.cell = a.cell.data_ptr();
  p.dx = out.dx.data_ptr();
  p.dw_ih = out.dw_ih.data_ptr();
  p.dw_hh = out.dw_hh.data_ptr();
  p.db = out.db.data_ptr();
  p.dh0 = out.dh0.data_ptr();
  p.dc0 = out.dc0.data_ptr();
  return p;
}

}  // namespace gulm_torch
