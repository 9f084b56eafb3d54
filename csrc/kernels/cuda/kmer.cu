// CUDA k-mer tokenizer kernels (contract: gulm/kmer_cuda.h). One thread per output element
// with grid-stride loops; each thread reads its window's k bytes directly (neighbouring
// threads share them through L1), so there is no rolling state and no cross-thread
// communication, and the ids match the CPU encoder bit for bit.
#include <cstdint>

#include "gulm/kmer_cuda.h"

namespace gulm {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;

// 0..3 for A/C/G/T (either case, U/u read as T), -1 for any other byte. b | 0x20 folds the
// case; among all bytes only 'A' and 'a' fold to 'a', and so on. On a/c/g/t/u the bits
// (u >> 1) & 3 are 0, 1, 3, 2, 2; xor with their high bit gives 0, 1, 2, 3, 3.
__device__ __forceinline__ int base_code(uint8_t b) {
  const unsigned u = b | 0x20u;
  const bool ok = u == 'a' || u == 'c' || u == 'g' || u == 't' || u == 'u';
  const unsigned c = (u >> 1) & 3u;
  return ok ? static_cast<int>(c ^ (c >> 1)) : -1;
}

// Complement of one byte, as revcomp_cpu: IUPAC aware, case kept, U -> A, others unchanged.
__device__ __forceinline__ uint8_t complement(uint8_t b) {
  uint8_t r;
  switch (b & 0xDF) {  // only letters reach a case label
    case 'A': r = 'T'; break;
    case 'C': r = 'G'; break;
    case 'G': r = 'C'; break;
    case 'T': r = 'A'; break;
    case 'U': r = 'A'; break;
    case 'R': r = 'Y'; break;
    case 'Y': r = 'R'; break;
    case 'K': r = 'M'; break;
    case 'M': r = 'K'; break;
    case 'S': r = 'S'; break;
    case 'W': r = 'W'; break;
    case 'B': r = 'V'; break;
    case 'V': r = 'B'; break;
    case 'D': r = 'H'; break;
    case 'H': r = 'D'; break;
    case 'N': r = 'N'; break;
    default: return b;
  }
  return static_cast<uint8_t>(r | (b & 0x20));
}

// The id of the window starting at seq[0] (k bytes).
__device__ __forceinline__ int64_t window_id(const uint8_t* __restrict__ seq, int k) {
  uint32_t code = 0;
  bool ok = true;
  for (int i = 0; i < k; ++i) {
    const int c = base_code(__ldg(seq + i));
    ok &= c >= 0;
    code = (code << 2) | static_cast<uint32_t>(c & 3);
  }
  return ok ? int64_t(code) + 2 : kKmerUnk;
}

inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b > kMaxBlocks) b = kMaxBlocks;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

