// CPU k-mer tokenizer kernels (contract: gulm/kmer.h).
//
// Encoding has three interchangeable paths that give identical output:
//   * scalar: one pass over the bytes with a rolling base-4 code and a run length of valid
//     bytes; each range re-primes the roll at its first window.
//   * AVX2: a block of bytes is classified 32 at a time (nibble LUT, see classify below); for
//     blocks without an invalid byte the 16-base code at every position is built with shifts
//     and ors and the windows are picked from it. Blocks holding an invalid byte go scalar.
//   * AVX-512 (BW + VBMI): one 64-byte load yields up to 16 windows. The 4-base code of every
//     position is built with two cross-lane byte shifts (vpermb), one more vpermb gathers the
//     four 4-base codes of each window into a 32-bit lane, and a shift leaves the k-mer.
//     Invalid bytes run through the same pipeline as a 2-bit "bad" mask, so mixed blocks stay
//     vectorised.
// The SIMD functions are compiled for their ISA with a target pragma and chosen at run time,
// so the library itself needs no -m flags. Code inside the pragma regions calls no inline
// function with vague linkage (std::min and friends): such an instantiation could be emitted
// with AVX-512 instructions and then picked by the linker for callers outside the region.
#include "gulm/kmer.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#define GULM_KMER_X86 1
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_epi32(), a self-initialised
// variable that -Wuninitialized reports once per inlined call (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#else
#define GULM_KMER_X86 0
#endif

namespace gulm {
namespace {

// ---- byte classification ---------------------------------------------------------------------
// code: A/a=0, C/c=1, G/g=2, T/t/U/u=3; kInvalid for everything else.
constexpr uint8_t kInvalid = 4;

struct CodeTable {
  uint8_t v[256];
  constexpr CodeTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = kInvalid;
    v['A'] = v['a'] = 0;
    v['C'] = v['c'] = 1;
    v['G'] = v['g'] = 2;
    v['T'] = v['t'] = 3;
    v['U'] = v['u'] = 3;
  }
};
constexpr CodeTable kCode{};

struct ComplementTable {
  uint8_t v[256];
  constexpr ComplementTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = static_cast<uint8_t>(i);
    const char* pairs[] = {"AT", "CG", "GC", "TA", "UA", "RY", "YR", "KM", "MK",
                           "SS", "WW", "BV", "VB", "DH", "HD", "NN"};
    for (const char* p : pairs) {
      v[static_cast<uint8_t>(p[0])] = static_cast<uint8_t>(p[1]);
      v[static_cast<uint8_t>(p[0]) + 32] = static_cast<uint8_t>(p[1] + 32);
    }
  }
};
constexpr ComplementTable kComplement{};

template <typename T>
inline void store_id(void* out, int64_t i, int64_t v) {
  static_cast<T*>(out)[i] = static_cast<T>(v);
}

// ---- scalar encoder ---------------------------------------------------------------------------
template <typename T>
void encode_scalar(const uint8_t* GULM_RESTRICT seq, int k, int s, T* GULM_RESTRICT out,
                   int64_t tb, int64_t te) {
  if (tb >= te) return;
  const uint32_t mask = (uint32_t(1) << (2 * k)) - 1;
  uint32_t code = 0;
  int run = 0;  // valid bytes ending at the last byte read (only compared with k)
  for (int64_t t = tb; t < te; ++t) {
    const int64_t p = t * s;
    int64_t from;
    if (t == tb || s >= k) {  // (re)prime: read the whole window
      code = 0;
      run = 0;
      from = p;
    } else {  // roll: the window moved by s bytes, read the s new ones
      from = p + k - s;
    }
    for (int64_t i = from; i < p + k; ++i) {
      const uint8_t c = kCode.v[seq[i]];
      code = ((code << 2) | (c & 3u)) & mask;
      run = c == kInvalid ? 0 : (run < k ? run + 1 : k);
    }
    out[t] = static_cast<T>(run >= k ? int64_t(code) + 2 : kKmerUnk);
  }
}

#if GULM_KMER_X86

