// CPU kernels of the weight-dropped LSTM (contract and plan: gulm/lstm.h).
//
// The GEMMs are the injected Gemm's (MKL or oneDNN through ATen in the extension); this file
// owns the time loop and the fused pointwise passes. The cell math is gulm/lstm_cell.h (shared
// with the CUDA kernels) over CpuMath below: branch-free, inlinable primitives (a
// Cephes-style polynomial exp) so that GCC vectorises the loops over hidden units; each hot
// loop is compiled three times (AVX-512, AVX2+FMA, baseline x86-64) through function-level
// target attributes and picked at run time by the ISA selector (gulm/cpu.h), because the
// build must stay portable (no -march=native). The build passes -fno-trapping-math: with GCC's
// default -ftrapping-math the exp's clamps stay branches and only the AVX-512 variant vectorises.
//
// Threads: each time step is one parallel region over chunks of hidden units. A chunk runs
// its own slice of the recurrent GEMM (single-threaded, on the thread that took the chunk)
// and then the pointwise pass over the same units, so a step has one fork/join instead of a
// threaded GEMM's barrier plus the pointwise pass's. There is one chunk per thread; a chunk
// that a descheduled thread has not claimed yet is taken by the others.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "gulm/cpu.h"
#include "gulm/lstm.h"
#include "gulm/lstm_cell.h"
#include "gulm/macros.h"

#define GULM_AI inline __attribute__((always_inline))
#if defined(__x86_64__) || defined(__i386__)
#define GULM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define GULM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define GULM_TARGET_AVX512
#define GULM_TARGET_AVX2
#endif

