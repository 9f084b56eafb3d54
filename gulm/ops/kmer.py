"""k-mer tokenizer ops: ``torch.ops.gulm.kmer_*`` wrappers, pure-PyTorch references, fake kernels.

Canonical vocabulary: id 0 = pad, 1 = unk, then the 4^k k-mers in lexicographic order,
``id = 2 + sum_i code(b_i) * 4**(k-1-i)`` with A=0, C=1, G=2, T=3 (lowercase folded, U read as
T). A window that touches any other byte (N, IUPAC codes, '-', whitespace, ...) is unk. A
sequence of L bytes gives ``floor((L-k)/stride)+1`` full windows (none when L < k).

Every encode goes through the registered ops (so ``torch.compile``, fake tensors and opcheck see
the path that training takes): str / bytes / bytearray / memoryview / numpy inputs are viewed as
a uint8 tensor without a copy (str is encoded to ASCII first, non-ASCII characters becoming '?',
an unk byte). ``gulm._C`` also keeps buffer-protocol entry points (numpy in, numpy out, GIL
released) for tokenizing without torch tensors; ``revcomp`` of a non-tensor uses them.

On CUDA tensors each op is checked against its reference the first time it runs on a device
(see :mod:`gulm.ops.cuda_check`); a kernel that fails the check is replaced by the CPU kernel.

This module is the public home of the k-mer ops: the vocabulary and argument checks live in
:mod:`gulm.ops.kmer_vocab`, the references in :mod:`gulm.ops.kmer_ref`, the first-use checks in
:mod:`gulm.ops.kmer_checks`; all their public names are re-exported here.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from gulm import _ext
from gulm.ops.kmer_checks import GATES
from gulm.ops.kmer_ref import kmer_decode_ref, kmer_encode_batch_ref, kmer_encode_ref, kmer_revcomp_ref, revcomp_ref
from gulm.ops.kmer_vocab import (MAX_K, PAD_ID, UNK_ID, SeqLike, as_byte_tensor, check_bytes_tensor, check_id_dtype,
                                 check_k_stride, num_tokens, vocab_size)

__all__ = [
    "PAD_ID",
    "UNK_ID",
    "MAX_K",
    "num_tokens",
    "vocab_size",
    "kmer_encode",
    "kmer_encode_batch",
    "kmer_decode",
    "revcomp",
    "kmer_revcomp",
    "kmer_encode_ref",
    "kmer_encode_batch_ref",
    "kmer_decode_ref",
    "revcomp_ref",
    "kmer_revcomp_ref",
    "check_k_stride",
    "check_id_dtype",
    "check_bytes_tensor",
    "as_byte_tensor",
]


# ---- public ops ------------------------------------------------------------------------------


def _run(name: str, *args):
    """torch.ops.gulm.<name>(*args); on a CUDA device whose kernel failed its first-use check
    (gulm.ops.cuda_check), the CPU kernel runs instead and the results move back."""
    op = getattr(_ext.ops(), name)
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    if device.type != "cuda":
        return op(*args)

    def on_cpu(*a):
        out = op(*(t.cpu() if isinstance(t, torch.Tensor) else t for t in a))
        return tuple(o.to(device) for o in out) if isinstance(out, tuple) else out.to(device)

    return GATES[name].run(device, op, on_cpu, *args)


def kmer_encode(seq: SeqLike, k: int, stride: int = 1, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Canonical k-mer ids of one sequence.

    seq: uint8 tensor [L] (CPU or CUDA), or str / bytes / bytearray / memoryview / uint8 numpy
    (viewed in place on the CPU). Returns ``dtype`` (int64 or int32) ids
    [floor((L-k)/stride)+1] on the device of seq.
    """
    check_k_stride(k, stride)
    check_id_dtype(dtype)
    return _run("kmer_encode", as_byte_tensor(seq), k, stride, dtype)


