// CUDA implementations of the k-mer ops (schemas in registration.cpp, kernels in
// csrc/kernels/cuda/kmer.cu): checks, allocation on the input's device, launch on the current
// stream. Ops whose output shape or validity depends on the data (kmer_encode_batch without
// max_tokens, the id range checks of kmer_decode / kmer_revcomp) read back a few bytes and so
// synchronise the stream once.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <optional>

#include "../kmer_common.h"
#include "gulm/kmer_cuda.h"

namespace gulm_torch {
namespace {

void check_cuda(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.is_cuda(), op, ": ", arg, " must be a CUDA tensor here, got ", t.device());
}

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

at::Tensor kmer_encode(const at::Tensor& seq, int64_t k, int64_t stride, c10::ScalarType dtype) {
  constexpr const char* op = "gulm::kmer_encode";
  check_bytes(op, "seq", seq);
  check_cuda(op, "seq", seq);
  check_k_stride(op, k, stride);
  const gulm::KmerIdType out_type = id_type_of(op, "dtype", dtype);
  const c10::cuda::CUDAGuard guard(seq.device());
  const at::Tensor s = seq.contiguous();
  const int64_t n = gulm::kmer_num_tokens(s.size(0), static_cast<int>(k), static_cast<int>(stride));
  at::Tensor out = at::empty({n}, s.options().dtype(dtype));
  const gulm::KmerEncodeParams p = encode_params(s, k, stride, out_type, out);
  C10_CUDA_CHECK(gulm::kmer_encode_cuda(p, current_stream()));
  return out;
}

std::tuple<at::Tensor, at::Tensor> kmer_encode_batch(const at::Tensor& seqs, const at::Tensor& offsets,
                                                     int64_t k, int64_t stride, c10::ScalarType dtype,
                                                     bool pad_left, int64_t max_tokens) {
  constexpr const char* op = "gulm::kmer_encode_batch";
  check_bytes(op, "seqs", seqs);
  check_cuda(op, "seqs", seqs);
  check_offsets(op, offsets, seqs);
  check_k_stride(op, k, stride);
  const gulm::KmerIdType out_type = id_type_of(op, "dtype", dtype);
  const c10::cuda::CUDAGuard guard(seqs.device());
  const at::Tensor s = seqs.contiguous();
  const at::Tensor o = offsets.contiguous();
  const int64_t B = o.size(0) - 1;
  at::Tensor lengths = at::empty({B}, o.options());
  at::Tensor scratch = at::empty({2}, o.options());
  C10_CUDA_CHECK(gulm::kmer_batch_lengths_cuda(o.data_ptr<int64_t>(), B, s.size(0), static_cast<int>(k),
                                               static_cast<int>(stride), max_tokens, lengths.data_ptr<int64_t>(),
                                               scratch.data_ptr<int64_t>(), current_stream()));
  const at::Tensor host = scratch.cpu();  // synchronises: the width and the offsets check
  const int64_t widest = host.data_ptr<int64_t>()[0];
  const int64_t bad_row = host.data_ptr<int64_t>()[1] - 1;
  TORCH_CHECK(bad_row < 0, op, ": offsets must be non-decreasing and lie in [0, len(seqs)=", s.size(0),
              "], but row ", bad_row, " spans offsets[", bad_row, "]..offsets[", bad_row + 1, "]");
  const int64_t W = max_tokens > 0 ? max_tokens : widest;
  at::Tensor out = at::empty({B, W}, s.options().dtype(dtype));
  const gulm::KmerBatchParams p = batch_params(s, o, k, stride, max_tokens, W, pad_left, out_type, lengths, out);
  C10_CUDA_CHECK(gulm::kmer_encode_batch_cuda(p, current_stream()));
  return {out, lengths};
}

void check_id_range(const char* op, const at::Tensor& ids, gulm::KmerIdType type, int64_t k) {
  const int64_t n = ids.numel();
  at::Tensor flag = at::empty({1}, ids.options().dtype(at::kLong));
  C10_CUDA_CHECK(gulm::kmer_find_bad_id_cuda(ids.data_ptr(), type, n, static_cast<int>(k),
                                             flag.data_ptr<int64_t>(), current_stream()));
  const int64_t found = flag.item<int64_t>();  // synchronises
  if (found != 0) {
    const int64_t bad = n - found;
    TORCH_CHECK(false, op, ": ids must lie in [0, 4^k + 2) = [0, ", gulm::kmer_vocab_size(static_cast<int>(k)),
                ") for k=", k, ", but flat element ", bad, " is ", ids.reshape(-1)[bad].item<int64_t>());
  }
}

at::Tensor kmer_decode(const at::Tensor& ids, int64_t k, int64_t stride) {
  constexpr const char* op = "gulm::kmer_decode";
  check_cuda(op, "ids", ids);
  const c10::cuda::CUDAGuard guard(ids.device());
  const DecodeCall c = prepare_decode(op, ids, k, stride, check_id_range);
  C10_CUDA_CHECK(gulm::kmer_decode_cuda(c.p, current_stream()));
  return c.out;
}

at::Tensor revcomp(const at::Tensor& seq) {
  constexpr const char* op = "gulm::revcomp";
  check_bytes(op, "seq", seq);
  check_cuda(op, "seq", seq);
  const c10::cuda::CUDAGuard guard(seq.device());
  const at::Tensor s = seq.contiguous();
  at::Tensor out = at::empty({s.size(0)}, s.options());
  C10_CUDA_CHECK(gulm::revcomp_cuda(s.data_ptr<uint8_t>(), s.size(0), out.data_ptr<uint8_t>(), current_stream()));
  return out;
}

at::Tensor kmer_revcomp(const at::Tensor& ids, int64_t k, const std::optional<at::Tensor>& lengths,
                        bool pad_left) {
  constexpr const char* op = "gulm::kmer_revcomp";
  check_cuda(op, "ids", ids);
  const c10::cuda::CUDAGuard guard(ids.device());
  const RevcompCall c = prepare_kmer_revcomp(op, ids, k, lengths, pad_left, check_id_range);
  C10_CUDA_CHECK(gulm::kmer_revcomp_cuda(c.p, current_stream()));
  return c.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gulm, CUDA, m) {
  m.impl("kmer_encode", &kmer_encode);
  m.impl("kmer_encode_batch", &kmer_encode_batch);
  m.impl("kmer_decode", &kmer_decode);
  m.impl("revcomp", &revcomp);
  m.impl("kmer_revcomp", &kmer_revcomp);
}

}  // namespace gulm_torch
