"""Genome scans: slide a window along chromosomes (both strands), score every window with a
classifier, and write a bedGraph track, a BED of called regions and optionally a plot.

Coordinates are 0-based half-open. A window ``[p, p + window)`` on strand ``-`` is scored
on the reverse complement of those bases. Windows touching a non-ACGT base (N runs, IUPAC
codes) are skipped and counted, never scored. The genome is streamed in chunks aligned to
window positions; each chunk is tokenized by the kernel once per strand (and once per
token phase when the window stride is not a multiple of the token stride) and its windows
are gathered from that token array, so no Python work is done per window. Chunks are also
the unit of work of distributed scans (``torchrun ... gulm scan``): rank r scores chunks
r, r+W, ...; rank 0 merges. Batches never cross chunks, so a distributed scan computes
exactly what a single process computes.

bedGraph: each window's score is written on a ``stride``-wide tile centred on the window
(``track_mode='center'``, the default: tiles never overlap, so the file is valid bedGraph);
``'window'`` writes the whole window and needs ``stride >= window``.
"""
from __future__ import annotations

import math
import os
import resource
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

__all__ = ["ScanConfig", "scan_genome", "window_starts", "call_regions", "ScanResult"]

_VALID = np.zeros(256, dtype=bool)
for _b in b"ACGTUacgtu":
    _VALID[_b] = True


@dataclass
class ScanConfig:
    """Options of :func:`scan_genome` (and ``gulm scan``)."""

    checkpoint: str = ""
    fasta: str = ""
    out: str = "scan"  # output prefix
    regions: list[str] = field(default_factory=list)  # "chr:start-end" (1-based) or BED files
    window: int = 0  # 0: the median training sequence length of the classifier
    stride: int = 50
    strand: str = "both"  # "+", "-" or "both"
    batch_size: int = 512
    device: str = "cpu"
    dtype: str = "fp32"  # or "bf16"
    target: str = ""  # class to score (default: "promoter" if present, else the last class)
    threshold: float = 0.5
    merge_gap: int = 0
    chunk_size: int = 1_000_000
    track_mode: str = "center"  # or "window"
    windows_tsv: bool = True
    plot: str = ""  # region to plot, e.g. "NC_000913.3:1-40000"
    annotation: str = ""  # GFF3/GTF/BED of features drawn on the plot
    feature_type: str = "gene"
    progress: bool = True


@dataclass
class ScanResult:
    """What a scan produced: per-window scores and the files written."""

    chrom: np.ndarray  # [N] str
    start: np.ndarray  # [N] int64 window starts
    strand: np.ndarray  # [N] '+'/'-'
    score: np.ndarray  # [N] float32
    window: int
    summary: dict
    files: dict


def window_starts(start: int, end: int, window: int, stride: int) -> np.ndarray:
    """Starts p = start + i*stride of the full windows inside [start, end)."""
    if end - start < window:
        return np.zeros(0, dtype=np.int64)
    n = (end - start - window) // stride + 1
    return start + stride * np.arange(n, dtype=np.int64)


def _regions(cfg: ScanConfig, genome):
    from gulm.data.intervals import parse_region, read_bed

    if not cfg.regions:
        return [(name, 0, n) for name, n in genome.lengths.items()]
    out = []
    for r in cfg.regions:
        if os.path.exists(r):
            out += [(iv.chrom, iv.start, iv.end) for iv in read_bed(r)]
        else:
            iv = parse_region(r, genome.lengths)
            out.append((iv.chrom, iv.start, iv.end))
    for chrom, s, e in out:
        if chrom not in genome.lengths:
            raise ValueError(f"{cfg.fasta}: no record {chrom!r} (records: {', '.join(list(genome.lengths)[:5])})")
        if not 0 <= s < e <= genome.lengths[chrom]:
            raise ValueError(f"region {chrom}:{s}-{e} lies outside {chrom} (length {genome.lengths[chrom]})")
    return out


