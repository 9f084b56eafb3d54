// CPU kernels of the weight-dropped LSTM (contract and plan: gulm/lstm.h).
//
// The GEMMs are the injected Gemm's (MKL/oneDNN through ATen in the extension); this file owns
// the time loop and the fused pointwise passes. Those are written as plain loops over the
// hidden units with branch-free, inlinable math (a Cephes-style polynomial exp) so that GCC
// vectorises them; each hot loop is compiled three times (AVX-512, AVX2+FMA, baseline x86-64)
// through function-level target attributes and picked at run time, because the build must
// stay portable (no -march=native).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "gulm/lstm.h"
#include "gulm/macros.h"

#define GULM_AI inline __attribute__((always_inline))
#if defined(__x86_64__) || defined(__i386__)
#define GULM_X86 1
#define GULM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define GULM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define GULM_X86 0
#define GULM_TARGET_AVX512
#define GULM_TARGET_AVX2
#endif

namespace gulm {
namespace {

// ---- element types ----------------------------------------------------------------------

// bfloat16 storage: the upper half of an IEEE float.
struct bf16 {
  uint16_t bits;
};

template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

GULM_AI float ld(const float* p) { return *p; }
GULM_AI double ld(const double* p) { return *p; }
GULM_AI float ld(const bf16* p) { return __builtin_bit_cast(float, uint32_t(p->bits) << 16); }
GULM_AI void st(float* p, float v) { *p = v; }
GULM_AI void st(double* p, double v) { *p = v; }
// Round to nearest even (the rounding of torch's float -> bfloat16 for finite values).
GULM_AI void st(bf16* p, float v) {
  uint32_t u = __builtin_bit_cast(uint32_t, v);
  u += 0x7FFFu + ((u >> 16) & 1u);
  p->bits = uint16_t(u >> 16);
}

// ---- math ---------------------------------------------------------------------------------

// exp(x) for float: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, a degree-6 polynomial
// (Cephes expf, ~1 ulp), and 2^k built in the exponent bits. The clamp keeps 2^k a normal
// number, so no branches remain and the loop vectorises.
GULM_AI float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // round(x / ln2) with the 1.5 * 2^23 trick (exact for |x / ln2| < 2^22).
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  const float e = q * r * r + r + 1.0f;
  const uint32_t scale_bits = uint32_t(int32_t(k) + 127) << 23;
  return e * __builtin_bit_cast(float, scale_bits);
}

GULM_AI float sigmoid(float x) { return 1.0f / (1.0f + exp_f(-x)); }
// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7 everywhere, saturates cleanly.
GULM_AI float tanh_(float x) { return 2.0f / (1.0f + exp_f(-2.0f * x)) - 1.0f; }
GULM_AI double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
GULM_AI double tanh_(double x) { return std::tanh(x); }

// ---- pointwise passes ---------------------------------------------------------------------

template <class T>
struct FwdStep {
  int64_t B, H;
  int64_t j0, j1;         // the hidden units [j0, j1) of every row (a thread's share)
  T* G;                   // [B,4H] input projection (pre-activation); activated gates out
  const T* R;             // [B,4H] h_{t-1} @ w_rec^T
  const acc_t<T>* bias;   // [4H]
  const acc_t<T>* c_prev; // [B,H]
  acc_t<T>* c_out;        // [B,H], distinct from c_prev
  T* h;                   // [B,H]
  const int64_t* ids = nullptr;  // table mode: row b's projection is G + ids[b] * 4H (read only)
};

// kSave: write the activated gates back over G (the backward reads them).
template <class T, bool kSave>
GULM_AI void fwd_step_impl(const FwdStep<T>& s) {
  using A = acc_t<T>;
  const int64_t H = s.H;
  for (int64_t b = 0; b < s.B; ++b) {
    T* GULM_RESTRICT g = s.G + (s.ids ? s.ids[b] : b) * 4 * H;
    const T* GULM_RESTRICT r = s.R + b * 4 * H;
    const A* GULM_RESTRICT bias = s.bias;
    const A* GULM_RESTRICT cp = s.c_prev + b * H;
    A* GULM_RESTRICT co = s.c_out + b * H;
    T* GULM_RESTRICT h = s.h + b * H;
    // Restrict on locals is not reliably honoured after inlining; the arrays never overlap.
#pragma GCC ivdep
    for (int64_t j = s.j0; j < s.j1; ++j) {
      const A i = sigmoid(A(ld(g + j)) + A(ld(r + j)) + bias[j]);
      const A f = sigmoid(A(ld(g + H + j)) + A(ld(r + H + j)) + bias[H + j]);
      const A z = tanh_(A(ld(g + 2 * H + j)) + A(ld(r + 2 * H + j)) + bias[2 * H + j]);
      const A o = sigmoid(A(ld(g + 3 * H + j)) + A(ld(r + 3 * H + j)) + bias[3 * H + j]);
      const A c = f * cp[j] + i * z;
      co[j] = c;
      st(h + j, o * tanh_(c));
      if (kSave) {
        st(g + j, i);
        st(g + H + j, f);
        st(g + 2 * H + j, z);
        st(g + 3 * H + j, o);
      }
    }
  }
}

template <class T>
struct BwdStep {
  int64_t B, H;
  int64_t j0, j1;          // the hidden units [j0, j1) of every row (a thread's share)
  const T* gates;          // [B,4H] activated i, f, g, o of step t
  const acc_t<T>* c;       // [B,H] c_t
  const acc_t<T>* c_prev;  // [B,H] c_{t-1}
  const T* gy;             // [B,H] dL/dy_t
  const T* dh_rec;         // [B,H] dG_{t+1} @ w_rec (or grad_hT at the last step)
  acc_t<T>* dc;            // [B,H] in: dL/dc_t from step t+1; out: the same for c_{t-1}
  T* dG;                   // [B,4H] pre-activation gate gradients of step t
  acc_t<T>* db;            // [4H] += column sums of dG (columns split by j: no race)
};

template <class T>
GULM_AI void bwd_step_impl(const BwdStep<T>& s) {
  using A = acc_t<T>;
  const int64_t H = s.H;
  for (int64_t b = 0; b < s.B; ++b) {
    const T* GULM_RESTRICT a = s.gates + b * 4 * H;
    const A* GULM_RESTRICT c = s.c + b * H;
    const A* GULM_RESTRICT cp = s.c_prev + b * H;
    const T* GULM_RESTRICT gy = s.gy + b * H;
    const T* GULM_RESTRICT dhr = s.dh_rec + b * H;
    A* GULM_RESTRICT dc = s.dc + b * H;
    T* GULM_RESTRICT dg = s.dG + b * 4 * H;
    A* GULM_RESTRICT db = s.db;
    // Restrict on locals is not reliably honoured after inlining; the arrays never overlap.
#pragma GCC ivdep
    for (int64_t j = s.j0; j < s.j1; ++j) {
      const A i = ld(a + j), f = ld(a + H + j), z = ld(a + 2 * H + j), o = ld(a + 3 * H + j);
      const A tc = tanh_(c[j]);
      const A dh = A(ld(gy + j)) + A(ld(dhr + j));
      const A dct = dc[j] + dh * o * (A(1) - tc * tc);
      const A dgi = dct * z * i * (A(1) - i);
      const A dgf = dct * cp[j] * f * (A(1) - f);
      const A dgz = dct * i * (A(1) - z * z);
      const A dgo = dh * tc * o * (A(1) - o);
      dc[j] = dct * f;
      st(dg + j, dgi);
      st(dg + H + j, dgf);
      st(dg + 2 * H + j, dgz);
      st(dg + 3 * H + j, dgo);
      db[j] += dgi;
      db[H + j] += dgf;
      db[2 * H + j] += dgz;
      db[3 * H + j] += dgo;
    }
  }
}

// out[j, r] = w[r, j] * mask[r, j] for the columns j in [cb, ce): w [R,C] -> out [C,R], in
// tiles that stay in L1.
template <class T>
GULM_AI void transpose_mask_impl(int64_t R, int64_t C, int64_t cb, int64_t ce,
                                 const T* GULM_RESTRICT w, const T* GULM_RESTRICT mask,
                                 T* GULM_RESTRICT out) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < R; r0 += kTile) {
    const int64_t r1 = std::min(R, r0 + kTile);
    for (int64_t c0 = cb; c0 < ce; c0 += kTile) {
      const int64_t c1 = std::min(ce, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) {
          if (mask) {
            st(out + c * R + r, acc_t<T>(ld(w + r * C + c)) * acc_t<T>(ld(mask + r * C + c)));
          } else {
            out[c * R + r] = w[r * C + c];
          }
        }
      }
    }
  }
}

