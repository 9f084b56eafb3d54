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
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x)
    st(out + k, acc_t<T>(ld(w + k)) * acc_t<T>(ld(mask + k)));
}

// acc = (acc + y) * mask; y / mask may be null.
template <class T>
__global__ void add_mul_kernel(int64_t n, T* __restrict__ acc, const T* __restrict__ y,
                               const T* __restrict__ mask) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    acc_t<T> v = ld(acc + k);
    if (y) v += acc_t<T>(ld(y + k));
    if (mask) v *= acc_t<T>(ld(mask + k));
    st(acc + k, v);
  }
}

// One thread per (b, j) of step t.
template <class T>
__global__ void bwd_step_kernel(int64_t B, int64_t H, const T* __restrict__ gates,
                                const acc_t<T>* __restrict__ c,
                                const acc_t<T>* __restrict__ c_prev, const T* __restrict__ gy,
                                const T* __restrict__ dh_rec, acc_t<T>* __restrict__ dc,
                                T* __restrict__ dG) {
  using A = acc_t<T>;
  const int64_t n = B * H;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = k / H, j = k - b * H;
    const T* a = gates + b * 4 * H;
    T* dg = dG + b * 4 * H;
    const A i = ld(a + j), f = ld(a + H + j), z = ld(a + 2 * H + j), o = ld(a + 3 * H + j);
    const A tc = tanh_(c[k]);
    const A dh = A(ld(gy + k)) + A(ld(dh_rec + k));
    const A dct = dc[k] + dh * o * (A(1) - tc * tc);
    st(dg + j, dct * z * i * (A(1) - i));
    st(dg + H + j, dct * c_prev[k] * f * (A(1) - f));
    st(dg + 2 * H + j, dct * i * (A(1) - z * z));
    st(dg + 3 * H + j, dh * tc * o * (A(1) - o));
    dc[k] = dct * f;
  }
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

template <class T>
void bwd(const WdLstmBwdParams& p, const Gemm& gemm) {
  using A = acc_t<T>;
  cudaStream_t s = p.stream;
  const int64_t T_ = p.T, B = p.B, I = p.I, H = p.H, G4 = 4 * H;
  const WdLstmBwdWorkspace ws = wd_lstm_bwd_workspace(T_, B, H, p.dtype);
  T* wbuf = ws_at<T>(p.workspace, ws.w_rec);
  T* dG = ws_at<T>(p.workspace, ws.dgates);
  T* dh = ws_at<T>(p.workspace, ws.dh);
  A* dc = ws_at<A>(p.workspace, ws.dc);
  A* c0 = ws_at<A>(p.workspace, ws.c0);
  const T* mask = static_cast<const T*>(p.mask);
  const T* gates = static_cast<const T*>(p.gates);
  const A* cell = static_cast<const A*>(p.cell);
  const T* gy = static_cast<const T*>(p.grad_y);
  const int threads = 256;

  const T* w_rec = static_cast<const T*>(p.w_hh);
  if (mask) {
    mul_mask_kernel<T><<<blocks_for(G4 * H, threads), threads, 0, s>>>(G4 * H, w_rec, mask, wbuf);
    check_launch("gulm wd_lstm_backward mul_mask");
    w_rec = wbuf;
  }
  const size_t state_bytes = size_t(B * H) * sizeof(T);
  if (B * H > 0) {
    if (p.grad_hT) {
      check(cudaMemcpyAsync(dh, p.grad_hT, state_bytes, cudaMemcpyDeviceToDevice, s),
            "gulm wd_lstm_backward grad_hT");
    } else {
      check(cudaMemsetAsync(dh, 0, state_bytes, s), "gulm wd_lstm_backward dh");
    }
  }
  load_state<A>(p.grad_cT, p.state_dtype, B * H, dc, s);
  load_state<A>(p.c0, p.state_dtype, B * H, c0, s);

  const unsigned blocks = blocks_for(B * H, threads);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    if (B * H > 0) {
      bwd_step_kernel<T><<<blocks, threads, 0, s>>>(
          B, H, gates + t * B * G4, cell + t * B * H, t > 0 ? cell + (t - 1) * B * H : c0,
          gy + t * B * H, dh, dc, dG + t * B * G4);
      check_launch("gulm wd_lstm_backward bwd_step");
    }
    T* dst = t > 0 ? dh : static_cast<T*>(p.dh0);
    gemm(gemm_args<T>(p.dtype, false, false, B, H, G4, dG + t * B * G4, G4, w_rec, H, dst, H));
  }
  if (T_ == 0 && B * H > 0) {
    check(cudaMemcpyAsync(p.dh0, dh, state_bytes, cudaMemcpyDeviceToDevice, s),
          "gulm wd_lstm_backward dh0");
  }
  store_state<A>(p.dc0, p.state_dtype, B * H, dc, s);

  const int64_t TB = T_ * B;
  {
    const dim3 grid(unsigned((G4 + 31) / 32));
    column_sum_kernel<T><<<grid, dim3(32, 8), 0, s>>>(TB, G4, dG, static_cast<T*>(p.db));
    check_launch("gulm wd_lstm_backward db");
  }
  const T* x = static_cast<const T*>(p.x);
  gemm(gemm_args<T>(p.dtype, false, false, TB, I, G4, dG, G4, static_cast<const T*>(p.w_ih), I,
                    static_cast<T*>(p.dx), I));
  gemm(gemm_args<T>(p.dtype, true, false, G4, I, TB, dG, G4, x, I, static_cast<T*>(p.dw_ih), I));
  T* dw_hh = static_cast<T*>(p.dw_hh);
  if (T_ == 0) {
    check(cudaMemsetAsync(dw_hh, 0, size_t(G4 * H) * sizeof(T), s), "gulm wd_lstm_backward dw_hh");
    return;
  }
  gemm(gemm_args<T>(p.dtype, true, false, G4, H, B, dG, G4, static_cast<const T*>(p.h0), H, wbuf,
                    H));
  const unsigned wblocks = blocks_for(G4 * H, threads);
  if (T_ > 1) {
    gemm(gemm_args<T>(p.dtype, true, false, G4, H, (T_ - 1) * B, dG + B * G4, G4,
                      static_cast<const T*>(p.y), H, dw_hh, H));
    add_mul_kernel<T><<<wblocks, threads, 0, s>>>(G4 * H, dw_hh, wbuf, mask);
  } else {
    check(cudaMemcpyAsync(dw_hh, wbuf, size_t(G4 * H) * sizeof(T), cudaMemcpyDeviceToDevice, s),
          "gulm wd_lstm_backward dw_hh");
    add_mul_kernel<T><<<wblocks, threads, 0, s>>>(G4 * H, dw_hh, nullptr, mask);
  }
  check_launch("gulm wd_lstm_backward dw_hh mask");
}

}  // namespace

void wd_lstm_bwd_cuda(const WdLstmBwdParams& p, const Gemm& gemm) {
  cuda_detail::dispatch(p.dtype, [&](auto tag) { bwd<decltype(tag)>(p, gemm); });
}

}  // namespace gulm
