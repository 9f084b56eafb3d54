// The Python extension module gulm._C. Tensor ops are registered with TORCH_LIBRARY (see
// registration.cpp) and reached through torch.ops.gulm; this module only carries build
// information and the buffer-protocol entry points that do not involve tensors.
#include <torch/extension.h>

namespace gulm_py {
void register_buffer_api(pybind11::module_& m);  // kmer_buffer.cpp
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "gulm compiled kernels (ops are registered under torch.ops.gulm)";
#ifdef GULM_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  gulm_py::register_buffer_api(m);
}
