// The CPU Gemm backends and their per-shape selection (see gemm_cpu.h).
#include "gemm_cpu.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/addmm_cpu_dispatch.h>
#include <ATen/ops/mm_cpu_dispatch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <utility>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gulm/sgemm.h"
#include "lstm_common.h"
#include "parallel.h"

// MKL's per-thread thread count, when the torch build links MKL (a weak reference: null
// otherwise). The mixed-case name is MKL's C interface; the lowercase exports are the Fortran
// one, which takes a pointer.
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));

// MKL's packed-GEMM interface (LP64: MKL_INT is int; the CBLAS enums are ints), also weak:
// a torch without MKL leaves them null and the mkl backend runs plain mm_out.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                      const float* src, int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a,
                         int lda, const float* b, int ldb, float beta, float* c, int ldc)
    __attribute__((weak));
}

namespace gulm_torch {
namespace {

using at::Tensor;

// ---- single-threaded calls -----------------------------------------------------------------

class SingleThreadScope {
 public:
  explicit SingleThreadScope(bool on) : on_(on) {
    if (!on_) return;
    if (MKL_Set_Num_Threads_Local) mkl_prev_ = MKL_Set_Num_Threads_Local(1);
#ifdef _OPENMP
    omp_prev_ = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
  }
  ~SingleThreadScope() {
    if (!on_) return;
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(mkl_prev_);
#ifdef _OPENMP
    omp_set_num_threads(omp_prev_);
#endif
  }
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;

