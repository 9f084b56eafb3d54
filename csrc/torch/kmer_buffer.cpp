// Buffer-protocol entry points of gulm._C: tokenizing without torch tensors.
//
// Input: str (ASCII str is read in place; other str is encoded with errors="replace", one
// byte per character, so non-ASCII characters become unk windows), or any 1-D buffer of
// 1-byte items: bytes, bytearray, memoryview, numpy uint8/int8 (a strided numpy view is
// copied once to contiguous memory). Output: new numpy arrays. The GIL is released while the
// kernels run; the input object is kept alive (and, for writable buffers, exported) for the
// duration of the call. These functions call the kernel layer directly and never wrap a
// torch op.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gulm/kmer.h"
#include "kmer_common.h"
#include "parallel.h"

namespace py = pybind11;

namespace gulm_py {
namespace {

constexpr int64_t kGrain = 1 << 17;  // see kmer_cpu.cpp
using gulm_torch::parallel_chunks;

// A read-only view of the bytes of a Python object, valid while the ByteView lives.
class ByteView {
 public:
  ByteView(const py::handle& obj, const char* fn, const char* arg) {
    if (PyUnicode_Check(obj.ptr())) {
#if PY_VERSION_HEX < 0x030C0000
      if (PyUnicode_READY(obj.ptr()) != 0) throw py::error_already_set();
#endif
      if (PyUnicode_IS_ASCII(obj.ptr())) {
        owner_ = py::reinterpret_borrow<py::object>(obj);
        data_ = static_cast<const uint8_t*>(PyUnicode_DATA(obj.ptr()));
        size_ = static_cast<int64_t>(PyUnicode_GET_LENGTH(obj.ptr()));
      } else {
        owner_ = obj.attr("encode")("ascii", "replace");
        set_from_bytes(owner_);
      }
      return;
    }
    if (PyBytes_Check(obj.ptr())) {
      owner_ = py::reinterpret_borrow<py::object>(obj);
      set_from_bytes(owner_);
      return;
    }
    if (!PyObject_CheckBuffer(obj.ptr())) {
      throw py::type_error(std::string(fn) + ": " + arg +
                           " must be str, bytes, bytearray, memoryview or a 1-D uint8 numpy array, got " +
                           std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    buf_ = std::make_unique<py::buffer_info>(py::reinterpret_borrow<py::buffer>(obj).request());
    if (buf_->itemsize != 1 || buf_->ndim > 1) {
      throw py::value_error(std::string(fn) + ": " + arg +
                            " must be a 1-D buffer of 1-byte items (uint8), got ndim=" +
                            std::to_string(buf_->ndim) + " itemsize=" + std::to_string(buf_->itemsize));
    }
    size_ = buf_->ndim == 0 ? 1 : static_cast<int64_t>(buf_->shape[0]);
    if (buf_->ndim == 1 && buf_->strides[0] != 1 && size_ > 1) {
      // strided view: one contiguous copy
      copy_.resize(static_cast<size_t>(size_));
      const auto* src = static_cast<const uint8_t*>(buf_->ptr);
      for (int64_t i = 0; i < size_; ++i) copy_[static_cast<size_t>(i)] = src[i * buf_->strides[0]];
      data_ = copy_.data();
    } else {
      data_ = static_cast<const uint8_t*>(buf_->ptr);
    }
  }

  const uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  void set_from_bytes(const py::object& b) {
    data_ = reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(b.ptr()));
    size_ = static_cast<int64_t>(PyBytes_GET_SIZE(b.ptr()));
  }

  py::object owner_;
  std::unique_ptr<py::buffer_info> buf_;
  std::vector<uint8_t> copy_;
  const uint8_t* data_ = nullptr;
  int64_t size_ = 0;
};

gulm::CpuIsa parse_isa(const std::string& s) {
  gulm_torch::apply_cpu_isa_env();
  gulm::CpuIsa isa;
  if (!gulm::parse_cpu_isa(s.c_str(), &isa)) {
    throw py::value_error("isa must be one of 'auto', 'scalar', 'avx2', 'avx512', got '" + s + "'");
  }
  return isa;
}

void check_k_stride(const char* fn, int64_t k, int64_t stride) {
  if (k < gulm::kKmerMinK || k > gulm::kKmerMaxK) {
    throw py::value_error(std::string(fn) + ": k must be in [1, " + std::to_string(gulm::kKmerMaxK) +
                          "] (4^k + 2 ids must fit int32), got k=" + std::to_string(k));
  }
  if (stride < 1 || stride > (int64_t(1) << 30)) {
    throw py::value_error(std::string(fn) + ": stride must be >= 1, got stride=" + std::to_string(stride));
  }
}

template <typename T>
gulm::KmerIdType id_type() {
  return sizeof(T) == 8 ? gulm::KmerIdType::I64 : gulm::KmerIdType::I32;
}

template <typename T>
py::array encode_into(const ByteView& v, int k, int stride, gulm::CpuIsa isa, const py::object& out_obj) {
  const int64_t n = gulm::kmer_num_tokens(v.size(), k, stride);
  py::array_t<T> out;
  if (out_obj.is_none()) {
    out = py::array_t<T>(static_cast<py::ssize_t>(n));
  } else {
    // A caller-owned buffer (e.g. reused while streaming a genome chunk by chunk): the ids go
    // to out[:n] and that view is returned.
    if (!py::isinstance<py::array_t<T>>(out_obj) ||
        !(py::reinterpret_borrow<py::array>(out_obj).flags() & py::array::c_style)) {
      throw py::type_error(std::string("kmer_encode_buffer: out must be a C-contiguous numpy array of ") +
                           (sizeof(T) == 8 ? "int64" : "int32") + " (int32=" + (sizeof(T) == 8 ? "False" : "True") + ")");
    }
    out = py::reinterpret_borrow<py::array_t<T>>(out_obj);
    if (!out.writeable() || out.ndim() != 1 || out.shape(0) < n) {
      throw py::value_error("kmer_encode_buffer: out must be a writable 1-D array with at least " +
                            std::to_string(n) + " elements, got shape[0]=" +
                            std::to_string(out.ndim() == 1 ? out.shape(0) : -1));
    }
  }
  // A caller's reused buffer is already mapped: streaming stores pay off there.
  const gulm::KmerEncodeParams p = gulm::kmer_encode_params(
      v.data(), v.size(), k, stride, out.mutable_data(), id_type<T>(), isa, !out_obj.is_none());
  {
    py::gil_scoped_release nogil;
    parallel_chunks(n, kGrain, [&](int64_t b, int64_t e) { gulm::kmer_encode_cpu(p, b, e); });
  }
  if (!out_obj.is_none() && out.shape(0) != n) {
    return out[py::slice(0, static_cast<py::ssize_t>(n), 1)];
  }
  return std::move(out);
}

py::array kmer_encode_buffer(const py::object& seq, int64_t k, int64_t stride, bool int32,
                             const std::string& isa, const py::object& out) {
  constexpr const char* fn = "kmer_encode_buffer";
  check_k_stride(fn, k, stride);
  const gulm::CpuIsa path = parse_isa(isa);
  ByteView v(seq, fn, "seq");
  return int32 ? encode_into<int32_t>(v, static_cast<int>(k), static_cast<int>(stride), path, out)
               : encode_into<int64_t>(v, static_cast<int>(k), static_cast<int>(stride), path, out);
}

template <typename T>
py::tuple encode_batch_into(const std::vector<std::unique_ptr<ByteView>>& views, int k, int stride,
                            bool pad_left, int64_t max_tokens, gulm::CpuIsa isa) {
  const int64_t B = static_cast<int64_t>(views.size());
  std::vector<const uint8_t*> ptrs(static_cast<size_t>(B));
  std::vector<int64_t> offsets(static_cast<size_t>(B) + 1, 0);
  for (int64_t b = 0; b < B; ++b) {
    ptrs[static_cast<size_t>(b)] = views[static_cast<size_t>(b)]->data();
    offsets[static_cast<size_t>(b) + 1] = offsets[static_cast<size_t>(b)] + views[static_cast<size_t>(b)]->size();
  }
  py::array_t<int64_t> lengths(static_cast<py::ssize_t>(B));
  const int64_t widest =
      gulm::kmer_batch_lengths_cpu(offsets.data(), B, k, stride, max_tokens, lengths.mutable_data());
  const int64_t W = max_tokens > 0 ? max_tokens : widest;
  py::array_t<T> out({static_cast<py::ssize_t>(B), static_cast<py::ssize_t>(W)});
  const gulm::KmerBatchParams p =
      gulm::kmer_batch_params(nullptr, ptrs.data(), offsets.data(), B, k, stride, max_tokens, W,
                              pad_left, lengths.data(), out.mutable_data(), id_type<T>(), isa);
  {
    py::gil_scoped_release nogil;
    parallel_chunks(B * W, kGrain, [&](int64_t b, int64_t e) { gulm::kmer_encode_batch_cpu(p, b, e); });
  }
  return py::make_tuple(std::move(out), std::move(lengths));
}

py::tuple kmer_encode_batch_buffer(const py::sequence& seqs, int64_t k, int64_t stride, bool int32,
                                   bool pad_left, int64_t max_tokens, const std::string& isa) {
  constexpr const char* fn = "kmer_encode_batch_buffer";
  check_k_stride(fn, k, stride);
  const gulm::CpuIsa path = parse_isa(isa);
  std::vector<std::unique_ptr<ByteView>> views;
  views.reserve(static_cast<size_t>(py::len(seqs)));
  for (size_t i = 0; i < static_cast<size_t>(py::len(seqs)); ++i) {
    const std::string arg = "seqs[" + std::to_string(i) + "]";
    views.push_back(std::make_unique<ByteView>(seqs[i], fn, arg.c_str()));
  }
  const int kk = static_cast<int>(k), ss = static_cast<int>(stride);
  return int32 ? encode_batch_into<int32_t>(views, kk, ss, pad_left, max_tokens, path)
               : encode_batch_into<int64_t>(views, kk, ss, pad_left, max_tokens, path);
}

py::array revcomp_buffer(const py::object& seq) {
  ByteView v(seq, "revcomp_buffer", "seq");
  const int64_t L = v.size();
  py::array_t<uint8_t> out(static_cast<py::ssize_t>(L));
  uint8_t* o = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    parallel_chunks(L, kGrain * 8, [&](int64_t b, int64_t e) { gulm::revcomp_cpu(v.data(), L, o, b, e); });
  }
  return std::move(out);
}

}  // namespace

void register_buffer_api(py::module_& m) {
  m.def("kmer_encode_buffer", &kmer_encode_buffer, py::arg("seq"), py::arg("k"), py::arg("stride") = 1,
        py::arg("int32") = false, py::arg("isa") = "auto", py::arg("out") = py::none(),
        "Canonical k-mer ids of one sequence (str/bytes/bytearray/memoryview/uint8 numpy) as a new\n"
        "numpy int64 (or int32) array [floor((L-k)/stride)+1], or written into out[:n] (a\n"
        "C-contiguous int64/int32 array you reuse) and returned as that view. `isa` ('auto',\n"
        "'scalar', 'avx2', 'avx512') picks the CPU code path (for tests; all give the same ids).");
  m.def("kmer_encode_batch_buffer", &kmer_encode_batch_buffer, py::arg("seqs"), py::arg("k"),
        py::arg("stride") = 1, py::arg("int32") = false, py::arg("pad_left") = false,
        py::arg("max_tokens") = 0, py::arg("isa") = "auto",
        "Encode a sequence of byte sequences into (ids [B, W] numpy, lengths [B] numpy int64),\n"
        "padded with 0 like torch.ops.gulm.kmer_encode_batch.");
  m.def("revcomp_buffer", &revcomp_buffer, py::arg("seq"),
        "Reverse complement of a byte sequence as a new uint8 numpy array (IUPAC aware, case kept).");
  m.def("kmer_cpu_isa",
        []() {
          gulm_torch::apply_cpu_isa_env();
          return std::string(gulm::cpu_isa_name(gulm::kmer_cpu_resolve_isa(gulm::CpuIsa::Auto)));
        },
        "The encoder path kmer_encode runs on this CPU (capped by GULM_CPU_ISA).");
  m.attr("kmer_max_k") = gulm::kKmerMaxK;
}

}  // namespace gulm_py
