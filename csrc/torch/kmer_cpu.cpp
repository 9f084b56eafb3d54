// CPU implementations of the k-mer ops (schemas in registration.cpp, contract in
// gulm/kmer.h): argument checks, allocation, and parallel_chunks (parallel.h) over chunks of
// the output, each chunk handed to the kernel as a [begin, end) range.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <atomic>
#include <cstdint>
#include <optional>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "gulm/kmer.h"
#include "kmer_common.h"
#include "parallel.h"

namespace gulm_torch {
namespace {

// Output elements per parallel chunk, at least: large enough that starting a thread (tens of
// microseconds) is noise next to the chunk's work, small enough that 10^6-byte inputs already
// use two threads.
constexpr int64_t kGrain = 1 << 17;

// Large outputs are fresh mmap'ed memory that the kernel then faults in page by page; at 4 KiB
// pages that costs more than the tokenization itself. Like numpy (alloc.c), ask for
// transparent huge pages on allocations of 4 MiB and more, before the first touch.
// Best effort: if THP is off ("never") or madvise fails, nothing changes.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor out = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t bytes = out.nbytes();
  if (bytes >= (size_t(4) << 20)) {
    constexpr uintptr_t kPage = 4096;
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(out.data_ptr()) + kPage - 1) & ~(kPage - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(out.data_ptr()) + bytes) & ~(kPage - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
  return out;
}

at::Tensor kmer_encode(const at::Tensor& seq, int64_t k, int64_t stride, c10::ScalarType dtype) {
  constexpr const char* op = "gulm::kmer_encode";
  apply_cpu_isa_env();
  check_bytes(op, "seq", seq);
  check_k_stride(op, k, stride);
  const gulm::KmerIdType out_type = id_type_of(op, "dtype", dtype);
  const at::Tensor s = seq.contiguous();
  const int64_t n = gulm::kmer_num_tokens(s.size(0), static_cast<int>(k), static_cast<int>(stride));
  at::Tensor out = empty_output({n}, s.options().dtype(dtype));
  const gulm::KmerEncodeParams p = encode_params(s, k, stride, out_type, out);
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e) { gulm::kmer_encode_cpu(p, b, e); });
  return out;
}

std::tuple<at::Tensor, at::Tensor> kmer_encode_batch(const at::Tensor& seqs, const at::Tensor& offsets,
                                                     int64_t k, int64_t stride, c10::ScalarType dtype,
                                                     bool pad_left, int64_t max_tokens) {
  constexpr const char* op = "gulm::kmer_encode_batch";
  apply_cpu_isa_env();
  check_bytes(op, "seqs", seqs);
  check_offsets(op, offsets, seqs);
  check_k_stride(op, k, stride);
  const gulm::KmerIdType out_type = id_type_of(op, "dtype", dtype);
  const at::Tensor s = seqs.contiguous();
  const at::Tensor o = offsets.contiguous();
  const int64_t B = o.size(0) - 1;
  const int64_t* off = o.data_ptr<int64_t>();
  TORCH_CHECK(off[0] >= 0 && off[B] <= s.size(0), op, ": offsets must lie in [0, len(seqs)=",
              s.size(0), "], got offsets[0]=", off[0], " and offsets[-1]=", off[B]);
  at::Tensor lengths = at::empty({B}, o.options());
  const int64_t widest = gulm::kmer_batch_lengths_cpu(off, B, static_cast<int>(k), static_cast<int>(stride),
                                                      max_tokens, lengths.data_ptr<int64_t>());
  TORCH_CHECK(widest >= 0, op, ": offsets must be non-decreasing, but offsets[", -1 - widest + 1,
              "] < offsets[", -1 - widest, "]");
  const int64_t W = max_tokens > 0 ? max_tokens : widest;
  at::Tensor out = empty_output({B, W}, s.options().dtype(dtype));
  const gulm::KmerBatchParams p = batch_params(s, o, k, stride, max_tokens, W, pad_left, out_type, lengths, out);
  parallel_chunks(B * W, kGrain, [&](int64_t b, int64_t e) { gulm::kmer_encode_batch_cpu(p, b, e); });
  return {out, lengths};
}

// Throws naming the first id outside [0, 4^k + 2).
void check_id_range(const char* op, const at::Tensor& ids, gulm::KmerIdType type, int64_t k) {
  const int64_t n = ids.numel();
  std::atomic<int64_t> first_bad{n};
  parallel_chunks(n, kGrain * 4, [&](int64_t b, int64_t e) {
    const int64_t i = gulm::kmer_find_bad_id_cpu(ids.data_ptr(), type, b, e, static_cast<int>(k));
    if (i >= 0) {
      int64_t cur = first_bad.load();
      while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
      }
    }
  });
  const int64_t bad = first_bad.load();
  TORCH_CHECK(bad == n, op, ": ids must lie in [0, 4^k + 2) = [0, ", gulm::kmer_vocab_size(static_cast<int>(k)),
              ") for k=", k, ", but flat element ", bad, " is ",
              type == gulm::KmerIdType::I64 ? ids.data_ptr<int64_t>()[bad]
                                            : static_cast<int64_t>(ids.data_ptr<int32_t>()[bad]));
}

at::Tensor kmer_decode(const at::Tensor& ids, int64_t k, int64_t stride) {
  const DecodeCall c = prepare_decode("gulm::kmer_decode", ids, k, stride, check_id_range);
  parallel_chunks(c.out.numel(), kGrain, [&](int64_t b, int64_t e) { gulm::kmer_decode_cpu(c.p, b, e); });
  return c.out;
}

at::Tensor revcomp(const at::Tensor& seq) {
  constexpr const char* op = "gulm::revcomp";
  check_bytes(op, "seq", seq);
  const at::Tensor s = seq.contiguous();
  const int64_t L = s.size(0);
  at::Tensor out = at::empty({L}, s.options());
  const uint8_t* in = s.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  parallel_chunks(L, kGrain * 8, [&](int64_t b, int64_t e) { gulm::revcomp_cpu(in, L, o, b, e); });
  return out;
}

at::Tensor kmer_revcomp(const at::Tensor& ids, int64_t k, const std::optional<at::Tensor>& lengths,
                        bool pad_left) {
  const RevcompCall c = prepare_kmer_revcomp("gulm::kmer_revcomp", ids, k, lengths, pad_left, check_id_range);
  parallel_chunks(c.ids.numel(), kGrain, [&](int64_t b, int64_t e) { gulm::kmer_revcomp_cpu(c.p, b, e); });
  return c.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gulm, CPU, m) {
  m.impl("kmer_encode", &kmer_encode);
  m.impl("kmer_encode_batch", &kmer_encode_batch);
  m.impl("kmer_decode", &kmer_decode);
  m.impl("revcomp", &revcomp);
  m.impl("kmer_revcomp", &kmer_revcomp);
}

}  // namespace gulm_torch