namespace gulm {
namespace {

// ---- element types and math ----------------------------------------------------------------

// bfloat16 storage: the upper half of an IEEE float.
struct bf16 {
  uint16_t bits;
};

template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

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

// The math and element policy of gulm/lstm_cell.h on the CPU.
struct CpuMath {
  static GULM_AI float sigmoid(float x) { return 1.0f / (1.0f + exp_f(-x)); }
  // tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7 everywhere, saturates cleanly.
  static GULM_AI float tanh(float x) { return 2.0f / (1.0f + exp_f(-2.0f * x)) - 1.0f; }
  static GULM_AI double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
  static GULM_AI double tanh(double x) { return std::tanh(x); }
  static GULM_AI float ld(const float* p) { return *p; }
  static GULM_AI double ld(const double* p) { return *p; }
  static GULM_AI float ld(const bf16* p) {
    return __builtin_bit_cast(float, uint32_t(p->bits) << 16);
  }
  static GULM_AI void st(float* p, float v) { *p = v; }
  static GULM_AI void st(double* p, double v) { *p = v; }
  // Round to nearest even (the rounding of torch's float -> bfloat16 for finite values).
  static GULM_AI void st(bf16* p, float v) {
    uint32_t u = __builtin_bit_cast(uint32_t, v);
    u += 0x7FFFu + ((u >> 16) & 1u);
    p->bits = uint16_t(u >> 16);
  }
};

template <class T>
GULM_AI acc_t<T> ld(const T* p) {
  return CpuMath::ld(p);
}
template <class T>
GULM_AI void st(T* p, acc_t<T> v) {
  CpuMath::st(p, v);
}

// ---- chunks of hidden units ----------------------------------------------------------------

// The units [0, H) in `count` chunks of `width` (a multiple of 16 floats, one cache line)
// except the last. The recurrent weight of the forward is laid out chunk by chunk (below), so
// that a chunk's four gates are one contiguous block of GEMM columns.
struct UnitChunks {
  int64_t H = 0, width = 0, count = 0;
  int64_t begin(int64_t c) const { return c * width; }
  int64_t end(int64_t c) const { return std::min(H, (c + 1) * width); }
};

// One chunk (a serial step) below ~2M multiply-adds per step, where a fork/join costs more
// than it saves (measured on 2 cores: B=32, H=256 gains a few %, H=64 nothing). Otherwise one
// chunk per thread, at least 64 units wide. Wider chunks make wider per-chunk GEMMs: on a
// 2-vCPU Zen 5, AWD training (400/1150/3, B=64) ran 1.08x faster in fp32 (7 of 7 alternating
// process pairs) and 1.22x in bf16 (3 of 4) with 1 chunk per thread than with 3, and no
// slower beside a busy process.
constexpr int64_t kMaxChunks = 192;

UnitChunks unit_chunks(int64_t B, int64_t H, int32_t threads) {
  constexpr int64_t kMinParallelMacs = int64_t(2) << 20;
  constexpr int64_t kChunksPerThread = 1;
  int64_t count = 1;
  if (threads > 1 && B * H * 4 * H >= kMinParallelMacs) {
    count = std::min<int64_t>({int64_t(threads) * kChunksPerThread, H / 64, kMaxChunks});
    count = std::max<int64_t>(count, 1);
  }
  UnitChunks u;
  u.H = H;
  u.width = count == 1 ? std::max<int64_t>(H, 1) : ((H + count - 1) / count + 15) / 16 * 16;
  u.count = H > 0 ? (H + u.width - 1) / u.width : 0;
  return u;
}

// ---- pointwise passes ---------------------------------------------------------------------

template <class T>
struct FwdStep {
  int64_t B, H;
  int64_t j0, j1;         // the hidden units [j0, j1) of every row (one chunk)
  T* G;                   // [B,4H] input projection (pre-activation); activated gates out
  const T* R;             // [B, row stride 4H] h_{t-1} @ w_rec^T of the chunk: gate k of unit j
                          // at R[b*4H + k*(j1-j0) + (j-j0)]
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
  const int64_t H = s.H, w = s.j1 - s.j0;
  for (int64_t b = 0; b < s.B; ++b) {
    T* GULM_RESTRICT g = s.G + (s.ids ? s.ids[b] : b) * 4 * H;
    const T* GULM_RESTRICT r = s.R + b * 4 * H - s.j0;
    const A* GULM_RESTRICT cp = s.c_prev + b * H;
    A* GULM_RESTRICT co = s.c_out + b * H;
    T* GULM_RESTRICT h = s.h + b * H;
    // Restrict on locals is not reliably honoured after inlining; the arrays never overlap.
#pragma GCC ivdep
    for (int64_t j = s.j0; j < s.j1; ++j) {
      co[j] = lstm_cell_forward<CpuMath, kSave>(g + j, H, r + j, w, s.bias + j, H, cp[j], h + j);
    }
  }
}

template <class T>
struct BwdStep {
  int64_t B, H;
  int64_t j0, j1;          // the hidden units [j0, j1) of every row (one chunk)
  const T* gates;          // [B,4H] activated i, f, g, o of step t
  const acc_t<T>* c;       // [B,H] c_t
  const acc_t<T>* c_prev;  // [B,H] c_{t-1}
  const T* gy;             // [B,H] dL/dy_t
  const T* dh_rec;         // [B,H] dG_{t+1} @ w_rec (or grad_hT at the last step)
  acc_t<T>* dc;            // [B,H] in: dL/dc_t from step t+1; out: the same for c_{t-1}
  T* dG;                   // [B,4H] pre-activation gate gradients of step t
  acc_t<T>* db;            // [4H] += column sums of dG (columns split by chunk: no race)
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
      const A dh = A(ld(gy + j)) + A(ld(dhr + j));
      const LstmGateGrads<A> d =
          lstm_cell_backward<CpuMath>(a + j, H, c[j], cp[j], dh, dc[j], dg + j);
      db[j] += d.i;
      db[H + j] += d.f;
      db[2 * H + j] += d.g;
      db[3 * H + j] += d.o;
    }
  }
}

