// Argument checks and kernel-parameter builders shared by the CPU and CUDA bindings of the k-mer
// ops (kmer_cpu.cpp, cuda/kmer_cuda.cpp, kmer_buffer.cpp).
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "gulm/kmer.h"

namespace gulm_torch {

inline void check_k_stride(const char* op, int64_t k, int64_t stride) {
  TORCH_CHECK(k >= gulm::kKmerMinK && k <= gulm::kKmerMaxK, op, ": k must be in [",
              gulm::kKmerMinK, ", ", gulm::kKmerMaxK, "] (4^k + 2 ids must fit int32), got k=", k);
  TORCH_CHECK(stride >= 1 && stride <= (int64_t(1) << 30), op,
              ": stride must be >= 1 (and < 2^30), got stride=", stride);
}

inline gulm::KmerIdType id_type_of(const char* op, const char* arg, c10::ScalarType t) {
  TORCH_CHECK(t == at::kLong || t == at::kInt, op, ": ", arg,
              " must be torch.int64 or torch.int32, got ", t);
  return t == at::kLong ? gulm::KmerIdType::I64 : gulm::KmerIdType::I32;
}

// A 1-D uint8 byte sequence [L].
inline void check_bytes(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.dim() == 1, op, ": ", arg, " must be a 1-D uint8 tensor [L] of ASCII bytes, got shape ",
              t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kByte, op, ": ", arg,
              " must have dtype torch.uint8 (ASCII bytes), got ", t.scalar_type());
}

inline void check_offsets(const char* op, const at::Tensor& offsets, const at::Tensor& seqs) {
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1, op,
              ": offsets must be a 1-D int64 tensor [B+1] (B >= 0), got shape ", offsets.sizes());
  TORCH_CHECK(offsets.scalar_type() == at::kLong, op, ": offsets must have dtype torch.int64, got ",
              offsets.scalar_type());
  TORCH_CHECK(offsets.device() == seqs.device(), op, ": offsets must be on the device of seqs (",
              seqs.device(), "), got ", offsets.device());
}

// ids [..., W] of int32/int64 and the optional lengths [...] of int64.
inline void check_ids(const char* op, const at::Tensor& ids, const std::optional<at::Tensor>& lengths) {
  TORCH_CHECK(ids.dim() >= 1, op, ": ids must have at least one dim [..., W], got a 0-d tensor");
  id_type_of(op, "ids", ids.scalar_type());
  if (lengths.has_value()) {
    const at::Tensor& l = *lengths;
    TORCH_CHECK(l.scalar_type() == at::kLong, op, ": lengths must have dtype torch.int64, got ",
                l.scalar_type());
    TORCH_CHECK(l.sizes() == ids.sizes().slice(0, ids.dim() - 1), op,
                ": lengths must have shape ids.shape[:-1] = ", ids.sizes().slice(0, ids.dim() - 1),
                ", got ", l.sizes());
    TORCH_CHECK(l.device() == ids.device(), op, ": lengths must be on the device of ids (",
                ids.device(), "), got ", l.device());
  }
}

// Kernel parameters of each op, filled from checked, contiguous tensors and its output: one
// place for the CPU and CUDA bindings (which differ only in allocation and launch).
inline gulm::KmerEncodeParams encode_params(const at::Tensor& seq, int64_t k, int64_t stride,
                                            gulm::KmerIdType out_type, at::Tensor& out) {
  return gulm::kmer_encode_params(seq.data_ptr<uint8_t>(), seq.size(0), static_cast<int>(k),
                                  static_cast<int>(stride), out.data_ptr(), out_type);
}

inline gulm::KmerBatchParams batch_params(const at::Tensor& seqs, const at::Tensor& offsets, int64_t k,
                                          int64_t stride, int64_t max_tokens, int64_t width, bool pad_left,
                                          gulm::KmerIdType out_type, at::Tensor& lengths, at::Tensor& out) {
  return gulm::kmer_batch_params(seqs.data_ptr<uint8_t>(), nullptr, offsets.data_ptr<int64_t>(),
                                 offsets.size(0) - 1, static_cast<int>(k), static_cast<int>(stride),
                                 max_tokens, width, pad_left, lengths.data_ptr<int64_t>(), out.data_ptr(),
                                 out_type);
}

// The checked, contiguous ids, the output and the kernel parameters of kmer_decode and
// kmer_revcomp. check_range(op, ids, type, k) is the device's check that every id lies in
// [0, 4^k + 2) (it reads the ids); a CUDA caller checks the device and sets the guard first.
struct DecodeCall {
  at::Tensor ids, out;
  gulm::KmerDecodeParams p;
};

template <class CheckRange>
inline DecodeCall prepare_decode(const char* op, const at::Tensor& ids, int64_t k, int64_t stride,
                                 CheckRange&& check_range) {
  TORCH_CHECK(ids.dim() == 1, op, ": ids must be a 1-D int64/int32 tensor [n], got shape ", ids.sizes());
  const gulm::KmerIdType type = id_type_of(op, "ids", ids.scalar_type());
  check_k_stride(op, k, stride);
  DecodeCall c;
  c.ids = ids.contiguous();
  check_range(op, c.ids, type, k);
  const int64_t L = gulm::kmer_decoded_length(c.ids.size(0), static_cast<int>(k), static_cast<int>(stride));
  c.out = at::empty({L}, c.ids.options().dtype(at::kByte));
  c.p.ids = c.ids.data_ptr();
  c.p.id_type = type;
  c.p.n = c.ids.size(0);
  c.p.k = static_cast<int>(k);
  c.p.stride = static_cast<int>(stride);
  c.p.out = c.out.data_ptr<uint8_t>();
  return c;
}

struct RevcompCall {
  at::Tensor ids, out;
  std::optional<at::Tensor> lengths;
  gulm::KmerRevcompParams p;
};

template <class CheckRange>
inline RevcompCall prepare_kmer_revcomp(const char* op, const at::Tensor& ids, int64_t k,
                                        const std::optional<at::Tensor>& lengths, bool pad_left,
                                        CheckRange&& check_range) {
  check_ids(op, ids, lengths);
  check_k_stride(op, k, 1);
  const gulm::KmerIdType type = id_type_of(op, "ids", ids.scalar_type());
  RevcompCall c;
  c.ids = ids.contiguous();
  check_range(op, c.ids, type, k);
  if (lengths.has_value()) c.lengths = lengths->contiguous();
  c.out = at::empty_like(c.ids);
  c.p.ids = c.ids.data_ptr();
  c.p.out = c.out.data_ptr();
  c.p.id_type = type;
  c.p.width = c.ids.size(-1);
  c.p.rows = c.p.width == 0 ? 0 : c.ids.numel() / c.p.width;
  c.p.lengths = c.lengths.has_value() ? c.lengths->data_ptr<int64_t>() : nullptr;
  c.p.pad_left = pad_left;
  c.p.k = static_cast<int>(k);
  return c;
}

}  // namespace gulm_torch
