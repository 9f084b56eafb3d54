"""Deterministic random draws whose streams do not change between NumPy versions.

Everything here is built on ``numpy.random.default_rng(seed).random()`` (uniform doubles, whose
stream NumPy keeps stable) and on arithmetic written here, never on Generator methods whose
algorithms may change: splits, subsamples and the synthetic demo genome stay byte-identical.
"""
from __future__ import annotations

import numpy as np

__all__ = ["apportion", "stable_permutation", "StableDraw"]


def apportion(n: int, fractions: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``n``, proportional to ``fractions`` (largest remainder, ties to the first)."""
    exact = np.asarray(fractions, dtype=float) * n
    counts = np.floor(exact + 1e-9).astype(int)
    remainder = n - counts.sum()
    if remainder > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:remainder]] += 1
    return counts


def stable_permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A permutation of range(n) drawn from ``rng.random`` only."""
    return np.argsort(rng.random(n), kind="stable")


class StableDraw:
    """Uniform, categorical, integer and normal draws from ``rng.random`` alone."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def uniform(self, n: int | None = None):
        return self.rng.random(n)

    def categorical(self, cdf: np.ndarray, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, self.rng.random(n), side="right"), len(cdf) - 1)

    def integer(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]``."""
        return low + min(int(self.rng.random() * (high - low + 1)), high - low)

    def normal(self) -> float:
        """Approximately standard normal (Irwin-Hall: the sum of 12 uniforms, minus 6)."""
        return float(self.rng.random(12).sum() - 6.0)

    def permutation(self, n: int) -> np.ndarray:
        return stable_permutation(self.rng, n)
