// Torch-free tests of gulm's packed-B fp32 GEMM (gulm/sgemm.h) against a double-precision
// triple loop: every row and column tail of the 8x48 micro-tile, both layouts of A and B,
// k = 1 and k = 0, a k long enough to be blocked, row strides wider than the matrices, and C
// entries outside the result left untouched; sgemm_pack_b and sgemm_packed
// on three threads (as the binding runs one-off GEMMs) and with an empty ParallelFor.
// Skipped (and said so) on a CPU without AVX-512.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "check.h"
#include "gulm/sgemm.h"

namespace {

// Three threads, each given a third of [0, n).
void three_threads(void*, int64_t n, int64_t, gulm::ParallelFor::Body body, void* body_ctx) {
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < 3; ++t) {
    const int64_t b = n * t / 3, e = n * (t + 1) / 3;
    if (b < e) workers.emplace_back([=] { body(body_ctx, b, e); });
  }
  for (auto& w : workers) w.join();
}

enum class Path { Packed, Serial, Threaded };

// op(A)[i,q] with A [m,k] (row stride lda) or [k,m] when trans.
float at(const std::vector<float>& x, int64_t ld, bool trans, int64_t i, int64_t q) {
  return trans ? x[size_t(q * ld + i)] : x[size_t(i * ld + q)];
}

void check_case(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, std::mt19937& rng,
                Path path = Path::Packed) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int64_t pad = 3;  // row strides wider than the rows
  const int64_t lda = (trans_a ? m : k) + pad, ldb = (trans_b ? k : n) + pad, ldc = n + pad;
  std::vector<float> a(size_t((trans_a ? k : m) * lda + 1)), b(size_t((trans_b ? n : k) * ldb + 1));
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  std::vector<float> packed(size_t(gulm::sgemm_packed_size(k, n)));
  const float sentinel = 12345.f;
  std::vector<float> c(size_t(m * ldc), sentinel);
  if (path == Path::Packed) {
    gulm::sgemm_pack_b(b.data(), ldb, trans_b, k, n, packed.data());
    gulm::sgemm_packed(m, n, k, a.data(), lda, trans_a, packed.data(), c.data(), ldc);
  } else {
    gulm::ParallelFor par;
    if (path == Path::Threaded) {
      par.fn = three_threads;
      par.threads = 3;
    }
    gulm::sgemm_pack_b(b.data(), ldb, trans_b, k, n, packed.data(), par);
    gulm::sgemm_packed(m, n, k, a.data(), lda, trans_a, packed.data(), c.data(), ldc, par);
  }
  int bad = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = c[size_t(i * ldc + j)];
      if (j >= n) {
        bad += got != sentinel;  // padding columns are never written
        continue;
      }
      double want = 0.0;
      for (int64_t q = 0; q < k; ++q) want += double(at(a, lda, trans_a, i, q)) * at(b, ldb, trans_b, q, j);
      bad += !(std::fabs(got - want) <= 1e-5 * (1.0 + std::sqrt(double(k)) * 4.0));
    }
  }
  if (bad) {
    std::fprintf(stderr, "m=%lld n=%lld k=%lld trans_a=%d trans_b=%d path=%d: %d wrong entries\n",
                 (long long)m, (long long)n, (long long)k, trans_a, trans_b, int(path), bad);
  }
  GULM_CHECK(bad == 0);
}

}  // namespace

int main() {
  if (!gulm::sgemm_packed_available()) {
    std::printf("skipped: no AVX-512 on this CPU\n");
    return 0;
  }
  std::mt19937 rng(7);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (int64_t m : {1, 3, 7, 8, 9, 16, 17, 64}) {
        for (int64_t n : {1, 15, 16, 17, 47, 48, 49, 96, 130}) {
          for (int64_t k : {0, 1, 5, 33}) check_case(m, n, k, ta, tb, rng);
        }
      }
      check_case(64, 575, 1150, ta, tb, rng);  // an AWD-LSTM chunk's shape
      for (Path path : {Path::Serial, Path::Threaded}) {
        for (int64_t m : {1, 9, 70, 203}) check_case(m, 97, 13, ta, tb, rng, path);
        check_case(37, 50, 5000, ta, tb, rng, path);  // k in blocks
      }
    }
  }
  GULM_TEST_MAIN_END();
}