// dst[c, r] = src[r, c] * mask[r, c] (mask may be null) for r in [0, R) and c in [cb, ce):
// src and mask have row stride lds, dst row stride ldd; in tiles that stay in L1.
template <class T>
GULM_AI void transpose_mask_impl(int64_t R, int64_t cb, int64_t ce, const T* GULM_RESTRICT src,
                                 const T* GULM_RESTRICT mask, int64_t lds, T* GULM_RESTRICT dst,
                                 int64_t ldd) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < R; r0 += kTile) {
    const int64_t r1 = std::min(R, r0 + kTile);
    for (int64_t c0 = cb; c0 < ce; c0 += kTile) {
      const int64_t c1 = std::min(ce, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) {
          if (mask) {
            st(dst + c * ldd + r, acc_t<T>(ld(src + r * lds + c)) * acc_t<T>(ld(mask + r * lds + c)));
          } else {
            dst[c * ldd + r] = src[r * lds + c];
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
    switch (cpu_isa()) {                                                                \
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
                  (int64_t R, int64_t cb, int64_t ce, const T* src, const T* mask, int64_t lds,
                   T* dst, int64_t ldd),
                  (R, cb, ce, src, mask, lds, dst, ldd))
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

// Runs body(c) for every chunk: on this thread when there is one chunk (then its GEMM may use
// all threads), else through the ParallelFor, one task per chunk.
template <class F>
void for_each_chunk(const ParallelFor& par, const UnitChunks& u, F&& body) {
  if (u.count == 1) {
    body(int64_t(0));
    return;
  }
  par(u.count, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) body(c);
  });
}

// The per-chunk recurrent GEMMs of a layer (no allocation: at most kMaxChunks). Their B
// operand is announced once (pack_b); each step fills in A.
struct ChunkGemms {
  GemmArgs args[kMaxChunks];

  template <class MakeArgs>
  ChunkGemms(const Gemm& gemm, const UnitChunks& u, int64_t uses, MakeArgs&& make) {
    for (int64_t c = 0; c < u.count; ++c) {
      GemmArgs& g = args[c];
      g = make(u.begin(c), u.end(c));
      g.single_thread = u.count > 1;
      g.b_slot = gemm.pack_b(g, uses);
    }
  }

  GemmArgs with_a(int64_t c, const void* a) const {
    GemmArgs g = args[c];
    g.a = a;
    return g;
  }
};

// ---- forward --------------------------------------------------------------------------------

template <class T>
void fwd(const WdLstmFwdParams& p, const Gemm& gemm, const ParallelFor& par) {
  using A = acc_t<T>;
  const int64_t T_ = p.T, B = p.B, I = p.I, H = p.H, G4 = 4 * H;
  const WdLstmFwdArrays<T, A> a = wd_lstm_fwd_arrays<T, A>(p);
  const bool save = a.gates != nullptr;
  const bool table = p.ids != nullptr;  // x is a [V,4H] projection table (never with save)
  const UnitChunks u = unit_chunks(B, H, par.threads);

  // The dropped recurrent weight, once per call, transposed to [H,4H] with its columns grouped
  // by chunk: gate k of unit j (chunk [j0,j1)) is column 4*j0 + k*(j1-j0) + (j-j0). A chunk's
  // slice of h @ w_rec^T is then one no-transpose GEMM over contiguous columns, and with one
  // chunk this is the plain (w_hh * mask)^T.
  par(H, 32, [&](int64_t cb, int64_t ce) {
    for (int64_t c = 0; c < u.count; ++c) {
      const int64_t j0 = u.begin(c), w = u.end(c) - j0;
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t row = (k * H + j0) * H;
        transpose_mask<T>(w, cb, ce, a.w_hh + row, a.mask ? a.mask + row : nullptr, H,
                          a.w_rec + 4 * j0 + k * w, G4);
      }
    }
  });
  for (int64_t k = 0; k < G4; ++k) a.bias[k] = A(ld(a.b_ih + k)) + A(ld(a.b_hh + k));
  load_state<A>(p.c0, p.state_dtype, B * H, a.c);

  const ChunkGemms rec_gemms(gemm, u, T_, [&](int64_t j0, int64_t j1) {
    return gemm_args(p.dtype, false, false, B, 4 * (j1 - j0), H, a.h0, H, a.w_rec + 4 * j0, G4,
                     a.rec + 4 * j0, G4);
  });

  const T* h_prev = a.h0;
  const A* c_prev = a.c;
  for (int64_t t0 = 0; t0 < T_; t0 += a.ws.chunk) {
    const int64_t n = std::min(a.ws.chunk, T_ - t0);
    T* G = save ? a.gates + t0 * B * G4 : a.gx;
    // Input projection of n steps at once: G = x[t0:t0+n] @ w_ih^T (table mode: rows of x).
    if (!table) {
      gemm(gemm_args(p.dtype, false, true, n * B, G4, I, a.x + t0 * B * I, I, a.w_ih, I, G, G4));
    }
    for (int64_t s = 0; s < n; ++s) {
      const int64_t t = t0 + s;
      A* c_out = save ? a.cell + t * B * H : (c_prev == a.c ? a.c2 : a.c);
      T* y_t = a.y + t * B * H;
      // Table mode never writes G (kSave is false), so reading x in place is safe.
      T* G_t = table ? const_cast<T*>(a.x) : G + s * B * G4;
      const int64_t* ids_t = table ? p.ids + t * B : nullptr;
      for_each_chunk(par, u, [&](int64_t c) {
        gemm(rec_gemms.with_a(c, h_prev));
        const int64_t j0 = u.begin(c);
        const FwdStep<T> step{B, H, j0, u.end(c), G_t, a.rec + 4 * j0, a.bias, c_prev, c_out, y_t, ids_t};
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
  const WdLstmBwdArrays<T, A> a = wd_lstm_bwd_arrays<T, A>(p);
  const UnitChunks u = unit_chunks(B, H, par.threads);
  T* dG = a.dgates;

  // The dropped weight in its natural [4H,H] layout: dG @ w_rec[:, chunk] is then a
  // no-transpose GEMM over a column slice.
  const T* w_rec = a.w_hh;
  if (a.mask) {
    mul_mask_par<T>(par, G4 * H, a.w_hh, a.mask, a.w_rec);
    w_rec = a.w_rec;
  }
  if (p.grad_hT) {
    std::memcpy(a.dh, p.grad_hT, size_t(B * H) * sizeof(T));
  } else {
    std::memset(static_cast<void*>(a.dh), 0, size_t(B * H) * sizeof(T));
  }
  load_state<A>(p.grad_cT, p.state_dtype, B * H, a.dc);
  load_state<A>(p.c0, p.state_dtype, B * H, a.c0);
  std::fill(a.db_acc, a.db_acc + G4, A(0));

  const ChunkGemms dh_gemms(gemm, u, T_ - 1, [&](int64_t j0, int64_t j1) {
    return gemm_args(p.dtype, false, false, B, j1 - j0, G4, dG, G4, w_rec + j0, H, a.dh + j0, H);
  });

  for (int64_t t = T_ - 1; t >= 0; --t) {
    for_each_chunk(par, u, [&](int64_t c) {
      // dh_t of this chunk's units = dG_{t+1} @ w_rec[:, chunk] (grad_hT at the last step).
      if (t < T_ - 1) gemm(dh_gemms.with_a(c, dG + (t + 1) * B * G4));
      const BwdStep<T> step{B, H, u.begin(c), u.end(c), a.gates + t * B * G4,
                            a.cell + t * B * H, t > 0 ? a.cell + (t - 1) * B * H : a.c0,
                            a.grad_y + t * B * H, a.dh, a.dc, dG + t * B * G4, a.db_acc};
      bwd_step<T>(step);
    });
  }
  // dh0 = dG_0 @ w_rec (grad_hT itself when there are no steps).
  if (T_ > 0) {
    gemm(gemm_args(p.dtype, false, false, B, H, G4, dG, G4, w_rec, H, a.dh0, H));
  } else {
    std::memcpy(a.dh0, a.dh, size_t(B * H) * sizeof(T));
  }
  store_state<A>(p.dc0, p.state_dtype, B * H, a.dc);
  for (int64_t k = 0; k < G4; ++k) st(a.db + k, a.db_acc[k]);

  // Weight and input gradients over all steps at once.
  const int64_t TB = T_ * B;
  gemm(gemm_args(p.dtype, false, false, TB, I, G4, dG, G4, a.w_ih, I, a.dx, I));
  gemm(gemm_args(p.dtype, true, false, G4, I, TB, dG, G4, a.x, I, a.dw_ih, I));
  // dw_hh = dG^T @ [h0; y[:-1]] as two GEMMs (no concatenated copy), summed in the mask pass
  // (the first one into the w_rec buffer, no longer needed).
  if (T_ == 0) {
    std::memset(static_cast<void*>(a.dw_hh), 0, size_t(G4 * H) * sizeof(T));
    return;
  }
  gemm(gemm_args(p.dtype, true, false, G4, H, B, dG, G4, a.h0, H, a.w_rec, H));
  if (T_ > 1) {
    gemm(gemm_args(p.dtype, true, false, G4, H, (T_ - 1) * B, dG + B * G4, G4, a.y, H, a.dw_hh, H));
    add_mul_inplace_par<T>(par, G4 * H, a.dw_hh, a.w_rec, a.mask);
  } else {
    std::memcpy(static_cast<void*>(a.dw_hh), a.w_rec, size_t(G4 * H) * sizeof(T));
    add_mul_inplace_par<T>(par, G4 * H, a.dw_hh, nullptr, a.mask);
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

}  // namespace gulm
