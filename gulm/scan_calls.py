"""How the windows of a scan become calls: thresholds (fixed, or set on negatives) and calls.

Calls: windows scoring at or above the threshold, on one strand, that overlap (or lie within
``merge_gap`` bp) are merged; a merged run is split at every valley whose score lies
``split_drop`` or more below the highest score on each side (the cut is the valley window's
centre), unless that leaves a piece narrower than ``min_width`` (0: the window length); calls
narrower than ``min_width`` are dropped. The summit of a call is the centre of
its best window. ``--threshold auto`` is the lowest score that at most ``fpr`` of the negative
windows reach.
"""
from __future__ import annotations

import math

import numpy as np

from gulm.configs import CallOptions, option_name

__all__ = ["auto_threshold", "resolve_threshold", "validation_negatives", "find_calls", "call_regions", "covered"]


# ---------------------------------------------------------------------------- thresholds
def auto_threshold(negatives: np.ndarray, fpr: float) -> float:
    """The lowest score t such that at most ``fpr`` of ``negatives`` score >= t."""
    neg = np.sort(np.asarray(negatives, dtype=np.float32))[::-1]
    if neg.size == 0:
        raise ValueError("--threshold auto needs negative scores, and there are none")
    if not 0 <= fpr <= 1:
        raise ValueError(f"{option_name('fpr')} must be in [0, 1], got {fpr}")
    k = int(math.floor(fpr * neg.size + 1e-9))  # negatives allowed at or above t
    if k >= neg.size:
        return 0.0
    return float(np.nextafter(neg[k], np.float32(np.inf)))


def resolve_threshold(cfg: CallOptions, negatives: np.ndarray | None, source: str = "") -> dict:
    """``{"threshold", "mode", ...}`` for ``cfg.threshold``: a number, or ``auto`` set on
    ``negatives`` (described by ``source``)."""
    text = str(cfg.threshold).strip().lower()
    if text != "auto":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{option_name('threshold')} must be a number in [0, 1] or auto, got "
                             f"{cfg.threshold!r}") from None
        if not 0 <= value <= 1:
            raise ValueError(f"{option_name('threshold')} must be in [0, 1], got {value}")
        info = {"threshold": value, "mode": "fixed"}
    else:
        if negatives is None or len(negatives) == 0:
            raise ValueError(f"{option_name('threshold')} auto: no negative scores ({source or 'none found'}); "
                             f"give a number")
        info = {"threshold": auto_threshold(negatives, cfg.fpr), "mode": "auto", "fpr": cfg.fpr}
    if negatives is not None and len(negatives):
        neg = np.asarray(negatives)
        info.update(negatives=source, n_negatives=int(neg.size),
                    negatives_at_or_above=float((neg >= info["threshold"]).mean()))
        if info["mode"] == "auto" and cfg.fpr * neg.size < 5:
            info["note"] = (f"only {neg.size} negatives: an FPR of {cfg.fpr:g} rests on fewer than 5 of them, "
                            "so the threshold is coarse")
    return info


def validation_negatives(cal: dict, target: str) -> np.ndarray:
    """P(target) of the validation sequences of other classes, from a checkpoint's calibration."""
    t = cal["classes"].index(target)
    labels = np.asarray(cal["labels"])
    probs = np.asarray(cal["probs"], dtype=np.float32).reshape(len(labels), -1)
    return probs[labels != t, t]


# ---------------------------------------------------------------------------- calls
def _valleys(x: np.ndarray, drop: float) -> list[int]:
    """Indices of the valleys of ``x`` that lie ``drop`` or more below the highest value on each
    side (between the previous valley and the next rise)."""
    cuts, peak, valley = [], float(x[0]), -1
    for i in range(1, x.size):
        v = float(x[i])
        if valley < 0:
            if v >= peak:
                peak = v
            elif peak - v >= drop:
                valley = i
        elif v < x[valley]:
            valley = i
        elif v - x[valley] >= drop:
            cuts.append(valley)
            peak, valley = v, -1
    return cuts


