// gulm's packed-B fp32 GEMM (contract: gulm/sgemm.h).
//
// B is packed into panels of kNr = 48 columns, each k rows of 48 contiguous floats (the last
// panel zero-padded), so the micro-kernel's three 16-float loads per k are one cache line
// and a half of sequential memory. For each panel, A is walked in tiles of kMr = 8 rows: per
// k, 3 loads of B and 8 broadcasts of A feed 24 FMAs into 24 zmm accumulators (28 of the 32
// registers in use), enough independent chains to hide the FMA latency on two FMA pipes.
// Up to kMaxK the k loop is not blocked: a panel of B stays in L2 while the 8-row tiles of A
// stream through L1, and one store per tile at the end keeps C out of the loop. Longer k runs
// in blocks of kKc, each adding into C, so that a block of the panel and the A tile's lines fit
// L2 together. Single-threaded on Zen 5 (1 MB L2), GFLOP/s at the AWD-LSTM's shapes for
// (kMaxK, kKc) = (4608, 1024) / (2048, 1024) / (1024, 512): per-step dh (k = 4600) 133 / 145 /
// 76, weight gradients (transposed A, k = T*B = 4480) 95 / 183 / 179.
#include "gulm/sgemm.h"

#include <algorithm>

#include "gulm/cpu.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define GULM_SGEMM_X86 1
#define GULM_TARGET_AVX512F __attribute__((target("avx512f")))
#else
#define GULM_SGEMM_X86 0
#endif

namespace gulm {
namespace {

constexpr int64_t kNr = 48;
constexpr int kMr = 8;
constexpr int64_t kMaxK = 2048;  // longest unblocked k (a 48-column panel: 384 KB)
constexpr int64_t kKc = 1024;    // k block beyond that

int64_t panels(int64_t n) { return (n + kNr - 1) / kNr; }

#if GULM_SGEMM_X86

// One tile: rows [0, MR) of op(A) (element (r, k) at a[r * rs + k * ks]) times one panel,
// into C's columns [0, w).
template <int MR>
GULM_TARGET_AVX512F void tile_rows(const float* a, int64_t rs, int64_t ks, const float* bp,
                                   int64_t k, float* c, int64_t ldc, int64_t w, bool add) {
  __m512 acc[MR][3];
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = _mm512_setzero_ps();
    acc[r][1] = _mm512_setzero_ps();
    acc[r][2] = _mm512_setzero_ps();
  }
  for (int64_t q = 0; q < k; ++q) {
    const float* b = bp + q * kNr;
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
    const float* aq = a + q * ks;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_set1_ps(aq[r * rs]);
      acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(x, b2, acc[r][2]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < 3; ++j) {
      const int64_t rem = w - 16 * j;
      if (rem <= 0) break;
      const __mmask16 mask = rem >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1u);
      const __m512 v = add ? _mm512_add_ps(acc[r][j], _mm512_maskz_loadu_ps(mask, cr + 16 * j)) : acc[r][j];
      _mm512_mask_storeu_ps(cr + 16 * j, mask, v);
    }
  }
}

// The last m % kMr rows.
GULM_TARGET_AVX512F void tile_tail(int rows, const float* a, int64_t rs, int64_t ks,
                                   const float* bp, int64_t k, float* c, int64_t ldc, int64_t w,
                                   bool add) {
  switch (rows) {
    case 1: return tile_rows<1>(a, rs, ks, bp, k, c, ldc, w, add);
    case 2: return tile_rows<2>(a, rs, ks, bp, k, c, ldc, w, add);
    case 3: return tile_rows<3>(a, rs, ks, bp, k, c, ldc, w, add);
    case 4: return tile_rows<4>(a, rs, ks, bp, k, c, ldc, w, add);
    case 5: return tile_rows<5>(a, rs, ks, bp, k, c, ldc, w, add);
    case 6: return tile_rows<6>(a, rs, ks, bp, k, c, ldc, w, add);
    case 7: return tile_rows<7>(a, rs, ks, bp, k, c, ldc, w, add);
    default: return;
  }
}

