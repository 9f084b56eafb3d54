// CUDA entry points of the k-mer tokenizer. Same semantics, Params structs and output as the
// CPU kernels in gulm/kmer.h (bit for bit); every pointer is device memory unless said, and
// every call is asynchronous on `stream` and returns the launch status.
#pragma once
#include <cuda_runtime_api.h>

#include "gulm/kmer.h"

namespace gulm {

// Writes all kmer_num_tokens(p.len, p.k, p.stride) ids of p.out. p.isa is ignored.
cudaError_t kmer_encode_cuda(const KmerEncodeParams& p, cudaStream_t stream);

// lengths [batch] as kmer_batch_lengths_cpu. scratch: int64 [2] device memory, overwritten
// with {widest row, error} where error = 0, or 1 + b for some row b whose offsets are out of
// order or outside [0, seqs_len]. The caller reads scratch back (one small copy) before
// choosing the output width.
cudaError_t kmer_batch_lengths_cuda(const int64_t* offsets, int64_t batch, int64_t seqs_len, int k,
                                    int stride, int64_t max_tokens, int64_t* lengths,
                                    int64_t* scratch, cudaStream_t stream);

// Writes the whole [batch, width] matrix. p.seq_ptrs must be null (flat seqs + offsets).
cudaError_t kmer_encode_batch_cuda(const KmerBatchParams& p, cudaStream_t stream);

// Writes all kmer_decoded_length(p.n, p.k, p.stride) bytes of p.out.
cudaError_t kmer_decode_cuda(const KmerDecodeParams& p, cudaStream_t stream);

// first_bad: int64 [1] device memory, overwritten with n - i for the smallest i in [0, n)
// whose id is outside [0, 4^k + 2), or 0 when all ids are in range.
cudaError_t kmer_find_bad_id_cuda(const void* ids, KmerIdType id_type, int64_t n, int k,
                                  int64_t* first_bad, cudaStream_t stream);

// out [len] = reverse complement of seq [len] (see revcomp_cpu). out must not overlap seq.
cudaError_t revcomp_cuda(const uint8_t* seq, int64_t len, uint8_t* out, cudaStream_t stream);

// Writes all rows * width elements of p.out (see kmer_revcomp_cpu).
cudaError_t kmer_revcomp_cuda(const KmerRevcompParams& p, cudaStream_t stream);

}  // namespace gulm
