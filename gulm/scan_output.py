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

How windows become calls, and ``--threshold auto``: see :mod:`gulm.scan_calls`; the writers are in
:mod:`gulm.scan_writers`. This module calls again from a scan's files (``gulm call``) and re-exports
the public names of both.

Every file is first written under a temporary name; all are renamed once all are written, so
a failed scan leaves no partial outputs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from gulm.configs import CallConfig
from gulm.configs.fields import config_from
from gulm.data.intervals import parse_region
from gulm.scan_calls import auto_threshold, call_regions, find_calls, resolve_threshold, validation_negatives
from gulm.scan_writers import (Staged, call_and_write, check_plot_regions, region_strings, versions,
                               write_scan_outputs, write_text)

__all__ = ["call_regions", "find_calls", "auto_threshold", "resolve_threshold", "check_plot_regions",
           "write_scan_outputs", "read_scan_windows", "call_scan", "CallResult", "versions", "region_strings",
           "validation_negatives"]

_COLUMNS = ("chrom", "start", "strand", "score")


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
    with Staged() as staged:
        files, calls = call_and_write(staged, cfg, prefix, d, int(summary["window"]), int(summary["stride"]),
                                      summary["target_class"], negatives, source, regions, summary)
        files = {**{k: v for k, v in old_files.items() if k not in ("plot", "plots")}, **files}
        files["summary"] = f"{prefix}.summary.json"
        write_text(staged.path(files["summary"]), [json.dumps({**summary, "files": files}, indent=2), "\n"])
        staged.commit()
    return CallResult(calls, summary, files)