// Windows 1..n of a vector path must come from one 64-byte load: window j reads the 16 bytes
// [j*s, j*s+16) (k <= 15 plus the lookahead of the 4-base gather), so j*s + 16 <= 64.
constexpr int kAvx512MaxStride = 48;
// With KmerEncodeParams::streaming, outputs at least this large are written with non-temporal
// stores: far larger than the caches, written once and read later. Measured here (10 Mbp,
// 1 thread, output already mapped): k3s1 int64 (80 MB) 2.3 -> 2.95 Gbp/s; k5s2 int64 (40 MB,
// still cache friendly) 5.5 -> 5.4, so it stays off below 64 MiB.
constexpr int64_t kStreamingMinBytes = int64_t(64) << 20;
constexpr int kAvx2MaxStride = 64;

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2")
#endif

// Nibble tables: a byte b is a base iff (b | 0x20) == kExpect[b & 15], i.e. b is one of
// a/c/g/t/u in either case (their low nibbles 1, 3, 7, 4, 5 are distinct and the high nibble
// of (b | 0x20) must then be 6 or 7). Other nibbles hold a value whose low nibble differs
// from the index, so they never match.
alignas(32) const uint8_t kExpect16[32] = {
    0x01, 0x61, 0x01, 0x63, 0x74, 0x75, 0x01, 0x67, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x61, 0x01, 0x63, 0x74, 0x75, 0x01, 0x67, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01};
alignas(32) const uint8_t kCode16[32] = {0, 0, 0, 1, 3, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 1, 3, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};

// 8 bytes -> 8 zero-extended 32-bit lanes.
inline __m256i widen8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Block of the AVX2 path: codes of up to kAvx2Block + 64 bytes live on the stack.
constexpr int kAvx2Block = 2048;

template <typename T>
void encode_avx2(const uint8_t* GULM_RESTRICT seq, int64_t len, int k, int s,
                 T* GULM_RESTRICT out, int64_t tb, int64_t te) {
  alignas(32) uint8_t code[kAvx2Block + 96];
  alignas(32) uint8_t quad[kAvx2Block + 64];
  alignas(32) int32_t ids[kAvx2Block + 32];
  const __m256i expect = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpect16));
  const __m256i lut = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCode16));
  const __m256i low_nibble = _mm256_set1_epi8(0x0F);
  const __m256i lower = _mm256_set1_epi8(0x20);
  const __m128i right = _mm_cvtsi32_si128(32 - 2 * k);
  const __m256i two = _mm256_set1_epi32(2);
  // Tokens per block: their windows and the 16-byte lookahead fit in the buffers.
  const int64_t per_block = (kAvx2Block - 16) / s + 1;
  for (int64_t t0 = tb; t0 < te; t0 += per_block) {
    const int64_t nt = (te - t0) < per_block ? (te - t0) : per_block;
    const int64_t p0 = t0 * s;
    const int64_t need = (nt - 1) * s + k;     // bytes the windows cover
    const int64_t npos = (nt - 1) * s + 1;     // window starts (positions) in the block
    const int64_t avail = len - p0;            // >= need
    // 1. classify; count invalid bytes inside [0, need)
    uint32_t any_bad = 0;
    // (classify 64 bytes past the last window start, so that the shifted loads below only
    // read filled bytes)
    for (int64_t i = 0; i < npos + 64; i += 32) {
      __m256i raw;
      if (avail - i >= 32) {
        raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(seq + p0 + i));
      } else {
        alignas(32) uint8_t tail[32] = {0};
        const int64_t m = avail - i > 0 ? avail - i : 0;
        std::memcpy(tail, seq + p0 + i, static_cast<size_t>(m));
        raw = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
      }
      const __m256i lo = _mm256_and_si256(raw, low_nibble);
      const __m256i ok = _mm256_cmpeq_epi8(_mm256_or_si256(raw, lower), _mm256_shuffle_epi8(expect, lo));
      uint32_t bad = ~static_cast<uint32_t>(_mm256_movemask_epi8(ok));
      if (need - i < 32) bad &= (uint32_t(1) << (need - i > 0 ? need - i : 0)) - 1;
      any_bad |= bad;
      _mm256_store_si256(reinterpret_cast<__m256i*>(code + i), _mm256_shuffle_epi8(lut, lo));
    }
    if (any_bad) {
      encode_scalar<T>(seq, k, s, out, t0, t0 + nt);
      continue;
    }
    // 2. quad[p] = 4-base code starting at p (byte values stay < 256, so 16-bit shifts do)
    for (int64_t i = 0; i < npos + 28; i += 32) {
      const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(code + i));
      const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 1));
      const __m256i c2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 2));
      const __m256i c3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 3));
      const __m256i p01 = _mm256_or_si256(_mm256_slli_epi16(c0, 2), c1);
      const __m256i p23 = _mm256_or_si256(_mm256_slli_epi16(c2, 2), c3);
      _mm256_store_si256(reinterpret_cast<__m256i*>(quad + i),
                         _mm256_or_si256(_mm256_slli_epi16(p01, 4), p23));
    }
    // 3. ids at every position p: (q[p]<<24 | q[p+4]<<16 | q[p+8]<<8 | q[p+12]) >> (32-2k)
    for (int64_t i = 0; i < npos; i += 8) {
      const uint8_t* q = quad + i;
      __m256i v = _mm256_or_si256(_mm256_slli_epi32(widen8(q), 24), _mm256_slli_epi32(widen8(q + 4), 16));
      v = _mm256_or_si256(v, _mm256_or_si256(_mm256_slli_epi32(widen8(q + 8), 8), widen8(q + 12)));
      v = _mm256_add_epi32(_mm256_srl_epi32(v, right), two);
      _mm256_store_si256(reinterpret_cast<__m256i*>(ids + i), v);
    }
    // 4. pick every s-th position
    T* o = out + t0;
    if (s == 1) {
      for (int64_t j = 0; j < nt; ++j) o[j] = static_cast<T>(ids[j]);
    } else {
      for (int64_t j = 0; j < nt; ++j) o[j] = static_cast<T>(ids[j * s]);
    }
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vbmi,bmi,bmi2")
#endif

