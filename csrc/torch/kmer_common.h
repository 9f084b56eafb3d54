// Argument checks and kernel-parameter builders shared by the CPU and CUDA bindings of the k-mer
// ops (kmer_cpu.cpp, cuda/kmer_cuda.cpp, kmer_buffer.cpp), and the CPU bindings' chunked parallel loop.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

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
  gulm::KmerEncodeParams p;
  p.seq = seq.data_ptr<uint8_t>();
  p.len = seq.size(0);
  p.k = static_cast<int>(k);
  p.stride = static_cast<int>(stride);
  p.out = out.data_ptr();
  p.out_type = out_type;
  return p;
}

inline gulm::KmerBatchParams batch_params(const at::Tensor& seqs, const at::Tensor& offsets, int64_t k,
                                          int64_t stride, int64_t max_tokens, int64_t width, bool pad_left,
                                          gulm::KmerIdType out_type, at::Tensor& lengths, at::Tensor& out) {
  gulm::KmerBatchParams p;
  p.seqs = seqs.data_ptr<uint8_t>();
  p.offsets = offsets.data_ptr<int64_t>();
  p.batch = offsets.size(0) - 1;
  p.k = static_cast<int>(k);
  p.stride = static_cast<int>(stride);
  p.max_tokens = max_tokens;
  p.width = width;
  p.pad_left = pad_left;
  p.lengths = lengths.data_ptr<int64_t>();
  p.out = out.data_ptr();
  p.out_type = out_type;
  return p;
}

inline gulm::KmerDecodeParams decode_params(const at::Tensor& ids, gulm::KmerIdType type, int64_t k,
                                            int64_t stride, at::Tensor& out) {
  gulm::KmerDecodeParams p;
  p.ids = ids.data_ptr();
  p.id_type = type;
  p.n = ids.size(0);
  p.k = static_cast<int>(k);
  p.stride = static_cast<int>(stride);
  p.out = out.data_ptr<uint8_t>();
  return p;
}

inline gulm::KmerRevcompParams revcomp_params(const at::Tensor& ids, gulm::KmerIdType type, int64_t k,
                                              const std::optional<at::Tensor>& lengths, bool pad_left,
                                              at::Tensor& out) {
  gulm::KmerRevcompParams p;
  p.ids = ids.data_ptr();
  p.out = out.data_ptr();
  p.id_type = type;
  p.width = ids.size(-1);
  p.rows = p.width == 0 ? 0 : ids.numel() / p.width;
  p.lengths = lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr;
  p.pad_left = pad_left;
  p.k = static_cast<int>(k);
  return p;
}

// Runs fn(begin, end) on consecutive chunks covering [0, n), at most at::get_num_threads()
// of them and none smaller than `grain` (except the last), concurrently.
//
// With an OpenMP build of the extension this is at::parallel_for. Without -fopenmp (the
// default of torch.utils.cpp_extension) at::parallel_for compiles to a serial loop, because
// its OpenMP backend is inline code behind `#pragma omp parallel`; then the chunks run on
// std::threads (the calling thread takes the first), sized by the same torch thread setting.
template <typename F>
void parallel_chunks(int64_t n, int64_t grain, const F& fn) {
#ifdef _OPENMP
  at::parallel_for(0, n, grain, fn);
#else
  if (n <= 0) return;
  const int64_t by_grain = (n + grain - 1) / grain;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), by_grain);
  if (threads <= 1 || at::in_parallel_region()) {
    fn(0, n);
    return;
  }
  const int64_t chunk = (n + threads - 1) / threads;
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto run = [&](int64_t t) {
    const int64_t begin = t * chunk, end = std::min(n, begin + chunk);
    if (begin >= end) return;
    try {
      fn(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads - 1));
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
#endif
}

}  // namespace gulm_torch