 private:
  bool on_;
  int mkl_prev_ = 0;
  int omp_prev_ = 1;
};

// ---- the two backends ----------------------------------------------------------------------

at::TensorOptions options_of(const gulm::GemmArgs& g) {
  return at::TensorOptions().dtype(to_scalar_type(g.dtype)).device(at::kCPU);
}

Tensor view_a(const gulm::GemmArgs& g) {
  return gemm_view(g.a, g.m, g.k, g.lda, g.trans_a, options_of(g));
}
Tensor view_b(const gulm::GemmArgs& g) {
  return gemm_view(g.b, g.k, g.n, g.ldb, g.trans_b, options_of(g));
}
Tensor view_c(const gulm::GemmArgs& g) {
  return at::from_blob(g.c, {g.m, g.n}, {g.ldc, 1}, options_of(g));
}

// at::cpu:: calls the CPU kernel directly (MKL sgemm/dgemm, oneDNN/AMX for bfloat16) without
// a second trip through the dispatcher, which matters for the per-step GEMMs of small models.
void run_mkl(const gulm::GemmArgs& g) {
  Tensor c = view_c(g);
  if (g.alpha == 1.f && g.beta == 0.f) {
    at::cpu::mm_out(c, view_a(g), view_b(g));
  } else {
    at::cpu::addmm_out(c, c, view_a(g), view_b(g), g.beta, g.alpha);
  }
}

// MKL with op(B) packed once (cblas_sgemm_pack) and reused by every step's GEMM
// (cblas_sgemm_compute): MKL's plain sgemm repacks the whole weight on every call, a few
// percent of a step at M=64 and more at the shipped LMs' width. fp32 only.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kBMatrix = 162, kPacked = 151;

bool mkl_pack_can_run(const gulm::GemmArgs& g) {
  constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
  return cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute &&
         g.dtype == gulm::DType::F32 && g.alpha == 1.f && g.m > 0 && g.n > 0 && g.k > 0 &&
         std::max({g.m, g.n, g.k, g.lda, g.ldb, g.ldc}) < kMaxInt;
}

Tensor mkl_pack(const gulm::GemmArgs& g) {
  const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, int(g.m), int(g.n), int(g.k));
  Tensor buf = at::empty({int64_t(bytes)}, at::TensorOptions().dtype(at::kByte));
  cblas_sgemm_pack(kRowMajor, kBMatrix, g.trans_b ? kTrans : kNoTrans, int(g.m), int(g.n), int(g.k),
                   1.f, static_cast<const float*>(g.b), int(g.ldb), static_cast<float*>(buf.data_ptr()));
  return buf;
}

void run_mkl_packed(const gulm::GemmArgs& g, const Tensor& packed) {
  cblas_sgemm_compute(kRowMajor, g.trans_a ? kTrans : kNoTrans, kPacked, int(g.m), int(g.n), int(g.k),
                      static_cast<const float*>(g.a), int(g.lda),
                      static_cast<const float*>(packed.data_ptr()), int(g.ldb), g.beta,
                      static_cast<float*>(g.c), int(g.ldc));
}

struct OneDnnOps {
  std::optional<c10::OperatorHandle> linear, reorder;
};

const OneDnnOps& onednn_ops() {
  static const OneDnnOps ops = [] {
    OneDnnOps o;
    auto& d = c10::Dispatcher::singleton();
    o.linear = d.findSchema({"mkldnn::_linear_pointwise", ""});
    o.reorder = d.findSchema({"mkldnn::_reorder_linear_weight", ""});
    return o;
  }();
  return ops;
}

// oneDNN's bf16 path needs AVX512-BW/VL/DQ or AVX-NE-CONVERT; elsewhere (AVX2-only CPUs such as
// AMD Zen 1-3) its reorder throws. Probed once with a tiny reorder.
bool onednn_bf16_supported() {
  static const bool ok = [] {
    if (!onednn_available()) return false;
    try {
      torch::jit::Stack s{at::zeros({8, 8}, at::kBFloat16), int64_t(8)};
      onednn_ops().reorder->callBoxed(s);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return ok;
}

bool onednn_can_run(const gulm::GemmArgs& g) {
  return onednn_available() &&
         (g.dtype == gulm::DType::F32 || (g.dtype == gulm::DType::BF16 && onednn_bf16_supported())) &&
         g.alpha == 1.f && g.beta == 0.f && g.m > 0 && g.n > 0 && g.k > 0;
}

// oneDNN's layout of W = op(B)^T [n,k] for `m`-row inputs.
Tensor onednn_pack(const gulm::GemmArgs& g) {
  torch::jit::Stack s{view_b(g).t(), g.m};
  onednn_ops().reorder->callBoxed(s);
  return s[0].toTensor();
}

// C = op(A) @ W^T with W [n,k] dense (a strided view of B) or packed.
void run_onednn(const gulm::GemmArgs& g, const Tensor& packed) {
  const Tensor w = packed.defined() ? packed : view_b(g).t();
  torch::jit::Stack s{view_a(g), w, c10::IValue(), std::string("none"),
                      c10::List<std::optional<at::Scalar>>(), c10::IValue()};
  onednn_ops().linear->callBoxed(s);
  view_c(g).copy_(s[0].toTensor());
}

// gulm's own AVX-512 kernel (gulm/sgemm.h): fp32. An announced B is packed once and each
// step's GEMM runs on its calling thread; a one-off GEMM packs B and splits C's rows over the
// task pool (on the calling thread only when single_thread).
bool avx512_can_run(const gulm::GemmArgs& g) {
  apply_cpu_isa_env();
  return g.dtype == gulm::DType::F32 && g.alpha == 1.f && g.beta == 0.f && g.m > 0 && g.n > 0 &&
         g.k > 0 && gulm::sgemm_packed_available();
}

gulm::ParallelFor avx512_threads(const gulm::GemmArgs& g) {
  return g.single_thread ? gulm::ParallelFor{} : cpu_parallel();
}

Tensor avx512_pack(const gulm::GemmArgs& g) {
  Tensor buf = at::empty({gulm::sgemm_packed_size(g.k, g.n)}, at::TensorOptions().dtype(at::kFloat));
  gulm::sgemm_pack_b(static_cast<const float*>(g.b), g.ldb, g.trans_b, g.k, g.n, buf.data_ptr<float>(),
                     avx512_threads(g));
  return buf;
}

// With `packed` (from avx512_pack); else B is packed for this call.
void run_avx512(const gulm::GemmArgs& g, const Tensor& packed) {
  const Tensor b = packed.defined() ? packed : avx512_pack(g);
  gulm::sgemm_packed(g.m, g.n, g.k, static_cast<const float*>(g.a), g.lda, g.trans_a,
                     b.data_ptr<float>(), static_cast<float*>(g.c), g.ldc, avx512_threads(g));
}

// ---- selection -------------------------------------------------------------------------------

GemmBackend parse_request() {
  const char* s = std::getenv("GULM_GEMM");
  if (!s || !*s) return GemmBackend::Auto;
  for (GemmBackend b : {GemmBackend::Auto, GemmBackend::Mkl, GemmBackend::OneDnn, GemmBackend::Avx512}) {
    if (!std::strcmp(s, gemm_backend_name(b))) return b;
  }
  TORCH_CHECK(false, "GULM_GEMM must be auto, mkl, onednn or avx512, got '", s, "'");
}

// Below this many multiply-adds the backends differ by less than the cost of timing them.
constexpr int64_t kMinTimedMacs = int64_t(1) << 20;
// Large GEMMs are timed on their first kProxyRows rows (every backend keeps its large-matrix
// efficiency there: gulm's kernel runs 256-row blocks, one per thread on 2 threads; timing stays
// at tens of milliseconds per shape).
constexpr int64_t kProxyRows = 512;
// Timed runs per backend after one warm-up each, the backends alternating (MKL, oneDNN,
// gulm's, MKL, ...) so that a burst of load from another process hits both alike; the best is kept.
// Two runs each, timed back to back, let one slow moment on a shared VM flip the choice from
// one process to the next (measured on a 2-vCPU EPYC: the per-step GEMMs went to either
// backend and fp32 training moved between 0.7x and 1.04x nn.LSTM).
constexpr int kTimedRuns = 5;
// oneDNN must beat MKL by this fraction to be chosen: near-ties keep one backend (and so the
// same rounding) from one process to the next.
constexpr double kMargin = 0.10;
// One-off (unpacked) GEMMs: gulm's kernel runs on the task pool like the per-step GEMMs around
// it, while MKL and oneDNN run OpenMP regions. gulm's kernel is kept for them when it is faster
// alone than the backend chosen above, without the margin MKL gets there (factor 1.0).
// History: on a 2-vCPU Zen 5, timed alone oneDNN read up to 1.7x faster than gulm's kernel at the
// AWD-LSTM's one-off shapes, yet sending them all to gulm's kernel ran the training step
// 1.00-1.05x faster, so the factor was 2.0 (gulm's kernel kept unless another backend was twice
// as fast alone). On a 2-vCPU Zen 4 that kept the weight gradients on gulm's kernel at 1.7-1.9x
// MKL's time: the demo-size LM's step (bench_train.py --sizes demo --warmup 250, fp32) took
// 131.3 ms against 106.0 ms with MKL forced; with 1.0, 97.0 ms against 100.9 ms.
constexpr double kPoolPreference = 1.0;

using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int, bool, bool>;

struct Registry {
  std::mutex m;
  std::map<Key, GemmChoice> choices;
};
Registry& registry() {
  static Registry* r = new Registry();  // leaked: may be used during interpreter shutdown
  return *r;
}

int64_t round_up_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

double seconds(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best seconds of each call over kTimedRuns rounds that alternate between them. The caller
// has run each once already (first-use costs: oneDNN primitive creation, MKL buffers). A null
// call is skipped (infinity).
std::vector<double> best_alternating(const std::vector<std::function<void()>>& calls) {
  std::vector<double> best(calls.size(), std::numeric_limits<double>::infinity());
  for (int r = 0; r < kTimedRuns; ++r) {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i]) best[i] = std::min(best[i], seconds(calls[i]));
    }
  }
  return best;
}

// Times the backends that can run on scratch operands of g's shape and returns the choice.
GemmChoice measure(const gulm::GemmArgs& g, bool packed, int64_t uses) {
  gulm::GemmArgs p = g;
  if (!packed) p.m = std::min(g.m, kProxyRows);
  const auto opts = options_of(p);
  // A private generator: timing must not move torch's global random stream (training runs and
  // resumed runs must draw the same masks whatever was timed).
  at::Generator gen = at::detail::createCPUGenerator(20240611);
  const auto scratch = [&](int64_t rows, int64_t cols) {
    return at::empty({rows, cols}, opts).uniform_(-1.0, 1.0, gen);
  };
  const Tensor a = p.trans_a ? scratch(p.k, p.m) : scratch(p.m, p.k);
  const Tensor b = p.trans_b ? scratch(p.n, p.k) : scratch(p.k, p.n);
  Tensor c = at::empty({p.m, p.n}, opts);
  p.a = a.data_ptr();
  p.lda = a.size(1);
  p.b = b.data_ptr();
  p.ldb = b.size(1);
  p.c = c.data_ptr();
  p.ldc = p.n;
  const SingleThreadScope scope(p.single_thread);
  GemmChoice r{p.m, p.n, p.k, p.trans_a, p.trans_b, packed, p.single_thread,
               std::string(c10::toString(to_scalar_type(p.dtype))), GemmBackend::Mkl, 0.0, -1.0, -1.0};
  // Each backend's operand packed once (packed GEMMs), its cost spread over the `uses`.
  const double per_use = 1e6 / double(std::max<int64_t>(uses, 1));
  Tensor mkl_w, dnn_w, own_w;
  double mkl_pack_us = 0.0, dnn_pack_us = 0.0, own_pack_us = 0.0;
  const bool mkl_packed = packed && mkl_pack_can_run(p);
  if (mkl_packed) mkl_pack_us = per_use * seconds([&] { mkl_w = mkl_pack(p); });
  std::function<void()> mkl_run = [&] { mkl_packed ? run_mkl_packed(p, mkl_w) : run_mkl(p); };
  mkl_run();  // warm-up
  std::function<void()> dnn_run;
  if (onednn_can_run(p)) {
    try {
      if (packed) dnn_pack_us = per_use * seconds([&] { dnn_w = onednn_pack(p); });
      // Probe and warm-up in one: throws e.g. for bfloat16 on a CPU without the instructions
      // oneDNN needs.
      run_onednn(p, dnn_w);
      dnn_run = [&] { run_onednn(p, dnn_w); };
    } catch (const std::exception&) {
      dnn_run = nullptr;
    }
  }
  std::function<void()> own_run;
  if (avx512_can_run(p)) {
    // Packed once per call when not announced: on the proxy rows that cost is spread over
    // p.m / g.m of the call's rows (MKL and oneDNN repack inside every timed run).
    own_pack_us = (packed ? per_use : 1e6 * double(p.m) / double(g.m)) *
                  seconds([&] { own_w = avx512_pack(p); });
    run_avx512(p, own_w);  // warm-up
    own_run = [&] { run_avx512(p, own_w); };
  }
  const std::vector<double> best = best_alternating({mkl_run, dnn_run, own_run});
  r.mkl_us = 1e6 * best[0] + mkl_pack_us;
  r.onednn_us = dnn_run ? 1e6 * best[1] + dnn_pack_us : -1.0;
  r.avx512_us = own_run ? 1e6 * best[2] + own_pack_us : -1.0;
  // MKL unless another backend beats it by the margin; then the fastest of those. `bar` is the
  // time a backend must beat to be chosen; `kept_us` the chosen backend's own time (MKL's
  // unscaled: the pool preference below compares with what MKL really takes).
  double bar = (1.0 - kMargin) * r.mkl_us, kept_us = r.mkl_us;
  if (r.onednn_us >= 0 && r.onednn_us < bar) {
    r.backend = GemmBackend::OneDnn;
    bar = kept_us = r.onednn_us;
  }
  if (r.avx512_us >= 0 && r.avx512_us < bar) {
    r.backend = GemmBackend::Avx512;
    kept_us = r.avx512_us;
  }
  const bool pooled = !p.single_thread && at::get_num_threads() > 1;
  if (!packed && pooled && r.avx512_us >= 0 && r.avx512_us < kPoolPreference * kept_us) {
    r.backend = GemmBackend::Avx512;
  }
  return r;
}

GemmBackend choose(GemmBackend request, const gulm::GemmArgs& g, bool packed, int64_t uses) {
  const bool dnn = onednn_can_run(g), own = avx512_can_run(g);
  if (request == GemmBackend::OneDnn) return dnn ? request : GemmBackend::Mkl;
  if (request == GemmBackend::Avx512) return own ? request : GemmBackend::Mkl;
  if (request == GemmBackend::Mkl || !(dnn || own)) return GemmBackend::Mkl;
  if (g.m * g.n * g.k < kMinTimedMacs) return GemmBackend::Mkl;
  // One-off GEMMs are keyed by m and k rounded up to powers of two: with a random sequence
  // length per batch (AWD-LSTM's variable BPTT) the input projections' m and the weight
  // gradients' k (both B * T) take dozens of values, and keyed exactly each new value was timed
  // again (three backends, six runs each) inside the training step: 80 shapes after 30 steps of
  // the demo-size LM (64/256/3, B=32; 34 keyed this way), whose 20-step benchmark window read
  // 188-198 ms a step against 92-98 ms with MKL forced on a 2-vCPU Zen 4 (113-138 ms after).
  const Key key{packed ? g.m : round_up_pow2(g.m), g.n, packed ? g.k : round_up_pow2(g.k), g.trans_a,
                g.trans_b, int(g.dtype), packed, g.single_thread};
  Registry& reg = registry();
  {
    std::lock_guard<std::mutex> lock(reg.m);
    auto it = reg.choices.find(key);
    if (it != reg.choices.end()) return it->second.backend;
  }
  const GemmChoice r = measure(g, packed, uses);
  std::lock_guard<std::mutex> lock(reg.m);
  return reg.choices.emplace(key, r).first->second.backend;
}

}  // namespace

