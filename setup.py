"""Build gulm and its compiled extension gulm._C.

C++ CPU kernels are always built. CUDA sources are added when torch was built with CUDA and
CUDA_HOME is known, or when GULM_FORCE_CUDA=1; GULM_NO_CUDA=1 turns them off. Install with

    pip install torch==2.13.0          # or any torch >= 2.4 you already have
    pip install --no-build-isolation -e .

(--no-build-isolation builds against the torch you have instead of downloading one.)
"""
import glob
import os
import sys

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils import cpp_extension
except ImportError:  # pragma: no cover - explained to the user
    sys.exit(
        "gulm: building needs torch installed first (pip install torch==2.13.0), then\n"
        "      pip install --no-build-isolation -e ."
    )

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _rel(paths):
    return sorted(os.path.relpath(p, HERE) for p in paths)


def resolve_cuda():
    if _flag("GULM_NO_CUDA"):
        return False, "off (GULM_NO_CUDA=1)"
    if _flag("GULM_FORCE_CUDA"):
        return True, "on (GULM_FORCE_CUDA=1)"
    if torch.version.cuda is None:
        return False, f"off (torch {torch.__version__} has no CUDA)"
    if cpp_extension.CUDA_HOME is None:
        return False, "off (CUDA_HOME not found)"
    return True, f"on (torch CUDA {torch.version.cuda}, CUDA_HOME={cpp_extension.CUDA_HOME})"


def extensions():
    with_cuda, why = resolve_cuda()
    sources = _rel(glob.glob(os.path.join(HERE, "csrc/kernels/cpu/*.cpp")))
    sources += _rel(glob.glob(os.path.join(HERE, "csrc/torch/*.cpp")))
    # -fno-trapping-math: without it GCC keeps the clamps of the LSTM's polynomial exp as branches
    # and leaves the AVX2 and baseline variants of the pointwise passes scalar (only AVX-512's
    # masked stores if-convert them); gulm never reads the floating-point exception flags.
    cxx = ["-O3", "-fno-trapping-math", "-fvisibility=hidden", "-Wall", "-Wno-unknown-pragmas"]
    nvcc = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
    link = []
    # at::parallel_for is inline: without -fopenmp it runs serially in the extension. With it,
    # the bindings share torch's OpenMP pool (the loaded libgomp.so.1 is reused by soname).
    if torch.backends.openmp.is_available() and sys.platform.startswith("linux"):
        cxx.append("-fopenmp")
        link.append("-fopenmp")
    macros = []
    if with_cuda:
        sources += _rel(glob.glob(os.path.join(HERE, "csrc/kernels/cuda/*.cu")))
        sources += _rel(glob.glob(os.path.join(HERE, "csrc/torch/cuda/*.cpp")))
        macros.append(("GULM_WITH_CUDA", None))
        ext_cls = cpp_extension.CUDAExtension
    else:
        ext_cls = cpp_extension.CppExtension
    print(
        "gulm build configuration:\n"
        f"  torch      {torch.__version__}\n"
        f"  CUDA       {why}\n"
        f"  sources    {len(sources)} files\n"
        f"  cxx flags  {' '.join(cxx)}",
        flush=True,
    )
    args = {"cxx": cxx}
    if with_cuda:
        args["nvcc"] = nvcc
    return [
        ext_cls(
            name="gulm._C",
            sources=sources,
            include_dirs=[os.path.join(HERE, "csrc/include")],
            define_macros=macros,
            extra_compile_args=args,
            extra_link_args=link,
        )
    ]


setup(
    packages=find_packages(include=["gulm", "gulm.*"]),
    ext_modules=extensions(),
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
