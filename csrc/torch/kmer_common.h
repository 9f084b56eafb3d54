// Argument checks shared by the CPU and CUDA bindings of the k-mer ops (kmer_cpu.cpp,
// cuda/kmer_cuda.cpp). Checks only: no math, no allocation.
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

}  // namespace gulm_torch
