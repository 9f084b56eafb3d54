"""What the benchmark scripts say about the machine they ran on, and the competing load of their
--contended mode.

* :func:`describe`: CPU model, vector extensions, CPUs, torch version and threads, and the GEMM
  backend gulm's LSTM uses (GULM_GEMM and the per-shape choices, see gulm.ops.lstm).
* :class:`BusyLoad`: a busy process (a pure-Python spin loop) pinned to one core, for as long
  as the ``with`` block lasts, so that gulm and its baselines are timed under the same load.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager

import torch


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features() -> str:
    """The x86 vector extensions that matter to gulm's kernels and to MKL/oneDNN."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vbmi", "avx512_bf16", "amx_bf16"]
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"


def gemm_summary() -> str:
    """GULM_GEMM and, under auto, how many timed GEMM shapes went to each backend."""
    from gulm.ops.lstm import gemm_backend_report

    r = gemm_backend_report()
    if r["request"] != "auto":
        return f"GULM_GEMM={r['request']} (forced)"
    counts = Counter(c["backend"] for c in r["choices"])
    packed = Counter(c["backend"] for c in r["choices"] if c["packed"])
    if not counts:
        return "GULM_GEMM=auto (no shape timed yet)"
    return (f"GULM_GEMM=auto: {dict(counts)} of {sum(counts.values())} shapes timed; per-step "
            f"recurrent (packed) GEMMs: {dict(packed)}")


_MALLOC_FIXED: int | None = None  # the threshold fix_malloc_threshold set, for describe()


def fix_malloc_threshold(nbytes: int = 32 << 20) -> bool:
    """Fix glibc's mmap threshold (mallopt M_MMAP_THRESHOLD) for the rest of the process, so
    that one contender's allocation pattern does not change the other's: by default glibc raises
    the threshold whenever a mapped block is freed, so nn.LSTM's allocations come from the heap
    or from fresh (page-faulting) mappings depending on what gulm freed before it in the same
    process. True where it was set (Linux with glibc); describe() then says so."""
    import ctypes
    import ctypes.util

    global _MALLOC_FIXED
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(-3, int(nbytes)))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False
    if ok:
        _MALLOC_FIXED = int(nbytes)
    return ok


def describe() -> str:
    """One paragraph naming the machine, torch and the kernels' choices."""
    from gulm import _ext

    isa = _ext._C.cpu_isa() if _ext.HAS_EXTENSION else "no extension"
    try:
        mask = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        mask = os.cpu_count()
    return (f"CPU: {cpu_model()} ({cpu_features()}), {os.cpu_count()} CPUs ({mask} in the "
            f"affinity mask); torch {torch.__version__}, {torch.get_num_threads()} threads; gulm "
            f"kernels at {isa}" + (f"; glibc mmap threshold fixed at {_MALLOC_FIXED >> 20} MB"
                                   if _MALLOC_FIXED else ""))


class BusyLoad:
    """A process spinning on one core (the first of this process's affinity mask unless
    `cpu` is given) while the ``with`` block runs."""

    def __init__(self, cpu: int | None = None, settle: float = 1.0):
        if cpu is None:
            cpu = min(os.sched_getaffinity(0))
        self.cpu = cpu
        self.settle = settle
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        os.sched_setaffinity(self.proc.pid, {self.cpu})
        time.sleep(self.settle)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        return False


@contextmanager
def contended():
    """A :class:`BusyLoad` for the ``with`` block; yields (gulm.threads' default thread count
    under that load, the thread counts to time: 1, every CPU of the mask and the default)."""
    from gulm.threads import available_cpus, default_threads

    with BusyLoad() as load:
        default = default_threads()
        counts = sorted({1, available_cpus(), default})
        print(f"contended: a busy process on CPU {load.cpu}; gulm.threads' default under this load: "
              f"{default} thread(s); timing at {counts}", flush=True)
        yield default, counts