// Rows [0, m) of C; op(B) packed over all k.
GULM_TARGET_AVX512F void gemm_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                     bool trans_a, const float* packed_b, float* c, int64_t ldc) {
  const int64_t rs = trans_a ? 1 : lda, ks = trans_a ? lda : 1;
  const int64_t kc = k <= kMaxK ? k : kKc;
  for (int64_t q0 = 0; q0 < k; q0 += kc) {
    const int64_t kb = std::min(kc, k - q0);
    const bool add = q0 > 0;
    for (int64_t p = 0; p < panels(n); ++p) {
      const int64_t n0 = p * kNr, w = std::min(kNr, n - n0);
      const float* bp = packed_b + (p * k + q0) * kNr;
      const float* aq = a + q0 * ks;
      int64_t i = 0;
      for (; i + kMr <= m; i += kMr) {
        tile_rows<kMr>(aq + i * rs, rs, ks, bp, kb, c + i * ldc + n0, ldc, w, add);
      }
      if (i < m) tile_tail(int(m - i), aq + i * rs, rs, ks, bp, kb, c + i * ldc + n0, ldc, w, add);
    }
  }
}

#endif  // GULM_SGEMM_X86

}  // namespace

bool sgemm_packed_available() {
  return GULM_SGEMM_X86 && cpu_isa() >= CpuIsa::Avx512;
}

int64_t sgemm_packed_size(int64_t k, int64_t n) { return panels(n) * kNr * k; }

namespace {
// Panels [p0, p1) of sgemm_pack_b.
void pack_panels(const float* b, int64_t ldb, bool trans_b, int64_t k, int64_t n, float* out,
                 int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * kNr, w = std::min(kNr, n - n0);
    float* dst = out + p * k * kNr;
    if (trans_b) {
      // B is [n,k]: read rows of B, write columns of the panel, in blocks of 64 k so that
      // both sides stay in L1.
      constexpr int64_t kBlock = 64;
      for (int64_t q0 = 0; q0 < k; q0 += kBlock) {
        const int64_t q1 = std::min(k, q0 + kBlock);
        for (int64_t j = 0; j < w; ++j) {
          const float* src = b + (n0 + j) * ldb;
          for (int64_t q = q0; q < q1; ++q) dst[q * kNr + j] = src[q];
        }
        for (int64_t q = q0; q < q1; ++q) std::fill(dst + q * kNr + w, dst + (q + 1) * kNr, 0.0f);
      }
      continue;
    }
    for (int64_t q = 0; q < k; ++q) {
      float* d = dst + q * kNr;
      std::copy(b + q * ldb + n0, b + q * ldb + n0 + w, d);
      std::fill(d + w, d + kNr, 0.0f);
    }
  }
}
}  // namespace

void sgemm_pack_b(const float* b, int64_t ldb, bool trans_b, int64_t k, int64_t n, float* out,
                  const ParallelFor& par) {
  par(panels(n), 1, [&](int64_t p0, int64_t p1) { pack_panels(b, ldb, trans_b, k, n, out, p0, p1); });
}

namespace {
// Rows [0, m) on the calling thread.
void packed_rows(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                 const float* packed_b, float* c, int64_t ldc) {
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
#if GULM_SGEMM_X86
  gemm_avx512(m, n, k, a, lda, trans_a, packed_b, c, ldc);
#else
  (void)a, (void)lda, (void)trans_a, (void)packed_b;
#endif
}
}  // namespace

void sgemm_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                  const float* packed_b, float* c, int64_t ldc, const ParallelFor& par) {
  if (m <= 0 || n <= 0) return;
  // Blocks of whole 8-row tiles: at most kMaxBlockTiles (256 rows: every panel of B read from
  // L3 serves 256 rows while the block's rows of A stay in L2; blocks of 32 rows made the big
  // GEMMs half as fast, and one block of thousands of rows streams A from memory once per
  // panel), at least 4, else one block per thread. Threads claim blocks, so a late thread's
  // share is taken by the others.
  constexpr int64_t kMinBlockTiles = 4, kMaxBlockTiles = 32;
  const int64_t threads = par.fn ? std::max<int64_t>(par.threads, 1) : 1;
  const int64_t tiles = (m + kMr - 1) / kMr;
  const int64_t per_block = std::clamp<int64_t>(tiles / threads, kMinBlockTiles, kMaxBlockTiles);
  const int64_t blocks = (tiles + per_block - 1) / per_block;
  const auto run = [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = blk * per_block * kMr, i1 = std::min(m, (blk + 1) * per_block * kMr);
      packed_rows(i1 - i0, n, k, a + i0 * (trans_a ? 1 : lda), lda, trans_a, packed_b, c + i0 * ldc, ldc);
    }
  };
  if (threads <= 1 || blocks <= 1) {
    run(0, blocks);
  } else {
    par(blocks, 1, run);
  }
}

}  // namespace gulm
