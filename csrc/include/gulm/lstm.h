// Contract of the weight-dropped LSTM kernels (gulm::wd_lstm / gulm::wd_lstm_backward).
//
// One layer, one direction, gate order (i, f, g, o) and the weight layout of torch.nn.LSTM.
// DropConnect: the recurrence uses w_rec = w_hh * mask (mask already scaled by 1/(1-p)), and
// the weight gradient is the one w.r.t. the raw w_hh, i.e. (dgates^T @ h_prev) * mask.
//
// Notation: T time steps, B batch, I input features, H hidden units; every array is dense
// row-major ("contiguous") in the listed shape. `dtype` is the element type of x, the weights,
// biases, h0, mask, y, hT, gates and of every gradient except dc0. "acc" is the type of the
// cell state and gate math: float, or double when dtype is F64. c0 / cT / grad_cT / dc0 have
// `state_dtype`, which is dtype or F32.
//
// Plan (the same on CPU and CUDA; the CPU kernel also splits each step's GEMM and pointwise
// pass by chunks of hidden units, see wd_lstm_fwd_cpu):
//   forward:  w_rec^T [H,4H] prepared once; bias = b_ih + b_hh (acc) once;
//             G = x @ w_ih^T for all steps in one GEMM (per chunk of steps when nothing is
//             saved); per step: R = h_{t-1} @ w_rec^T (GEMM), then one fused pointwise pass
//             gates = act(G_t + R + bias), c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
//   backward: w_rec [4H,H] prepared once; per step: one fused pointwise pass producing
//             dG_t (pre-activation gate gradients) and dc_{t-1}, and dh_{t-1} = dG_t @ w_rec
//             (GEMM); the cell math of both passes is gulm/lstm_cell.h; after the loop, one GEMM each: dx = dG @ w_ih, dw_ih = dG^T @ x,
//             dw_hh = (dG^T @ [h0; y[:-1]]) * mask; db = column sums of dG (accumulated in
//             the pointwise pass).
// All GEMMs go through the injected `Gemm` (see gemm.h) with beta == 0; no allocation
// happens inside the kernels: callers pass a workspace sized by the *_workspace() helpers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gulm/cpu.h"
#include "gulm/gemm.h"
#include "gulm/parallel.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*; declared here so CPU code needs no CUDA