def _chunks(regions, window, stride, chunk_size):
    """Work units: (chrom, first window start, number of windows)."""
    per = max(1, (max(chunk_size, window) - window) // stride + 1)
    units = []
    for chrom, s, e in regions:
        starts = window_starts(s, e, window, stride)
        for i in range(0, starts.size, per):
            units.append((chrom, int(starts[i]), int(min(per, starts.size - i))))
    return units


class _Tokens:
    """Token ids of every window of one chunk and strand, gathered from whole-chunk encodings."""

    def __init__(self, tokenizer, seq: bytes, window: int):
        from gulm.ops.kmer import revcomp

        self.tok, self.window = tokenizer, window
        self.k, self.s = tokenizer.k, tokenizer.stride
        self.ntok = (window - self.k) // self.s + 1
        self.seq = {"+": seq, "-": None}
        self._rc = lambda: revcomp(seq)
        self.enc = {}

    def _phase(self, strand, r):
        key = (strand, r)
        if key not in self.enc:
            if self.seq[strand] is None:
                self.seq[strand] = self._rc()
            self.enc[key] = self.tok.encode(self.seq[strand][r:], dtype=torch.int32).numpy()
        return self.enc[key]

    def gather(self, offsets: np.ndarray, strand: str) -> np.ndarray:
        """ids [n, ntok] int64 of the windows at chunk offsets (plus-strand coordinates)."""
        L = len(self.seq["+"])
        o = offsets if strand == "+" else (L - offsets - self.window)
        out = np.empty((o.size, self.ntok), dtype=np.int64)
        cols = np.arange(self.ntok) 
        for r in np.unique(o % self.s):
            sel = (o % self.s) == r
            base = (o[sel] - r) // self.s
            out[sel] = self._phase(strand, int(r))[base[:, None] + cols[None, :]]
        return out


def _target_index(classes, target: str) -> int:
    if target:
        if target not in classes:
            raise ValueError(f"class {target!r} is not one of the model's classes {classes}")
        return classes.index(target)
    return classes.index("promoter") if "promoter" in classes else len(classes) - 1


def _score_unit(model, tokens: _Tokens, offsets, strand, bs, device, autocast, target):
    scores = np.empty(offsets.size, dtype=np.float32)
    lengths = None
    for i in range(0, offsets.size, bs):
        ids = torch.from_numpy(tokens.gather(offsets[i:i + bs], strand)).to(device)
        if lengths is None or lengths.numel() != ids.size(0):
            lengths = torch.full((ids.size(0),), ids.size(1), dtype=torch.long, device=device)
        with autocast:
            logits = model(ids, lengths)[0]
        scores[i:i + bs] = logits.float().softmax(-1)[:, target].cpu().numpy()
    return scores


def scan_genome(cfg: ScanConfig | None = None, **overrides) -> ScanResult:
    """Scan a genome (or regions of it) with a classifier checkpoint; see the module doc."""
    import dataclasses

    from gulm.data.genome import Genome
    from gulm.train import distributed as gdist
    from gulm.train.checkpoint import load_checkpoint

    cfg = dataclasses.replace(cfg or ScanConfig(), **overrides)
    if cfg.strand not in ("+", "-", "both"):
        raise ValueError(f"strand must be '+', '-' or 'both', got {cfg.strand!r}")
    if cfg.dtype not in ("fp32", "bf16"):
        raise ValueError(f"dtype must be 'fp32' or 'bf16', got {cfg.dtype!r}")
    if not cfg.checkpoint or not cfg.fasta:
        raise ValueError("a scan needs a classifier checkpoint and a FASTA")
    gdist.init_from_env(cfg.device)
    device = torch.device(cfg.device)
    if device.type == "cuda" and gdist.is_distributed():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    model, tok, mcfg = load_checkpoint(cfg.checkpoint, device)
    if mcfg["kind"] != "classifier":
        raise ValueError(f"{cfg.checkpoint}: not a classifier checkpoint")
    classes = mcfg["classes"]
    target = _target_index(classes, cfg.target)
    window = cfg.window or int(mcfg.get("window") or 0)
    if window < tok.k:
        raise ValueError(f"window ({window} bp) must be at least k={tok.k}")
    if cfg.stride < 1:
        raise ValueError(f"stride must be >= 1, got {cfg.stride}")
    if cfg.track_mode not in ("center", "window"):
        raise ValueError(f"track_mode must be 'center' or 'window', got {cfg.track_mode!r}")
    if cfg.track_mode == "window" and cfg.stride < window:
        raise ValueError("track_mode='window' needs stride >= window (bedGraph intervals may not overlap)")
    genome = Genome(cfg.fasta)
    regions = _regions(cfg, genome)
    units = _chunks(regions, window, cfg.stride, cfg.chunk_size)
    strands = ["+", "-"] if cfg.strand == "both" else [cfg.strand]
    rank, world = gdist.rank(), gdist.world_size()
    mine = units[rank::world]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.dtype == "bf16" else nullcontext()
    total_bp = sum((n - 1) * cfg.stride + window for _, _, n in mine)
    bar = None
    if cfg.progress and gdist.is_main():
        from tqdm.auto import tqdm

        bar = tqdm(total=total_bp * len(strands), unit="bp", unit_scale=True, desc="scan",
                   dynamic_ncols=True, mininterval=1.0)
    parts = {"chrom": [], "start": [], "strand": [], "score": []}
    skipped = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for chrom, first, n in mine:
            span_end = first + (n - 1) * cfg.stride + window
            seq = genome.fetch(chrom, first, span_end, upper=True).encode("ascii", "replace")
            bad = np.concatenate(([0], np.cumsum(~_VALID[np.frombuffer(seq, np.uint8)])))
            offsets = cfg.stride * np.arange(n, dtype=np.int64)
            ok = (bad[offsets + window] - bad[offsets]) == 0
            skipped += int((~ok).sum()) * len(strands)
            offsets = offsets[ok]
            tokens = _Tokens(tok, seq, window)
            for strand in strands:
                if offsets.size:
                    sc = _score_unit(model, tokens, offsets, strand, cfg.batch_size, device, autocast, target)
                    parts["chrom"].append(np.full(offsets.size, chrom, dtype=object))
                    parts["start"].append(first + offsets)
                    parts["strand"].append(np.full(offsets.size, strand, dtype="<U1"))
                    parts["score"].append(sc)
                if bar is not None:
                    bar.update(len(seq))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    local = {k: (np.concatenate(v) if v else np.zeros(0, dtype={"chrom": object, "start": np.int64,
                                                               "strand": "<U1", "score": np.float32}[k]))
             for k, v in parts.items()}
    merged, skipped, seconds_all = _merge_ranks(local, skipped, seconds, cfg.out)
    summary = {
        "checkpoint": os.path.abspath(cfg.checkpoint), "fasta": os.path.abspath(cfg.fasta),
        "target_class": classes[target], "window": window, "stride": cfg.stride,
        "strands": strands, "windows_scored": int(merged["score"].size), "windows_skipped_non_acgt": skipped,
        "bases_scanned": int(sum(e - s for _, s, e in regions)), "seconds": seconds_all,
        "windows_per_second": merged["score"].size / max(seconds_all, 1e-9),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "dtype": cfg.dtype, "device": str(device), "batch_size": cfg.batch_size, "world_size": world,
    }
    files = {}
    if gdist.is_main():
        files = _write_outputs(cfg, merged, window, classes[target], summary)
    gdist.barrier()
    return ScanResult(merged["chrom"], merged["start"], merged["strand"], merged["score"], window,
                      summary, files)


def _merge_ranks(local, skipped, seconds, out_prefix):
    """Gather every rank's windows on rank 0 through files next to the output, sorted."""
    from gulm.train import distributed as gdist

    if gdist.is_distributed():
        part = f"{out_prefix}.part{gdist.rank()}.npz"
        os.makedirs(os.path.dirname(os.path.abspath(part)), exist_ok=True)
        np.savez(part, chrom=local["chrom"].astype(str), start=local["start"],
                 strand=local["strand"], score=local["score"],
                 meta=np.array([skipped, seconds], dtype=np.float64))
        gdist.barrier()
        if gdist.is_main():
            chunks = []
            for r in range(gdist.world_size()):
                with np.load(f"{out_prefix}.part{r}.npz", allow_pickle=False) as z:
                    chunks.append({k: z[k] for k in ("chrom", "start", "strand", "score")})
                    skipped_r, sec_r = z["meta"]
                    if r:
                        skipped += int(skipped_r)
                        seconds = max(seconds, float(sec_r))
                os.remove(f"{out_prefix}.part{r}.npz")
            local = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
            local["chrom"] = local["chrom"].astype(object)
        gdist.barrier()
    order = _sort_order(local)
    return {k: v[order] for k, v in local.items()}, skipped, seconds


def _sort_order(d):
    if d["score"].size == 0:
        return np.zeros(0, dtype=np.int64)
    chroms = d["chrom"].astype(str)
    return np.lexsort((d["strand"], d["start"], chroms))


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


def _write_outputs(cfg, d, window, target_name, summary):
    import json

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
        files["plot"] = plot_region(d, window, cfg.plot, f"{prefix}.png", target_name,
                                    cfg.annotation or None, cfg.feature_type, cfg.fasta)
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


def plot_region(d, window, region, path, target_name, annotation=None, feature_type="gene", fasta=None):
    """PNG of the score along a region (both strands), with feature starts from a GFF/BED."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gulm.data.intervals import parse_region, read_bed, read_gff_features

    iv = parse_region(region)
    chroms = d["chrom"].astype(str)
    fig, ax = plt.subplots(figsize=(14, 4))
    for strand, color in (("+", "tab:blue"), ("-", "tab:orange")):
        sel = (chroms == iv.chrom) & (d["strand"] == strand) & (d["start"] >= iv.start) & (d["start"] + window <= iv.end)
        if sel.any():
            x = d["start"][sel] + window / 2
            ax.plot(x, d["score"][sel], lw=0.8, color=color, label=f"strand {strand}")
    if annotation:
        feats = (read_bed(annotation) if annotation.endswith((".bed", ".bed.gz"))
                 else read_gff_features(annotation, feature_type))
        for f in feats:
            if f.chrom != iv.chrom:
                continue
            pos = f.start if f.strand != "-" else f.end
            if iv.start <= pos < iv.end:
                ax.axvline(pos, color="tab:green" if f.strand != "-" else "tab:red", lw=0.6, alpha=0.6)
        ax.plot([], [], color="tab:green", label=f"{feature_type} start (+)")
        ax.plot([], [], color="tab:red", label=f"{feature_type} start (-)")
    ax.set_xlim(iv.start, iv.end)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{iv.chrom} position (bp)")
    ax.set_ylabel(f"P({target_name})")
    ax.set_title(f"gulm scan: {window} bp windows")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