// out = w * mask elementwise over n (w and out distinct).
template <class T>
GULM_AI void mul_mask_impl(int64_t n, const T* GULM_RESTRICT w, const T* GULM_RESTRICT mask,
                           T* GULM_RESTRICT out) {
  using A = acc_t<T>;
#pragma GCC ivdep
  for (int64_t k = 0; k < n; ++k) st(out + k, A(ld(w + k)) * A(ld(mask + k)));
}

// acc = (acc + y) * mask elementwise over n, in place; y and mask may be null.
template <class T>
GULM_AI void add_mul_inplace_impl(int64_t n, T* GULM_RESTRICT acc, const T* GULM_RESTRICT y,
                                  const T* GULM_RESTRICT mask) {
  using A = acc_t<T>;
  if (y && mask) {
#pragma GCC ivdep
    for (int64_t k = 0; k < n; ++k) st(acc + k, (A(ld(acc + k)) + A(ld(y + k))) * A(ld(mask + k)));
  } else if (y) {
#pragma GCC ivdep
    for (int64_t k = 0; k < n; ++k) st(acc + k, A(ld(acc + k)) + A(ld(y + k)));
  } else if (mask) {
#pragma GCC ivdep
    for (int64_t k = 0; k < n; ++k) st(acc + k, A(ld(acc + k)) * A(ld(mask + k)));
  }
}

