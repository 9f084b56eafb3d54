"""Language-model corpora: genomes -> one compact token array, and the LM batch streams.

A corpus is built once from one or many FASTA files (a genome ensemble): each record is
upper-cased and cut at runs of non-ACGT characters (no token window spans an N run), each
piece is tokenized by the C++ kernel, and the pieces are concatenated with an ``unk``
separator. The last ``valid_frac`` of every record (by position) forms the validation
stream, so validation never sees training sequence. Intervals of an exclusion BED (for
example the loci of a classification test set) are removed before tokenizing: leak-safe
pretraining is one flag. Token arrays are numpy int16/int32, memory-mapped from disk when a
corpus is saved (``LMCorpus.save``/``load``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch

__all__ = ["LMCorpus", "LMBatches", "acgt_segments", "cap_tokens"]

_VALID = np.zeros(256, dtype=bool)
for _b in b"ACGTUacgtu":
    _VALID[_b] = True
SEPARATOR = 1  # unk: marks a junction between pieces so the LM is not taught a false join


def acgt_segments(seq: bytes | np.ndarray, min_len: int = 1) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of A/C/G/T/U (either case) of length >= min_len."""
    a = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, (bytes, bytearray)) else np.asarray(seq, np.uint8)
    if a.size == 0:
        return []
    v = _VALID[a].astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], v, [0]))))
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts) >= min_len
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def _subtract(segments, excluded):
    """segments minus sorted excluded [start, end) intervals."""
    if not excluded:
        return segments
    out = []
    for s, e in segments:
        cur = s
        for xs, xe in excluded:
            if xe <= cur or xs >= e:
                continue
            if xs > cur:
                out.append((cur, xs))
            cur = max(cur, xe)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def cap_tokens(tokens: np.ndarray, max_tokens: int, block: int = 10_000) -> np.ndarray:
    """At most ``max_tokens`` tokens as evenly spaced blocks of the stream, so a capped genome
    ensemble still samples every genome (0: no cap)."""
    if not max_tokens or tokens.size <= max_tokens:
        return tokens
    n_blocks = max(1, max_tokens // block)
    size = max_tokens // n_blocks
    starts = np.linspace(0, tokens.size - size, n_blocks).astype(np.int64)
    return np.concatenate([tokens[s:s + size] for s in starts])


def _token_dtype(vocab_size: int):
    return np.int16 if vocab_size <= np.iinfo(np.int16).max else np.int32


@dataclass
class LMCorpus:
    """Train and validation token streams of a genome ensemble.

    Attributes:
        train, valid: 1-D integer token arrays (numpy, possibly memory-mapped).
        tokenizer: the KmerTokenizer that produced them.
        stats: provenance and counts (files, records, bases, excluded bases, tokens).
    """

    train: np.ndarray
    valid: np.ndarray
    tokenizer: object
    stats: dict = field(default_factory=dict)

    @classmethod
    def from_sequences(cls, sequences: Iterable[tuple[str, str | bytes]], tokenizer, *,
                       valid_frac: float = 0.1, both_strands: bool = False,
                       exclude: dict[str, list[tuple[int, int]]] | None = None,
                       source: str = "<sequences>") -> "LMCorpus":
        """Build from (name, sequence) pairs. ``exclude`` maps a record name to [start, end)
        intervals to leave out."""
        from gulm.ops.kmer import revcomp

        if not 0.0 <= valid_frac < 1.0:
            raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac}")
        k = tokenizer.k
        dtype = _token_dtype(tokenizer.vocab_size)
        parts = {"train": [], "valid": []}
        n_records = n_bases = n_excluded = n_acgt = 0
        sep = np.array([SEPARATOR], dtype=dtype)
        exclude = exclude or {}
        for name, seq in sequences:
            raw = seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq)
            n_records += 1
            n_bases += len(raw)
            segs = acgt_segments(raw, min_len=k)
            n_acgt += sum(e - s for s, e in segs)
            ex = sorted(exclude.get(name, []))
            if ex:
                before = sum(e - s for s, e in segs)
                segs = [(s, e) for s, e in _subtract(segs, ex) if e - s >= k]
                n_excluded += before - sum(e - s for s, e in segs)
            cut = int(round(len(raw) * (1.0 - valid_frac)))
            for s, e in segs:
                for split, (a, b) in (("train", (s, min(e, cut))), ("valid", (max(s, cut), e))):
                    if b - a < k:
                        continue
                    piece = raw[a:b]
                    ids = tokenizer.encode(piece, dtype=torch.int32).numpy().astype(dtype, copy=False)
                    parts[split] += [ids, sep]
                    if both_strands:
                        rc = revcomp(torch.frombuffer(bytearray(piece), dtype=torch.uint8))
                        ids = tokenizer.encode(rc.numpy(), dtype=torch.int32).numpy().astype(dtype, copy=False)
                        parts[split] += [ids, sep]
        if n_records == 0:
            raise ValueError(f"{source}: no sequence records")
        train = np.concatenate(parts["train"]) if parts["train"] else np.zeros(0, dtype)
        valid = np.concatenate(parts["valid"]) if parts["valid"] else np.zeros(0, dtype)
        if train.size < 2:
            raise ValueError(
                f"{source}: no training tokens (records: {n_records}, A/C/G/T bases: {n_acgt}, "
                f"k={k}); is the input empty or all N?")
        stats = {"source": source, "records": n_records, "bases": n_bases, "acgt_bases": n_acgt,
                 "excluded_bases": n_excluded, "train_tokens": int(train.size),
                 "valid_tokens": int(valid.size), "valid_frac": valid_frac,
                 "both_strands": both_strands}
        return cls(train, valid, tokenizer, stats)

    @classmethod
    def from_fasta(cls, paths: str | os.PathLike | Sequence, tokenizer, *, valid_frac: float = 0.1,
                   both_strands: bool = False,
                   exclude_bed: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                   cache_dir: str | None = None) -> "LMCorpus":
        """Build from one FASTA or a list of them (plain or gzip)."""
        from gulm.data.genome import Genome

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise ValueError("no FASTA files given")
        beds = [exclude_bed] if isinstance(exclude_bed, (str, os.PathLike)) else list(exclude_bed or [])
        exclude = None
        if beds:
            from gulm.data.intervals import read_bed

            exclude = {}
            for bed in beds:  # several BEDs: their union is left out
                for iv in read_bed(bed):
                    exclude.setdefault(iv.chrom, []).append((iv.start, iv.end))

        def records():
            for p in paths:
                g = Genome(p, cache_dir=cache_dir)
                for name, seq in g.records():
                    yield name, seq

        corpus = cls.from_sequences(records(), tokenizer, valid_frac=valid_frac,
                                    both_strands=both_strands, exclude=exclude,
                                    source=", ".join(os.fspath(p) for p in paths))
        corpus.stats["files"] = [os.fspath(p) for p in paths]
        if beds:
            corpus.stats["exclude_bed"] = [os.fspath(b) for b in beds]
        return corpus

    @classmethod
    def from_labeled(cls, data, tokenizer, *, both_strands: bool = False,
                     source: str = "classification") -> "LMCorpus":
        """The LM corpus of a labelled set (a :class:`~gulm.data.labeled.LabeledSequences` with
        splits): its train split is the training stream, its valid split the validation stream
        (empty without one). The test split is never read."""
        streams = {}
        for split in ("train", "valid"):
            seqs = [(f"{split}{i}", s) for i, (s, t) in enumerate(zip(data.sequences, data.split)) if t == split]
            streams[split] = cls.from_sequences(seqs, tokenizer, valid_frac=0.0, both_strands=both_strands,
                                                source=f"{source} {split} split") if seqs else None
        train = streams["train"]
        if train is None:
            raise ValueError(f"{source}: no sequences in the train split")
        valid = streams["valid"].train if streams["valid"] is not None else train.train[:0]
        return cls(train.train, valid, tokenizer, {**train.stats, "valid_tokens": int(valid.size)})

    # ---- on disk: two .npy files (memory-mapped on load) and a JSON ------------------------
    def save(self, folder: str | os.PathLike) -> None:
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        for split in ("train", "valid"):
            tmp = os.path.join(folder, f".{split}.tmp.npy")
            np.save(tmp, np.ascontiguousarray(getattr(self, split)))
            os.replace(tmp, os.path.join(folder, f"{split}.npy"))
        meta = {"tokenizer": self.tokenizer.to_dict(), "stats": self.stats}
        with open(os.path.join(folder, "corpus.json.tmp"), "w") as fh:
            json.dump(meta, fh, indent=2)
        os.replace(os.path.join(folder, "corpus.json.tmp"), os.path.join(folder, "corpus.json"))

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool = True) -> "LMCorpus":
        from gulm.data.tokenizer import KmerTokenizer

        folder = os.fspath(folder)
        with open(os.path.join(folder, "corpus.json")) as fh:
            meta = json.load(fh)
        mode = "r" if mmap else None
        train = np.load(os.path.join(folder, "train.npy"), mmap_mode=mode, allow_pickle=False)
        valid = np.load(os.path.join(folder, "valid.npy"), mmap_mode=mode, allow_pickle=False)
        return cls(train, valid, KmerTokenizer.from_dict(meta["tokenizer"]), meta["stats"])


