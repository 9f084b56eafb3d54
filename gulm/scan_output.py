"""What a scan writes, how windows become calls, and calling again from a scan's files.

Files of a scan with prefix ``<out>`` (0-based half-open coordinates, sorted by chrom and start):

- ``<out>.plus.bedGraph`` / ``<out>.minus.bedGraph``: one score per window (``track_mode``:
  ``center``, a tile of ``min(stride, window)`` bp centred on the window, so tiles never overlap
  nor leave the window; ``window``, the whole window, which needs ``stride >= window``), and
  their BigWig copies (``.bw``) when pyBigWig is installed;
- ``<out>.calls.bed``: the calls (BED8; thickStart/thickEnd mark the best window);
- ``<out>.peaks.narrowPeak``: the same calls in ENCODE narrowPeak form (BED6+4: signalValue the
  best window's score, pValue -log10 of the empirical p-value among the negatives the threshold
  was set on, or -1, qValue -1, peak the summit's offset from the start);
- ``<out>.summits.bed``: the best window of each call (BED6, named like its call);
- ``<out>.windows.tsv``: every window's score (what ``gulm call`` reads);
- ``<out>.calibration.json``: the negatives' scores the threshold was set on, when there were any;
- ``<out>.png`` (one ``--plot`` region) or ``<out>.<chrom>_<start>-<end>.png`` (several);
- ``<out>.summary.json``: what was scanned and called, how, with which model and versions.

Calls: windows scoring at or above the threshold, on one strand, that overlap (or lie within
``merge_gap`` bp) are merged; a merged run is split at every valley whose score lies
``split_drop`` or more below the highest score on each side (the cut is the valley window's
centre), unless that leaves a piece narrower than ``min_width`` (0: the window length); calls
narrower than ``min_width`` are dropped. The summit of a call is the centre of
its best window. ``--threshold auto`` is the lowest score that at most ``fpr`` of the negative
windows reach.

Every file is first written under a temporary name; all are renamed once all are written, so
a failed scan leaves no partial outputs.
"""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass

import numpy as np

from gulm.configs import CallConfig, CallOptions, ScanConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.intervals import Interval, parse_region

__all__ = ["call_regions", "find_calls", "auto_threshold", "resolve_threshold", "check_plot_regions",
           "write_scan_outputs", "read_scan_windows", "call_scan", "CallResult", "versions", "region_strings",
           "validation_negatives"]

_COLUMNS = ("chrom", "start", "strand", "score")


