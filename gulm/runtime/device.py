"""Where and in which precision a command runs: the one place that maps a device name and a
dtype string ("fp32", "bf16", "fp16") to a torch device and an autocast context."""
from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from gulm.configs.base import DTYPES
from gulm.runtime import distributed as gdist

__all__ = ["resolve_device", "precision", "check_dtype", "setup", "input_table_enabled"]

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
