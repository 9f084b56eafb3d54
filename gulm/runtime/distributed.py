"""Thin helpers over torch.distributed (torchrun + DDP); gulm has no engine of its own."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["init_from_env", "is_distributed", "rank", "world_size", "is_main", "barrier",
           "all_reduce_sum", "all_gather_arrays", "shutdown"]


def init_from_env(device: str | torch.device = "cpu") -> bool:
    """Join the process group described by torchrun's environment variables, if any.

    NCCL for CUDA devices, gloo otherwise. Returns True when running distributed.
    """
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dev = torch.device(device)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float], device="cpu") -> list[float]:
    """Sum a list of numbers over all ranks (identity when not distributed)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_arrays(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every rank's arrays concatenated in rank order (the arrays themselves when not distributed)."""
    if not is_distributed():
        return arrays
    out = [None] * world_size()
    dist.all_gather_object(out, arrays)
    return tuple(np.concatenate([o[i] for o in out]) for i in range(len(arrays)))


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
