"""How many CPU threads gulm uses: one place that maps a ``--threads`` request to
``torch.set_num_threads``, and so to MKL/oneDNN, to the OpenMP loops of the k-mer ops and to
gulm's own task pool for the fused LSTM's per-step chunks (both read torch's setting at every
call).

The default does not oversubscribe. It never exceeds the CPUs in this process's affinity mask
(a container or ``taskset`` may give fewer than the machine has), and it leaves out the cores
that are busy: on a 2-core machine running one other busy job, the default is 1 thread. Busy
means the 1-minute load average, bounded by what other processes used of this process's CPUs
over the last 0.1 s (Linux /proc/stat): the load average alone still counts a gulm command that
has just finished, or this process itself. Measured on such a machine (issue 16), 2 threads beside one busy process
ran the AWD-LSTM 1.5x slower than 1 thread, because every parallel region waits for the thread
that shares its core.
"""
from __future__ import annotations

import os
import sys
import time

import torch

__all__ = ["resolve_threads", "available_cpus", "default_threads", "busy_cpus_now"]

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


def _cpu_jiffies(cpus: set[int]) -> tuple[int, int, int] | None:
    """(busy, total) jiffies summed over `cpus`, and this process's own busy jiffies."""
    try:
        busy = total = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
                    continue
                v = [int(x) for x in fields[:8]]
                total += sum(v)
                busy += sum(v) - v[3] - v[4]  # all but idle and iowait
        with open("/proc/self/stat") as f:
            w = f.read().rsplit(")", 1)[1].split()
        return busy, total, int(w[11]) + int(w[12])  # utime + stime of every thread
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return None


def busy_cpus_now(interval: float = 0.1) -> float | None:
    """How many of this process's CPUs other processes kept busy over the next `interval`
    seconds (Linux; None elsewhere)."""
    try:
        mask = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return None
    first = _cpu_jiffies(mask)
    if first is None:
        return None
    time.sleep(interval)
    second = _cpu_jiffies(mask)
    if second is None:
        return None
    busy, total, own = (b - a for a, b in zip(first, second))
    if total <= 0:
        return None
    return max(0.0, (busy - own) * len(mask) / total)


def default_threads(*, cpus: int | None = None, machine_cpus: int | None = None,
                    load: float | None = None, busy: float | None = None) -> int:
    """The thread count gulm picks when none is requested.

    ``cpus``: CPUs in the affinity mask; ``machine_cpus``: CPUs of the machine (what the load
    average is spread over); ``load``: the 1-minute load average; ``busy``: the CPUs of the mask
    that other processes use now (:func:`busy_cpus_now`). Each defaults to the live value.
    Busy cores = the load average's share of the mask, bounded by ``busy``; the result is the
    CPUs left, rounded, clamped to [1, cpus].
    """
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    machine_cpus = max(cpus, os.cpu_count() or cpus) if machine_cpus is None else machine_cpus
    load = _load_average() if load is None else load
    busy = busy_cpus_now() if busy is None else busy
    estimates = [v for v in (None if load is None else load * cpus / machine_cpus, busy)
                 if v is not None]
    if not estimates:
        return cpus
    return max(1, min(cpus, int(cpus - min(estimates) + 0.5)))


def resolve_threads(requested: int | None = None, *, verbose: bool = False,
                    cpus: int | None = None, load: float | None = None,
                    busy: float | None = None) -> int:
    """Set torch's intra-op thread count and return it.

    ``requested`` > 0: that many threads, capped at the CPUs this process may run on. ``None``
    or 0: :func:`default_threads`. The choice is printed once to stderr when it differs from
    the request (for the default: when it is below the CPUs available) or when ``verbose``.
    ``cpus``, ``load`` and ``busy`` override the live values (for tests).
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
        busy_now = busy_cpus_now() if busy is None else busy
        n = default_threads(cpus=limit, load=load_now, busy=busy_now)
        shown = "unknown" if load_now is None else f"{load_now:.2f}"
        now = "" if busy_now is None else f", {busy_now:.1f} busy now"
        why = f" ({limit} CPUs available, 1-minute load {shown}{now}; choose with --threads)"
        differs = n < limit  # fewer threads than CPUs: say why
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    key = (None if not requested else int(requested), n)
    if (differs or verbose) and key not in _announced:
        _announced.add(key)
        print(f"gulm: using {n} CPU thread{'s' if n != 1 else ''}{why}", file=sys.stderr)
    return n
