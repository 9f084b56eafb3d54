"""A small, documented read simulator for the 16S task (the seed's Grinder read files are lost).

- **Amplicon**: find the V3-V4 primer pair on each full-length 16S sequence (IUPAC-aware, up to
  ``max_mismatches`` mismatches per primer, the reverse primer matched as its reverse complement
  on the sense strand), keep the insert *between* the primers (the seed's reads start right after
  the forward primer, i.e. primers trimmed), then draw reads from the 5' end of the insert with a
  3' quality-trim length jitter and sequencing errors.
- **Shotgun**: fragments of a uniform random length in ``[min_len, max_len]`` at uniform random
  positions, from either strand (minus-strand reads are reverse-complemented), with errors.

Errors (:class:`ErrorModel`): independent per template base - substitution to one of the three
other bases, insertion of a random base after it, or deletion - at rates that ramp linearly from
``(1 - ramp)`` to ``(1 + ramp)`` times the mean along the read (Illumina-like 3' decay). The
simulator returns the number of events it made, so tests can compare the realised rate with the
configured one. Everything draws from one ``numpy.random.Generator`` seeded by the caller.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["IUPAC", "reverse_complement", "find_primer", "find_amplicon", "ErrorModel", "apply_errors",
           "amplicon_reads", "shotgun_reads", "FORWARD_PRIMER", "REVERSE_PRIMER"]

FORWARD_PRIMER = "CCTACGGGAGGCAGCAG"  # 341F
REVERSE_PRIMER = "CCGTCAATTCMTTTRAGT"  # 907R/926R family, anneals to the sense strand as its reverse complement

IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVNacgturyswkmbdhvn", "TGCAAYRSWMKVHDBNtgcaayrswmkvhdbn")
_BITS = np.zeros(256, dtype=np.uint8)  # IUPAC code -> 4-bit base set (A=1, C=2, G=4, T=8)
for _code, _bases in IUPAC.items():
    _mask = sum({"A": 1, "C": 2, "G": 4, "T": 8}[b] for b in _bases)
    _BITS[ord(_code)] = _BITS[ord(_code.lower())] = _mask
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def reverse_complement(seq: str) -> str:
    """Reverse complement, IUPAC codes included."""
    return seq.translate(_COMPLEMENT)[::-1]


def _bitsets(seq: str) -> np.ndarray:
    return _BITS[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def find_primer(template: str, primer: str, max_mismatches: int = 2) -> tuple[int, int] | None:
    """Best match of ``primer`` on ``template`` (same strand): (start, mismatches), or None when
    every position has more than ``max_mismatches`` mismatches. A position matches when the base
    sets of the two IUPAC codes intersect (so an N in the template matches anything). Ties go to
    the leftmost position."""
    t, p = _bitsets(template), _bitsets(primer)
    n = t.size - p.size + 1
    if n <= 0:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(t, p.size)
    mism = ((windows & p) == 0).sum(axis=1)
    best = int(np.argmin(mism))
    return (best, int(mism[best])) if mism[best] <= max_mismatches else None


def find_amplicon(template: str, forward: str = FORWARD_PRIMER, reverse: str = REVERSE_PRIMER,
                  max_mismatches: int = 2, keep_primers: bool = False) -> tuple[int, int] | None:
    """[start, end) of the amplicon on the sense strand of ``template``: the insert between the
    primers (``keep_primers=False``) or primer to primer. None when a primer is missing or the
    reverse site is not downstream of the forward one."""
    f = find_primer(template, forward, max_mismatches)
    r = find_primer(template, reverse_complement(reverse), max_mismatches)
    if f is None or r is None:
        return None
    start, end = (f[0], r[0] + len(reverse)) if keep_primers else (f[0] + len(forward), r[0])
    return (start, end) if end > start else None


@dataclass
class ErrorModel:
    """Per-base error rates (mean over the read) and their linear ramp along the read."""

    substitution: float = 0.008
    insertion: float = 0.001
    deletion: float = 0.001
    ramp: float = 0.5  # rate at the 5' end = (1 - ramp) * mean, at the 3' end = (1 + ramp) * mean

    @property
    def total(self) -> float:
        return self.substitution + self.insertion + self.deletion

    def to_dict(self) -> dict:
        return asdict(self)


def apply_errors(seq: str, model: ErrorModel, rng: np.random.Generator) -> tuple[str, dict]:
    """``seq`` with substitutions, insertions and deletions drawn from ``model``.
    Returns (read, {"substitution": n, "insertion": n, "deletion": n})."""
    codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8).copy()
    n = codes.size
    if n == 0 or model.total == 0:
        return seq, {"substitution": 0, "insertion": 0, "deletion": 0}
    scale = 1.0 + model.ramp * (np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1))
    u = rng.random(n) / scale  # event when u < rate, so the rate at a position is rate * scale
    sub = u < model.substitution
    ins = (u >= model.substitution) & (u < model.substitution + model.insertion)
    dele = (u >= model.substitution + model.insertion) & (u < model.total)
    if sub.any():
        idx = np.flatnonzero(sub)
        cur = np.searchsorted(_BASES, codes[idx])  # 0..3 for ACGT (others map somewhere; replaced anyway)
        codes[idx] = _BASES[(cur + rng.integers(1, 4, idx.size)) % 4]
    out = codes
    if ins.any():
        idx = np.flatnonzero(ins) + 1  # insert after the base
        out = np.insert(out, idx, _BASES[rng.integers(0, 4, idx.size)])
        dele = np.insert(dele, idx, False)
    out = out[~dele]
    return out.tobytes().decode("ascii"), {"substitution": int(sub.sum()), "insertion": int(ins.sum()),
                                           "deletion": int(dele.sum())}


def amplicon_reads(template: str, n: int, rng: np.random.Generator, *, errors: ErrorModel | None = None,
                   trim_sd: float = 20.0, min_frac: float = 0.8, read_length: int | None = None,
                   amplicon: tuple[int, int] | None = None, **primer_kw) -> tuple[list[str], dict]:
    """``n`` reads of the amplicon insert of ``template`` (see module doc). Each read starts at
    the first insert base. Without ``read_length`` its length is the insert length minus
    |Normal(0, trim_sd)|, at least ``min_frac`` of the insert (whole-amplicon reads); with it,
    Normal(read_length, trim_sd) capped at the insert length (single reads into the amplicon).
    Returns (reads, stats) - no reads when there is no amplicon."""
    errors = errors or ErrorModel(substitution=0.006, insertion=0.001, deletion=0.001)
    span = amplicon if amplicon is not None else find_amplicon(template, **primer_kw)
    stats = {"substitution": 0, "insertion": 0, "deletion": 0, "template_bases": 0, "amplicon": span}
    if span is None:
        return [], stats
    insert = template[span[0]:span[1]].upper()
    reads = []
    for _ in range(n):
        if read_length is None:
            cut = int(round(abs(rng.normal(0.0, trim_sd)))) if trim_sd > 0 else 0
            length = max(int(np.ceil(min_frac * len(insert))), len(insert) - cut)
        else:
            jitter = rng.normal(0.0, trim_sd) if trim_sd > 0 else 0.0
            length = int(min(len(insert), max(20, round(read_length + jitter))))
        read, ev = apply_errors(insert[:length], errors, rng)
        reads.append(read)
        for key in ("substitution", "insertion", "deletion"):
            stats[key] += ev[key]
        stats["template_bases"] += length
    return reads, stats


def shotgun_reads(template: str, n: int, rng: np.random.Generator, *, errors: ErrorModel | None = None,
                  min_len: int = 150, max_len: int = 250) -> tuple[list[str], dict]:
    """``n`` fragments of uniform length in [min_len, max_len] (capped at the template length) at
    uniform positions, strand + or - with probability 1/2, with errors. Returns (reads, stats)."""
    errors = errors or ErrorModel()
    template = template.upper()
    stats = {"substitution": 0, "insertion": 0, "deletion": 0, "template_bases": 0, "minus_strand": 0}
    reads = []
    for _ in range(n):
        length = min(int(rng.integers(min_len, max_len + 1)), len(template))
        start = int(rng.integers(0, len(template) - length + 1))
        frag = template[start:start + length]
        if rng.random() < 0.5:
            frag = reverse_complement(frag)
            stats["minus_strand"] += 1
        read, ev = apply_errors(frag, errors, rng)
        reads.append(read)
        for key in ("substitution", "insertion", "deletion"):
            stats[key] += ev[key]
        stats["template_bases"] += length
    return reads, stats