// ---- run-time choice of the vectorised variant ---------------------------------------------

CpuIsa detect_isa() {
#if GULM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return CpuIsa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::Avx2;
#endif
  return CpuIsa::Baseline;
}

CpuIsa best_isa() {
  static const CpuIsa best = detect_isa();
  return best;
}

std::atomic<int32_t> g_isa{int32_t(CpuIsa::Auto)};

CpuIsa active_isa() {
  const auto v = CpuIsa(g_isa.load(std::memory_order_relaxed));
  return v == CpuIsa::Auto ? best_isa() : v;
}

// Each hot function is instantiated for the three ISAs; the *_impl bodies are always_inline so
// they are compiled inside each target context.
#define GULM_MULTIVERSION(NAME, TPARAMS, TARGS, PARAMS, ARGS)                           \
  template <TPARAMS>                                                                    \
  GULM_TARGET_AVX512 void NAME##_avx512 PARAMS { NAME##_impl<TARGS> ARGS; }             \
  template <TPARAMS>                                                                    \
  GULM_TARGET_AVX2 void NAME##_avx2 PARAMS { NAME##_impl<TARGS> ARGS; }                 \
  template <TPARAMS>                                                                    \
  void NAME##_base PARAMS { NAME##_impl<TARGS> ARGS; }                                  \
  template <TPARAMS>                                                                    \
  void NAME PARAMS {                                                                    \
    switch (active_isa()) {                                                             \
      case CpuIsa::Avx512: NAME##_avx512<TARGS> ARGS; break;                            \
      case CpuIsa::Avx2: NAME##_avx2<TARGS> ARGS; break;                                \
      default: NAME##_base<TARGS> ARGS; break;                                          \
    }                                                                                   \
  }

#define GULM_COMMA ,
GULM_MULTIVERSION(fwd_step, class T GULM_COMMA bool kSave, T GULM_COMMA kSave,
                  (const FwdStep<T>& s), (s))
GULM_MULTIVERSION(bwd_step, class T, T, (const BwdStep<T>& s), (s))
GULM_MULTIVERSION(transpose_mask, class T, T,
                  (int64_t R, int64_t C, int64_t cb, int64_t ce, const T* w, const T* mask,
                   T* out),
                  (R, C, cb, ce, w, mask, out))
GULM_MULTIVERSION(mul_mask, class T, T, (int64_t n, const T* w, const T* mask, T* out),
                  (n, w, mask, out))
