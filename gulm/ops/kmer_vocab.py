"""The canonical k-mer vocabulary (PAD_ID, UNK_ID, MAX_K, sizes; defined in :mod:`gulm.ops.kmer`'s
docstring), the argument checks of the k-mer ops, and the zero-copy byte view of their inputs."""
from __future__ import annotations

import warnings
from typing import Union

import numpy as np
import torch

__all__ = ["PAD_ID", "UNK_ID", "MAX_K", "SeqLike", "ID_DTYPES", "num_tokens", "vocab_size", "check_k_stride",
           "check_id_dtype", "check_bytes_tensor", "as_byte_tensor"]

PAD_ID = 0
UNK_ID = 1
MAX_K = 15  # 4**15 + 2 ids still fit int32

SeqLike = Union[str, bytes, bytearray, memoryview, np.ndarray, torch.Tensor]
ID_DTYPES = (torch.int64, torch.int32)


# ---- argument checks -------------------------------------------------------------------------


def check_k_stride(k: int, stride: int = 1) -> None:
    """Raise ValueError unless 1 <= k <= MAX_K and stride >= 1 (both ints)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an int in [1, {MAX_K}] (4**k + 2 ids must fit int32), got k={k!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an int >= 1, got stride={stride!r}")


def check_id_dtype(dtype: torch.dtype) -> None:
    """Raise ValueError unless dtype is torch.int64 or torch.int32 (the id dtypes)."""
    if dtype not in ID_DTYPES:
        raise ValueError(f"dtype must be torch.int64 or torch.int32, got {dtype}")


def check_bytes_tensor(seq: torch.Tensor, name: str = "seq") -> None:
    """Raise ValueError unless seq is a 1-D torch.uint8 tensor."""
    if seq.dtype != torch.uint8 or seq.dim() != 1:
        raise ValueError(
            f"{name} must be a 1-D torch.uint8 tensor of ASCII bytes [L], got dtype={seq.dtype} "
            f"shape={tuple(seq.shape)}"
        )


_readonly_warning_consumed = False


def as_byte_tensor(seq: SeqLike, name: str = "seq") -> torch.Tensor:
    """A 1-D uint8 CPU tensor viewing the bytes of seq without a copy (a str is encoded to
    ASCII first, non-ASCII characters becoming '?'; a strided numpy array is copied once).

    The view of an immutable object (bytes, str) is read-only memory: pass it only to ops that
    do not write their input, as the k-mer ops do not.
    """
    global _readonly_warning_consumed
    if isinstance(seq, torch.Tensor):
        check_bytes_tensor(seq, name)
        return seq
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1 or seq.dtype.itemsize != 1:
            raise ValueError(f"{name} must be a 1-D array of 1-byte items (uint8), got ndim={seq.ndim} "
                             f"dtype={seq.dtype}")
        arr = np.ascontiguousarray(seq).view(np.uint8)
    elif isinstance(seq, (bytes, bytearray, memoryview)):
        view = memoryview(seq)
        if view.ndim > 1 or view.itemsize != 1:
            raise ValueError(f"{name} must be a 1-D buffer of 1-byte items (uint8), got ndim={view.ndim} "
                             f"itemsize={view.itemsize}")
        arr = np.frombuffer(view if view.c_contiguous else view.tobytes(), dtype=np.uint8)
    else:
        raise TypeError(f"{name} must be str, bytes, bytearray, memoryview, a 1-D uint8 numpy array or "
                        f"a uint8 tensor, got {type(seq).__name__}")
    if not arr.flags.writeable and not _readonly_warning_consumed:
        # torch warns once per process that the memory is read-only; the k-mer ops never write
        # their input, so take that one warning here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = torch.from_numpy(arr)
        _readonly_warning_consumed = True
        return out
    return torch.from_numpy(arr)


def num_tokens(length: int, k: int, stride: int = 1) -> int:
    """Number of full windows of a sequence of ``length`` bytes: floor((L-k)/stride)+1, or 0."""
    return 0 if length < k else (length - k) // stride + 1


def vocab_size(k: int) -> int:
    """Size of the canonical vocabulary: 4**k k-mers plus pad and unk."""
    return 4**k + 2
