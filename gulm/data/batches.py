"""Tokenized classification sets and their length-bucketed, padded batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

__all__ = ["TokenizedSet", "ClassBatches", "encode_labels"]


def encode_labels(labels: Sequence[str], classes: Sequence[str] | None = None):
    """String labels -> (int64 array, class names). Classes default to the sorted unique
    labels; with ``classes`` given, an unknown label is an error naming it."""
    labels = [str(x) for x in labels]
    if classes is None:
        classes = sorted(set(labels), key=_natural_key)
    index = {c: i for i, c in enumerate(classes)}
    missing = sorted(set(labels) - set(index))
    if missing:
        raise ValueError(f"labels {missing[:5]} are not among the model's classes {list(classes)[:10]}")
    return np.array([index[x] for x in labels], dtype=np.int64), list(classes)


def _natural_key(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


@dataclass
class TokenizedSet:
    """Ragged token ids of many sequences: sequence i is ``tokens[offsets[i]:offsets[i+1]]``.

    ``rc_tokens``/``rc_offsets`` hold the ids of the reverse-complemented sequences when
    built with ``with_rc`` (for augmentation and RC-averaged prediction).
    """

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None = None
    rc_tokens: np.ndarray | None = None
    rc_offsets: np.ndarray | None = None

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def build(cls, sequences: Sequence[str | bytes], tokenizer, labels=None, with_rc: bool = False,
              name: str = "sequences") -> "TokenizedSet":
        from gulm.ops.kmer import revcomp

        if len(sequences) == 0:
            raise ValueError(f"{name}: empty dataset")
        ids = [tokenizer.encode(s, dtype=torch.int32).numpy() for s in sequences]
        short = [i for i, x in enumerate(ids) if x.size == 0]
        if short:
            raise ValueError(
                f"{name}: {len(short)} sequence(s) shorter than k={tokenizer.k} (first at index "
                f"{short[0]}); they give no tokens")
        tokens, offsets = _ragged(ids)
        rc_tokens = rc_offsets = None
        if with_rc:
            rc = []
            for s in sequences:
                b = s.encode() if isinstance(s, str) else bytes(s)
                r = revcomp(torch.frombuffer(bytearray(b), dtype=torch.uint8)).numpy()
                rc.append(tokenizer.encode(r, dtype=torch.int32).numpy())
            rc_tokens, rc_offsets = _ragged(rc)
        lab = None if labels is None else np.asarray(labels, dtype=np.int64)
        return cls(tokens, offsets, lab, rc_tokens, rc_offsets)

    def subset(self, index: np.ndarray) -> "TokenizedSet":
        index = np.asarray(index, dtype=np.int64)
        take = lambda t, o: _ragged([t[o[i]:o[i + 1]] for i in index])  # noqa: E731
        tokens, offsets = take(self.tokens, self.offsets)
        rt = ro = None
        if self.rc_tokens is not None:
            rt, ro = take(self.rc_tokens, self.rc_offsets)
        lab = None if self.labels is None else self.labels[index]
        return TokenizedSet(tokens, offsets, lab, rt, ro)

    def batch(self, index: Sequence[int], rc: np.ndarray | bool = False, pad_id: int = 0):
        """Right-padded ids [B, Lmax] int64, lengths [B] and labels [B] (or None) of ``index``;
        ``rc`` (bool or per-row mask) takes reverse-complement rows."""
        index = np.asarray(index, dtype=np.int64)
        rc = np.broadcast_to(np.asarray(rc, dtype=bool), index.shape)
        if rc.any() and self.rc_tokens is None:
            raise ValueError("this set was built without reverse complements (with_rc=False)")
        lengths = self.lengths[index]
        out = np.full((index.size, int(lengths.max())), pad_id, dtype=np.int64)
        for row, (i, r) in enumerate(zip(index, rc)):
            t, o = (self.rc_tokens, self.rc_offsets) if r else (self.tokens, self.offsets)
            out[row, : lengths[row]] = t[o[i]:o[i + 1]]
        labels = None if self.labels is None else torch.from_numpy(self.labels[index])
        return torch.from_numpy(out), torch.from_numpy(lengths.astype(np.int64)), labels


def _ragged(arrays):
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(arrays).astype(np.int32, copy=False) if arrays else np.zeros(0, np.int32)
    return tokens, offsets


class ClassBatches:
    """Length-bucketed classification batches (ids [B, L], lengths [B], labels [B]).

    Training order (``shuffle``): shuffle, cut into mega-batches of 50 batches, sort each by
    length, split, shuffle the batches (fastai's SortishSampler), so padding stays small.
    Evaluation order: by length. With ``world > 1`` every global batch of ``bs * world``
    sequences is split into equal rank slices. In training the last incomplete batch is dropped
    (unless the set is smaller than one batch), so no 1-row batch ever reaches BatchNorm. ``rc_augment`` replaces each training sequence by its reverse complement with
    probability 1/2. Randomness depends only on (seed, epoch).
    """

    def __init__(self, data: TokenizedSet, bs: int = 64, *, shuffle: bool = False, seed: int = 0,
                 rc_augment: bool = False, rank: int = 0, world: int = 1, rc: bool = False):
        if len(data) == 0:
            raise ValueError("empty dataset")
        self.data, self.bs, self.shuffle, self.seed = data, bs, shuffle, seed
        self.rc_augment, self.rank, self.world, self.rc = rc_augment, rank, world, rc
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self, rng) -> list[np.ndarray]:
        n, gbs = len(self.data), self.bs * self.world
        lengths = self.data.lengths
        if not self.shuffle:
            idx = np.argsort(-lengths, kind="stable")
            return [idx[i:i + gbs] for i in range(0, n, gbs)]
        idx = rng.permutation(n)
        mega = gbs * 50
        batches = []
        for m in range(0, n, mega):
            chunk = idx[m:m + mega]
            chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
            batches += [chunk[i:i + gbs] for i in range(0, len(chunk), gbs)]
        if n >= gbs:  # drop the last partial training batch, as fastai does: a 1-row batch breaks BatchNorm
            batches = [b for b in batches if len(b) == gbs]
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def __len__(self) -> int:
        """The exact number of batches this rank yields per epoch (the progress bars' total)."""
        n, gbs = len(self.data), self.bs * self.world
        if self.shuffle and n >= gbs:
            return n // gbs
        if self.shuffle:  # one partial batch, split over the ranks
            return 1 if self.rank < n else 0
        return n // gbs + (1 if n % gbs > self.rank else 0)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        for b in self._order(rng):
            if self.world > 1:
                b = b[self.rank::self.world]
                if b.size == 0:
                    continue
            if self.rc_augment:
                rc = rng.random(b.size) < 0.5
            else:
                rc = self.rc
            yield self.data.batch(b, rc=rc)
