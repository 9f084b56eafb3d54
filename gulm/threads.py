"""How many CPU threads gulm uses: one place that maps a ``--threads`` request to
``torch.set_num_threads`` (and so to the kernels' own parallel loops)."""
from __future__ import annotations

import os

import torch

__all__ = ["resolve_threads"]


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def resolve_threads(requested: int | None = None) -> int:
    """Set and return the thread count: ``requested`` when > 0, else no more than the CPUs this
    process may run on."""
    n = int(requested) if requested else min(torch.get_num_threads(), _affinity())
    n = max(1, n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
