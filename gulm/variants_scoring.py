"""Scoring of ``gulm variant-effect`` (see :mod:`gulm.variants`): the REF/ALT windows of an allele, class
probabilities per strand, single-base saturation mutagenesis, log-odds."""
from __future__ import annotations

import numpy as np

from gulm.data.fasta import revcomp_windows
from gulm.infer import Classifier

__all__ = ["ALLELE_BASES", "allele_windows", "strand_probs", "saturation_deltas", "logit", "symbolic"]

_EPS = 1e-7
_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
ALLELE_BASES = set("ACGTN")


def allele_windows(left: str, ref: str, right: str, alleles, window: int) -> np.ndarray:
    """Windows [len(alleles), window] uint8: ``left`` + allele + the start of ``right``, each
    exactly ``window`` bp (``right`` must be long enough for the shortest allele)."""
    out = np.empty((len(alleles), window), dtype=np.uint8)
    for i, allele in enumerate(alleles):
        s = (left + allele + right)[:window]
        if len(s) != window:
            raise ValueError(f"window of {len(s)} bp, expected {window}")
        out[i] = np.frombuffer(s.encode("ascii"), dtype=np.uint8)
    return out


def strand_probs(clf: Classifier, windows: np.ndarray, strand: str, bs: int, progress: bool = False) -> np.ndarray:
    """Class probabilities [N, C] of windows [N, W] on ``strand`` ("+", "-" or "both": the mean)."""
    if strand == "+":
        return clf.window_probs(windows, bs, progress)
    if strand == "-":
        return clf.window_probs(revcomp_windows(windows), bs, progress)
    return (clf.window_probs(windows, bs, progress) + clf.window_probs(revcomp_windows(windows), bs, progress)) / 2


def saturation_deltas(clf: Classifier, window: np.ndarray, target: int, strand: str, bs: int) -> np.ndarray:
    """|change of P(target)| of every single-base substitution of one window [W] (uint8): [3 W]
    (more where the window holds N, whose four substitutions all count)."""
    width = window.size
    rows = np.arange(4 * width)
    bases = np.tile(_ACGT, width)
    mutants = np.repeat(window[None, :], 4 * width, axis=0)  # mutant j: position j // 4 set to base j % 4
    mutants[rows, rows // 4] = bases
    mutants = mutants[window[rows // 4] != bases]
    p = strand_probs(clf, np.concatenate([window[None, :], mutants]), strand, bs)[:, target]
    return np.abs(p[1:] - p[0])


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def symbolic(alt: str | None) -> bool:
    """Whether an ALT allele is not plain bases (missing, ``<DEL>``, a breakend, ``*``)."""
    return alt is None or not alt or not set(alt.upper()) <= ALLELE_BASES
