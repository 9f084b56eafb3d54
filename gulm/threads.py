"""How many CPU threads gulm uses: one place that maps a ``--threads`` request to
``torch.set_num_threads``, and so to MKL/oneDNN and to gulm's own task pool (the k-mer ops and
the fused LSTM's per-step chunks read torch's setting at every call).

The default does not oversubscribe. It never exceeds the CPUs in this process's affinity mask
(a container or ``taskset`` may give fewer than the machine has), and it leaves out the cores
that the 1-minute load average shows busy: on a 2-core machine running one other busy job, the
default is 1 thread. Measured on such a machine (issue 16), 2 threads beside one busy process
ran the AWD-LSTM 1.5x slower than 1 thread, because every parallel region waits for the thread
that shares its core.
"""
from __future__ import annotations

import os
import sys

import torch

__all__ = ["resolve_threads", "available_cpus", "default_threads"]

_announced: set[tuple[int | None, int]] = set()


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - non-Unix
        return None


def default_threads(*, cpus: int | None = None, machine_cpus: int | None = None,
                    load: float | None = None) -> int:
    """The thread count gulm picks when none is requested.

    ``cpus``: CPUs in the affinity mask; ``machine_cpus``: CPUs of the machine (what the load
    average is spread over); ``load``: the 1-minute load average. Each defaults to the live
    value. Free cores = machine_cpus - load, rounded; the result is that, clamped to
    [1, cpus].
    """
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    machine_cpus = max(cpus, os.cpu_count() or cpus) if machine_cpus is None else machine_cpus
    load = _load_average() if load is None else load
    if load is None:
        return cpus
    free = int(machine_cpus - load + 0.5)
    return max(1, min(cpus, free))


def resolve_threads(requested: int | None = None, *, verbose: bool = False,
                    cpus: int | None = None, load: float | None = None) -> int:
    """Set torch's intra-op thread count and return it.

    ``requested`` > 0: that many threads, capped at the CPUs this process may run on. ``None``
    or 0: :func:`default_threads`. The choice is printed once to stderr when it differs from
    the request (for the default: when it is below the CPUs available) or when ``verbose``. ``cpus`` and
    ``load`` override the affinity mask and the load average (for tests).
    """
    limit = available_cpus() if cpus is None else max(1, int(cpus))
    if requested is not None and int(requested) < 0:
        raise ValueError(f"threads must be >= 0 (0 or None: choose automatically), got {requested}")
    if requested:
        n = min(int(requested), limit)
        why = "" if n == int(requested) else f" (requested {requested}; this process may run on {limit} CPUs)"
        differs = n != int(requested)
    else:
        load_now = _load_average() if load is None else load
        n = default_threads(cpus=limit, load=load_now)
        shown = "unknown" if load_now is None else f"{load_now:.2f}"
        why = f" ({limit} CPUs available, 1-minute load {shown}; choose with --threads)"
        differs = n < limit  # fewer threads than CPUs: say why
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    key = (None if not requested else int(requested), n)
    if (differs or verbose) and key not in _announced:
        _announced.add(key)
        print(f"gulm: using {n} CPU thread{'s' if n != 1 else ''}{why}", file=sys.stderr)
    return n