CpuGemm::CpuGemm() : request_(parse_request()) {}

void CpuGemm::call(void* self, const gulm::GemmArgs& g) {
  auto* me = static_cast<CpuGemm*>(self);
  const SingleThreadScope scope(g.single_thread);
  if (g.b_slot >= 0) {
    const Slot& slot = me->slots_.at(size_t(g.b_slot));
    if (slot.backend == GemmBackend::OneDnn) {
      run_onednn(g, slot.packed);
    } else if (slot.backend == GemmBackend::Avx512) {
      run_avx512(g, slot.packed);
    } else if (slot.packed.defined()) {
      run_mkl_packed(g, slot.packed);
    } else {
      run_mkl(g);
    }
    return;
  }
  switch (choose(me->request_, g, false, 1)) {
    case GemmBackend::OneDnn: run_onednn(g, Tensor()); return;
    case GemmBackend::Avx512: run_avx512(g, Tensor()); return;
    default: run_mkl(g); return;
  }
}

int32_t CpuGemm::pack(void* self, const gulm::GemmArgs& g, int64_t uses) {
  auto* me = static_cast<CpuGemm*>(self);
  if (uses < 1) return -1;
  Slot slot;
  slot.backend = choose(me->request_, g, true, uses);
  if (slot.backend == GemmBackend::OneDnn) {
    slot.packed = onednn_pack(g);
  } else if (slot.backend == GemmBackend::Avx512) {
    slot.packed = avx512_pack(g);
  } else if (mkl_pack_can_run(g)) {
    const SingleThreadScope scope(g.single_thread);
    slot.packed = mkl_pack(g);
  }
  me->slots_.push_back(std::move(slot));
  return int32_t(me->slots_.size() - 1);
}

std::vector<GemmChoice> gemm_choices() {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.m);
  std::vector<GemmChoice> out;
  for (const auto& kv : reg.choices) out.push_back(kv.second);
  return out;
}

void clear_gemm_choices() {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.m);
  reg.choices.clear();
}

const char* gemm_backend_name(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::Mkl: return "mkl";
    case GemmBackend::OneDnn: return "onednn";
    case GemmBackend::Avx512: return "avx512";
    default: return "auto";
  }
}

std::string gemm_request() { return gemm_backend_name(parse_request()); }

bool onednn_available() {
  const OneDnnOps& o = onednn_ops();
  return o.linear.has_value() && o.reorder.has_value();
}

}  // namespace gulm_torch
