"""First-use checks of the k-mer CUDA kernels against their references (see :mod:`gulm.ops.cuda_check`):
``GATES`` holds one :class:`~gulm.ops.cuda_check.KernelGate` per op of :mod:`gulm.ops.kmer`."""
from __future__ import annotations

import numpy as np
import torch

from gulm import _ext
from gulm.ops import cuda_check
from gulm.ops.kmer_ref import kmer_decode_ref, kmer_encode_batch_ref, kmer_encode_ref, kmer_revcomp_ref, revcomp_ref
from gulm.ops.kmer_vocab import ID_DTYPES

__all__ = ["GATES"]


def _sample_bytes(n: int, seed: int) -> torch.Tensor:
    """Random bytes of both cases, U and non-bases: every branch of the encoder."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGTACGTacgtUuNnRY-", dtype=np.uint8)
    return torch.from_numpy(alphabet[rng.integers(0, len(alphabet), n)])


def _first_problem(cases):
    """The first (label, got, want) case whose outputs differ (exact), as a description."""
    for label, got, want in cases:
        problem = cuda_check.compare_outputs(got, want, atol=0.0, rtol=0.0)
        if problem:
            return f"{label}: {problem}"
    return None


def _check_encode(device):
    seq = _sample_bytes(301, 1)
    ops = _ext.ops()
    return _first_problem(
        (f"k={k} stride={s} {dt}", [ops.kmer_encode(seq.to(device), k, s, dt)],
         [kmer_encode_ref(seq, k, s, dt)])
        for k, s in ((1, 1), (3, 1), (5, 2), (7, 3), (15, 1)) for dt in ID_DTYPES)


def _batch_sample():
    rows = [_sample_bytes(n, 10 + n) for n in (0, 3, 17, 64, 129)]
    offsets = torch.cumsum(torch.tensor([0] + [len(r) for r in rows]), 0)
    return rows, torch.cat(rows), offsets


def _check_encode_batch(device):
    rows, flat, offsets = _batch_sample()
    ops = _ext.ops()
    return _first_problem(
        (f"pad_left={left} max_tokens={m}",
         ops.kmer_encode_batch(flat.to(device), offsets.to(device), 4, 3, torch.int32, left, m),
         kmer_encode_batch_ref(rows, 4, 3, torch.int32, left, m))
        for left in (False, True) for m in (0, 7))


def _check_decode(device):
    ids = kmer_encode_ref(_sample_bytes(97, 2), 5, 2)
    return _first_problem([("k=5 stride=2", [_ext.ops().kmer_decode(ids.to(device), 5, 2)],
                            [kmer_decode_ref(ids, 5, 2)])])


def _check_revcomp(device):
    seq = _sample_bytes(133, 3)
    return _first_problem([("revcomp", [_ext.ops().revcomp(seq.to(device))], [revcomp_ref(seq)])])


def _check_kmer_revcomp(device):
    rows, _, _ = _batch_sample()
    ops = _ext.ops()

    def case(left):
        ids, lengths = kmer_encode_batch_ref(rows, 3, 1, pad_left=left)
        return (f"pad_left={left}", [ops.kmer_revcomp(ids.to(device), 3, lengths.to(device), left)],
                [kmer_revcomp_ref(ids, 3, lengths, left)])

    return _first_problem(case(left) for left in (False, True))


GATES = {
    name: cuda_check.KernelGate(f"gulm::{name}", check, "the CPU kernel")
    for name, check in (("kmer_encode", _check_encode), ("kmer_encode_batch", _check_encode_batch),
                        ("kmer_decode", _check_decode), ("revcomp", _check_revcomp),
                        ("kmer_revcomp", _check_kmer_revcomp))
}
