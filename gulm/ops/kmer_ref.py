"""Pure-PyTorch references of the k-mer ops, written to be read (the ops of :mod:`gulm.ops.kmer` are
tested and first-use checked against them)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from gulm.ops.kmer_vocab import UNK_ID, SeqLike, num_tokens, vocab_size

__all__ = ["kmer_encode_ref", "kmer_encode_batch_ref", "kmer_decode_ref", "revcomp_ref", "kmer_revcomp_ref"]


def _as_uint8_tensor(seq: SeqLike) -> torch.Tensor:
    if isinstance(seq, torch.Tensor):
        return seq
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")
    if isinstance(seq, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(seq).view(np.uint8).copy())
    return torch.tensor(list(bytes(seq)), dtype=torch.uint8)


def _base_codes() -> torch.Tensor:
    """byte -> 0..3 for A/C/G/T (either case, U read as T), -1 for anything else."""
    table = torch.full((256,), -1, dtype=torch.int64)
    for code, letters in enumerate(["Aa", "Cc", "Gg", "TtUu"]):
        for letter in letters:
            table[ord(letter)] = code
    return table


def _complements() -> torch.Tensor:
    table = torch.arange(256, dtype=torch.uint8)
    pairs = ["AT", "CG", "GC", "TA", "UA", "RY", "YR", "KM", "MK", "SS", "WW", "BV", "VB", "DH", "HD", "NN"]
    for a, b in pairs:
        table[ord(a)] = ord(b)
        table[ord(a.lower())] = ord(b.lower())
    return table


def kmer_encode_ref(seq: SeqLike, k: int, stride: int = 1, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Reference for :func:`~gulm.ops.kmer.kmer_encode`: unfold the windows and weigh their base codes."""
    seq = _as_uint8_tensor(seq).cpu()
    n = num_tokens(seq.numel(), k, stride)
    if n == 0:
        return torch.empty(0, dtype=dtype)
    codes = _base_codes()[seq.long()]  # [L]
    windows = codes.unfold(0, k, stride)  # [n, k]
    place_values = 4 ** torch.arange(k - 1, -1, -1)
    ids = 2 + (windows.clamp(min=0) * place_values).sum(dim=1)
    ids[(windows < 0).any(dim=1)] = UNK_ID
    return ids.to(dtype)


def kmer_encode_batch_ref(
    seqs: Sequence[SeqLike],
    k: int,
    stride: int = 1,
    dtype: torch.dtype = torch.int64,
    pad_left: bool = False,
    max_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for :func:`~gulm.ops.kmer.kmer_encode_batch` (takes a list of sequences)."""
    rows = [kmer_encode_ref(s, k, stride, dtype) for s in seqs]
    if max_tokens > 0:
        rows = [r[:max_tokens] for r in rows]
    width = max_tokens if max_tokens > 0 else max((len(r) for r in rows), default=0)
    out = torch.zeros(len(rows), width, dtype=dtype)
    for b, r in enumerate(rows):
        if pad_left:
            out[b, width - len(r) :] = r
        else:
            out[b, : len(r)] = r
    return out, torch.tensor([len(r) for r in rows], dtype=torch.int64)


def kmer_decode_ref(ids: torch.Tensor, k: int, stride: int = 1) -> torch.Tensor:
    """Reference for :func:`~gulm.ops.kmer.kmer_decode`."""
    ids = torch.as_tensor(ids).cpu().tolist()
    length = 0 if not ids else (len(ids) - 1) * stride + k
    out = bytearray(b"N" * length)
    # Walk backwards so that the first known token covering a position writes it last.
    for t in reversed(range(len(ids))):
        if 2 <= ids[t] < vocab_size(k):
            code = ids[t] - 2
            for i in range(k):
                out[t * stride + i] = b"ACGT"[(code >> (2 * (k - 1 - i))) & 3]
    return torch.frombuffer(out, dtype=torch.uint8) if out else torch.empty(0, dtype=torch.uint8)


def revcomp_ref(seq: SeqLike) -> torch.Tensor:
    """Reference for :func:`~gulm.ops.kmer.revcomp` (returns a uint8 tensor)."""
    seq = _as_uint8_tensor(seq).cpu()
    return _complements()[seq.long()].flip(0)


def kmer_revcomp_ref(
    ids: torch.Tensor, k: int, lengths: torch.Tensor | None = None, pad_left: bool = False
) -> torch.Tensor:
    """Reference for :func:`~gulm.ops.kmer.kmer_revcomp`."""
    ids = ids.cpu()
    if ids.numel() == 0:
        return ids.clone()
    # 1. map every k-mer id to its reverse complement through its base-4 digits
    code = (ids.long() - 2).clamp(min=0)
    digits = torch.stack([(code // 4**i) % 4 for i in range(k - 1, -1, -1)], dim=-1)  # [..., W, k]
    rc_digits = (3 - digits).flip(-1)
    rc_code = (rc_digits * 4 ** torch.arange(k - 1, -1, -1)).sum(-1)
    mapped = torch.where(ids >= 2, 2 + rc_code, ids.long()).to(ids.dtype)
    # 2. reverse the valid span of every row
    width = ids.shape[-1]
    flat_ids, flat_mapped = ids.reshape(-1, width), mapped.reshape(-1, width)
    flat_len = (
        torch.full((flat_ids.shape[0],), width) if lengths is None else lengths.cpu().reshape(-1).clamp(0, width)
    )
    out = flat_ids.clone()
    for r in range(flat_ids.shape[0]):
        n = int(flat_len[r])
        start = width - n if pad_left else 0
        out[r, start : start + n] = flat_mapped[r, start : start + n].flip(0)
    return out.reshape(ids.shape)
