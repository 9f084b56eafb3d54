// gulm's own fp32 GEMM for a B operand packed once and reused many times: the recurrent
// weight of every time step of the fused LSTM (the Gemm's pack_b slots, gulm/gemm.h).
//
// The per-step GEMMs run on the calling thread (the LSTM kernel already runs one chunk of
// hidden units per thread); the one-off GEMMs (the input projection and the gradients over all
// time steps) pack their B and split the rows of C over a ParallelFor. AVX-512 only: a
// register-blocked micro-kernel, 8 rows of A by 48 columns of B (24 zmm accumulators), over B
// packed into 48-column panels. MKL's sgemm takes its AVX2 path on AMD
// CPUs, which caps it at half of what Zen 4/5 can do in AVX-512; this kernel runs at the
// AVX-512 rate on Intel and AMD alike. The binding times it against MKL and oneDNN per GEMM
// shape (gemm_cpu.cpp) and keeps the fastest.
#pragma once
#include <cstdint>

#include "gulm/parallel.h"

namespace gulm {

// Whether this CPU (and the ISA cap, gulm/cpu.h) allows the AVX-512 kernel. Off x86: false.
bool sgemm_packed_available();

// Floats needed to pack a [k,n] op(B).
int64_t sgemm_packed_size(int64_t k, int64_t n);

// Packs op(B) [k,n] (B is [k,n] with row stride ldb, or [n,k] when trans_b) into `out`
// (sgemm_packed_size(k, n) floats; its last panel zero-padded), panels on `par` (an empty
// ParallelFor, the default: on the calling thread).
void sgemm_pack_b(const float* b, int64_t ldb, bool trans_b, int64_t k, int64_t n, float* out,
                  const ParallelFor& par = {});

// C[m,n] = op(A)[m,k] @ op(B)[k,n] with op(B) packed by sgemm_pack_b (beta 0: C is
// write-only). op(A) = A ([m,k], row stride lda) or A^T when trans_a (A [k,m]). Blocks of
// C's rows run on `par` (default: the calling thread). Requires sgemm_packed_available().
void sgemm_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                  const float* packed_b, float* c, int64_t ldc, const ParallelFor& par = {});

}  // namespace gulm
