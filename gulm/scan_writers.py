"""Every file a scan (or ``gulm call``) writes, as :mod:`gulm.scan_output` lists them; the
``--plot`` regions.

Every file is written under a temporary name and renamed with the others (:class:`Staged`).
"""
from __future__ import annotations

import json
import os
import platform

import numpy as np

from gulm.configs import CallOptions, ScanConfig, option_name
from gulm.data.intervals import Interval, parse_region
from gulm.scan_calls import covered, find_calls, resolve_threshold

__all__ = ["versions", "region_strings", "check_plot_regions", "Staged", "write_text", "call_and_write",
           "write_scan_outputs"]


def versions() -> dict:
    """Versions of gulm, torch, numpy and Python, for summaries."""
    import torch

    import gulm

    return {"gulm": gulm.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


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
class Staged:
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


def write_text(path: str, lines) -> None:
    with open(path, "w") as fh:
        fh.writelines(lines)


def _tiles(d, window: int, stride: int, track_mode: str):
    """bedGraph intervals of the windows: see :mod:`gulm.scan_output` (``track_mode``)."""
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


def _write_calls(staged: Staged, prefix: str, calls: dict, window: int, target: str,
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
    write_text(staged.path(path), (f"{c}\t{a}\t{b}\t{n}\t{s}\t{st}\t{max(a, bs)}\t{min(b, bs + window)}\n"
                                   for c, a, b, n, s, st, bs, _, _, _ in rows))
    files["calls"] = path
    path = f"{prefix}.peaks.narrowPeak"
    write_text(staged.path(path), (f"{c}\t{a}\t{b}\t{n}\t{s}\t{st}\t{pk:.6f}\t{pv:.5f}\t-1\t{sm - a}\n"
                                   for c, a, b, n, s, st, _, pk, pv, sm in rows))
    files["peaks"] = path
    path = f"{prefix}.summits.bed"
    srows = sorted(rows, key=lambda r: (r[0], r[6], r[5]))
    write_text(staged.path(path), (f"{c}\t{bs}\t{bs + window}\t{n}\t{s}\t{st}\n"
                                   for c, a, b, n, s, st, bs, _, _, _ in srows))
    files["summits"] = path
    return files


def call_and_write(staged: Staged, cfg: CallOptions, prefix: str, d: dict, window: int, stride: int,
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
        called[s] = covered(calls["chrom"][sel], calls["start"][sel], calls["end"][sel])
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
    with Staged() as staged:
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
            write_text(staged.path(path), [header] + [f"{ci}\t{ai}\t{bi}\t{si:.4f}\n" for ci, ai, bi, si in
                                                      zip(c, a.tolist(), b.tolist(), sc.tolist())])
            files[f"bedgraph{strand}"] = path
            bw = path.replace(".bedGraph", ".bw")
            if _bigwig(staged.path(bw), c, a, b, sc, lengths):
                files[f"bigwig{strand}"] = bw
            else:
                staged.pending.pop()
        call_files, _ = call_and_write(staged, cfg, prefix, d, window, cfg.stride, target_name, negatives, source,
                                       regions, summary)
        files.update(call_files)
        if cfg.windows_tsv:
            tsv = f"{prefix}.windows.tsv"
            write_text(staged.path(tsv), [f"chrom\tstart\tend\tstrand\tp_{target_name}\n"] +
                       [f"{c}\t{a}\t{a + window}\t{s}\t{x:.6f}\n" for c, a, s, x in
                        zip(chroms, d["start"].tolist(), d["strand"], d["score"].tolist())])
            files["windows"] = tsv
        if negatives is not None and len(negatives):
            cal = f"{prefix}.calibration.json"
            write_text(staged.path(cal), [json.dumps({"target_class": target_name, "source": source,
                                                      "scores": np.round(np.sort(negatives), 6).tolist()})])
            files["calibration"] = cal
        files["summary"] = f"{prefix}.summary.json"
        write_text(staged.path(files["summary"]), [json.dumps({**summary, "files": files}, indent=2), "\n"])
        staged.commit()
    return files