struct Avx512Consts {
  __m512i expect, lut, low_nibble, lower, shift1, shift2, gather, two, one, three;
  __m128i right;
  int per_vec;  // windows per 64-byte load (<= 16)
};

inline Avx512Consts avx512_consts(int k, int s) {
  Avx512Consts c;
  c.expect = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kExpect16)));
  c.lut = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kCode16)));
  c.low_nibble = _mm512_set1_epi8(0x0F);
  c.lower = _mm512_set1_epi8(0x20);
  alignas(64) uint8_t idx1[64], idx2[64], gidx[64];
  for (int i = 0; i < 64; ++i) {
    idx1[i] = static_cast<uint8_t>((i + 1) & 63);
    idx2[i] = static_cast<uint8_t>((i + 2) & 63);
  }
  int n = (64 - 16) / s + 1;
  if (n > 16) n = 16;
  c.per_vec = n;
  // Lane j (little endian): bytes q[j*s+12], q[j*s+8], q[j*s+4], q[j*s].
  for (int j = 0; j < 16; ++j) {
    const int p = j < n ? j * s : 0;
    gidx[4 * j + 0] = static_cast<uint8_t>(p + 12);
    gidx[4 * j + 1] = static_cast<uint8_t>(p + 8);
    gidx[4 * j + 2] = static_cast<uint8_t>(p + 4);
    gidx[4 * j + 3] = static_cast<uint8_t>(p);
  }
  c.shift1 = _mm512_load_si512(idx1);
  c.shift2 = _mm512_load_si512(idx2);
  c.gather = _mm512_load_si512(gidx);
  c.right = _mm_cvtsi32_si128(32 - 2 * k);
  c.two = _mm512_set1_epi32(2);
  c.one = _mm512_set1_epi32(1);
  c.three = _mm512_set1_epi8(3);
  return c;
}

