// CUDA forward of the weight-dropped LSTM (contract and plan: gulm/lstm.h).
//
// Same plan as the CPU kernel: the injected Gemm (cuBLAS on the stream, via ATen in the
// binding) does the input projection once per chunk of steps and h_{t-1} @ w_rec^T per step;
// one fused pointwise kernel per step applies the gates. Everything is enqueued on p.stream,
// so the host loop never synchronises. (Launch overhead per step is the known limit here; a
// persistent kernel keeping w_rec on chip or CUDA graphs are the next levers.)
#include "lstm_common.cuh"

namespace gulm {
namespace {

using namespace cuda_detail;

// out[c, r] = w[r, c] * mask[r, c] for w [R,C]: a 32x32 tile through shared memory so both
// the reads and the writes are coalesced.
template <class T>
__global__ void transpose_mask_kernel(int64_t R, int64_t C, const T* __restrict__ w,
                                      const T* __restrict__ mask, T* __restrict__ out) {
  __shared__ acc_t<T> tile[32][33];
  const int64_t c0 = int64_t(blockIdx.x) * 32, r0 = int64_t(blockIdx.y) * 32;
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int64_t r = r0 + k, c = c0 + threadIdx.x;
    if (r < R && c < C) {
      acc_t<T> v = ld(w + r * C + c);
      if (mask) v *= acc_t<T>(ld(mask + r * C + c));
      tile[k][threadIdx.x] = v;
    }
  }
  __syncthreads();
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int64_t c = c0 + k, r = r0 + threadIdx.x;
    if (r < R && c < C) st(out + c * R + r, tile[threadIdx.x][k]);
  }
}

template <class T>
__global__ void bias_kernel(int64_t n, const T* __restrict__ b_ih, const T* __restrict__ b_hh,
                            acc_t<T>* __restrict__ bias) {
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k < n) bias[k] = acc_t<T>(ld(b_ih + k)) + acc_t<T>(ld(b_hh + k));
}

// One thread per (b, j). G [B,4H] holds x_t @ w_ih^T; the activated gates are written back
// over it when kSave (the backward reads them).
template <class T, bool kSave>
__global__ void fwd_step_kernel(int64_t B, int64_t H, T* __restrict__ G, const T* __restrict__ R,
                                const acc_t<T>* __restrict__ bias,
                                const acc_t<T>* __restrict__ c_prev,
                                acc_t<T>* __restrict__ c_out, T* __restrict__ h) {
  grid_stride(B * H, [&](int64_t k) {
    const int64_t b = k / H, j = k - b * H;
    c_out[k] = lstm_cell_forward<CudaMath, kSave>(G + b * 4 * H + j, H, R + b * 4 * H + j, H,
                                                  bias + j, H, c_prev[k], h + k);
  });
}

template <class T, class A = acc_t<T>>
void fwd(const WdLstmFwdParams& p, const Gemm& gemm, cudaStream_t s) {
  const int64_t T_ = p.T, B = p.B, I = p.I, H = p.H, G4 = 4 * H;
  const WdLstmFwdArrays<T, A> a = wd_lstm_fwd_arrays<T, A>(p);
  const bool save = a.gates != nullptr;

  {
    const dim3 grid(unsigned((H + 31) / 32), unsigned((G4 + 31) / 32));
    transpose_mask_kernel<T><<<grid, dim3(32, 8), 0, s>>>(G4, H, a.w_hh, a.mask, a.w_rec);
    check_launch("gulm wd_lstm transpose_mask");
    bias_kernel<T><<<blocks_for(G4, 256), 256, 0, s>>>(G4, a.b_ih, a.b_hh, a.bias);
    check_launch("gulm wd_lstm bias");
  }
  load_state<A>(p.c0, p.state_dtype, B * H, a.c, s);

  const T* h_prev = a.h0;
  const A* c_prev = a.c;
  const int threads = 256;
  const unsigned blocks = blocks_for(B * H, threads);
  for (int64_t t0 = 0; t0 < T_; t0 += a.ws.chunk) {
    const int64_t n = std::min(a.ws.chunk, T_ - t0);
    T* G = save ? a.gates + t0 * B * G4 : a.gx;
    gemm(gemm_args(p.dtype, false, true, n * B, G4, I, a.x + t0 * B * I, I, a.w_ih, I, G, G4));
    for (int64_t k = 0; k < n; ++k) {
      const int64_t t = t0 + k;
      gemm(gemm_args(p.dtype, false, false, B, G4, H, h_prev, H, a.w_rec, G4, a.rec, G4));
      A* c_out = save ? a.cell + t * B * H : (c_prev == a.c ? a.c2 : a.c);
      T* y_t = a.y + t * B * H;
      if (B * H > 0) {
        if (save) {
          fwd_step_kernel<T, true><<<blocks, threads, 0, s>>>(B, H, G + k * B * G4, a.rec,
                                                             a.bias, c_prev, c_out, y_t);
        } else {
          fwd_step_kernel<T, false><<<blocks, threads, 0, s>>>(B, H, G + k * B * G4, a.rec,
                                                              a.bias, c_prev, c_out, y_t);
        }
        check_launch("gulm wd_lstm fwd_step");
      }
      h_prev = y_t;
      c_prev = c_out;
    }
  }
  if (B * H > 0) {
    check(cudaMemcpyAsync(p.hT, h_prev, size_t(B * H) * sizeof(T), cudaMemcpyDeviceToDevice, s),
          "gulm wd_lstm hT");
  }
  store_state<A>(p.cT, p.state_dtype, B * H, c_prev, s);
}

}  // namespace

void wd_lstm_fwd_cuda(const WdLstmFwdParams& p, const Gemm& gemm) {
  cuda_detail::dispatch(p.dtype, [&](auto tag) { fwd<decltype(tag)>(p, gemm, p.stream); });
}

}  // namespace gulm