def versions() -> dict:
    """Versions of gulm, torch, numpy and Python, for summaries."""
    import torch

    import gulm

    return {"gulm": gulm.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


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


# ---------------------------------------------------------------------------- regions and plots
def region_strings(regions) -> list[str]:
    """1-based inclusive ``chrom:start-end`` of (chrom, start, end) regions."""
    return [Interval(c, s, e).region for c, s, e in regions]


def check_plot_regions(plots, regions, lengths=None) -> list[Interval]:
    """The ``--plot`` regions parsed (one region may be given as a string); each must lie inside
    one scanned region (chrom, start, end)."""
    out = []
    for text in ([plots] if plots else []) if isinstance(plots, str) else plots:
        iv = parse_region(text, lengths)
        if not any(c == iv.chrom and s <= iv.start and iv.end <= e for c, s, e in regions):
            shown = ", ".join(region_strings(regions[:4])) + (", ..." if len(regions) > 4 else "")
            raise ValueError(f"{option_name('plot')} {text}: outside the scanned regions ({shown}); plot a region "
                             "inside them or scan it")
        out.append(iv)
    return out


def _plot_paths(prefix: str, plots: list[Interval]) -> list[str]:
    if len(plots) == 1:
        return [f"{prefix}.png"]
    return [f"{prefix}.{iv.chrom}_{iv.start + 1}-{iv.end}.png" for iv in plots]


# ---------------------------------------------------------------------------- staged files
class _Staged:
    """Files written under temporary names and renamed together by :meth:`commit`; on an error
    inside the ``with`` block every temporary file is removed."""

    def __init__(self):
        self.pending: list[tuple[str, str]] = []

    def path(self, final: str) -> str:
        tmp = f"{final}.tmp"
        self.pending.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self.pending:
            os.replace(tmp, final)
        self.pending = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            for tmp, _ in self.pending:
                if os.path.exists(tmp):
                    os.remove(tmp)
        return False


def _write_text(path: str, lines) -> None:
    with open(path, "w") as fh:
        fh.writelines(lines)


def _tiles(d, window: int, stride: int, track_mode: str):
    """bedGraph intervals of the windows: see the module doc."""
    if track_mode == "center":
        w = min(stride, window)
        a = d["start"] + window // 2 - w // 2
        return a, a + w
    return d["start"].copy(), d["start"] + window


def _bigwig(path: str, chroms, a, b, sc, lengths: dict) -> bool:
    try:
        import pyBigWig
    except ImportError:
        return False
    names = sorted(set(chroms.tolist()))
    bw = pyBigWig.open(path, "w")
    try:
        bw.addHeader([(n, int(lengths[n])) for n in names])
        if len(chroms):
            bw.addEntries(list(chroms), [int(x) for x in a], ends=[int(x) for x in b], values=[float(x) for x in sc])
    finally:
        bw.close()
    return True


def _check_tiles(chroms, a, b, lengths: dict, where: str) -> None:
    """Tiles must be sorted, non-overlapping and inside their records (bedGraph and BigWig rules)."""
    if a.size == 0:
        return
    same = chroms[1:] == chroms[:-1]
    bad = np.flatnonzero(same & (a[1:] < b[:-1]))
    ends = np.array([lengths[c] for c in chroms])
    out = np.flatnonzero((a < 0) | (b > ends))
    if bad.size or out.size:
        i = int(bad[0] + 1) if bad.size else int(out[0])
        raise ValueError(f"{where}: interval {chroms[i]}:{a[i]}-{b[i]} overlaps the previous one or leaves the "
                         "record (this is a bug; please report it)")


def _write_calls(staged: _Staged, prefix: str, calls: dict, window: int, target: str,
                 negatives: np.ndarray | None) -> dict:
    names = [f"{target}_{i + 1}" for i in range(len(calls["start"]))]
    scores = np.clip(np.round(1000 * calls["peak"]), 0, 1000).astype(int)
    neg = np.sort(np.asarray(negatives, dtype=np.float32)) if negatives is not None and len(negatives) else None
    if neg is not None:  # empirical p of the best score among the negatives, as -log10
        above = neg.size - np.searchsorted(neg, calls["peak"], side="left")
        pvals = -np.log10((1 + above) / (1 + neg.size))
    else:
        pvals = np.full(len(names), -1.0)
    files = {}
    rows = list(zip(calls["chrom"], calls["start"].tolist(), calls["end"].tolist(), names, scores.tolist(),
                    calls["strand"], calls["best"].tolist(), calls["peak"].tolist(), pvals.tolist(),
                    calls["summit"].tolist()))
    path = f"{prefix}.calls.bed"
    _write_text(staged.path(path), (f"{c}\t{a}\t{b}\t{n}\t{s}\t{st}\t{max(a, bs)}\t{min(b, bs + window)}\n"
                                    for c, a, b, n, s, st, bs, _, _, _ in rows))
    files["calls"] = path
    path = f"{prefix}.peaks.narrowPeak"
    _write_text(staged.path(path), (f"{c}\t{a}\t{b}\t{n}\t{s}\t{st}\t{pk:.6f}\t{pv:.5f}\t-1\t{sm - a}\n"
                                    for c, a, b, n, s, st, _, pk, pv, sm in rows))
    files["peaks"] = path
    path = f"{prefix}.summits.bed"
    srows = sorted(rows, key=lambda r: (r[0], r[6], r[5]))
    _write_text(staged.path(path), (f"{c}\t{bs}\t{bs + window}\t{n}\t{s}\t{st}\n"
                                    for c, a, b, n, s, st, bs, _, _, _ in srows))
    files["summits"] = path
    return files


def _call_and_write(staged: _Staged, cfg: CallOptions, prefix: str, d: dict, window: int, stride: int,
                    target: str, negatives, source: str, regions, summary: dict) -> tuple[dict, dict]:
    """Threshold, calls, call files and plots shared by ``scan`` and ``call``; updates ``summary``."""
    plots = check_plot_regions(cfg.plot, regions)
    info = resolve_threshold(cfg, negatives, source)
    calls = find_calls(d["chrom"], d["start"], d["strand"], d["score"], window, info["threshold"],
                       cfg.merge_gap, cfg.split_drop, cfg.min_width)
    files = _write_calls(staged, prefix, calls, window, target, negatives)
    called = {}
    for s in ("+", "-"):
        sel = calls["strand"] == s
        called[s] = _covered(calls["chrom"][sel], calls["start"][sel], calls["end"][sel])
    scanned = sum(e - s for _, s, e in regions)
    n_strands = max(1, len(summary.get("strands", ["+", "-"])))
    summary.update(
        threshold=info["threshold"], threshold_mode=info["mode"], calibration=info,
        merge_gap=cfg.merge_gap, split_drop=cfg.split_drop, min_width=cfg.min_width,
        regions_called=int(calls["start"].size),
        bp_called={"+": called["+"], "-": called["-"]},
        fraction_called=(called["+"] + called["-"]) / max(1, n_strands * scanned),
    )
    if plots:
        from gulm.plots import plot_scan_region

        model = os.path.basename(str(summary.get("checkpoint", "")).rstrip("/")) or "model"
        paths = []
        for iv, path in zip(plots, _plot_paths(prefix, plots)):
            plot_scan_region(d, window, iv.region, staged.path(path), target, cfg.annotation or None,
                             cfg.feature_type, threshold=info["threshold"], calls=calls, model=model, stride=stride)
            paths.append(path)
        files["plot"] = paths[0]
        files["plots"] = paths
    return files, calls


def _covered(chrom, a, b) -> int:
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


def write_scan_outputs(cfg: ScanConfig, d: dict, window: int, target_name: str, summary: dict, *,
                       lengths: dict, regions, negatives: np.ndarray | None = None, source: str = "") -> dict:
    """Write every output of a scan from its merged, sorted per-window arrays ``d`` (chrom,
    start, strand, score); returns ``{kind: path}``. ``lengths``: the genome's record lengths;
    ``regions``: the scanned (chrom, start, end), merged; ``negatives``: the scores the threshold
    is set on. Adds the threshold and the calls to ``summary``. Nothing is left behind on error."""
    prefix = cfg.out
    os.makedirs(os.path.dirname(os.path.abspath(prefix)) or ".", exist_ok=True)
    files = {}
    chroms = d["chrom"].astype(str)
    with _Staged() as staged:
        for strand in ("+", "-"):
            sel = d["strand"] == strand
            if not sel.any():
                continue
            name = "plus" if strand == "+" else "minus"
            path = f"{prefix}.{name}.bedGraph"
            c, sc = chroms[sel], d["score"][sel]
            a, b = _tiles({"start": d["start"][sel]}, window, cfg.stride, cfg.track_mode)
            _check_tiles(c, a, b, lengths, path)
            header = (f'track type=bedGraph name="gulm {target_name} {strand}" '
                      f'description="P({target_name}) of {window} bp windows, stride {cfg.stride}, '
                      f'strand {strand}" visibility=full autoScale=off viewLimits=0:1\n')
            _write_text(staged.path(path), [header] + [f"{ci}\t{ai}\t{bi}\t{si:.4f}\n" for ci, ai, bi, si in
                                                       zip(c, a.tolist(), b.tolist(), sc.tolist())])
            files[f"bedgraph{strand}"] = path
            bw = path.replace(".bedGraph", ".bw")
            if _bigwig(staged.path(bw), c, a, b, sc, lengths):
                files[f"bigwig{strand}"] = bw
            else:
                staged.pending.pop()
        call_files, _ = _call_and_write(staged, cfg, prefix, d, window, cfg.stride, target_name, negatives, source,
                                        regions, summary)
        files.update(call_files)
        if cfg.windows_tsv:
            tsv = f"{prefix}.windows.tsv"
            _write_text(staged.path(tsv), [f"chrom\tstart\tend\tstrand\tp_{target_name}\n"] +
                        [f"{c}\t{a}\t{a + window}\t{s}\t{x:.6f}\n" for c, a, s, x in
                         zip(chroms, d["start"].tolist(), d["strand"], d["score"].tolist())])
            files["windows"] = tsv
        if negatives is not None and len(negatives):
            cal = f"{prefix}.calibration.json"
            _write_text(staged.path(cal), [json.dumps({"target_class": target_name, "source": source,
                                                       "scores": np.round(np.sort(negatives), 6).tolist()})])
            files["calibration"] = cal
        files["summary"] = f"{prefix}.summary.json"
        _write_text(staged.path(files["summary"]), [json.dumps({**summary, "files": files}, indent=2), "\n"])
        staged.commit()
    return files


# ---------------------------------------------------------------------------- gulm call
@dataclass
class CallResult:
    """What ``gulm call`` produced: the calls (arrays, see :func:`find_calls`), the updated
    summary and the files written."""

    calls: dict
    summary: dict
    files: dict


def read_scan_windows(prefix: str, summary: dict | None = None) -> dict:
    """Per-window arrays (chrom, start, strand, score) of a finished scan: from
    ``<prefix>.windows.tsv``, else from its bedGraphs (scores kept to 4 decimals there)."""
    summary = summary if summary is not None else _read_summary(prefix)
    tsv = f"{prefix}.windows.tsv"
    if os.path.exists(tsv):
        return _read_table(tsv, 5, lambda t: {"chrom": t[:, 0], "start": t[:, 1].astype(np.int64),
                                             "strand": t[:, 3], "score": t[:, 4].astype(np.float32)})
    window, stride, mode = int(summary["window"]), int(summary["stride"]), summary.get("track_mode", "center")
    parts = []
    for strand, name in (("+", "plus"), ("-", "minus")):
        path = f"{prefix}.{name}.bedGraph"
        if not os.path.exists(path):
            continue
        w = min(stride, window) if mode == "center" else window
        off = window // 2 - w // 2 if mode == "center" else 0
        parts.append(_read_table(path, 4, lambda t, s=strand: {
            "chrom": t[:, 0], "start": t[:, 1].astype(np.int64) - off,
            "strand": np.full(t.shape[0], s, dtype="<U1"), "score": t[:, 3].astype(np.float32)}))
    if not parts:
        raise FileNotFoundError(f"{prefix}: no windows TSV ({tsv}) and no bedGraph of the scan to call from")
    d = {k: np.concatenate([p[k] for p in parts]) for k in _COLUMNS}
    order = np.lexsort((d["strand"], d["start"], d["chrom"]))
    return {k: v[order] for k, v in d.items()}


def _read_table(path: str, ncol: int, convert) -> dict:
    with open(path) as fh:
        lines = fh.read().split("\n")
    body = [ln for ln in lines[1:] if ln] if lines and (lines[0].startswith(("track", "chrom\t"))) else \
        [ln for ln in lines if ln]
    fields = "\n".join(body).split()
    if len(fields) != ncol * len(body):
        for i, ln in enumerate(body):
            if len(ln.split()) != ncol:
                raise ValueError(f"{path}: line {i + 2}: expected {ncol} columns, found {len(ln.split())}")
    table = np.array(fields, dtype=object).reshape(len(body), ncol)
    try:
        return convert(table)
    except ValueError as err:
        raise ValueError(f"{path}: not a gulm scan table ({err})") from None


def _read_summary(prefix: str) -> dict:
    path = f"{prefix}.summary.json"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no scan summary (is {prefix!r} the --out prefix of a finished scan?)")
    with open(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None


def _scan_negatives(prefix: str, summary: dict) -> tuple[np.ndarray | None, str]:
    """The negatives a scan's threshold was (or can be) set on: its calibration file, else the
    checkpoint's validation negatives."""
    path = f"{prefix}.calibration.json"
    if os.path.exists(path):
        with open(path) as fh:
            cal = json.load(fh)
        return np.asarray(cal["scores"], dtype=np.float32), cal.get("source", path)
    from gulm.runtime.checkpoint import read_calibration

    ckpt = summary.get("checkpoint")
    try:
        cal = read_calibration(ckpt) if ckpt else None
    except ValueError:
        cal = None
    if cal is None:
        return None, "the scan has no calibration file and its checkpoint no validation scores"
    return validation_negatives(cal, summary["target_class"]), f"{len(cal['labels'])} validation sequences of {ckpt}"


def validation_negatives(cal: dict, target: str) -> np.ndarray:
    """P(target) of the validation sequences of other classes, from a checkpoint's calibration."""
    t = cal["classes"].index(target)
    labels = np.asarray(cal["labels"])
    probs = np.asarray(cal["probs"], dtype=np.float32).reshape(len(labels), -1)
    return probs[labels != t, t]


def call_scan(cfg: CallConfig | None = None, **overrides) -> CallResult:
    """Call again from a finished scan's files (``cfg.scan``: its output prefix) with other
    calling options, without rescoring; writes calls, peaks, summits, plots and a summary under
    ``cfg.out`` (default: the scan's own prefix, replacing its calls)."""
    from gulm.runtime.device import setup

    cfg = config_from(CallConfig, cfg, overrides)
    setup(cfg.device, cfg.threads)
    if not cfg.scan:
        raise ValueError("gulm call needs the output prefix of a scan")
    summary = _read_summary(cfg.scan)
    for key in ("window", "stride", "target_class", "regions"):
        if key not in summary:
            raise ValueError(f"{cfg.scan}.summary.json: no {key!r} (written by an older gulm scan? scan again)")
    d = read_scan_windows(cfg.scan, summary)
    negatives, source = _scan_negatives(cfg.scan, summary)
    regions = [(iv.chrom, iv.start, iv.end) for iv in map(parse_region, summary["regions"])]
    prefix = cfg.out or cfg.scan
    os.makedirs(os.path.dirname(os.path.abspath(prefix)) or ".", exist_ok=True)
    summary = {k: v for k, v in summary.items() if k != "files"}
    summary["called_from"] = os.path.abspath(cfg.scan)
    old_files = _read_summary(cfg.scan).get("files", {}) if prefix == cfg.scan else {}
    with _Staged() as staged:
        files, calls = _call_and_write(staged, cfg, prefix, d, int(summary["window"]), int(summary["stride"]),
                                       summary["target_class"], negatives, source, regions, summary)
        files = {**{k: v for k, v in old_files.items() if k not in ("plot", "plots")}, **files}
        files["summary"] = f"{prefix}.summary.json"
        _write_text(staged.path(files["summary"]), [json.dumps({**summary, "files": files}, indent=2), "\n"])
        staged.commit()
    return CallResult(calls, summary, files)