// 2-bit digits per byte -> the 16-digit number starting at each window start, in a 32-bit
// lane per window, shifted right so that only the window's k digits remain.
inline __m512i avx512_windows(const Avx512Consts& c, __m512i digits) {
  const __m512i pairs = _mm512_or_si512(_mm512_slli_epi16(digits, 2), _mm512_permutexvar_epi8(c.shift1, digits));
  const __m512i quads = _mm512_or_si512(_mm512_slli_epi16(pairs, 4), _mm512_permutexvar_epi8(c.shift2, pairs));
  return _mm512_srl_epi32(_mm512_permutexvar_epi8(c.gather, quads), c.right);
}

template <typename T>
inline void avx512_store(T* dst, __m512i ids, __mmask16 m);

template <>
inline void avx512_store<int32_t>(int32_t* dst, __m512i ids, __mmask16 m) {
  if (m == 0xFFFF) {
    _mm512_storeu_si512(dst, ids);
  } else {
    _mm512_mask_storeu_epi32(dst, m, ids);
  }
}

template <>
inline void avx512_store<int64_t>(int64_t* dst, __m512i ids, __mmask16 m) {
  const __m512i lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ids));
  const __m512i hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ids, 1));
  if (m == 0xFFFF) {
    _mm512_storeu_si512(dst, lo);
    _mm512_storeu_si512(dst + 8, hi);
  } else {
    _mm512_mask_storeu_epi64(dst, static_cast<__mmask8>(m), lo);
    _mm512_mask_storeu_epi64(dst + 8, static_cast<__mmask8>(m >> 8), hi);
  }
}

// Full, 64-byte aligned vectors bypass the caches (the ids are written once and read much
// later, and a regular store would first read each line in).
template <typename T>
inline void avx512_stream(T* dst, __m512i ids);

template <>
inline void avx512_stream<int32_t>(int32_t* dst, __m512i ids) {
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), ids);
}

template <>
inline void avx512_stream<int64_t>(int64_t* dst, __m512i ids) {
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), _mm512_cvtepu32_epi64(_mm512_castsi512_si256(ids)));
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + 8), _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ids, 1)));
}

template <typename T>
void encode_avx512(const uint8_t* GULM_RESTRICT seq, int64_t len, int k, int s,
                   T* GULM_RESTRICT out, int64_t tb, int64_t te, bool streaming) {
  const Avx512Consts c = avx512_consts(k, s);
  const int per_vec = c.per_vec;
  // Streaming needs 16 ids per vector, so that an aligned start stays aligned.
  streaming = streaming && per_vec == 16;
  int n = 0;
  for (int64_t t0 = tb; t0 < te; t0 += n) {
    const int64_t left = te - t0;
    n = left < per_vec ? static_cast<int>(left) : per_vec;
    if (streaming && t0 == tb) {
      // a short first vector brings the stores of a chunk that starts mid-line to a line
      const int head = static_cast<int>(((64 - (reinterpret_cast<uintptr_t>(out + t0) & 63)) & 63) / sizeof(T));
      if (head > 0 && head < n) n = head;
    }
    const int64_t p0 = t0 * s;
    const int64_t avail = len - p0;
    const __mmask64 load_mask = avail >= 64 ? ~__mmask64(0) : (__mmask64(1) << avail) - 1;
    const __m512i raw = _mm512_maskz_loadu_epi8(load_mask, seq + p0);
    const __m512i lo = _mm512_and_si512(raw, c.low_nibble);
    const __mmask64 ok =
        _mm512_cmpeq_epi8_mask(_mm512_or_si512(raw, c.lower), _mm512_shuffle_epi8(c.expect, lo));
    const int need = (n - 1) * s + k;  // <= 63
    const __mmask64 need_mask = (__mmask64(1) << need) - 1;
    const __m512i digits = _mm512_shuffle_epi8(c.lut, lo);
    __m512i ids = _mm512_add_epi32(avx512_windows(c, digits), c.two);
    if (GULM_UNLIKELY((ok & need_mask) != need_mask)) {
      // bad digits are 3 (0b11) where the byte is invalid: a window is unk iff its bad code
      // is non-zero.
      const __m512i bad = _mm512_maskz_mov_epi8(~ok, c.three);
      const __mmask16 unk = _mm512_test_epi32_mask(avx512_windows(c, bad), avx512_windows(c, bad));
      ids = _mm512_mask_mov_epi32(ids, unk, c.one);
    }
    const __mmask16 store_mask = n == 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
    if (streaming && n == 16 && (reinterpret_cast<uintptr_t>(out + t0) & 63) == 0) {
      avx512_stream<T>(out + t0, ids);
    } else {
      avx512_store<T>(out + t0, ids, store_mask);
    }
  }
  if (streaming) _mm_sfence();  // order the streamed lines before whoever reads them next
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // !GULM_KMER_X86

constexpr int kAvx512MaxStride = 0;
constexpr int kAvx2MaxStride = 0;

#endif

template <typename T>
void encode_dispatch(const KmerEncodeParams& p, T* out, int64_t tb, int64_t te) {
  if (tb >= te) return;
  const CpuIsa isa = kmer_cpu_resolve_isa(p.isa);
#if GULM_KMER_X86
  if (isa == CpuIsa::Avx512 && p.stride <= kAvx512MaxStride) {
    const int64_t out_bytes = kmer_num_tokens(p.len, p.k, p.stride) * static_cast<int64_t>(sizeof(T));
    encode_avx512<T>(p.seq, p.len, p.k, p.stride, out, tb, te, p.streaming && out_bytes >= kStreamingMinBytes);
    return;
  }
  if (isa >= CpuIsa::Avx2 && p.stride <= kAvx2MaxStride) {
    encode_avx2<T>(p.seq, p.len, p.k, p.stride, out, tb, te);
    return;
  }
#else
  (void)isa;
#endif
  encode_scalar<T>(p.seq, p.k, p.stride, out, tb, te);
}

template <typename T>
inline int64_t load_id(const void* ids, int64_t i) {
  return static_cast<int64_t>(static_cast<const T*>(ids)[i]);
}

inline int64_t read_id(const void* ids, KmerIdType t, int64_t i) {
  return t == KmerIdType::I64 ? load_id<int64_t>(ids, i) : load_id<int32_t>(ids, i);
}

}  // namespace

