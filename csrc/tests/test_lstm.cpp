// Torch-free tests of the CPU weight-dropped LSTM kernels with a naive injected GEMM:
//  * forward (float64, float32, bfloat16; with and without mask; saving or not) against a
//    scalar double-precision reference written here;
//  * backward in float64 against central finite differences of that reference;
//  * backward in float32 / bfloat16 against the float64 kernel;
//  * every vectorised variant of the pointwise code the CPU supports, and T == 0.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "gulm/lstm.h"

namespace {

using gulm::DType;

// ---- element conversion ---------------------------------------------------------------------

float bf16_to_f(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

double get(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F64: return static_cast<const double*>(p)[i];
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return bf16_to_f(static_cast<const uint16_t*>(p)[i]);
    default: return 0;
  }
}
void put(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::F64: static_cast<double*>(p)[i] = v; break;
    case DType::F32: static_cast<float*>(p)[i] = float(v); break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = f_to_bf16(float(v)); break;
    default: break;
  }
}

// A typed buffer holding doubles converted to `dt`.
struct Buf {
  DType dt;
  std::vector<unsigned char> bytes;
  Buf(DType d, int64_t n) : dt(d), bytes(size_t(n * gulm::dtype_size(d)) + 1) {}
  Buf(DType d, const std::vector<double>& v) : Buf(d, int64_t(v.size())) {
    for (size_t i = 0; i < v.size(); ++i) put(data(), dt, int64_t(i), v[i]);
  }
  void* data() { return bytes.data(); }
  std::vector<double> values(int64_t n) const {
    std::vector<double> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[size_t(i)] = get(bytes.data(), dt, i);
    return r;
  }
};

std::atomic<int> g_gemm_calls{0};

// What a packing Gemm was told (see check_pack_slots): op(B) of every announced slot.
struct PackLog {
  std::mutex m;
  std::vector<gulm::GemmArgs> slots;
  int bad_uses = 0;       // GEMMs whose b_slot did not describe their B
  int single_thread = 0;  // GEMMs issued with single_thread set
};
PackLog* g_pack_log = nullptr;

int32_t logging_pack(void*, const gulm::GemmArgs& g, int64_t uses) {
  if (uses < 1) return -1;
  std::lock_guard<std::mutex> lock(g_pack_log->m);
  g_pack_log->slots.push_back(g);
  return int32_t(g_pack_log->slots.size() - 1);
}

// Naive row-major GEMM with double accumulation (the contract of gemm.h).
void naive_gemm(void*, const gulm::GemmArgs& g) {
  ++g_gemm_calls;
  if (g_pack_log) {
    std::lock_guard<std::mutex> lock(g_pack_log->m);
    if (g.single_thread) ++g_pack_log->single_thread;
    if (g.b_slot >= 0) {
      const bool ok = size_t(g.b_slot) < g_pack_log->slots.size();
      const gulm::GemmArgs& s = ok ? g_pack_log->slots[size_t(g.b_slot)] : g;
      if (!ok || s.b != g.b || s.ldb != g.ldb || s.trans_b != g.trans_b || s.k != g.k ||
          s.n != g.n || s.m != g.m) {
        ++g_pack_log->bad_uses;
      }
    }
  }
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < g.k; ++l) {
        const int64_t ia = g.trans_a ? l * g.lda + i : i * g.lda + l;
        const int64_t ib = g.trans_b ? j * g.ldb + l : l * g.ldb + j;
        s += get(g.a, g.dtype, ia) * get(g.b, g.dtype, ib);
      }
      const int64_t ic = i * g.ldc + j;
      const double old = g.beta == 0.f ? 0.0 : g.beta * get(g.c, g.dtype, ic);
      put(g.c, g.dtype, ic, g.alpha * s + old);
    }
  }
}

gulm::Gemm kGemm{&naive_gemm, nullptr};

