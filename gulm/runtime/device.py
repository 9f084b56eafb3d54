"""Where and in which precision a command runs: the one place that maps a device name and a
dtype string ("fp32", "bf16", "fp16") to a torch device and an autocast context."""
from __future__ import annotations

import os
import warnings
from contextlib import nullcontext
from functools import lru_cache

import torch

from gulm.configs.base import DTYPES
from gulm.runtime import distributed as gdist

__all__ = ["resolve_device", "precision", "check_dtype", "setup", "input_table_enabled",
           "cpu_has_native_bf16", "fastest_dtype"]

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for ``name``; under torchrun, ``cuda`` means this rank's GPU."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (expected cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is None and gdist.is_distributed():
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def check_dtype(dtype: str, allowed=DTYPES) -> str:
    if dtype not in allowed:
        raise ValueError(f"dtype must be one of {', '.join(allowed)}, got {dtype!r}")
    return dtype


_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_warned_bf16 = False


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 matmuls in hardware (AVX512-BF16 or AMX-BF16). Without
    them (AVX2-only CPUs such as AMD Zen 1-3) torch emulates bf16 GEMMs, tens of times slower
    than fp32. Reads /proc/cpuinfo once per process (precision() asks on every batch); True where
    it cannot tell (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in _BF16_FLAGS)
    except OSError:
        pass
    return True


def fastest_dtype(device: str | torch.device = "cpu") -> str:
    """bf16 where it is fast (CUDA, CPUs with native bf16), fp32 elsewhere."""
    if torch.device(device).type == "cuda" or cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def _warn_slow_bf16() -> None:
    global _warned_bf16
    if not _warned_bf16:
        _warned_bf16 = True
        warnings.warn("gulm: this CPU has no native bfloat16 (no AVX512-BF16 or AMX): bf16 autocast is "
                      "emulated and many times slower than fp32 here; use --dtype fp32", stacklevel=3)


def precision(dtype: str, device: str | torch.device):
    """A context manager running its block in ``dtype`` on ``device``: nothing for fp32,
    autocast to bfloat16 or float16 otherwise. fp16 needs a CUDA device (the CPU kernels have
    no half-precision path)."""
    check_dtype(dtype)
    device_type = torch.device(device).type
    if dtype == "fp32":
        return nullcontext()
    if dtype == "fp16" and device_type != "cuda":
        raise ValueError("dtype fp16 needs a CUDA device; on CPU use bf16")
    if dtype == "bf16" and device_type == "cpu" and not cpu_has_native_bf16():
        _warn_slow_bf16()
    return torch.autocast(device_type, dtype=_AUTOCAST[dtype])


def setup(device: str = "cpu", threads: int | None = 0) -> torch.device:
    """Start of every command: join torchrun's process group if there is one, set the CPU
    thread count (:func:`gulm.threads.resolve_threads`) and return the device."""
    from gulm.threads import resolve_threads

    gdist.init_from_env(device)
    resolve_threads(threads or None)
    return resolve_device(device)


def input_table_enabled() -> bool:
    """Whether inference may use the first layer's input table (``GULM_NO_INPUT_TABLE=1`` turns
    it off, to compare against the plain path). Read when a model is prepared for inference."""
    return os.environ.get("GULM_NO_INPUT_TABLE", "0") != "1"