// ---- public entry points ----------------------------------------------------------------------

CpuIsa kmer_cpu_resolve_isa(CpuIsa requested) {
  const CpuIsa isa = cpu_isa_for(requested);
  if (isa == CpuIsa::Avx512 && !(cpu_features().avx512_vbmi && kAvx512MaxStride > 0)) {
    return CpuIsa::Avx2;
  }
  return isa;
}

void kmer_encode_cpu(const KmerEncodeParams& p, int64_t tok_begin, int64_t tok_end) {
  if (p.out_type == KmerIdType::I64) {
    encode_dispatch<int64_t>(p, static_cast<int64_t*>(p.out), tok_begin, tok_end);
  } else {
    encode_dispatch<int32_t>(p, static_cast<int32_t*>(p.out), tok_begin, tok_end);
  }
}

int64_t kmer_batch_lengths_cpu(const int64_t* offsets, int64_t batch, int k, int stride,
                               int64_t max_tokens, int64_t* lengths) {
  int64_t widest = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t bytes = offsets[b + 1] - offsets[b];
    if (bytes < 0) return -1 - b;
    int64_t n = kmer_num_tokens(bytes, k, stride);
    if (max_tokens > 0 && n > max_tokens) n = max_tokens;
    lengths[b] = n;
    if (n > widest) widest = n;
  }
  return widest;
}