// A ParallelFor that ignores the grain and cuts [0, n) into 3 uneven ranges, each on its own
// std::thread: the kernels must give the same results for any partition.
void thread_parallel_for(void*, int64_t n, int64_t, gulm::ParallelFor::Body body, void* ctx) {
  const int64_t cuts[4] = {0, n / 5, n / 5 + (n - n / 5) / 2, n};
  std::vector<std::thread> threads;
  for (int k = 0; k < 3; ++k) {
    if (cuts[k] < cuts[k + 1]) threads.emplace_back(body, ctx, cuts[k], cuts[k + 1]);
  }
  for (auto& t : threads) t.join();
}

// The partitioning under test: empty (serial) or thread_parallel_for, which then also makes the
// kernels cut large enough steps into chunks of hidden units (threads > 1).
gulm::ParallelFor g_par;
const gulm::ParallelFor kThreePar{&thread_parallel_for, nullptr, 3};

// ---- problem and scalar reference ------------------------------------------------------------

struct Problem {
  int64_t T, B, I, H;
  std::vector<double> x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask;  // mask empty: none
};

Problem make_problem(int64_t T, int64_t B, int64_t I, int64_t H, bool with_mask, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const double s = 1.0 / std::sqrt(double(H));
  auto fill = [&](int64_t n, double scale) {
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& e : v) e = u(rng) * scale;
    return v;
  };
  Problem p{T, B, I, H, fill(T * B * I, 1.0), fill(4 * H * I, s), fill(4 * H * H, s),
            fill(4 * H, s), fill(4 * H, s), fill(B * H, 1.0), fill(B * H, 1.0), {}};
  if (with_mask) {
    std::bernoulli_distribution keep(0.7);
    p.mask.resize(size_t(4 * H * H));
    for (auto& m : p.mask) m = keep(rng) ? 1.0 / 0.7 : 0.0;
  }
  return p;
}

struct Out {
  std::vector<double> y, hT, cT;
};

Out reference_forward(const Problem& p) {
  const int64_t T = p.T, B = p.B, I = p.I, H = p.H;
  Out o{std::vector<double>(size_t(T * B * H)), p.h0, p.c0};
  std::vector<double> h = p.h0, c = p.c0, gates(size_t(4 * H));
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> hn(static_cast<size_t>(B * H));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t r = 0; r < 4 * H; ++r) {
        double s = p.b_ih[size_t(r)] + p.b_hh[size_t(r)];
        for (int64_t k = 0; k < I; ++k) s += p.x[size_t((t * B + b) * I + k)] * p.w_ih[size_t(r * I + k)];
        for (int64_t k = 0; k < H; ++k) {
          const double m = p.mask.empty() ? 1.0 : p.mask[size_t(r * H + k)];
          s += h[size_t(b * H + k)] * p.w_hh[size_t(r * H + k)] * m;
        }
        gates[size_t(r)] = s;
      }
      for (int64_t j = 0; j < H; ++j) {
        auto sg = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
        const double i = sg(gates[size_t(j)]), f = sg(gates[size_t(H + j)]);
        const double g = std::tanh(gates[size_t(2 * H + j)]), og = sg(gates[size_t(3 * H + j)]);
        double& cc = c[size_t(b * H + j)];
        cc = f * cc + i * g;
        hn[size_t(b * H + j)] = og * std::tanh(cc);
        o.y[size_t((t * B + b) * H + j)] = hn[size_t(b * H + j)];
      }
    }
    h = hn;
  }
  o.hT = h;
  o.cT = c;
  return o;
}

// ---- running the kernels -----------------------------------------------------------------------

struct Run {
  Out fwd;
  std::vector<double> dx, dw_ih, dw_hh, db, dh0, dc0;
};

// The weights of the loss L = sum(y*ry) + sum(hT*rh) + sum(cT*rc).
struct LossWeights {
  std::vector<double> ry, rh, rc;
};

LossWeights make_loss(const Problem& p, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  LossWeights l{std::vector<double>(size_t(p.T * p.B * p.H)), std::vector<double>(size_t(p.B * p.H)),
                std::vector<double>(size_t(p.B * p.H))};
  for (auto* v : {&l.ry, &l.rh, &l.rc})
    for (auto& e : *v) e = u(rng);
  return l;
}