GULM_MULTIVERSION(add_mul_inplace, class T, T, (int64_t n, T* acc, const T* y, const T* mask),
                  (n, acc, y, mask))
#undef GULM_COMMA
#undef GULM_MULTIVERSION

// ---- small helpers ------------------------------------------------------------------------

// Reads element k of a c0 / grad_cT array of `st` into the acc type.
template <class A>
A ld_state(const void* p, DType sd, int64_t k) {
  switch (sd) {
    case DType::F32: return A(static_cast<const float*>(p)[k]);
    case DType::F64: return A(static_cast<const double*>(p)[k]);
    case DType::BF16: return A(ld(static_cast<const bf16*>(p) + k));
    default: throw std::invalid_argument("gulm::wd_lstm (CPU): unsupported state dtype");
  }
}

template <class A>
void st_state(void* p, DType sd, int64_t k, A v) {
  switch (sd) {
    case DType::F32: static_cast<float*>(p)[k] = float(v); return;
    case DType::F64: static_cast<double*>(p)[k] = double(v); return;
    case DType::BF16: st(static_cast<bf16*>(p) + k, float(v)); return;
    default: throw std::invalid_argument("gulm::wd_lstm (CPU): unsupported state dtype");
  }
}

template <class A>
void load_state(const void* src, DType sd, int64_t n, A* dst) {
  if (!src) {
    std::fill(dst, dst + n, A(0));
    return;
  }
  for (int64_t k = 0; k < n; ++k) dst[k] = ld_state<A>(src, sd, k);
}

template <class A>
void store_state(void* dst, DType sd, int64_t n, const A* src) {
  for (int64_t k = 0; k < n; ++k) st_state<A>(dst, sd, k, src[k]);
}

template <class T>
GemmArgs gemm_args(DType dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
  GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = ldc;
  g.alpha = 1.f;
  g.beta = 0.f;
  g.dtype = dt;
  return g;
}

// Column ranges per task in the step passes: at least ~4K elements per task (a multiple of a
// cache line of floats). Below that a fork/join per step costs more than it saves (measured
// on 2 cores: +3% for B=32, H=256; nothing for H=64, which stays serial).
int64_t column_grain(int64_t B) {
  const int64_t g = (4096 / std::max<int64_t>(B, 1) + 15) / 16 * 16;
  return std::max<int64_t>(g, 32);
}

constexpr int64_t kElementwiseGrain = int64_t(1) << 16;

template <class T>
void mul_mask_par(const ParallelFor& par, int64_t n, const T* w, const T* mask, T* out) {
  par(n, kElementwiseGrain,
      [&](int64_t b, int64_t e) { mul_mask<T>(e - b, w + b, mask + b, out + b); });
}

template <class T>
void add_mul_inplace_par(const ParallelFor& par, int64_t n, T* acc, const T* y, const T* mask) {
  par(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    add_mul_inplace<T>(e - b, acc + b, y ? y + b : nullptr, mask ? mask + b : nullptr);
  });
}

