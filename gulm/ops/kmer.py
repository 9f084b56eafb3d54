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
"""
from __future__ import annotations

import warnings
from typing import Sequence, Union

import numpy as np
import torch

from gulm import _ext
from gulm.ops import cuda_check

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

PAD_ID = 0
UNK_ID = 1
MAX_K = 15  # 4**15 + 2 ids still fit int32

SeqLike = Union[str, bytes, bytearray, memoryview, np.ndarray, torch.Tensor]
_ID_DTYPES = (torch.int64, torch.int32)


# ---- argument checks -------------------------------------------------------------------------


def check_k_stride(k: int, stride: int = 1) -> None:
    """Raise ValueError unless 1 <= k <= MAX_K and stride >= 1 (both ints)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an int in [1, {MAX_K}] (4**k + 2 ids must fit int32), got k={k!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an int >= 1, got stride={stride!r}")


def check_id_dtype(dtype: torch.dtype) -> None:
    """Raise ValueError unless dtype is torch.int64 or torch.int32 (the id dtypes)."""
    if dtype not in _ID_DTYPES:
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

    return _GATES[name].run(device, op, on_cpu, *args)


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


# ---- references (plain PyTorch, written to be read) -------------------------------------------


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
    """Reference for :func:`kmer_encode`: unfold the windows and weigh their base codes."""
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
    """Reference for :func:`kmer_encode_batch` (takes a list of sequences)."""
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
    """Reference for :func:`kmer_decode`."""
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
    """Reference for :func:`revcomp` (returns a uint8 tensor)."""
    seq = _as_uint8_tensor(seq).cpu()
    return _complements()[seq.long()].flip(0)


def kmer_revcomp_ref(
    ids: torch.Tensor, k: int, lengths: torch.Tensor | None = None, pad_left: bool = False
) -> torch.Tensor:
    """Reference for :func:`kmer_revcomp`."""
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


# ---- first-use checks of the CUDA kernels (gulm.ops.cuda_check) -------------------------------


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
        for k, s in ((1, 1), (3, 1), (5, 2), (7, 3), (15, 1)) for dt in _ID_DTYPES)


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


_GATES = {
    name: cuda_check.KernelGate(f"gulm::{name}", check, "the CPU kernel")
    for name, check in (("kmer_encode", _check_encode), ("kmer_encode_batch", _check_encode_batch),
                        ("kmer_decode", _check_decode), ("revcomp", _check_revcomp),
                        ("kmer_revcomp", _check_kmer_revcomp))
}


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
