"""k-mer frequency spectra computed from token ids, for the optional "wide" branch of a
classifier head (wide and deep: a linear model on k-mer frequencies beside the pooled LSTM).

The bases of a sequence are recovered from its canonical k-mer tokens (id = 2 + base-4 code)
whenever the stride is at most k: token t spells bases [t*stride, t*stride + k). The spectrum of
each requested length m is then counted over the windows of m bases that touch no unknown base,
and divided by their number - the same features as :func:`gulm.baseline.kmer_features` on the
raw sequence (up to a tail shorter than one token). With ``window`` > 0 the spectrum is counted
twice, over the first and over the last ``window`` bases of each sequence (the two ends of a
transcript say different things: a coding start, a 3' UTR), and the two blocks are concatenated.
``gapped`` = (length, informative) adds the gapped k-mer blocks of
:func:`gulm.baseline.gapped_kmer_features` (every ``length``-base window read at the positions of
each :func:`gapped_masks` pattern, the rest wildcards: gkm-SVM's features). ``positional`` =
(k, stretch, span) adds position-resolved blocks (:func:`gulm.baseline.positional_kmer_features`):
the counts of the k-mers that start in each ``stretch``-base bin of the first ``span`` bases, for
windows aligned on a site (promoters around a TSS), where a motif means something only at its
place. Everything is batched tensor code.

:class:`CrossFitLinear` is the fixed form of that branch (``--kmer-logreg``): the k-mer logistic
regression fitted before the network trains, cross-fitted over folds that
:meth:`KmerSpectrum.strand_fold` assigns.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["KmerSpectrum", "CrossFitLinear", "gapped_masks", "positional_bins", "check_positional"]


def gapped_masks(length: int, informative: int) -> list[tuple[int, ...]]:
    """The informative positions of each gapped k-mer pattern of a ``length``-base window: the
    first and the last base and ``informative`` - 2 of those between (a pattern that does not span
    the window is a shorter window's). Raises ValueError unless 2 <= informative <= length."""
    from itertools import combinations

    if not 2 <= informative <= length:
        raise ValueError(f"gapped k-mers need 2 <= informative <= length, got {informative} of {length}")
    return [(0, *mid, length - 1) for mid in combinations(range(1, length - 1), informative - 2)]


def positional_bins(k: int, stretch: int, span: int) -> int:
    """The number of ``stretch``-base bins the k-mers of the first ``span`` bases start in."""
    return -(-(span - k + 1) // stretch)


def check_positional(positional: Sequence[int], what: str = "positional k-mers") -> tuple[int, int, int]:
    """(k, stretch, span) as ints, or ValueError naming ``what`` unless 1 <= k <= 8, stretch >= 1
    and span >= k."""
    if len(positional) != 3 or not 1 <= positional[0] <= 8 or positional[1] < 1 or positional[2] < positional[0]:
        raise ValueError(f"{what}: need K (1-8), a bin of B >= 1 bases and a span of S >= K bases, got "
                         f"{' '.join(map(str, positional))}")
    return int(positional[0]), int(positional[1]), int(positional[2])


class KmerSpectrum(nn.Module):
    """forward(ids [B, L] right-padded canonical k-mer ids, lengths [B]) -> [B, sum(4^m)] float32
    frequencies of the m-mers for every m in ``ks`` (each block sums to 1, or 0 when empty);
    with ``window`` > 0, [B, 2 * sum(4^m)]: those of the first ``window`` bases, then those of the
    last ``window`` bases (a sequence shorter than ``window`` gives the same block twice).
    ``gapped`` (length, informative): the gapped k-mer blocks after them (``ks`` may then be
    empty); ``positional`` (k, stretch, span): the position-resolved counts last (not with
    ``window``)."""

    def __init__(self, token_k: int, token_stride: int, ks: Sequence[int], window: int = 0,
                 gapped: Sequence[int] = (), positional: Sequence[int] = ()):
        super().__init__()
        if not 1 <= token_stride <= token_k:
            raise ValueError(f"a k-mer spectrum needs stride <= k to recover the bases (k={token_k}, "
                             f"stride={token_stride})")
        if (not ks and not gapped and not positional) or (ks and (min(ks) < 1 or max(ks) > 8)):
            raise ValueError(f"k-mer feature lengths must lie in [1, 8], got {list(ks)}")
        if gapped and (len(gapped) != 2 or gapped[1] > 8):
            raise ValueError(f"gapped k-mers take (length, informative <= 8), got {list(gapped)}")
        self.positional = check_positional(positional) if positional else ()
        if positional and window:
            raise ValueError("positional k-mers count from the sequence's start: they do not go with a window")
        self.masks = gapped_masks(*gapped) if gapped else []
        longest = max([*ks, *gapped[:1], *self.positional[:1]])
        if window and window < longest:  # a negative window too
            raise ValueError(f"a k-mer spectrum window must be 0 (the whole sequence) or at least the longest "
                             f"k-mer ({longest}), got {window}")
        self.k, self.stride, self.ks = int(token_k), int(token_stride), [int(m) for m in ks]
        self.gapped = tuple(int(v) for v in gapped)
        self.window = int(window)
        shifts = 2 * torch.arange(self.k - 1, -1, -1)
        self.register_buffer("shifts", shifts, persistent=False)

    @property
    def size(self) -> int:
        gapped = len(self.masks) * 4 ** self.gapped[1] if self.gapped else 0
        positional = positional_bins(*self.positional) * 4 ** self.positional[0] if self.positional else 0
        return (sum(4 ** m for m in self.ks) + gapped) * (2 if self.window else 1) + positional

    def bases(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, Lb] base codes 0..3, -1 where unknown or beyond the sequence."""
        B, L = ids.shape
        k, s = self.k, self.stride
        Lb = (L - 1) * s + k if L else 0
        pos = torch.arange(L, device=ids.device)[:, None] * s + torch.arange(k, device=ids.device)[None, :]
        pos = pos.reshape(-1).expand(B, -1)  # [B, L*k]
        code = (ids.long() - 2).clamp_min(0)
        digits = ((code[:, :, None] >> self.shifts) & 3).reshape(B, -1)
        in_seq = (torch.arange(L, device=ids.device)[None, :] < lengths.to(ids.device)[:, None])
        known = (ids >= 2) & in_seq  # [B, L]
        out = torch.full((B, Lb), -1, dtype=torch.long, device=ids.device)
        rows = torch.arange(B, device=ids.device)[:, None].expand(B, L * k)
        kt = known[:, :, None].expand(B, L, k).reshape(B, -1)
        # overlapping tokens spell the same bases; a base no known token covers stays unknown
        out[rows[kt], pos[kt]] = digits[kt]
        return out

    def ends(self, b: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first and the last ``window`` base codes [B, window] of base codes ``b`` [B, Lb]
        (-1 beyond a shorter sequence; its last window is its whole sequence, left-aligned)."""
        B, Lb = b.shape
        w = self.window
        if Lb < w:
            b = torch.cat([b, b.new_full((B, w - Lb), -1)], dim=1)
        lengths = lengths.to(b.device)
        n_bases = torch.where(lengths > 0, (lengths - 1) * self.stride + self.k, 0)
        start = (n_bases - w).clamp_min(0)  # [B]
        index = start[:, None] + torch.arange(w, device=b.device)[None, :]
        return b[:, :w], b.gather(1, index)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b = self.bases(ids, lengths)
        if self.window:
            first, last = self.ends(b, lengths)
            return torch.cat([self.count(first), self.count(last)], dim=1)
        if not self.positional:
            return self.count(b)
        blocks = [self.count(b)] if self.ks or self.masks else []
        return torch.cat([*blocks, self.count_positional(b)], dim=1)

    def count_positional(self, b: torch.Tensor) -> torch.Tensor:
        """[B, bins * 4^k] the counts of the k-mers of base codes ``b`` [B, Lb] (-1: unknown) that
        start in each ``stretch``-base bin of the first ``span`` bases (not divided: a bin holds at
        most ``stretch`` of them)."""
        k, stretch, span = self.positional
        B, width, bins = b.shape[0], 4 ** k, positional_bins(*self.positional)
        b = b[:, :span]
        if b.shape[1] < k:
            return torch.zeros(B, bins * width, device=b.device)
        code, valid = _kmer_codes(b, k)
        where = torch.arange(code.shape[1], device=b.device) // stretch
        flat = ((torch.arange(B, device=b.device)[:, None] * bins + where) * width + code)[valid]
        return torch.bincount(flat, minlength=B * bins * width).reshape(B, -1).float()

    def count(self, b: torch.Tensor) -> torch.Tensor:
        """[B, sum(4^m)] the m-mer frequencies of base codes ``b`` [B, Lb] (-1: unknown), then
        the gapped blocks."""
        B, Lb = b.shape
        blocks = []
        for m in self.ks:
            width = 4 ** m
            if Lb < m:
                blocks.append(torch.zeros(B, width, device=b.device))
                continue
            code, valid = _kmer_codes(b, m)
            flat = (torch.arange(B, device=b.device)[:, None] * width + code)[valid]
            blocks.append(_frequencies(flat, B, width))
        for positions in self.masks:  # gapped k-mers: each pattern's own block
            length, width = self.gapped[0], 4 ** self.gapped[1]
            if Lb < length:
                blocks.append(torch.zeros(B, width, device=b.device))
                continue
            n = Lb - length + 1
            code = torch.zeros(B, n, dtype=torch.long, device=b.device)
            valid = torch.ones(B, n, dtype=torch.bool, device=b.device)
            for p in positions:
                base = b[:, p:p + n]
                code = code * 4 + base.clamp_min(0)
                valid &= base >= 0
            flat = (torch.arange(B, device=b.device)[:, None] * width + code)[valid]
            blocks.append(_frequencies(flat, B, width))
        return torch.cat(blocks, dim=1)

    def strand_fold(self, ids: torch.Tensor, lengths: torch.Tensor, folds: int) -> torch.Tensor:
        """[B] a cross-fitting fold in [0, folds) per sequence, computed from counts that its
        reverse complement shares (known bases, A+T, and each dinucleotide pooled with its
        reverse complement), so both strands of a sequence, and its duplicates, fall in one fold
        (exactly so at stride 1, where the tokens of both strands cover the same bases)."""
        b = self.bases(ids, lengths)
        known = b >= 0
        at = (known & ((b == 0) | (b == 3))).sum(1)
        pair_ok = known[:, :-1] & known[:, 1:]
        x, y = b[:, :-1].clamp_min(0), b[:, 1:].clamp_min(0)
        pair = torch.minimum(x * 4 + y, (3 - y) * 4 + (3 - x))  # xy and its reverse complement
        flat = (torch.arange(b.shape[0], device=b.device)[:, None] * 16 + pair)[pair_ok]
        counts = torch.bincount(flat, minlength=b.shape[0] * 16).reshape(-1, 16)
        mix = torch.tensor(_PRIMES, device=b.device)
        return (known.sum(1) + 7 * at + (counts * mix).sum(1)) % folds


def _kmer_codes(b: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The base-4 code [B, Lb-m+1] of every m-base window of base codes ``b`` [B, Lb] (Lb >= m),
    and whether the window holds no unknown base."""
    win = b.unfold(1, m, 1)  # [B, Lb-m+1, m]
    code = (win.clamp_min(0) * (4 ** torch.arange(m - 1, -1, -1, device=b.device))).sum(-1)
    return code, (win >= 0).all(-1)


def _frequencies(flat: torch.Tensor, rows: int, width: int) -> torch.Tensor:
    """[rows, width] counts of the flat indices row * width + code, each row divided by its total."""
    counts = torch.bincount(flat, minlength=rows * width).reshape(rows, width).float()
    return counts / counts.sum(1, keepdim=True).clamp_min(1.0)


_PRIMES = (11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


class CrossFitLinear(nn.Module):
    """A linear model fitted elsewhere (the k-mer logistic regression: standardisation, weights,
    bias), held in ``folds`` + 1 versions: version j < ``folds`` was fitted without the training
    rows of cross-fitting fold j, the last on all of them.

    forward(x [B, F], fold [B] or None) -> [B, C]: with ``fold``, row i is scored by version
    fold[i] (in training: no training row is scored by a model fitted on it, so the network
    beside it learns from the errors the model makes on new data); without, by the full fit
    (prediction). Buffers only: nothing in it trains; set them with :meth:`set`."""

    def __init__(self, n_features: int, n_classes: int, folds: int):
        super().__init__()
        v = folds + 1
        self.register_buffer("mean", torch.zeros(v, n_features))
        self.register_buffer("scale", torch.ones(v, n_features))
        self.register_buffer("weight", torch.zeros(v, n_classes, n_features))
        self.register_buffer("bias", torch.zeros(v, n_classes))

    def set(self, mean, scale, weight, bias) -> None:
        """Load the versions: mean and scale [folds + 1, F], weight [folds + 1, C, F], bias [folds + 1, C]."""
        with torch.no_grad():
            for name, value in (("mean", mean), ("scale", scale), ("weight", weight), ("bias", bias)):
                buf = getattr(self, name)
                value = torch.as_tensor(value, dtype=buf.dtype)
                if tuple(value.shape) != tuple(buf.shape):
                    raise ValueError(f"{name} of shape {tuple(value.shape)} does not fit {tuple(buf.shape)}")
                buf.copy_(value)

    def forward(self, x: torch.Tensor, fold: torch.Tensor | None = None) -> torch.Tensor:
        if fold is None:
            return ((x - self.mean[-1]) / self.scale[-1]) @ self.weight[-1].T + self.bias[-1]
        z = (x[:, None, :] - self.mean[None]) / self.scale[None]  # [B, V, F]
        every = torch.einsum("bvf,vcf->bvc", z, self.weight) + self.bias[None]
        return every[torch.arange(x.shape[0], device=x.device), fold.long()]