def kmer_encode_batch(
    seqs: Union[Sequence[SeqLike], tuple[torch.Tensor, torch.Tensor]],
    k: int,
    stride: int = 1,
    dtype: torch.dtype = torch.int64,
    pad_left: bool = False,
    max_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode B sequences into a padded id matrix.

    seqs: a list of sequences (str / bytes / numpy / uint8 tensors), or a tuple
    ``(flat, offsets)`` of a uint8 tensor [N] holding all sequences back to back and int64
    offsets [B+1] (sequence b is ``flat[offsets[b]:offsets[b+1]]``).
    Returns ``(ids [B, W] of dtype, lengths [B] int64)``: W is max_tokens when > 0 (longer rows
    keep their first max_tokens tokens), else the longest row; rows are padded with 0 (pad) on
    the right, or on the left when pad_left.
    """
    check_k_stride(k, stride)
    check_id_dtype(dtype)
    max_tokens = int(max_tokens)
    if isinstance(seqs, tuple) and len(seqs) == 2 and all(isinstance(x, torch.Tensor) for x in seqs):
        flat, offsets = seqs
        check_bytes_tensor(flat, "flat")
    else:
        parts = [as_byte_tensor(x, f"seqs[{i}]") for i, x in enumerate(seqs)]
        devices = {x.device for x in parts}
        if len(devices) > 1:
            raise ValueError(f"seqs must all be on one device, got {sorted(map(str, devices))}")
        device = devices.pop() if devices else torch.device("cpu")
        flat = torch.cat(parts) if parts else torch.empty(0, dtype=torch.uint8, device=device)
        lengths = torch.tensor([0] + [x.numel() for x in parts], dtype=torch.int64)
        offsets = torch.cumsum(lengths, 0).to(device)
    return tuple(_run("kmer_encode_batch", flat, offsets, k, stride, dtype, pad_left, max_tokens))


def kmer_decode(ids: torch.Tensor, k: int, stride: int = 1) -> torch.Tensor:
    """Bases of a 1-D id sequence: uint8 [(n-1)*stride + k] (empty for n == 0).

    Each position takes its base from the first known token covering it; positions covered by
    no known token (pad, unk, or the gaps when stride > k) are 'N'. Ids outside [0, 4**k+2)
    raise.
    """
    check_k_stride(k, stride)
    ids = torch.as_tensor(ids)
    return _run("kmer_decode", ids, k, stride)


def revcomp(seq: SeqLike) -> SeqLike:
    """Reverse complement (IUPAC aware, case preserved, U -> A, other bytes kept).

    uint8 tensor [L] -> tensor; str -> str; bytes / bytearray / memoryview -> bytes;
    numpy -> numpy.
    """
    if isinstance(seq, torch.Tensor):
        check_bytes_tensor(seq)
        return _run("revcomp", seq)
    _ext.require()
    out = _ext._C.revcomp_buffer(seq)
    if isinstance(seq, str):
        return out.tobytes().decode("ascii")
    if isinstance(seq, np.ndarray):
        return out
    return out.tobytes()


def kmer_revcomp(
    ids: torch.Tensor, k: int, lengths: torch.Tensor | None = None, pad_left: bool = False
) -> torch.Tensor:
    """Reverse complement of token ids [..., W]: the valid tokens of each row in reverse order,
    each replaced by its reverse-complement k-mer (pad 0 and unk 1 keep their value).

    lengths [...] int64 (optional): only the first lengths[b] entries of a row (the last ones
    if pad_left) are valid; the padding stays where it is. Equals
    ``kmer_encode(revcomp(seq))`` when (L - k) is a multiple of the stride.
    """
    check_k_stride(k)
    return _run("kmer_revcomp", ids, k, lengths, pad_left)


# ---- fake (meta) kernels for torch.compile / FakeTensor ---------------------------------------

if _ext.HAS_EXTENSION:

    @torch.library.register_fake("gulm::kmer_encode")
    def _kmer_encode_fake(seq, k, stride, dtype):
        n = torch.sym_max(0, (seq.shape[0] - k) // stride + 1)
        return seq.new_empty((n,), dtype=dtype)

    @torch.library.register_fake("gulm::kmer_encode_batch")
    def _kmer_encode_batch_fake(seqs, offsets, k, stride, dtype, pad_left, max_tokens):
        batch = offsets.shape[0] - 1
        # The width depends on the data (the longest row) unless max_tokens fixes it.
        width = max_tokens if max_tokens > 0 else torch.library.get_ctx().new_dynamic_size()
        return seqs.new_empty((batch, width), dtype=dtype), offsets.new_empty((batch,))

    @torch.library.register_fake("gulm::kmer_decode")
    def _kmer_decode_fake(ids, k, stride):
        n = ids.shape[0]
        length = 0 if n == 0 else (n - 1) * stride + k
        return ids.new_empty((length,), dtype=torch.uint8)

    @torch.library.register_fake("gulm::revcomp")
    def _revcomp_fake(seq):
        return seq.new_empty(seq.shape)

    @torch.library.register_fake("gulm::kmer_revcomp")
    def _kmer_revcomp_fake(ids, k, lengths, pad_left):
        return ids.new_empty(ids.shape)