__device__ __forceinline__ int64_t first_index() { return blockIdx.x * int64_t(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ int64_t grid_step() { return int64_t(gridDim.x) * blockDim.x; }

template <typename T>
__global__ void encode_kernel(const uint8_t* __restrict__ seq, int64_t n, int k, int stride,
                              T* __restrict__ out) {
  for (int64_t t = first_index(); t < n; t += grid_step()) {
    out[t] = static_cast<T>(window_id(seq + t * stride, k));
  }
}

__global__ void batch_lengths_kernel(const int64_t* __restrict__ offsets, int64_t batch,
                                     int64_t seqs_len, int k, int stride, int64_t max_tokens,
                                     int64_t* __restrict__ lengths,
                                     unsigned long long* __restrict__ scratch) {
  for (int64_t b = first_index(); b < batch; b += grid_step()) {
    const int64_t lo = offsets[b], hi = offsets[b + 1];
    if (lo < 0 || hi < lo || hi > seqs_len) {
      atomicMax(scratch + 1, static_cast<unsigned long long>(b + 1));
      lengths[b] = 0;
      continue;
    }
    int64_t n = kmer_num_tokens(hi - lo, k, stride);
    if (max_tokens > 0 && n > max_tokens) n = max_tokens;
    lengths[b] = n;
    atomicMax(scratch, static_cast<unsigned long long>(n));
  }
}

template <typename T>
__global__ void encode_batch_kernel(const uint8_t* __restrict__ seqs, const int64_t* __restrict__ offsets,
                                    const int64_t* __restrict__ lengths, int64_t batch, int64_t width,
                                    int k, int stride, bool pad_left, T* __restrict__ out) {
  for (int64_t row = blockIdx.y; row < batch; row += gridDim.y) {
    const int64_t n = lengths[row];
    const int64_t first = pad_left ? width - n : 0;
    const uint8_t* seq = seqs + offsets[row];
    T* o = out + row * width;
    for (int64_t col = first_index(); col < width; col += grid_step()) {
      const int64_t t = col - first;
      o[col] = (t >= 0 && t < n) ? static_cast<T>(window_id(seq + t * stride, k)) : T(0);
    }
  }
}

template <typename T>
__global__ void decode_kernel(const T* __restrict__ ids, int64_t n, int k, int stride, int64_t len,
                              uint8_t* __restrict__ out) {
  const int64_t vocab = kmer_vocab_size(k);
  for (int64_t i = first_index(); i < len; i += grid_step()) {
    const int64_t t_lo = i - k + 1 <= 0 ? 0 : (i - k + 1 + stride - 1) / stride;
    int64_t t_hi = i / stride;
    if (t_hi > n - 1) t_hi = n - 1;
    uint8_t base = 'N';
    for (int64_t t = t_lo; t <= t_hi; ++t) {
      const int64_t id = static_cast<int64_t>(ids[t]);
      if (id >= 2 && id < vocab) {
        const int64_t digit = k - 1 - (i - t * stride);
        base = "ACGT"[((id - 2) >> (2 * digit)) & 3];
        break;
      }
    }
    out[i] = base;
  }
}

template <typename T>
__global__ void find_bad_id_kernel(const T* __restrict__ ids, int64_t n, int k,
                                   unsigned long long* __restrict__ first_bad) {
  const int64_t vocab = kmer_vocab_size(k);
  for (int64_t i = first_index(); i < n; i += grid_step()) {
    const int64_t id = static_cast<int64_t>(ids[i]);
    if (id < 0 || id >= vocab) atomicMax(first_bad, static_cast<unsigned long long>(n - i));
  }
}

__global__ void revcomp_kernel(const uint8_t* __restrict__ seq, int64_t len, uint8_t* __restrict__ out) {
  for (int64_t i = first_index(); i < len; i += grid_step()) out[i] = complement(seq[len - 1 - i]);
}

template <typename T>
__global__ void revcomp_ids_kernel(const T* __restrict__ ids, T* __restrict__ out, int64_t total,
                                   int64_t width, const int64_t* __restrict__ lengths, bool pad_left, int k) {
  const int64_t vocab = kmer_vocab_size(k);
  for (int64_t e = first_index(); e < total; e += grid_step()) {
    const int64_t row = e / width, col = e - row * width;
    int64_t n = lengths ? lengths[row] : width;
    n = n < 0 ? 0 : (n > width ? width : n);
    const int64_t first = pad_left ? width - n : 0;
    if (col < first || col >= first + n) {
      out[e] = ids[e];
      continue;
    }
    const int64_t id = static_cast<int64_t>(ids[row * width + first + (first + n - 1 - col)]);
    out[e] = (id >= 2 && id < vocab) ? static_cast<T>(2 + kmer_code_revcomp(static_cast<uint32_t>(id - 2), k))
                                     : static_cast<T>(id);
  }
}

}  // namespace

cudaError_t kmer_encode_cuda(const KmerEncodeParams& p, cudaStream_t stream) {
  const int64_t n = kmer_num_tokens(p.len, p.k, p.stride);
  if (n == 0) return cudaSuccess;
  if (p.out_type == KmerIdType::I64) {
    encode_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(p.seq, n, p.k, p.stride,
                                                                   static_cast<int64_t*>(p.out));
  } else {
    encode_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(p.seq, n, p.k, p.stride,
                                                                   static_cast<int32_t*>(p.out));
  }
  return cudaGetLastError();
}

cudaError_t kmer_batch_lengths_cuda(const int64_t* offsets, int64_t batch, int64_t seqs_len, int k,
                                    int stride, int64_t max_tokens, int64_t* lengths,
                                    int64_t* scratch, cudaStream_t stream) {
  cudaError_t err = cudaMemsetAsync(scratch, 0, 2 * sizeof(int64_t), stream);
  if (err != cudaSuccess || batch == 0) return err;
  batch_lengths_kernel<<<blocks_for(batch), kThreads, 0, stream>>>(
      offsets, batch, seqs_len, k, stride, max_tokens, lengths,
      reinterpret_cast<unsigned long long*>(scratch));
  return cudaGetLastError();
}

cudaError_t kmer_encode_batch_cuda(const KmerBatchParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.width == 0) return cudaSuccess;
  if (p.seq_ptrs != nullptr) return cudaErrorInvalidValue;
  int64_t gx = (p.width + kThreads - 1) / kThreads;
  if (gx > 4096) gx = 4096;
  const int64_t gy = p.batch < 65535 ? p.batch : 65535;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  if (p.out_type == KmerIdType::I64) {
    encode_batch_kernel<int64_t><<<grid, kThreads, 0, stream>>>(p.seqs, p.offsets, p.lengths, p.batch, p.width,
                                                                p.k, p.stride, p.pad_left,
                                                                static_cast<int64_t*>(p.out));
  } else {
    encode_batch_kernel<int32_t><<<grid, kThreads, 0, stream>>>(p.seqs, p.offsets, p.lengths, p.batch, p.width,
                                                                p.k, p.stride, p.pad_left,
                                                                static_cast<int32_t*>(p.out));
  }
  return cudaGetLastError();
}