template <class T>
T* ws_at(void* base, size_t off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

// ---- forward --------------------------------------------------------------------------------

template <class T>
void fwd(const WdLstmFwdParams& p, const Gemm& gemm, const ParallelFor& par) {
  using A = acc_t<T>;
  const int64_t T_ = p.T, B = p.B, I = p.I, H = p.H, G4 = 4 * H;
  const bool save = p.gates != nullptr;
  const bool table = p.ids != nullptr;  // x is a [V,4H] projection table (never with save)
  const WdLstmFwdWorkspace ws = wd_lstm_fwd_workspace(T_, B, H, p.dtype, save);
  T* w_rec = ws_at<T>(p.workspace, ws.w_rec);
  A* bias = ws_at<A>(p.workspace, ws.bias);
  A* c_a = ws_at<A>(p.workspace, ws.c);
  A* c_b = ws_at<A>(p.workspace, ws.c2);
  T* rec = ws_at<T>(p.workspace, ws.rec);
  const T* x = static_cast<const T*>(p.x);
  const T* w_ih = static_cast<const T*>(p.w_ih);
  const T* b_ih = static_cast<const T*>(p.b_ih);
  const T* b_hh = static_cast<const T*>(p.b_hh);
  T* y = static_cast<T*>(p.y);
  T* gates = static_cast<T*>(p.gates);
  A* cell = static_cast<A*>(p.cell);

  // The dropped recurrent weight, once per call, transposed to [H,4H]: h @ w_rec^T is then a
  // plain no-transpose GEMM, the fastest layout for MKL at these shapes.
  par(H, 32, [&](int64_t cb, int64_t ce) {
    transpose_mask<T>(G4, H, cb, ce, static_cast<const T*>(p.w_hh), static_cast<const T*>(p.mask),
                      w_rec);
  });
  for (int64_t k = 0; k < G4; ++k) bias[k] = A(ld(b_ih + k)) + A(ld(b_hh + k));
  load_state<A>(p.c0, p.state_dtype, B * H, c_a);

  const T* h_prev = static_cast<const T*>(p.h0);
  const A* c_prev = c_a;
  const int64_t grain = column_grain(B);
  for (int64_t t0 = 0; t0 < T_; t0 += ws.chunk) {
    const int64_t n = std::min(ws.chunk, T_ - t0);
    T* G = save ? gates + t0 * B * G4 : ws_at<T>(p.workspace, ws.gx);
    // Input projection of n steps at once: G = x[t0:t0+n] @ w_ih^T (table mode: rows of x).
    if (!table) {
      gemm(gemm_args<T>(p.dtype, false, true, n * B, G4, I, x + t0 * B * I, I, w_ih, I, G, G4));
    }
    for (int64_t s = 0; s < n; ++s) {
      const int64_t t = t0 + s;
      gemm(gemm_args<T>(p.dtype, false, false, B, G4, H, h_prev, H, w_rec, G4, rec, G4));
      A* c_out = save ? cell + t * B * H : (c_prev == c_a ? c_b : c_a);
      T* y_t = y + t * B * H;
      // Table mode never writes G (kSave is false), so reading x in place is safe.
      T* G_t = table ? const_cast<T*>(x) : G + s * B * G4;
      const int64_t* ids_t = table ? p.ids + t * B : nullptr;
      par(H, grain, [&](int64_t j0, int64_t j1) {
        const FwdStep<T> step{B, H, j0, j1, G_t, rec, bias, c_prev, c_out, y_t, ids_t};
        if (save) {
          fwd_step<T, true>(step);
        } else {
          fwd_step<T, false>(step);
        }
      });
      h_prev = y_t;
      c_prev = c_out;
    }
  }
  std::memcpy(p.hT, h_prev, size_t(B * H) * sizeof(T));
  store_state<A>(p.cT, p.state_dtype, B * H, c_prev);
}

// ---- backward -------------------------------------------------------------------------------

template <class T>
void bwd(const WdLstmBwdParams& p, const Gemm& gemm, const ParallelFor& par) {
  using A = acc_t<T>;
  const int64_t T_ = p.T, B = p.B, I = p.I, H = p.H, G4 = 4 * H;
  const WdLstmBwdWorkspace ws = wd_lstm_bwd_workspace(T_, B, H, p.dtype);
  T* wbuf = ws_at<T>(p.workspace, ws.w_rec);
  T* dG = ws_at<T>(p.workspace, ws.dgates);
  T* dh = ws_at<T>(p.workspace, ws.dh);
  A* dc = ws_at<A>(p.workspace, ws.dc);
  A* c0 = ws_at<A>(p.workspace, ws.c0);
  A* db = ws_at<A>(p.workspace, ws.db);
  const T* w_hh = static_cast<const T*>(p.w_hh);
  const T* mask = static_cast<const T*>(p.mask);
  const T* gates = static_cast<const T*>(p.gates);
  const A* cell = static_cast<const A*>(p.cell);
  const T* gy = static_cast<const T*>(p.grad_y);
  const T* y = static_cast<const T*>(p.y);

  // The dropped weight in its natural [4H,H] layout: dG @ w_rec is then a no-transpose GEMM.
  const T* w_rec = w_hh;
  if (mask) {
    mul_mask_par<T>(par, G4 * H, w_hh, mask, wbuf);
    w_rec = wbuf;
  }
  if (p.grad_hT) {
    std::memcpy(dh, p.grad_hT, size_t(B * H) * sizeof(T));
  } else {
    std::memset(static_cast<void*>(dh), 0, size_t(B * H) * sizeof(T));
  }
  load_state<A>(p.grad_cT, p.state_dtype, B * H, dc);
  load_state<A>(p.c0, p.state_dtype, B * H, c0);
  std::fill(db, db + G4, A(0));

  const int64_t grain = column_grain(B);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    par(H, grain, [&](int64_t j0, int64_t j1) {
      const BwdStep<T> step{B,
                            H,
                            j0,
                            j1,
                            gates + t * B * G4,
                            cell + t * B * H,
                            t > 0 ? cell + (t - 1) * B * H : c0,
                            gy + t * B * H,
                            dh,
                            dc,
                            dG + t * B * G4,
                            db};
      bwd_step<T>(step);
    });
    // dh_{t-1} = dG_t @ w_rec; at t == 0 that is dh0 itself.
    T* dst = t > 0 ? dh : static_cast<T*>(p.dh0);
    gemm(gemm_args<T>(p.dtype, false, false, B, H, G4, dG + t * B * G4, G4, w_rec, H, dst, H));
  }
  if (T_ == 0) std::memcpy(p.dh0, dh, size_t(B * H) * sizeof(T));
  store_state<A>(p.dc0, p.state_dtype, B * H, dc);
  T* dbo = static_cast<T*>(p.db);
  for (int64_t k = 0; k < G4; ++k) st(dbo + k, db[k]);

  // Weight and input gradients over all steps at once.
  const int64_t TB = T_ * B;
  const T* x = static_cast<const T*>(p.x);
  gemm(gemm_args<T>(p.dtype, false, false, TB, I, G4, dG, G4, static_cast<const T*>(p.w_ih), I,
                    static_cast<T*>(p.dx), I));
  gemm(gemm_args<T>(p.dtype, true, false, G4, I, TB, dG, G4, x, I, static_cast<T*>(p.dw_ih), I));
  // dw_hh = dG^T @ [h0; y[:-1]] as two GEMMs (no concatenated copy), summed in the mask pass.
  T* dw_hh = static_cast<T*>(p.dw_hh);
  if (T_ == 0) {
    std::memset(static_cast<void*>(dw_hh), 0, size_t(G4 * H) * sizeof(T));
    return;
  }
  gemm(gemm_args<T>(p.dtype, true, false, G4, H, B, dG, G4, static_cast<const T*>(p.h0), H, wbuf,
                    H));
  if (T_ > 1) {
    gemm(gemm_args<T>(p.dtype, true, false, G4, H, (T_ - 1) * B, dG + B * G4, G4, y, H, dw_hh,
                      H));
    add_mul_inplace_par<T>(par, G4 * H, dw_hh, wbuf, mask);
  } else {
    std::memcpy(static_cast<void*>(dw_hh), wbuf, size_t(G4 * H) * sizeof(T));
    add_mul_inplace_par<T>(par, G4 * H, dw_hh, nullptr, mask);
  }
}

template <class Fn>
void dispatch(DType dt, const char* what, Fn&& fn) {
  switch (dt) {
    case DType::F32: fn(float{}); return;
    case DType::BF16: fn(bf16{}); return;
    case DType::F64: fn(double{}); return;
    default: throw std::invalid_argument(std::string(what) + ": unsupported dtype on CPU");
  }
}

}  // namespace

void wd_lstm_fwd_cpu(const WdLstmFwdParams& p, const Gemm& gemm, const ParallelFor& par) {
  dispatch(p.dtype, "gulm::wd_lstm", [&](auto tag) { fwd<decltype(tag)>(p, gemm, par); });
}

void wd_lstm_bwd_cpu(const WdLstmBwdParams& p, const Gemm& gemm, const ParallelFor& par) {
  dispatch(p.dtype, "gulm::wd_lstm_backward",
           [&](auto tag) { bwd<decltype(tag)>(p, gemm, par); });
}

void set_cpu_isa(CpuIsa isa) {
  if (isa != CpuIsa::Auto && int32_t(isa) > int32_t(best_isa())) isa = best_isa();
  g_isa.store(int32_t(isa), std::memory_order_relaxed);
}

CpuIsa cpu_isa() { return active_isa(); }

}  // namespace gulm
