"""Loads the compiled extension gulm._C, which registers the torch.ops.gulm operators.

``import gulm`` never fails because the extension is missing: pure-Python parts keep working,
and the first op call raises :class:`ExtensionMissingError` saying how to build it.
"""
from __future__ import annotations

import torch

__all__ = ["HAS_EXTENSION", "HAS_CUDA_KERNELS", "ExtensionMissingError", "require", "load_error"]

_BUILD_HINT = (
    "gulm's compiled extension (gulm._C) is not available{why}.\n"
    "Build it from the source checkout with:\n"
    "    pip install torch==2.13.0   # or any torch >= 2.4\n"
    "    pip install --no-build-isolation -e .\n"
    "(set GULM_NO_CUDA=1 to build the CPU kernels only)."
)


class ExtensionMissingError(RuntimeError):
    """Raised by any gulm op when gulm._C could not be imported."""


_load_error: BaseException | None = None
try:
    from gulm import _C  # noqa: F401  (registers torch.ops.gulm.*)

    HAS_EXTENSION = True
    HAS_CUDA_KERNELS = bool(getattr(_C, "with_cuda", False))
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    _C = None
    HAS_EXTENSION = False
    HAS_CUDA_KERNELS = False
    _load_error = err


def load_error() -> BaseException | None:
    """The ImportError raised while loading gulm._C, or None."""
    return _load_error


def require() -> None:
    """Raise ExtensionMissingError unless the compiled ops are registered."""
    if not HAS_EXTENSION:
        why = f" ({_load_error})" if _load_error is not None else ""
        raise ExtensionMissingError(_BUILD_HINT.format(why=why))


def ops():
    """torch.ops.gulm, after checking that the extension is loaded."""
    require()
    return torch.ops.gulm
