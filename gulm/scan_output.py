"""What a scan writes, and how windows become called regions.

- ``<out>.plus.bedGraph`` / ``<out>.minus.bedGraph``: one score per window (``track_mode``:
  ``center``, a ``stride``-wide tile centred on the window, so tiles never overlap; ``window``,
  the whole window, which needs ``stride >= window``), and their BigWig copies when pyBigWig is
  installed;
- ``<out>.calls.bed``: windows scoring at or above the threshold merged into regions (BED8:
  thickStart/thickEnd mark the best window);
- ``<out>.windows.tsv``: every window's score; ``<out>.png`` with ``plot``;
- ``<out>.summary.json``: what was scanned, how, and the files written.

Coordinates are 0-based half-open; every file is written under a temporary name and renamed.
"""
from __future__ import annotations

import json
import os

import numpy as np

from gulm.configs import ScanConfig

__all__ = ["call_regions", "write_scan_outputs"]


def call_regions(chrom, start, strand, score, window, threshold=0.5, merge_gap=0):
    """Merge windows scoring >= threshold into regions per chromosome and strand.

    Returns a list of (chrom, start, end, peak_score, strand, peak_start) sorted by position;
    windows overlapping or closer than ``merge_gap`` bp join one region.
    """
    hits = np.flatnonzero(score >= threshold)
    out = []
    if hits.size == 0:
        return out
    keys = {}
    for i in hits:
        keys.setdefault((chrom[i], strand[i]), []).append(i)
    for (c, s), idx in keys.items():
        idx = sorted(idx, key=lambda i: start[i])
        cur = None
        for i in idx:
            a, b = int(start[i]), int(start[i]) + window
            if cur is not None and a <= cur[2] + merge_gap:
                cur[2] = max(cur[2], b)
                if score[i] > cur[3]:
                    cur[3], cur[5] = float(score[i]), a
            else:
                if cur is not None:
                    out.append(tuple(cur))
                cur = [c, a, b, float(score[i]), s, a]
        out.append(tuple(cur))
    out.sort(key=lambda r: (str(r[0]), r[1], r[4]))
    return out


def write_scan_outputs(cfg: ScanConfig, d: dict, window: int, target_name: str, summary: dict) -> dict:
    """Write every output of a scan from its merged, sorted per-window arrays ``d`` (chrom,
    start, strand, score); returns ``{kind: path}``. Adds ``regions_called`` to ``summary``."""
    prefix = cfg.out
    os.makedirs(os.path.dirname(os.path.abspath(prefix)) or ".", exist_ok=True)
    files = {}
    chroms = d["chrom"].astype(str)
    for strand in ("+", "-"):
        sel = d["strand"] == strand
        if not sel.any():
            continue
        name = "plus" if strand == "+" else "minus"
        path = f"{prefix}.{name}.bedGraph"
        c, p, sc = chroms[sel], d["start"][sel], d["score"][sel]
        if cfg.track_mode == "center":
            half = cfg.stride // 2
            a = p + window // 2 - half
            b = a + cfg.stride
        else:
            a, b = p, p + window
        a = np.maximum(a, 0)
        with open(path + ".tmp", "w") as fh:
            fh.write(f'track type=bedGraph name="gulm {target_name} {strand}" '
                     f'description="P({target_name}) of {window} bp windows, stride {cfg.stride}, '
                     f'strand {strand}" visibility=full autoScale=off viewLimits=0:1\n')
            lines = [f"{ci}\t{ai}\t{bi}\t{si:.4f}\n" for ci, ai, bi, si in zip(c, a.tolist(), b.tolist(), sc.tolist())]
            fh.writelines(lines)
        os.replace(path + ".tmp", path)
        files[f"bedgraph{strand}"] = path
        bw = _bigwig(path, c, a, b, sc, cfg.fasta)
        if bw:
            files[f"bigwig{strand}"] = bw
    regions = call_regions(chroms, d["start"], d["strand"], d["score"], window, cfg.threshold, cfg.merge_gap)
    bed = f"{prefix}.calls.bed"
    with open(bed + ".tmp", "w") as fh:
        for i, (c, a, b, peak, s, ps) in enumerate(regions):
            # BED8: thickStart/thickEnd mark the best window of the region
            fh.write(f"{c}\t{a}\t{b}\t{target_name}_{i + 1}\t{int(round(1000 * peak))}\t{s}\t{ps}\t{ps + window}\n")
    os.replace(bed + ".tmp", bed)
    files["calls"] = bed
    summary["regions_called"] = len(regions)
    if cfg.windows_tsv:
        tsv = f"{prefix}.windows.tsv"
        with open(tsv + ".tmp", "w") as fh:
            fh.write(f"chrom\tstart\tend\tstrand\tp_{target_name}\n")
            fh.writelines(f"{c}\t{a}\t{a + window}\t{s}\t{x:.6f}\n" for c, a, s, x in
                          zip(chroms, d["start"].tolist(), d["strand"], d["score"].tolist()))
        os.replace(tsv + ".tmp", tsv)
        files["windows"] = tsv
    if cfg.plot:
        from gulm.plots import plot_scan_region

        files["plot"] = plot_scan_region(d, window, cfg.plot, f"{prefix}.png", target_name,
                                         cfg.annotation or None, cfg.feature_type)
    with open(f"{prefix}.summary.json", "w") as fh:
        json.dump({**summary, "files": files}, fh, indent=2)
    files["summary"] = f"{prefix}.summary.json"
    return files


def _bigwig(path, c, a, b, sc, fasta):
    try:
        import pyBigWig
    except ImportError:
        return None
    from gulm.data.genome import Genome

    out = path.replace(".bedGraph", ".bw")
    bw = pyBigWig.open(out, "w")
    bw.addHeader(list(Genome(fasta).lengths.items()))
    bw.addEntries(list(c), [int(x) for x in a], ends=[int(x) for x in b], values=[float(x) for x in sc])
    bw.close()
    return out