void kmer_encode_batch_cpu(const KmerBatchParams& p, int64_t elem_begin, int64_t elem_end) {
  if (p.width <= 0 || elem_begin >= elem_end) return;
  const int64_t id_size = p.out_type == KmerIdType::I64 ? 8 : 4;
  for (int64_t row = elem_begin / p.width; row * p.width < elem_end; ++row) {
    const int64_t row_start = row * p.width;
    const int64_t c0 = (elem_begin > row_start ? elem_begin : row_start) - row_start;
    const int64_t c1 = (elem_end < row_start + p.width ? elem_end : row_start + p.width) - row_start;
    const int64_t n = p.lengths[row];
    const int64_t first = p.pad_left ? p.width - n : 0;  // column of token 0
    uint8_t* row_out = static_cast<uint8_t*>(p.out) + row_start * id_size;
    // padding columns: [0, first) and [first + n, W)
    const auto zero = [&](int64_t a, int64_t b) {
      if (a < c0) a = c0;
      if (b > c1) b = c1;
      if (a < b) std::memset(row_out + a * id_size, 0, static_cast<size_t>((b - a) * id_size));
    };
    zero(0, first);
    zero(first + n, p.width);
    int64_t ta = c0 - first, tb = c1 - first;
    if (ta < 0) ta = 0;
    if (tb > n) tb = n;
    if (ta < tb) {
      const KmerEncodeParams e = kmer_encode_params(
          p.seq_ptrs ? p.seq_ptrs[row] : p.seqs + p.offsets[row], p.offsets[row + 1] - p.offsets[row],
          p.k, p.stride, row_out + first * id_size, p.out_type, p.isa);
      kmer_encode_cpu(e, ta, tb);
    }
  }
}

void kmer_decode_cpu(const KmerDecodeParams& p, int64_t pos_begin, int64_t pos_end) {
  static const char kBase[4] = {'A', 'C', 'G', 'T'};
  const int64_t vocab = kmer_vocab_size(p.k);
  const int k = p.k, s = p.stride;
  for (int64_t i = pos_begin; i < pos_end; ++i) {
    // tokens covering i: t*s <= i < t*s + k
    int64_t t_lo = i - k + 1 <= 0 ? 0 : (i - k + 1 + s - 1) / s;
    int64_t t_hi = i / s;
    if (t_hi > p.n - 1) t_hi = p.n - 1;
    uint8_t base = 'N';
    for (int64_t t = t_lo; t <= t_hi; ++t) {
      const int64_t id = read_id(p.ids, p.id_type, t);
      if (id >= 2 && id < vocab) {
        const int64_t digit = k - 1 - (i - t * s);
        base = static_cast<uint8_t>(kBase[((id - 2) >> (2 * digit)) & 3]);
        break;
      }
    }
    p.out[i] = base;
  }
}

int64_t kmer_find_bad_id_cpu(const void* ids, KmerIdType id_type, int64_t begin, int64_t end,
                             int k) {
  const int64_t vocab = kmer_vocab_size(k);
  for (int64_t i = begin; i < end; ++i) {
    const int64_t id = read_id(ids, id_type, i);
    if (id < 0 || id >= vocab) return i;
  }
  return -1;
}

const uint8_t* revcomp_table() { return kComplement.v; }

void revcomp_cpu(const uint8_t* seq, int64_t len, uint8_t* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = kComplement.v[seq[len - 1 - i]];
}

namespace {
template <typename T>
void revcomp_ids(const KmerRevcompParams& p, int64_t eb, int64_t ee) {
  const T* ids = static_cast<const T*>(p.ids);
  T* out = static_cast<T*>(p.out);
  const int64_t W = p.width;
  const int64_t vocab = kmer_vocab_size(p.k);
  for (int64_t e = eb; e < ee; ++e) {
    const int64_t row = e / W, col = e - row * W;
    int64_t n = p.lengths ? p.lengths[row] : W;
    if (n < 0) n = 0;
    if (n > W) n = W;
    const int64_t first = p.pad_left ? W - n : 0;
    if (col < first || col >= first + n) {
      out[e] = ids[e];
      continue;
    }
    const int64_t id = static_cast<int64_t>(ids[row * W + first + (first + n - 1 - col)]);
    out[e] = (id >= 2 && id < vocab)
                 ? static_cast<T>(2 + kmer_code_revcomp(static_cast<uint32_t>(id - 2), p.k))
                 : static_cast<T>(id);
  }
}
}  // namespace

void kmer_revcomp_cpu(const KmerRevcompParams& p, int64_t elem_begin, int64_t elem_end) {
  if (p.width <= 0) return;
  if (p.id_type == KmerIdType::I64) {
    revcomp_ids<int64_t>(p, elem_begin, elem_end);
  } else {
    revcomp_ids<int32_t>(p, elem_begin, elem_end);
  }
}

}  // namespace gulm