def find_calls(chrom, start, strand, score, window: int, threshold: float = 0.5, merge_gap: int = 0,
               split_drop: float = 0.0, min_width: int = 0) -> dict:
    """Calls of windows ``[start, start + window)`` scoring >= ``threshold`` (see the module doc).

    ``min_width`` (0: ``window``): no split leaves a call narrower than this, and narrower calls
    are dropped. Returns arrays sorted by (chrom, start, strand): ``chrom``, ``start``, ``end``,
    ``strand``, ``peak`` (best score), ``best`` (best window's start), ``summit`` (its centre,
    inside the call).
    """
    chrom = np.asarray(chrom).astype(str)
    start = np.asarray(start, dtype=np.int64)
    strand = np.asarray(strand).astype(str)
    score = np.asarray(score, dtype=np.float32)
    width = max(int(min_width) or window, 1)
    half = window // 2
    rows = []
    if score.size:
        order = np.lexsort((start, strand, chrom))
        c, p, st, x = chrom[order], start[order], strand[order], score[order]
        key_change = np.flatnonzero((c[1:] != c[:-1]) | (st[1:] != st[:-1])) + 1
        bounds = np.concatenate(([0], key_change, [x.size]))
        for g0, g1 in zip(bounds[:-1], bounds[1:]):
            gp, gx = p[g0:g1], x[g0:g1]
            hits = np.flatnonzero(gx >= threshold)
            if hits.size == 0:
                continue
            breaks = np.flatnonzero(gp[hits[1:]] > gp[hits[:-1]] + window + merge_gap) + 1
            for run in np.split(hits, breaks):
                i0, i1 = int(run[0]), int(run[-1]) + 1  # the run's span, sub-threshold windows included
                a0, b0 = int(gp[i0]), int(gp[i1 - 1]) + window
                cuts = []  # valley windows, each leaving at least `width` bp on both sides
                if split_drop > 0 and i1 - i0 > 2:
                    for v in _valleys(gx[i0:i1], split_drop):
                        at = int(gp[i0 + v]) + half
                        if at - (int(gp[cuts[-1]]) + half if cuts else a0) >= width and b0 - at >= width:
                            cuts.append(i0 + v)
                edges = [i0 - 1] + cuts + [i1]
                for k in range(len(edges) - 1):
                    lo, hi = edges[k] + 1, edges[k + 1]  # a valley window belongs to neither side
                    piece = run[(run >= lo) & (run < hi)]
                    if piece.size == 0:
                        continue
                    a, b = int(gp[piece[0]]), int(gp[piece[-1]]) + window
                    if k > 0:
                        a = max(a, int(gp[edges[k]]) + half)
                    if k < len(edges) - 2:
                        b = min(b, int(gp[edges[k + 1]]) + half)
                    if b - a < width:
                        continue
                    j = piece[int(np.argmax(gx[piece]))]
                    best = int(gp[j])
                    rows.append((c[g0], a, b, st[g0], float(gx[j]), best, min(max(best + half, a), b - 1)))
    rows.sort(key=lambda r: (r[0], r[1], r[3]))
    out = {
        "chrom": np.array([r[0] for r in rows], dtype=object),
        "start": np.array([r[1] for r in rows], dtype=np.int64),
        "end": np.array([r[2] for r in rows], dtype=np.int64),
        "strand": np.array([r[3] for r in rows], dtype="<U1"),
        "peak": np.array([r[4] for r in rows], dtype=np.float32),
        "best": np.array([r[5] for r in rows], dtype=np.int64),
        "summit": np.array([r[6] for r in rows], dtype=np.int64),
    }
    return out


def call_regions(chrom, start, strand, score, window, threshold=0.5, merge_gap=0, split_drop=0.0, min_width=0):
    """:func:`find_calls` as a list of (chrom, start, end, peak_score, strand, best_start)."""
    c = find_calls(chrom, start, strand, score, window, threshold, merge_gap, split_drop, min_width)
    return [(ch, int(a), int(b), float(pk), s, int(bs)) for ch, a, b, pk, s, bs in
            zip(c["chrom"], c["start"], c["end"], c["peak"], c["strand"], c["best"])]


def covered(chrom, a, b) -> int:
    """bp covered by the union of intervals."""
    total = 0
    for c in set(chrom.tolist()):
        sel = chrom == c
        s, e = a[sel], b[sel]
        o = np.argsort(s, kind="stable")
        s, e = s[o], e[o]
        run_end = np.maximum.accumulate(e)
        starts_new = np.concatenate(([True], s[1:] > run_end[:-1]))
        idx = np.flatnonzero(starts_new)
        ends = np.append(run_end[idx[1:] - 1], run_end[-1]) if idx.size else []
        total += int(np.sum(np.asarray(ends) - s[idx]))
    return total
