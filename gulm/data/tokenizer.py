"""KmerTokenizer: k-mer token ids for genomic sequences, with the canonical or a seed-style vocabulary.

The canonical vocabulary is arithmetic (pad 0, unk 1, then the 4^k k-mers in lexicographic
order) and is what the kernels produce. A Genomic-ULMFiT ("seed") vocabulary, ordered by
descending k-mer frequency with the pad token at 0 and unknown k-mers mapped to 0, is applied as
one table lookup on the canonical ids (``remap[canonical_id]``), never per token in Python.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from gulm.ops import kmer as kmer_ops

__all__ = ["KmerTokenizer"]

_FORMAT = "gulm.KmerTokenizer"
_FORMAT_VERSION = 1
_DTYPES = {"int64": torch.int64, "int32": torch.int32}
# itos / stoi of the canonical vocabulary are materialised only up to this k (4^10 strings).
_MAX_LISTED_K = 10


def _kmer_string(code: int, k: int) -> str:
    return "".join("ACGT"[(code >> (2 * (k - 1 - i))) & 3] for i in range(k))


def _kmer_code(token: str, k: int) -> int | None:
    """Base-4 code of an ACGT k-mer string (either case), None for anything else."""
    if len(token) != k:
        return None
    code = 0
    for ch in token.upper():
        digit = "ACGT".find(ch)
        if digit < 0:
            return None
        code = 4 * code + digit
    return code


class KmerTokenizer:
    """Splits sequences into k-mers (window k, step stride) and maps them to token ids.

    ``KmerTokenizer(k=5, stride=2)`` uses the canonical vocabulary: pad 0, unk 1 (any window with
    a byte other than ACGT/U in either case), then ``2 + base-4 index``; vocab_size = 4^k + 2.
    ``KmerTokenizer.from_itos(itos, k, stride)`` and ``KmerTokenizer.seed_vocab(corpus, ...)``
    give a seed-style vocabulary (``itos[0]`` is pad; k-mers not in itos, and windows with
    non-ACGT bytes, map to 0 like the seed's ``defaultdict(int)`` stoi).

    dtype: torch.int64 (default) or torch.int32 for the ids that encode returns.
    """

    def __init__(self, k: int = 5, stride: int = 2, dtype: torch.dtype = torch.int64):
        kmer_ops.check_k_stride(k, stride)
        kmer_ops.check_id_dtype(dtype)
        self.k = k
        self.stride = stride
        self.dtype = dtype
        self._itos: list[str] | None = None  # seed vocabulary; None for canonical
        self._remap: np.ndarray | None = None  # [4^k + 2] canonical id -> seed id
        self._inverse: np.ndarray | None = None  # [len(itos)] seed id -> canonical id
        self._tables: dict[tuple[Any, torch.dtype, str], torch.Tensor] = {}
        self._stoi = None
        self._canonical_itos = None

    # ---- construction from a seed vocabulary --------------------------------------------------

    @classmethod
    def from_itos(
        cls, itos: Sequence[str], k: int, stride: int, dtype: torch.dtype = torch.int64
    ) -> "KmerTokenizer":
        """Tokenizer with a given id -> k-mer list (the seed's ``vocab.itos``).

        itos[0] is the pad token. Entries that are not ACGT k-mers of length k (special tokens,
        k-mers with N) keep their index but are never produced by encode. When a k-mer appears
        twice the later index wins, as in the seed's ``{v: k for k, v in enumerate(itos)}``.
        """
        tok = cls(k, stride, dtype)
        itos = [str(t) for t in itos]
        if not itos:
            raise ValueError("itos must hold at least the pad token at index 0")
        remap = np.zeros(kmer_ops.vocab_size(k), dtype=np.int64)  # unknown -> 0, as the seed
        inverse = np.full(len(itos), kmer_ops.UNK_ID, dtype=np.int64)
        inverse[0] = kmer_ops.PAD_ID
        for index, token in enumerate(itos):
            if index == 0:
                continue
            code = _kmer_code(token, k)
            if code is not None:
                remap[2 + code] = index
                inverse[index] = 2 + code
        tok._itos = itos
        tok._remap = remap
        tok._inverse = inverse
        return tok

    @classmethod
    def seed_vocab(
        cls,
        corpus_sequences: Iterable[Any],
        k: int = 5,
        stride: int = 2,
        max_vocab: int | None = None,
        min_freq: int = 2,
        pad_token: str = "xxpad",
        dtype: torch.dtype = torch.int64,
    ) -> "KmerTokenizer":
        """Build the seed's frequency-ordered vocabulary from a corpus and return its tokenizer.

        Follows Genomic-ULMFiT's ``GenomicVocab.create``: count the k-mers of every sequence
        (windows of k, step stride, upper-cased), keep ``Counter.most_common(max_vocab)`` with
        count >= min_freq (ties in order of first appearance in the corpus), and put the pad
        token first. Windows with bytes other than ACGT/U are not counted (the seed counted
        them as their own strings; they have no canonical id here). The seed's utils.py
        inserts 'pad' as the pad token; pass pad_token='pad' to reproduce its itos exactly.
        """
        kmer_ops.check_k_stride(k, stride)
        size = kmer_ops.vocab_size(k)
        counts = np.zeros(size, dtype=np.int64)
        never = np.iinfo(np.int64).max
        first_seen = np.full(size, never, dtype=np.int64)  # token position of first appearance
        position = 0
        for seq in corpus_sequences:
            ids = kmer_ops.kmer_encode(seq, k, stride).numpy()
            counts += np.bincount(ids, minlength=size)
            if (first_seen[2:] == never).any():  # ties need first appearances until all seen
                values, first = np.unique(ids, return_index=True)
                new = first_seen[values] == never
                first_seen[values[new]] = position + first[new]
            position += ids.size
        counts[: 2] = 0  # pad and unk are not k-mers
        order = np.lexsort((first_seen, -counts))  # by count desc, then first appearance
        order = order[counts[order] > 0]
        if max_vocab is not None:
            order = order[:max_vocab]
        order = order[counts[order] >= min_freq]
        itos = [pad_token] + [_kmer_string(int(i) - 2, k) for i in order]
        return cls.from_itos(itos, k, stride, dtype)

    # ---- vocabulary -----------------------------------------------------------------------------

    @property
    def vocab(self) -> str:
        """'canonical' or 'itos' (a seed-style frequency-ordered vocabulary)."""
        return "canonical" if self._itos is None else "itos"

    @property
    def vocab_size(self) -> int:
        return kmer_ops.vocab_size(self.k) if self._itos is None else len(self._itos)

    @property
    def pad_id(self) -> int:
        return kmer_ops.PAD_ID

    @property
    def unk_id(self) -> int:
        """Id of windows with non-ACGT bytes: 1 (canonical) or 0 (seed vocabularies)."""
        return kmer_ops.UNK_ID if self._itos is None else 0

    @property
    def itos(self) -> list[str]:
        """id -> token string. Built lazily for the canonical vocabulary (k <= 10)."""
        if self._itos is not None:
            return self._itos
        if self._canonical_itos is None:
            if self.k > _MAX_LISTED_K:
                raise ValueError(
                    f"itos of the canonical vocabulary is only listed for k <= {_MAX_LISTED_K} "
                    f"(k={self.k} has {4**self.k} k-mers); ids are 2 + base-4 index"
                )
            kmers = ("".join(p) for p in itertools.product("ACGT", repeat=self.k))
            self._canonical_itos = ["xxpad", "xxunk", *kmers]
        return self._canonical_itos

    @property
    def stoi(self) -> defaultdict:
        """token string -> id; unknown strings give unk_id (0 for seed vocabularies, like the seed)."""
        if self._stoi is None:
            self._stoi = defaultdict(lambda: self.unk_id, {s: i for i, s in enumerate(self.itos)})
        return self._stoi

    # ---- encoding -------------------------------------------------------------------------------

    def _table(self, which: str, device, dtype: torch.dtype) -> torch.Tensor:
        key = (str(device), dtype, which)
        table = self._tables.get(key)
        if table is None:
            src = self._remap if which == "remap" else self._inverse
            table = torch.from_numpy(src).to(device=device, dtype=dtype)
            self._tables[key] = table
        return table

    def _to_seed(self, canonical: torch.Tensor) -> torch.Tensor:
        if self._itos is None:
            return canonical
        return self._table("remap", canonical.device, canonical.dtype)[canonical]

    def _to_canonical(self, ids: torch.Tensor) -> torch.Tensor:
        if self._itos is None:
            return ids
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self._itos)):
            raise ValueError(f"ids must lie in [0, vocab_size={len(self._itos)})")
        return self._table("inverse", ids.device, ids.dtype)[ids.long()]

    def encode(self, seq, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Token ids [floor((L-k)/stride)+1] of one sequence (str, bytes, bytearray, uint8 numpy,
        or a uint8 tensor on any device)."""
        return self._to_seed(kmer_ops.kmer_encode(seq, self.k, self.stride, dtype or self.dtype))

    __call__ = encode

    def encode_batch(
        self, seqs, pad_left: bool = False, max_tokens: int = 0, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids [B, W], lengths [B] int64) for a list of sequences, padded with pad_id (0) on the
        right (or left); W = max_tokens if > 0 (longer rows truncated), else the longest row."""
        ids, lengths = kmer_ops.kmer_encode_batch(
            seqs, self.k, self.stride, dtype or self.dtype, pad_left=pad_left, max_tokens=max_tokens
        )
        return self._to_seed(ids), lengths

    def decode(self, ids) -> str:
        """The bases spelled by a 1-D id sequence; positions covered by no known k-mer are 'N'."""
        ids = torch.as_tensor(ids)
        if ids.dtype not in (torch.int64, torch.int32):
            ids = ids.long()
        canonical = self._to_canonical(ids.reshape(-1)).cpu()
        return bytes(kmer_ops.kmer_decode(canonical, self.k, self.stride).numpy()).decode("ascii")

    def revcomp_ids(self, ids: torch.Tensor, lengths: torch.Tensor | None = None, pad_left: bool = False) -> torch.Tensor:
        """Ids of the reverse-complement strand: valid tokens of each row reversed, each replaced
        by its reverse-complement k-mer (see gulm.ops.kmer.kmer_revcomp)."""
        canonical = self._to_canonical(ids)
        return self._to_seed(kmer_ops.kmer_revcomp(canonical, self.k, lengths, pad_left))

    # ---- serialisation and comparison -----------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-serialisable description (for checkpoints' config.json)."""
        out = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "k": self.k,
            "stride": self.stride,
            "vocab": self.vocab,
            "vocab_size": self.vocab_size,
            "dtype": "int64" if self.dtype == torch.int64 else "int32",
        }
        if self._itos is not None:
            out["itos"] = list(self._itos)  # defines the remap table
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "KmerTokenizer":
        if d.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"not a KmerTokenizer description: format={d.get('format')!r}")
        if int(d.get("version", 1)) > _FORMAT_VERSION:
            raise ValueError(f"KmerTokenizer description version {d['version']} is newer than {_FORMAT_VERSION}")
        dtype = _DTYPES[d.get("dtype", "int64")]
        vocab = d.get("vocab", "canonical")
        if vocab == "canonical":
            tok = cls(int(d["k"]), int(d["stride"]), dtype)
        elif vocab == "itos":
            tok = cls.from_itos(d["itos"], int(d["k"]), int(d["stride"]), dtype)
        else:
            raise ValueError(f"unknown vocab kind {vocab!r} (expected 'canonical' or 'itos')")
        if "vocab_size" in d and int(d["vocab_size"]) != tok.vocab_size:
            raise ValueError(f"vocab_size {d['vocab_size']} does not match the vocabulary ({tok.vocab_size})")
        return tok

    def _key(self):
        return (self.k, self.stride, self.vocab, None if self._itos is None else tuple(self._itos))

    def __eq__(self, other) -> bool:
        """Same ids for the same input: k, stride and vocabulary (the output dtype is ignored)."""
        if not isinstance(other, KmerTokenizer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"KmerTokenizer(k={self.k}, stride={self.stride}, vocab={self.vocab!r}, vocab_size={self.vocab_size})"