class LMBatches:
    """Language-model batches over a token array, as parallel streams (fastai style).

    The array is cut into ``bs * world`` contiguous streams; this rank reads streams
    ``[rank*bs, (rank+1)*bs)``. Batches are (x [T, B], y [T, B]) int64 tensors with y the
    next token of x. With ``shuffle`` each epoch starts the streams at a random offset
    (wrapping around) and draws the window length like fastai: bptt, or bptt/2 with
    probability 0.05, then Normal(., 5), at least 5. The randomness depends only on
    (seed, epoch), so all ranks agree and a fixed seed repeats the run.
    """

    def __init__(self, tokens: np.ndarray, bs: int = 64, bptt: int = 70, *, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world: int = 1):
        if bs < 1 or bptt < 1:
            raise ValueError(f"bs and bptt must be >= 1 (got bs={bs}, bptt={bptt})")
        self.tokens, self.bs, self.bptt = tokens, bs, bptt
        self.shuffle, self.seed, self.rank, self.world = shuffle, seed, rank, world
        self.n = int(tokens.shape[0])
        self.stream_len = (self.n - 1) // (bs * world)
        if self.stream_len < 2:
            raise ValueError(
                f"corpus too small: {self.n} tokens for {bs * world} streams (bs={bs}, "
                f"world={world}); use a smaller batch size")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """The exact number of batches of the current epoch (window lengths vary with it)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            rng.integers(0, self.n)  # the offset, drawn first as in __iter__
        return len(self._lengths(rng))

    def _lengths(self, rng) -> list[int]:
        out, total, need = [], 0, self.stream_len - 1
        while total < need:
            if self.shuffle:
                b = self.bptt if rng.random() < 0.95 else self.bptt / 2
                seq = max(5, int(rng.normal(b, 5)))
            else:
                seq = self.bptt
            seq = min(seq, need - total)
            out.append(seq)
            total += seq
        return out

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        offset = int(rng.integers(0, self.n)) if self.shuffle else 0
        lengths = self._lengths(rng)
        streams = np.arange(self.rank * self.bs, (self.rank + 1) * self.bs)
        starts = (offset + streams * self.stream_len)[:, None]
        pos = 0
        for seq in lengths:
            idx = starts + np.arange(pos, pos + seq + 1)[None, :]
            chunk = np.take(self.tokens, idx, mode="wrap").astype(np.int64)  # [B, seq+1]
            t = torch.from_numpy(chunk.T.copy())  # [seq+1, B]
            yield t[:-1], t[1:]
            pos += seq
