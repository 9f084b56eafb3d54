// CUDA backward of the weight-dropped LSTM (contract and plan: gulm/lstm.h).
//
// Per step one fused pointwise kernel (gate gradients dG_t and dc_{t-1}) and one GEMM
// dh_{t-1} = dG_t @ w_rec; after the loop one GEMM each for dx, dw_ih and dw_hh over all
// steps, a column reduction of dG for db, and one pass applying the mask to dw_hh.
#include "lstm_common.cuh"

namespace gulm {
namespace {

using namespace cuda_detail;

template <class T>
__global__ void mul_mask_kernel(int64_t n, const T* __restrict__ w, const T* __restrict__ mask,
                                T* __restrict__ out) {
  grid_stride(n, [&](int64_t k) { st(out + k, acc_t<T>(ld(w + k)) * acc_t<T>(ld(mask + k))); });
}

// acc = (acc + y) * mask; y / mask may be null.
template <class T>
__global__ void add_mul_kernel(int64_t n, T* __restrict__ acc, const T* __restrict__ y,
                               const T* __restrict__ mask) {
  grid_stride(n, [&](int64_t k) {
    acc_t<T> v = ld(acc + k);
    if (y) v += acc_t<T>(ld(y + k));
    if (mask) v *= acc_t<T>(ld(mask + k));
    st(acc + k, v);
  });
}

// One thread per (b, j) of step t.
template <class T>
__global__ void bwd_step_kernel(int64_t B, int64_t H, const T* __restrict__ gates,
                                const acc_t<T>* __restrict__ c,
                                const acc_t<T>* __restrict__ c_prev, const T* __restrict__ gy,
                                const T* __restrict__ dh_rec, acc_t<T>* __restrict__ dc,
                                T* __restrict__ dG) {
  using A = acc_t<T>;
  grid_stride(B * H, [&](int64_t k) {
    const int64_t b = k / H, j = k - b * H;
    const A dh = A(ld(gy + k)) + A(ld(dh_rec + k));
    lstm_cell_backward<CudaMath>(gates + b * 4 * H + j, H, c[k], c_prev[k], dh, dc[k],
                                 dG + b * 4 * H + j);
  });
}

// db[col] = sum over rows of dG [rows, cols]: 32 columns per block (coalesced), 8 row lanes,
// fixed summation order (deterministic).
template <class T>
__global__ void column_sum_kernel(int64_t rows, int64_t cols, const T* __restrict__ dG,
                                  T* __restrict__ db) {
  using A = acc_t<T>;
  __shared__ A part[8][33];
  const int64_t col = int64_t(blockIdx.x) * 32 + threadIdx.x;
  A s = A(0);
  if (col < cols) {
    for (int64_t r = threadIdx.y; r < rows; r += 8) s += A(ld(dG + r * cols + col));
  }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    A t = A(0);
    for (int k = 0; k < 8; ++k) t += part[k][threadIdx.x];
    st(db + col, t);
  }
}

template <class T, class A = acc_t<T>>
void bwd(const WdLstmBwdParams& p, const Gemm& gemm, cudaStream_t s) {
  const int64_t T_ = p.T, B = p.B, I = p.I, H = p.H, G4 = 4 * H;
  const WdLstmBwdArrays<T, A> a = wd_lstm_bwd_arrays<T, A>(p);
  T* dG = a.dgates;
  const int threads = 256;

  const T* w_rec = a.w_hh;
  if (a.mask) {
    mul_mask_kernel<T><<<blocks_for(G4 * H, threads), threads, 0, s>>>(G4 * H, a.w_hh, a.mask,
                                                                        a.w_rec);
    check_launch("gulm wd_lstm_backward mul_mask");
    w_rec = a.w_rec;
  }
  const size_t state_bytes = size_t(B * H) * sizeof(T);
  if (B * H > 0) {
    if (p.grad_hT) {
      check(cudaMemcpyAsync(a.dh, p.grad_hT, state_bytes, cudaMemcpyDeviceToDevice, s),
            "gulm wd_lstm_backward grad_hT");
    } else {
      check(cudaMemsetAsync(a.dh, 0, state_bytes, s), "gulm wd_lstm_backward dh");
    }
  }
  load_state<A>(p.grad_cT, p.state_dtype, B * H, a.dc, s);
  load_state<A>(p.c0, p.state_dtype, B * H, a.c0, s);

  const unsigned blocks = blocks_for(B * H, threads);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    if (B * H > 0) {
      bwd_step_kernel<T><<<blocks, threads, 0, s>>>(
          B, H, a.gates + t * B * G4, a.cell + t * B * H, t > 0 ? a.cell + (t - 1) * B * H : a.c0,
          a.grad_y + t * B * H, a.dh, a.dc, dG + t * B * G4);
      check_launch("gulm wd_lstm_backward bwd_step");
    }
    T* dst = t > 0 ? a.dh : a.dh0;
    gemm(gemm_args(p.dtype, false, false, B, H, G4, dG + t * B * G4, G4, w_rec, H, dst, H));
  }
  if (T_ == 0 && B * H > 0) {
    check(cudaMemcpyAsync(a.dh0, a.dh, state_bytes, cudaMemcpyDeviceToDevice, s),
          "gulm wd_lstm_backward dh0");
  }
  store_state<A>(p.dc0, p.state_dtype, B * H, a.dc, s);

  const int64_t TB = T_ * B;
  {
    const dim3 grid(unsigned((G4 + 31) / 32));
    column_sum_kernel<T><<<grid, dim3(32, 8), 0, s>>>(TB, G4, dG, a.db);
    check_launch("gulm wd_lstm_backward db");
  }
  gemm(gemm_args(p.dtype, false, false, TB, I, G4, dG, G4, a.w_ih, I, a.dx, I));
  gemm(gemm_args(p.dtype, true, false, G4, I, TB, dG, G4, a.x, I, a.dw_ih, I));
  if (T_ == 0) {
    check(cudaMemsetAsync(a.dw_hh, 0, size_t(G4 * H) * sizeof(T), s),
          "gulm wd_lstm_backward dw_hh");
    return;
  }
  // dw_hh = dG^T @ [h0; y[:-1]] as two GEMMs, summed in the mask pass (the first one into the
  // w_rec buffer, no longer needed).
  gemm(gemm_args(p.dtype, true, false, G4, H, B, dG, G4, a.h0, H, a.w_rec, H));
  const unsigned wblocks = blocks_for(G4 * H, threads);
  if (T_ > 1) {
    gemm(gemm_args(p.dtype, true, false, G4, H, (T_ - 1) * B, dG + B * G4, G4, a.y, H, a.dw_hh,
                   H));
    add_mul_kernel<T><<<wblocks, threads, 0, s>>>(G4 * H, a.dw_hh, a.w_rec, a.mask);
  } else {
    check(cudaMemcpyAsync(a.dw_hh, a.w_rec, size_t(G4 * H) * sizeof(T), cudaMemcpyDeviceToDevice,
                          s),
          "gulm wd_lstm_backward dw_hh");
    add_mul_kernel<T><<<wblocks, threads, 0, s>>>(G4 * H, a.dw_hh, nullptr, a.mask);
  }
  check_launch("gulm wd_lstm_backward dw_hh mask");
}

}  // namespace

void wd_lstm_bwd_cuda(const WdLstmBwdParams& p, const Gemm& gemm) {
  cuda_detail::dispatch(p.dtype, [&](auto tag) { bwd<decltype(tag)>(p, gemm, p.stream); });
}

}  // namespace gulm
