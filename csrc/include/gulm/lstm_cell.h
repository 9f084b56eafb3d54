// The LSTM cell of one hidden unit, forward and backward: the one definition of the gate math
// that the CPU kernel (csrc/kernels/cpu/lstm.cpp) and the CUDA kernels
// (csrc/kernels/cuda/lstm_{fwd,bwd}.cu) both inline, as kmer.h does for the k-mer arithmetic.
//
// Gate order (i, f, g, o) and layout of torch.nn.LSTM: a row of pre-activations, activated
// gates or gate gradients is [4H], gate k of unit j at k*H + j.
//
// `M` is the caller's math and element policy, so that each device keeps its own fast
// primitives (a vectorisable polynomial exp on the CPU, expf/tanhf on the GPU):
//   M::sigmoid(A), M::tanh(A)   -> A   for the acc type A (float, or double for F64)
//   M::ld(const T*)              -> a value convertible to A (T: the storage type)
//   M::st(T*, A)                 stores with the storage type's rounding
#pragma once
#include <cstdint>

#include "gulm/macros.h"

namespace gulm {

// Pre-activation gate gradients of one unit (dL/d(i, f, g, o) before the nonlinearities).
template <class A>
struct LstmGateGrads {
  A i, f, g, o;
};

// Forward of one hidden unit: gates = act(g[k*gs] + r[k*rs] + bias[k*bs]) for k = i, f, g, o,
// c = f c_prev + i g, *h = o tanh(c); returns c. g: the unit's input projection (gate k at
// g[k*gs]; kSave: the activated gates are written back over it, for the backward), r: its
// recurrent projection h_{t-1} @ w^T (gate k at r[k*rs]), bias: b_ih + b_hh in acc (gate k
// at bias[k*bs]). In the [4H] row layout all three strides are H and the pointers are
// offset by the unit index j.
template <class M, bool kSave, class T, class A>
GULM_HOST_DEVICE GULM_FORCEINLINE A lstm_cell_forward(T* g, int64_t gs, const T* r, int64_t rs,
                                                      const A* bias, int64_t bs, A c_prev,
                                                      T* h) {
  const A i = M::sigmoid(A(M::ld(g)) + A(M::ld(r)) + bias[0]);
  const A f = M::sigmoid(A(M::ld(g + gs)) + A(M::ld(r + rs)) + bias[bs]);
  const A z = M::tanh(A(M::ld(g + 2 * gs)) + A(M::ld(r + 2 * rs)) + bias[2 * bs]);
  const A o = M::sigmoid(A(M::ld(g + 3 * gs)) + A(M::ld(r + 3 * rs)) + bias[3 * bs]);
  const A c = f * c_prev + i * z;
  M::st(h, o * M::tanh(c));
  if (kSave) {
    M::st(g, i);
    M::st(g + gs, f);
    M::st(g + 2 * gs, z);
    M::st(g + 3 * gs, o);
  }
  return c;
}

// Backward of one hidden unit at one step. a: its activated gates saved by the forward (gate
// k at a[k*H]), c / c_prev: the cell state of this step and the one before, dh: dL/dh_t (from
// the output and from the next step's recurrence), dc: in dL/dc_t from the next step, out
// dL/dc_{t-1}. Writes the pre-activation gradients to dg[k*H] and returns them (for the bias
// gradient).
template <class M, class T, class A>
GULM_HOST_DEVICE GULM_FORCEINLINE LstmGateGrads<A> lstm_cell_backward(const T* a, int64_t H,
                                                                      A c, A c_prev, A dh,
                                                                      A& dc, T* dg) {
  const A i = M::ld(a), f = M::ld(a + H), z = M::ld(a + 2 * H), o = M::ld(a + 3 * H);
  const A tc = M::tanh(c);
  const A dct = dc + dh * o * (A(1) - tc * tc);
  const LstmGateGrads<A> d{dct * z * i * (A(1) - i), dct * c_prev * f * (A(1) - f),
                           dct * i * (A(1) - z * z), dh * tc * o * (A(1) - o)};
  dc = dct * f;
  M::st(dg, d.i);
  M::st(dg + H, d.f);
  M::st(dg + 2 * H, d.g);
  M::st(dg + 3 * H, d.o);
  return d;
}

}  // namespace gulm
