// Buffer-protocol entry points of gulm._C (bytes / numpy in, numpy out, GIL released).
#include <torch/extension.h>

namespace gulm_py {
void register_buffer_api(pybind11::module_& m) { (void)m; }
}  // namespace gulm_py
