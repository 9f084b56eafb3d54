"""A safety net for gulm's CUDA kernels.

The CUDA kernels compile in CI but no GPU had run them when they shipped. Until a device run
has verified them, each CUDA op is compared with its plain-PyTorch reference on small inputs
the first time it is used on a device in a process (a few milliseconds); the verdict is cached
per op, device and build of ``gulm._C``. On a mismatch or an error the op falls back to a
verified path (the CPU kernel for the k-mer ops; the reference, or cuDNN through ``torch.lstm``
for inference, for the LSTM) and says so once, with a warning.

``GULM_CUDA_KERNELS`` chooses: ``check`` (the default) as above, ``on`` runs the kernels
unchecked, ``off`` never runs them (the fallbacks, without a warning).

The decision is a small unit, :class:`KernelGate`, that the ops feed with their kernel, their
reference and sample inputs; the tests feed it a deliberately wrong fake kernel on the CPU.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Iterable, Sequence

import torch

__all__ = ["MODES", "mode", "build_id", "KernelGate", "compare_outputs", "clear_verdicts"]

MODES = ("check", "on", "off")
_ENV = "GULM_CUDA_KERNELS"

# Every gate, so that tests (and a user who rebuilt the extension) can forget the verdicts.
_GATES: list["KernelGate"] = []


def mode() -> str:
    """The value of GULM_CUDA_KERNELS (check when unset)."""
    value = os.environ.get(_ENV, "check").strip().lower() or "check"
    if value not in MODES:
        raise ValueError(f"{_ENV} must be one of {', '.join(MODES)}, got {value!r}")
    return value


def build_id() -> str:
    """Identifies the compiled extension: its file, size and modification time, and torch's
    version (a rebuilt or upgraded extension is checked again)."""
    from gulm import _ext

    path = getattr(_ext._C, "__file__", None) if _ext.HAS_EXTENSION else None
    try:
        st = os.stat(path) if path else None
    except OSError:
        st = None
    stamp = f"{path}:{st.st_size}:{st.st_mtime_ns}" if st else str(path)
    return f"{stamp}|torch {torch.__version__}"


def _device_key(device: torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def compare_outputs(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor], *,
                    atol: float, rtol: float) -> str | None:
    """None when every pair matches (same shape and dtype, values within tolerance), else a
    short description of the first mismatch."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g is None or w is None:
            if g is not w:
                return f"output {i} is {'missing' if g is None else 'unexpected'}"
            continue
        g, w = g.detach().cpu(), w.detach().cpu()
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"output {i} is {g.dtype} {tuple(g.shape)}, expected {w.dtype} {tuple(w.shape)}"
        if g.is_floating_point():
            bad = ~torch.isclose(g.double(), w.double(), rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = g != w
        if bool(bad.any()):
            j = int(bad.reshape(-1).nonzero()[0])
            return (f"output {i} differs at flat index {j}: {g.reshape(-1)[j].item()} vs "
                    f"{w.reshape(-1)[j].item()} ({int(bad.sum())} of {g.numel()} entries)")
    return None


class KernelGate:
    """Whether a CUDA kernel may run, decided once per device and build.

    ``check(device)`` runs the kernel and its reference on small inputs on ``device`` and
    returns None when they agree or a description of the difference; an exception it raises
    counts as a failure. ``fallback`` names the path used instead (for the warning).
    """

    def __init__(self, name: str, check: Callable[[torch.device], str | None], fallback: str):
        self.name = name
        self.fallback = fallback
        self._check = check
        self._verdicts: dict[tuple[str, str], bool] = {}
        self.checks_run = 0
        _GATES.append(self)

    def use_kernel(self, device: torch.device) -> bool:
        """True to run the kernel on ``device``, False to take the fallback."""
        if torch.compiler.is_compiling():
            # Tracing: no kernel runs now; keep a verdict reached eagerly, else trust the kernel.
            return all(v for (dev, _), v in self._verdicts.items() if dev == str(device))
        m = mode()
        if m != "check":
            return m == "on"
        key = (_device_key(device), build_id())
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._run_check(torch.device(key[0]))
            self._verdicts[key] = verdict
        return verdict

    def run(self, device: torch.device, kernel: Callable, fallback: Callable, *args, **kwargs):
        """kernel(*args, **kwargs) when :meth:`use_kernel` allows it on ``device``, else
        fallback(*args, **kwargs)."""
        chosen = kernel if self.use_kernel(device) else fallback
        return chosen(*args, **kwargs)

    def _run_check(self, device: torch.device) -> bool:
        self.checks_run += 1
        try:
            with torch.no_grad():
                problem = self._check(device)
        except Exception as err:  # any failure of the kernel is a reason to fall back
            problem = f"it raised {type(err).__name__}: {err}"
        if problem is None:
            return True
        warnings.warn(
            f"gulm: the CUDA kernel of {self.name} did not match its reference on {device} "
            f"({problem}); using {self.fallback} instead. Set {_ENV}=on to run the kernel "
            f"anyway, or {_ENV}=off to skip this check.",
            RuntimeWarning,
            stacklevel=4,
        )
        return False

    def clear(self) -> None:
        self._verdicts.clear()


def clear_verdicts(gates: Iterable[KernelGate] | None = None) -> None:
    """Forget the cached verdicts (every gate by default): the next use checks again."""
    for gate in list(gates) if gates is not None else _GATES:
        gate.clear()
