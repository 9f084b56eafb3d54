// The k-mer tokenizer contract between the kernel layer and its callers.
//
// Framework-free: raw pointers and Params structs only (no torch, no Python). The CPU entry
// points work on a half-open range of output elements so that a caller can split the work
// into chunks and run them on any threads; every range is independent (each one re-primes its
// own rolling state), and any split gives bit-for-bit the same output as one call over the
// whole range. The CUDA entry points are declared in kmer_cuda.h.
//
// Vocabulary ("canonical"): id 0 = pad, 1 = unk, then the 4^k k-mers in lexicographic order,
//   id = 2 + sum_i code(b_i) * 4^(k-1-i)   with A=0, C=1, G=2, T=3.
// Bytes are ASCII; lowercase is folded to uppercase and U/u is read as T. A window containing
// any other byte (N, IUPAC codes, '-', whitespace, CR, bytes >= 0x80, ...) is unk.
// Windows: a sequence of L bytes gives kmer_num_tokens(L, k, stride) = floor((L-k)/stride)+1
// full windows (0 when L < k); window t covers bytes [t*stride, t*stride + k).
#pragma once
#include <cstdint>

#include "gulm/cpu.h"
#include "gulm/macros.h"

namespace gulm {

constexpr int kKmerMinK = 1;
// 2 + 4^15 < 2^31, so every id fits int32. k = 16 would not.
constexpr int kKmerMaxK = 15;
constexpr int64_t kKmerPad = 0;
constexpr int64_t kKmerUnk = 1;

// Output element type of the id arrays.
enum class KmerIdType : int32_t { I32 = 0, I64 = 1 };


// Number of full windows of a sequence of `len` bytes (0 when len < k).
GULM_HOST_DEVICE inline int64_t kmer_num_tokens(int64_t len, int k, int stride) {
  return len < k ? 0 : (len - k) / stride + 1;
}

// 4^k + 2: the size of the canonical vocabulary.
GULM_HOST_DEVICE inline int64_t kmer_vocab_size(int k) { return (int64_t(1) << (2 * k)) + 2; }

// Sequence length decoded from n tokens: (n-1)*stride + k, or 0 when n == 0.
GULM_HOST_DEVICE inline int64_t kmer_decoded_length(int64_t n, int k, int stride) {
  return n == 0 ? 0 : (n - 1) * stride + k;
}

// Reverse complement of a k-mer's base-4 code (the id minus 2): complement every base
// (c -> 3 - c) and reverse their order.
GULM_HOST_DEVICE inline uint32_t kmer_code_revcomp(uint32_t code, int k) {
  uint32_t x = ~code;  // complement of every 2-bit digit
  // Reverse the 16 2-bit digits of a 32-bit word, then keep the top k digits.
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  x = (x >> 16) | (x << 16);
  return x >> (32 - 2 * k);
}

// ---- encode one sequence -------------------------------------------------------------------
struct KmerEncodeParams {
  const uint8_t* seq = nullptr;  // [len] ASCII bytes; read only
  int64_t len = 0;
  int k = 5;        // 1 <= k <= kKmerMaxK
  int stride = 1;   // >= 1 (may exceed k: the bytes in between are skipped)
  void* out = nullptr;  // [kmer_num_tokens(len,k,stride)] of out_type; must not overlap seq
  KmerIdType out_type = KmerIdType::I64;
  // Which CPU code path runs (see kmer_cpu_resolve_isa): Auto is the selector's level
  // (gulm/cpu.h); a named level is capped by it. Every path gives identical output.
  CpuIsa isa = CpuIsa::Auto;
  // Allow non-temporal (cache-bypassing) stores when the whole output is >= 64 MiB. Set it
  // only for memory that is already mapped, e.g. a buffer reused across calls: on fresh pages
  // the page-fault handler zeroes each page through the cache, and streaming over those
  // cached lines is slower than plain stores (measured 2x slower on 80 MB).
  bool streaming = false;
};

inline KmerEncodeParams kmer_encode_params(const uint8_t* seq, int64_t len, int k, int stride,
                                           void* out, KmerIdType out_type,
                                           CpuIsa isa = CpuIsa::Auto, bool streaming = false) {
  return KmerEncodeParams{seq, len, k, stride, out, out_type, isa, streaming};
}

// Writes out[t] for t in [tok_begin, tok_end), 0 <= tok_begin <= tok_end <= num_tokens.
void kmer_encode_cpu(const KmerEncodeParams& p, int64_t tok_begin, int64_t tok_end);

// ---- encode a batch of sequences into a padded [B, W] matrix --------------------------------
// Row b is the sequence of bytes_b = offsets[b+1] - offsets[b] bytes that starts at
// seq_ptrs[b] if seq_ptrs is given, else at seqs + offsets[b].
struct KmerBatchParams {
  const uint8_t* seqs = nullptr;             // flat bytes (unused when seq_ptrs is given)
  const uint8_t* const* seq_ptrs = nullptr;  // [B] optional per-row start pointers
  const int64_t* offsets = nullptr;          // [B+1], non-decreasing
  int64_t batch = 0;                         // B
  int k = 5;
  int stride = 1;
  int64_t max_tokens = 0;    // > 0: keep at most the first max_tokens tokens of each row
  int64_t width = 0;         // W (output columns)
  bool pad_left = false;     // padding (id 0) before the tokens instead of after
  const int64_t* lengths = nullptr;  // [B] tokens kept per row (from kmer_batch_lengths_cpu)
  void* out = nullptr;               // [B, W] row-major, of out_type
  KmerIdType out_type = KmerIdType::I64;
  CpuIsa isa = CpuIsa::Auto;
};

// Rows start at seqs + offsets[b], or at seq_ptrs[b] when seq_ptrs is not null.
inline KmerBatchParams kmer_batch_params(const uint8_t* seqs, const uint8_t* const* seq_ptrs,
                                         const int64_t* offsets, int64_t batch, int k, int stride,
                                         int64_t max_tokens, int64_t width, bool pad_left,
                                         const int64_t* lengths, void* out, KmerIdType out_type,
                                         CpuIsa isa = CpuIsa::Auto) {
  return KmerBatchParams{seqs,  seq_ptrs, offsets, batch, k,        stride,  max_tokens,
                         width, pad_left, lengths, out,   out_type, isa};
}

// Fills lengths[b] = min(kmer_num_tokens(bytes_b), max_tokens if max_tokens > 0) for all rows
// and returns the largest (0 for B == 0). Returns -1 - b if row b has offsets[b+1] <
// offsets[b] (lengths is then incomplete). Checking offsets[0] >= 0 and offsets[B] against
// the buffer size is the caller's job.
int64_t kmer_batch_lengths_cpu(const int64_t* offsets, int64_t batch, int k, int stride,
                               int64_t max_tokens, int64_t* lengths);

// Writes the flat output elements [elem_begin, elem_end) of the [B, W] matrix (row-major),
// padding included. 0 <= elem_begin <= elem_end <= B*W; requires width >= max(lengths).
void kmer_encode_batch_cpu(const KmerBatchParams& p, int64_t elem_begin, int64_t elem_end);

// ---- decode --------------------------------------------------------------------------------
// ids [n] (int32 or int64) -> seq [kmer_decoded_length(n,k,stride)] uint8. Output byte i is
// taken from the first (lowest t) known token (2 <= id < 4^k+2) covering it, and is 'N' when
// none does (pad, unk, or the gaps of stride > k).
struct KmerDecodeParams {
  const void* ids = nullptr;  // [n]
  KmerIdType id_type = KmerIdType::I64;
  int64_t n = 0;
  int k = 5;
  int stride = 1;
  uint8_t* out = nullptr;  // [kmer_decoded_length(n,k,stride)]; must not overlap ids
};

// Writes output bytes [pos_begin, pos_end).
void kmer_decode_cpu(const KmerDecodeParams& p, int64_t pos_begin, int64_t pos_end);

// Index of the first id in [begin, end) outside [0, 4^k+2), or -1. Used by callers to reject
// bad input before decode / revcomp (which treat such ids as unknown).
int64_t kmer_find_bad_id_cpu(const void* ids, KmerIdType id_type, int64_t begin, int64_t end,
                             int k);

// ---- reverse complement of a byte sequence --------------------------------------------------
// out[i] = complement(seq[len-1-i]); IUPAC aware (R<->Y, K<->M, B<->V, D<->H; S, W, N fixed),
// case preserved, U/u -> A/a; any other byte is copied unchanged. Writes out [begin, end).
// out must not overlap seq.
void revcomp_cpu(const uint8_t* seq, int64_t len, uint8_t* out, int64_t begin, int64_t end);

// The 256-entry complement table used by revcomp (for the CUDA kernel and tests).
const uint8_t* revcomp_table();

// ---- reverse complement of token ids ---------------------------------------------------------
// ids [rows, W] (int32 or int64; any leading dims flattened into rows) -> out, same shape and
// type. In row r the valid entries are [0, len_r), or [W - len_r, W) if pad_left, where len_r
// = lengths[r] clamped to [0, W] (W for every row when lengths is null). The valid entries are
// reversed in order and each k-mer id is replaced by the id of its reverse complement; pad (0)
// and unk (1) keep their value; entries outside the valid span are copied unchanged. out must
// not overlap ids. Ids outside [0, 4^k+2) are copied unchanged (callers reject them first with
// kmer_find_bad_id_cpu).
struct KmerRevcompParams {
  const void* ids = nullptr;
  void* out = nullptr;
  KmerIdType id_type = KmerIdType::I64;
  int64_t rows = 0;
  int64_t width = 0;
  const int64_t* lengths = nullptr;  // [rows] or null
  bool pad_left = false;
  int k = 5;
};

// Writes the flat elements [elem_begin, elem_end) of out.
void kmer_revcomp_cpu(const KmerRevcompParams& p, int64_t elem_begin, int64_t elem_end);

// ---- CPU feature dispatch --------------------------------------------------------------------
// The path kmer_encode_cpu runs for a requested level: cpu_isa_for(requested), lowered to Avx2
// when the CPU lacks AVX-512 VBMI (never Auto).
CpuIsa kmer_cpu_resolve_isa(CpuIsa requested);

}  // namespace gulm