cudaError_t kmer_decode_cuda(const KmerDecodeParams& p, cudaStream_t stream) {
  const int64_t len = kmer_decoded_length(p.n, p.k, p.stride);
  if (len == 0) return cudaSuccess;
  if (p.id_type == KmerIdType::I64) {
    decode_kernel<int64_t><<<blocks_for(len), kThreads, 0, stream>>>(static_cast<const int64_t*>(p.ids), p.n, p.k,
                                                                     p.stride, len, p.out);
  } else {
    decode_kernel<int32_t><<<blocks_for(len), kThreads, 0, stream>>>(static_cast<const int32_t*>(p.ids), p.n, p.k,
                                                                     p.stride, len, p.out);
  }
  return cudaGetLastError();
}

cudaError_t kmer_find_bad_id_cuda(const void* ids, KmerIdType id_type, int64_t n, int k, int64_t* first_bad,
                                  cudaStream_t stream) {
  cudaError_t err = cudaMemsetAsync(first_bad, 0, sizeof(int64_t), stream);
  if (err != cudaSuccess || n == 0) return err;
  auto* fb = reinterpret_cast<unsigned long long*>(first_bad);
  if (id_type == KmerIdType::I64) {
    find_bad_id_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const int64_t*>(ids), n, k, fb);
  } else {
    find_bad_id_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const int32_t*>(ids), n, k, fb);
  }
  return cudaGetLastError();
}

cudaError_t revcomp_cuda(const uint8_t* seq, int64_t len, uint8_t* out, cudaStream_t stream) {
  if (len == 0) return cudaSuccess;
  revcomp_kernel<<<blocks_for(len), kThreads, 0, stream>>>(seq, len, out);
  return cudaGetLastError();
}

cudaError_t kmer_revcomp_cuda(const KmerRevcompParams& p, cudaStream_t stream) {
  const int64_t total = p.rows * p.width;
  if (total == 0) return cudaSuccess;
  if (p.id_type == KmerIdType::I64) {
    revcomp_ids_kernel<int64_t><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<const int64_t*>(p.ids), static_cast<int64_t*>(p.out), total, p.width, p.lengths, p.pad_left, p.k);
  } else {
    revcomp_ids_kernel<int32_t><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<const int32_t*>(p.ids), static_cast<int32_t*>(p.out), total, p.width, p.lengths, p.pad_left, p.k);
  }
  return cudaGetLastError();
}

}  // namespace gulm
