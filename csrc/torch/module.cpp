// The Python extension module gulm._C. Tensor ops are registered with TORCH_LIBRARY (see
// registration.cpp) and reached through torch.ops.gulm; this module only carries build
// information, the CPU backend report and the buffer-protocol entry points that do not
// involve tensors.
#include <torch/extension.h>

#include "gemm_cpu.h"
#include "gulm/cpu.h"
#include "lstm_cpu.h"
#include "parallel.h"

namespace gulm_py {
void register_buffer_api(pybind11::module_& m);  // kmer_buffer.cpp

namespace {

pybind11::list gemm_choices() {
  pybind11::list out;
  for (const auto& c : gulm_torch::gemm_choices()) {
    pybind11::dict d;
    d["m"] = c.m;
    d["n"] = c.n;
    d["k"] = c.k;
    d["trans_a"] = c.trans_a;
    d["trans_b"] = c.trans_b;
    d["packed"] = c.packed;
    d["single_thread"] = c.single_thread;
    d["dtype"] = c.dtype;
    d["backend"] = gulm_torch::gemm_backend_name(c.backend);
    d["mkl_us"] = c.mkl_us;
    d["onednn_us"] = c.onednn_us;
    d["avx512_us"] = c.avx512_us;
    out.append(d);
  }
  return out;
}

}  // namespace
}  // namespace gulm_py

PYBIND11_MODULE(_C, m) {
  m.doc() = "gulm compiled kernels (ops are registered under torch.ops.gulm)";
#ifdef GULM_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  gulm_py::register_buffer_api(m);
  m.def("cpu_isa",
        []() {
          gulm_torch::apply_cpu_isa_env();
          return std::string(gulm::cpu_isa_name(gulm::cpu_isa()));
        },
        "The vector level the CPU kernels run (GULM_CPU_ISA caps it): baseline, avx2, avx512.");
  m.def("gemm_request", &gulm_torch::gemm_request,
        "The LSTM GEMM backend GULM_GEMM asks for: auto (per-shape timing), mkl, onednn or avx512.");
  m.def("gemm_onednn_available", &gulm_torch::onednn_available,
        "Whether this torch provides the oneDNN ops of the onednn GEMM backend.");
  m.def("gemm_choices", &gulm_py::gemm_choices,
        "The GEMM shapes timed so far in this process under GULM_GEMM=auto: a list of dicts\n"
        "(m, n, k, trans_a, trans_b, packed, single_thread, dtype, backend, mkl_us, onednn_us,\n"
        "avx512_us).");
  m.def("lstm_scratch_bytes", &gulm_torch::lstm_scratch_bytes,
        "Bytes of scratch memory the calling thread keeps for the CPU LSTM kernels.");
  m.def("release_lstm_scratch", &gulm_torch::release_lstm_scratch,
        "Free the calling thread's kept LSTM scratch memory; returns the bytes freed.");
  m.def("clear_gemm_choices", &gulm_torch::clear_gemm_choices,
        "Forget the per-shape choices (the next GEMM of each shape is timed again).");
}