namespace gulm {

// The element size of "acc" (cell state, bias sums) for a given dtype.
inline int64_t lstm_acc_size(DType t) { return t == DType::F64 ? 8 : 4; }

struct WdLstmFwdParams {
  int64_t T = 0, B = 0, I = 0, H = 0;
  DType dtype = DType::F32;
  DType state_dtype = DType::F32;
  const void* x = nullptr;     // [T,B,I]
  const void* w_ih = nullptr;  // [4H,I]
  const void* w_hh = nullptr;  // [4H,H]
  const void* b_ih = nullptr;  // [4H]
  const void* b_hh = nullptr;  // [4H]
  const void* h0 = nullptr;    // [B,H]
  const void* c0 = nullptr;    // [B,H] state_dtype
  const void* mask = nullptr;  // [4H,H] or nullptr (no DropConnect)
  void* y = nullptr;           // [T,B,H]
  void* hT = nullptr;          // [B,H]
  void* cT = nullptr;          // [B,H] state_dtype
  // What the backward needs, or both nullptr (inference). Must not alias anything else.
  void* gates = nullptr;       // [T,B,4H] activated (i, f, g, o)
  void* cell = nullptr;        // [T,B,H] acc: c_t
  void* workspace = nullptr;   // wd_lstm_fwd_workspace(...).bytes, 64-byte aligned
  CUstream_st* stream = nullptr;  // CUDA: the stream every kernel and GEMM runs on
  // Table mode (CPU, inference only: gates/cell must be nullptr). When set, x is not an input
  // sequence but a [V,4H] table of input projections (row v = emb[v] @ w_ih^T) and the
  // projection of batch row b at step t is row ids[t*B + b] (0 <= id < V, checked by the
  // caller): no input GEMM runs and the rows are read in place. w_ih and I are unused. In
  // eval mode the first layer's input is an embedding lookup, so this is exact algebra.
  const int64_t* ids = nullptr;  // [T,B]
};

struct WdLstmBwdParams {
  int64_t T = 0, B = 0, I = 0, H = 0;
  DType dtype = DType::F32;
  DType state_dtype = DType::F32;
  const void* grad_y = nullptr;   // [T,B,H]
  const void* grad_hT = nullptr;  // [B,H] or nullptr (zero)
  const void* grad_cT = nullptr;  // [B,H] state_dtype or nullptr (zero)
  const void* x = nullptr;        // [T,B,I]
  const void* w_ih = nullptr;     // [4H,I]
  const void* w_hh = nullptr;     // [4H,H] raw
  const void* mask = nullptr;     // [4H,H] or nullptr
  const void* h0 = nullptr;       // [B,H]
  const void* c0 = nullptr;       // [B,H] state_dtype
  const void* y = nullptr;        // [T,B,H] forward output
  const void* gates = nullptr;    // [T,B,4H] forward workspace (activated gates)
  const void* cell = nullptr;     // [T,B,H] acc, forward workspace
  void* dx = nullptr;             // [T,B,I]
  void* dw_ih = nullptr;          // [4H,I]
  void* dw_hh = nullptr;          // [4H,H] w.r.t. the raw w_hh
  void* db = nullptr;             // [4H] (the gradient of b_ih and of b_hh)
  void* dh0 = nullptr;            // [B,H]
  void* dc0 = nullptr;            // [B,H] state_dtype
  void* workspace = nullptr;      // wd_lstm_bwd_workspace(...).bytes, 64-byte aligned
  CUstream_st* stream = nullptr;
};

// Byte offsets into the workspace. Every region starts 64-byte aligned.
struct WdLstmFwdWorkspace {
  size_t w_rec = 0;  // [H,4H] dtype: (w_hh * mask)^T, columns in a kernel-private order
  size_t bias = 0;   // [4H] acc: b_ih + b_hh
  size_t c = 0;      // [B,H] acc: c0 (then, when `cell` is not saved, the cell state of
  size_t c2 = 0;     // [B,H] acc:  even steps in c2 and of odd steps in c: a ping-pong pair)
  size_t rec = 0;    // [B,4H] dtype: h_{t-1} @ w_rec^T of the current step
  size_t gx = 0;     // [chunk,B,4H] dtype: input projection (only when gates are not saved)
  int64_t chunk = 0; // time steps per input-projection GEMM
  size_t bytes = 0;
};

struct WdLstmBwdWorkspace {
  size_t w_rec = 0;  // [4H,H] dtype: w_hh * mask, later dG_0^T @ h0
  size_t dgates = 0; // [T,B,4H] dtype
  size_t dh = 0;     // [B,H] dtype: dG_{t+1} @ w_rec (grad_hT before the last step)
  size_t dc = 0;     // [B,H] acc
  size_t c0 = 0;     // [B,H] acc: c0 converted
  size_t db = 0;     // [4H] acc
  size_t bytes = 0;
};

namespace detail {
inline size_t ws_align(size_t n) { return (n + 63) & ~size_t(63); }
}  // namespace detail

// save: whether gates/cell are saved. Without saving, the input projection is done in chunks
// of time steps (chunk*B rows, at least ~256 rows and at most ~32 MiB), so inference on long
// windows does not need a [T,B,4H] buffer.
inline WdLstmFwdWorkspace wd_lstm_fwd_workspace(int64_t T, int64_t B, int64_t H, DType dtype,
                                                bool save) {
  using detail::ws_align;
  const size_t es = size_t(dtype_size(dtype)), as = size_t(lstm_acc_size(dtype));
  WdLstmFwdWorkspace w;
  size_t off = 0;
  w.w_rec = off;
  off += ws_align(size_t(H) * 4 * H * es);
  w.bias = off;
  off += ws_align(size_t(4 * H) * as);
  w.c = off;
  off += ws_align(size_t(B) * H * as);
  w.c2 = off;
  off += ws_align(size_t(B) * H * as);
  w.rec = off;
  off += ws_align(size_t(B) * 4 * H * es);
  w.gx = off;
  if (save) {
    w.chunk = T;
  } else {
    const int64_t row_bytes = 4 * H * int64_t(es);
    const int64_t max_rows = (int64_t(32) << 20) / (row_bytes > 0 ? row_bytes : 1);
    int64_t rows = max_rows > 256 ? max_rows : 256;
    int64_t chunk = B > 0 ? rows / B : T;
    if (chunk < 1) chunk = 1;
    if (chunk > T) chunk = T;
    w.chunk = chunk;
    off += ws_align(size_t(chunk) * B * 4 * H * es);
  }
  w.bytes = off;
  return w;
}

inline WdLstmBwdWorkspace wd_lstm_bwd_workspace(int64_t T, int64_t B, int64_t H, DType dtype) {
  using detail::ws_align;
  const size_t es = size_t(dtype_size(dtype)), as = size_t(lstm_acc_size(dtype));
  WdLstmBwdWorkspace w;
  size_t off = 0;
  w.w_rec = off;
  off += ws_align(size_t(4 * H) * H * es);
  w.dgates = off;
  off += ws_align(size_t(T) * B * 4 * H * es);
  w.dh = off;
  off += ws_align(size_t(B) * H * es);
  w.dc = off;
  off += ws_align(size_t(B) * H * as);
  w.c0 = off;
  off += ws_align(size_t(B) * H * as);
  w.db = off;
  off += ws_align(size_t(4 * H) * as);
  w.bytes = off;
  return w;
}

// The arrays of a Params struct and its workspace regions as typed pointers, for the kernels
// (T: the storage type of `dtype`, A: the acc type).
template <class T, class A>
struct WdLstmFwdArrays {
  WdLstmFwdWorkspace ws;
  const T *x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *mask;
  T *y, *gates;
  A* cell;
  T *w_rec, *rec, *gx;  // workspace
  A *bias, *c, *c2;     // workspace
};

template <class T, class A>
struct WdLstmBwdArrays {
  WdLstmBwdWorkspace ws;
  const T *grad_y, *x, *w_ih, *w_hh, *mask, *h0, *y, *gates;
  const A* cell;
  T *dx, *dw_ih, *dw_hh, *db, *dh0;
  T *w_rec, *dgates, *dh;  // workspace
  A *dc, *c0, *db_acc;     // workspace
};

namespace detail {
template <class U>
U* at(void* base, size_t off) {
  return reinterpret_cast<U*>(static_cast<char*>(base) + off);
}
template <class U>
const U* in(const void* p) {
  return static_cast<const U*>(p);
}
}  // namespace detail

template <class T, class A>
inline WdLstmFwdArrays<T, A> wd_lstm_fwd_arrays(const WdLstmFwdParams& p) {
  using detail::at;
  using detail::in;
  const WdLstmFwdWorkspace w = wd_lstm_fwd_workspace(p.T, p.B, p.H, p.dtype, p.gates != nullptr);
  void* ws = p.workspace;
  return {w, in<T>(p.x), in<T>(p.w_ih), in<T>(p.w_hh), in<T>(p.b_ih), in<T>(p.b_hh), in<T>(p.h0),
          in<T>(p.mask), static_cast<T*>(p.y), static_cast<T*>(p.gates), static_cast<A*>(p.cell),
          at<T>(ws, w.w_rec), at<T>(ws, w.rec), at<T>(ws, w.gx), at<A>(ws, w.bias), at<A>(ws, w.c),
          at<A>(ws, w.c2)};
}

template <class T, class A>
inline WdLstmBwdArrays<T, A> wd_lstm_bwd_arrays(const WdLstmBwdParams& p) {
  using detail::at;
  using detail::in;
  const WdLstmBwdWorkspace w = wd_lstm_bwd_workspace(p.T, p.B, p.H, p.dtype);
  void* ws = p.workspace;
  return {w, in<T>(p.grad_y), in<T>(p.x), in<T>(p.w_ih), in<T>(p.w_hh), in<T>(p.mask),
          in<T>(p.h0), in<T>(p.y), in<T>(p.gates), in<A>(p.cell), static_cast<T*>(p.dx),
          static_cast<T*>(p.dw_ih), static_cast<T*>(p.dw_hh), static_cast<T*>(p.db),
          static_cast<T*>(p.dh0), at<T>(ws, w.w_rec), at<T>(ws, w.dgates), at<T>(ws, w.dh),
          at<A>(ws, w.dc), at<A>(ws, w.c0), at<A>(ws, w.db)};
}

// CPU kernels (csrc/kernels/cpu/lstm.cpp): F32, BF16 and F64. The pointwise passes are
// vectorised for AVX-512 / AVX2 / baseline x86-64 (the level of gulm/cpu.h's selector). With
// par.threads > 1 and a large enough step, each step is one `par` region over chunks of
// hidden units; a chunk runs its slice of the recurrent GEMM with single_thread set and then
// its pointwise pass. The recurrent weight of each chunk is announced with Gemm::pack_b once
// per call. The GEMMs over all steps (input projection, weight and input gradients) are
// issued from the calling thread; their threading is the injected Gemm's business.
void wd_lstm_fwd_cpu(const WdLstmFwdParams& p, const Gemm& gemm, const ParallelFor& par = {});
void wd_lstm_bwd_cpu(const WdLstmBwdParams& p, const Gemm& gemm, const ParallelFor& par = {});

// CUDA kernels (csrc/kernels/cuda/lstm_{fwd,bwd}.cu): F32, BF16 and F16 (and F64).
// Everything is enqueued on p.stream; pointers are device pointers.
void wd_lstm_fwd_cuda(const WdLstmFwdParams& p, const Gemm& gemm);
void wd_lstm_bwd_cuda(const WdLstmBwdParams& p, const Gemm& gemm);

}  // namespace gulm