double loss_of(const Out& o, const LossWeights& l) {
  double s = 0;
  for (size_t i = 0; i < o.y.size(); ++i) s += o.y[i] * l.ry[i];
  for (size_t i = 0; i < o.hT.size(); ++i) s += o.hT[i] * l.rh[i] + o.cT[i] * l.rc[i];
  return s;
}

// Runs forward (and backward when `l` is given) of the kernel in dtype `dt`; the cell state
// (c0/cT) is `sdt`.
Run run_kernel(const Problem& pr, DType dt, DType sdt, bool save, const LossWeights* l) {
  const int64_t T = pr.T, B = pr.B, I = pr.I, H = pr.H;
  const DType acc = dt == DType::F64 ? DType::F64 : DType::F32;
  Buf x(dt, pr.x), w_ih(dt, pr.w_ih), w_hh(dt, pr.w_hh), b_ih(dt, pr.b_ih), b_hh(dt, pr.b_hh),
      h0(dt, pr.h0), c0(sdt, pr.c0), mask(dt, pr.mask);
  Buf y(dt, T * B * H), hT(dt, B * H), cT(sdt, B * H), gates(dt, T * B * 4 * H), cell(acc, T * B * H);
  const auto fws = gulm::wd_lstm_fwd_workspace(T, B, H, dt, save);
  std::vector<unsigned char> ws(fws.bytes + 64);
  void* mask_p = pr.mask.empty() ? nullptr : mask.data();
  const gulm::WdLstmFwdParams p{T, B, I, H, dt, sdt, x.data(), w_ih.data(), w_hh.data(),
                                b_ih.data(), b_hh.data(), h0.data(), c0.data(), mask_p, y.data(),
                                hT.data(), cT.data(), save ? gates.data() : nullptr,
                                save ? cell.data() : nullptr, ws.data()};
  gulm::wd_lstm_fwd_cpu(p, kGemm, g_par);
  Run r;
  r.fwd = {y.values(T * B * H), hT.values(B * H), cT.values(B * H)};
  if (!l) return r;

  Buf gy(dt, l->ry), ghT(dt, l->rh), gcT(sdt, l->rc);
  Buf dx(dt, T * B * I), dw_ih(dt, 4 * H * I), dw_hh(dt, 4 * H * H), db(dt, 4 * H), dh0(dt, B * H),
      dc0(sdt, B * H);
  const auto bws = gulm::wd_lstm_bwd_workspace(T, B, H, dt);
  std::vector<unsigned char> wsb(bws.bytes + 64);
  const gulm::WdLstmBwdParams q{T, B, I, H, dt, sdt, gy.data(), ghT.data(), gcT.data(), x.data(),
                                w_ih.data(), w_hh.data(), mask_p, h0.data(), c0.data(), y.data(),
                                gates.data(), cell.data(), dx.data(), dw_ih.data(), dw_hh.data(),
                                db.data(), dh0.data(), dc0.data(), wsb.data()};
  gulm::wd_lstm_bwd_cpu(q, kGemm, g_par);
  r.dx = dx.values(T * B * I);
  r.dw_ih = dw_ih.values(4 * H * I);
  r.dw_hh = dw_hh.values(4 * H * H);
  r.db = db.values(4 * H);
  r.dh0 = dh0.values(B * H);
  r.dc0 = dc0.values(B * H);
  return r;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return 1e30;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The case being checked, printed with a failure (and always when GULM_TEST_VERBOSE is set,
// with every comparison, to calibrate tolerances).
char g_case[256];

template <class... A>
void set_case(const char* fmt, A... args) {
  std::snprintf(g_case, sizeof(g_case), fmt, args...);
  if (std::getenv("GULM_TEST_VERBOSE")) std::fprintf(stderr, "%s\n", g_case);
}

#define EXPECT_NEAR_VEC(a, b, tol, what)                                                  \
  do {                                                                                    \
    const double err_ = max_abs_diff((a), (b));                                           \
    const bool ok_ = err_ <= (tol);                                                       \
    if (!ok_ && !std::getenv("GULM_TEST_VERBOSE")) std::fprintf(stderr, "%s\n", g_case);  \
    if (std::getenv("GULM_TEST_VERBOSE") || !ok_)                                         \
      std::fprintf(stderr, "  %s: max |diff| %.3g (tol %.3g)\n", what, err_, double(tol)); \
    GULM_CHECK(ok_);                                                                      \
  } while (0)

void check_forward(const Problem& pr, const char* isa) {
  const Out ref = reference_forward(pr);
  struct Case {
    DType dt, sdt;
    double tol;
  } cases[] = {{DType::F64, DType::F64, 1e-12},
               {DType::F32, DType::F32, 2e-6},
               {DType::BF16, DType::F32, 1e-2},
               {DType::BF16, DType::BF16, 1e-2}};
  for (const auto& c : cases) {
    for (bool save : {true, false}) {
      const Run r = run_kernel(pr, c.dt, c.sdt, save, nullptr);
      set_case("forward %s dtype=%d state=%d save=%d T=%lld B=%lld I=%lld H=%lld mask=%d",
                   isa, int(c.dt), int(c.sdt), int(save), (long long)pr.T, (long long)pr.B,
                   (long long)pr.I, (long long)pr.H, int(!pr.mask.empty()));
      EXPECT_NEAR_VEC(r.fwd.y, ref.y, c.tol, "y");
      EXPECT_NEAR_VEC(r.fwd.hT, ref.hT, c.tol, "hT");
      EXPECT_NEAR_VEC(r.fwd.cT, ref.cT, c.tol, "cT");
    }
  }
}

// Central finite differences of the double reference for every input entry.
void check_backward(const Problem& pr, const char* isa) {
  const LossWeights l = make_loss(pr, 99);
  const Run r64 = run_kernel(pr, DType::F64, DType::F64, true, &l);
  const double eps = 1e-6;
  auto fd = [&](std::vector<double> Problem::*field) {
    Problem q = pr;
    std::vector<double> g((q.*field).size());
    for (size_t i = 0; i < g.size(); ++i) {
      const double v = (q.*field)[i];
      (q.*field)[i] = v + eps;
      const double lp = loss_of(reference_forward(q), l);
      (q.*field)[i] = v - eps;
      const double lm = loss_of(reference_forward(q), l);
      (q.*field)[i] = v;
      g[i] = (lp - lm) / (2 * eps);
    }
    return g;
  };
  set_case("backward %s float64 vs finite differences T=%lld B=%lld I=%lld H=%lld mask=%d",
               isa, (long long)pr.T, (long long)pr.B, (long long)pr.I, (long long)pr.H,
               int(!pr.mask.empty()));
  const double tol = 1e-6;
  EXPECT_NEAR_VEC(r64.dx, fd(&Problem::x), tol, "dx");
  EXPECT_NEAR_VEC(r64.dw_ih, fd(&Problem::w_ih), tol, "dw_ih");
  // The kernel returns the gradient w.r.t. the raw w_hh: FD through w_hh (mask applied inside).
  EXPECT_NEAR_VEC(r64.dw_hh, fd(&Problem::w_hh), tol, "dw_hh");
  EXPECT_NEAR_VEC(r64.db, fd(&Problem::b_ih), tol, "db (b_ih)");
  EXPECT_NEAR_VEC(r64.db, fd(&Problem::b_hh), tol, "db (b_hh)");
  EXPECT_NEAR_VEC(r64.dh0, fd(&Problem::h0), tol, "dh0");
  EXPECT_NEAR_VEC(r64.dc0, fd(&Problem::c0), tol, "dc0");

  struct Case {
    DType dt, sdt;
    double tol;
  } cases[] = {{DType::F32, DType::F32, 2e-6}, {DType::BF16, DType::F32, 0.03}};
  for (const auto& c : cases) {
    set_case("backward %s dtype=%d vs float64 T=%lld B=%lld I=%lld H=%lld", isa, int(c.dt),
             (long long)pr.T, (long long)pr.B, (long long)pr.I, (long long)pr.H);
    const Run r = run_kernel(pr, c.dt, c.sdt, true, &l);
    // Relative to the largest gradient entry: bfloat16 stores dG rounded to 8 bits.
    auto scaled = [&](const std::vector<double>& a, const std::vector<double>& b, const char* w) {
      double m = 1e-3;
      for (double v : b) m = std::max(m, std::fabs(v));
      EXPECT_NEAR_VEC(a, b, c.tol * (c.dt == DType::BF16 ? m : 1.0), w);
    };
    scaled(r.dx, r64.dx, "dx");
    scaled(r.dw_ih, r64.dw_ih, "dw_ih");
    scaled(r.dw_hh, r64.dw_hh, "dw_hh");
    scaled(r.db, r64.db, "db");
    scaled(r.dh0, r64.dh0, "dh0");
    scaled(r.dc0, r64.dc0, "dc0");
  }
}

void check_empty_sequence() {
  set_case("T = 0");
  const Problem pr = make_problem(0, 3, 4, 5, true, 7);
  const LossWeights l = make_loss(pr, 8);
  const Run r = run_kernel(pr, DType::F32, DType::F32, true, &l);
  EXPECT_NEAR_VEC(r.fwd.hT, pr.h0, 1e-6, "T=0 hT == h0");
  EXPECT_NEAR_VEC(r.fwd.cT, pr.c0, 1e-6, "T=0 cT == c0");
  EXPECT_NEAR_VEC(r.dh0, l.rh, 1e-6, "T=0 dh0 == grad_hT");
  EXPECT_NEAR_VEC(r.dc0, l.rc, 1e-6, "T=0 dc0 == grad_cT");
  EXPECT_NEAR_VEC(r.dw_hh, std::vector<double>(size_t(4 * 5 * 5), 0.0), 0.0, "T=0 dw_hh == 0");
  EXPECT_NEAR_VEC(r.db, std::vector<double>(size_t(4 * 5), 0.0), 0.0, "T=0 db == 0");
}

// The GEMM count of the plan: forward 1 + T, backward T + 4.
void check_gemm_count() {
  set_case("GEMM count");
  const Problem pr = make_problem(5, 2, 3, 4, true, 3);
  const LossWeights l = make_loss(pr, 4);
  g_gemm_calls = 0;
  run_kernel(pr, DType::F32, DType::F32, true, nullptr);
  GULM_CHECK_EQ(g_gemm_calls.load(), 1 + 5);
  g_gemm_calls = 0;
  run_kernel(pr, DType::F32, DType::F32, true, &l);
  GULM_CHECK_EQ(g_gemm_calls.load(), (1 + 5) + (5 + 4));
}

// The chunked, threaded step (verified through the serial kernel, which the finite
// differences above check) gives the serial kernel's results to rounding.
void check_chunks_match_serial(const Problem& pr, const char* isa) {
  const LossWeights l = make_loss(pr, 98);
  for (DType dt : {DType::F64, DType::F32}) {
    set_case("chunked vs serial %s dtype=%d T=%lld B=%lld H=%lld", isa, int(dt),
             (long long)pr.T, (long long)pr.B, (long long)pr.H);
    const gulm::ParallelFor par = g_par;
    g_par = gulm::ParallelFor{};
    const Run serial = run_kernel(pr, dt, dt, true, &l);
    g_par = par;
    const Run chunked = run_kernel(pr, dt, dt, true, &l);
    const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
    EXPECT_NEAR_VEC(chunked.fwd.y, serial.fwd.y, tol, "y");
    EXPECT_NEAR_VEC(chunked.fwd.cT, serial.fwd.cT, tol, "cT");
    EXPECT_NEAR_VEC(chunked.dx, serial.dx, tol, "dx");
    EXPECT_NEAR_VEC(chunked.dw_ih, serial.dw_ih, tol, "dw_ih");
    EXPECT_NEAR_VEC(chunked.dw_hh, serial.dw_hh, tol, "dw_hh");
    EXPECT_NEAR_VEC(chunked.db, serial.db, tol, "db");
    EXPECT_NEAR_VEC(chunked.dh0, serial.dh0, tol, "dh0");
    EXPECT_NEAR_VEC(chunked.dc0, serial.dc0, tol, "dc0");
  }
}

// A Gemm with a pack hook: every GEMM that names a slot must describe the announced B, the
// chunked steps must run their GEMMs single-threaded, and the results must not change.
void check_pack_slots() {
  set_case("packed recurrent weights");
  const Problem pr = make_problem(3, 29, 5, 136, true, 9);
  const LossWeights l = make_loss(pr, 10);
  g_par = kThreePar;
  const Run plain = run_kernel(pr, DType::F64, DType::F64, true, &l);
  PackLog log;
  g_pack_log = &log;
  kGemm.pack = &logging_pack;
  const Run packed = run_kernel(pr, DType::F64, DType::F64, true, &l);
  kGemm.pack = nullptr;
  g_pack_log = nullptr;
  g_par = gulm::ParallelFor{};
  // Two chunks: two forward slots and two backward slots; every step's chunk GEMM is
  // single-threaded (forward 3 steps x 2 chunks, backward 2 steps x 2 chunks).
  GULM_CHECK_EQ(int(log.slots.size()), 4);
  GULM_CHECK_EQ(log.bad_uses, 0);
  GULM_CHECK_EQ(log.single_thread, 3 * 2 + 2 * 2);
  EXPECT_NEAR_VEC(packed.fwd.y, plain.fwd.y, 0.0, "packed y");
  EXPECT_NEAR_VEC(packed.dw_hh, plain.dw_hh, 0.0, "packed dw_hh");
  EXPECT_NEAR_VEC(packed.dx, plain.dx, 0.0, "packed dx");
}

}  // namespace

int main() {
  const gulm::CpuIsa isas[] = {gulm::CpuIsa::Baseline, gulm::CpuIsa::Avx2, gulm::CpuIsa::Avx512};
  const char* names[] = {"baseline", "avx2", "avx512"};
  for (int k = 0; k < 6; ++k) {
    gulm::set_cpu_isa(isas[k % 3]);
    if (gulm::cpu_isa() != isas[k % 3]) {
      std::fprintf(stderr, "skipping %s: not supported by this CPU\n", names[k % 3]);
      continue;
    }
    // First serially, then with the passes split over threads.
    g_par = k < 3 ? gulm::ParallelFor{} : kThreePar;
    const std::string label = std::string(names[k % 3]) + (k < 3 ? "" : "+threads");
    // H not a multiple of the vector width, I != H, T = 1 and B = 1 included.
    check_forward(make_problem(4, 3, 5, 7, false, 1), label.c_str());
    check_forward(make_problem(3, 2, 6, 33, true, 2), label.c_str());
    check_forward(make_problem(1, 1, 3, 17, true, 3), label.c_str());
    check_backward(make_problem(3, 2, 3, 5, true, 4), label.c_str());
    check_backward(make_problem(2, 3, 4, 19, false, 5), label.c_str());
    check_backward(make_problem(1, 1, 2, 3, true, 6), label.c_str());
    // Large enough for chunks of hidden units when threaded (2 chunks of 80 and 56 units).
    check_forward(make_problem(3, 29, 5, 136, true, 7), label.c_str());
    if (k >= 3) check_chunks_match_serial(make_problem(3, 29, 5, 136, true, 8), label.c_str());
  }
  gulm::set_cpu_isa(gulm::CpuIsa::Auto);
  check_empty_sequence();
  check_gemm_count();
  check_pack_slots();
  GULM_TEST_MAIN_END();
}
