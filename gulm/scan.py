"""Genome scans: slide a window along chromosomes (both strands) and score every window with a
classifier (:class:`gulm.infer.Classifier`); :mod:`gulm.scan_output` writes the bedGraph tracks,
the called regions, the window table, the summary and the plot.

Coordinates are 0-based half-open. A window ``[p, p + window)`` on strand ``-`` is scored
on the reverse complement of those bases. Windows touching a non-ACGT base (N runs, IUPAC
codes) are skipped and counted, never scored. The genome is streamed in chunks aligned to
window positions; each chunk is tokenized by the kernel once per strand (and once per
token phase when the window stride is not a multiple of the token stride) and its windows
are gathered from that token array, so no Python work is done per window. Chunks are also
the unit of work of distributed scans (``torchrun ... gulm scan``): rank r scores chunks
r, r+W, ...; rank 0 merges. Batches never cross chunks, so a distributed scan computes
exactly what a single process computes.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch

from gulm.configs import ScanConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.genome import Genome
from gulm.data.intervals import Interval
from gulm.infer import Classifier
from gulm.ops.lstm import releases_scratch
from gulm.runtime import distributed as gdist
from gulm.runtime.device import setup
from gulm.scan_output import write_scan_outputs

__all__ = ["scan_genome", "window_starts", "ScanResult", "dinucleotide_shuffle", "scan_threads", "macs_per_token",
           "SMALL_MODEL_MACS"]

_VALID = np.zeros(256, dtype=bool)
for _b in b"ACGTUacgtu":
    _VALID[_b] = True


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
    """The regions to scan as sorted (chrom, start, end), overlapping and adjacent ones merged."""
    from gulm.data.intervals import merge_intervals, parse_region, read_bed

    if not cfg.regions:
        return [(name, 0, n) for name, n in genome.lengths.items()]
    out = []
    for r in cfg.regions:
        if os.path.exists(r):
            out += [(iv.chrom, iv.start, iv.end, f"{r}: {iv.chrom}:{iv.start}-{iv.end}") for iv in read_bed(r)]
        else:
            iv = parse_region(r, genome.lengths)
            out.append((iv.chrom, iv.start, iv.end, r))
    for chrom, s, e, where in out:
        if chrom not in genome.lengths:
            raise ValueError(f"region {where}: {cfg.fasta} has no record {chrom!r} "
                             f"(records: {', '.join(list(genome.lengths)[:5])})")
        if not 0 <= s < e <= genome.lengths[chrom]:
            raise ValueError(f"region {where} lies outside {chrom} (length {genome.lengths[chrom]})")
    merged = merge_intervals(Interval(c, s, e) for c, s, e, _ in out)
    return [(iv.chrom, iv.start, iv.end) for iv in merged]


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


def _score_unit(clf: Classifier, tokens: _Tokens, offsets, strand, bs, target):
    """P(target) of the windows at ``offsets`` on ``strand``; a backward classifier reads each
    window from its 3' end, which is the other strand's token run."""
    scores = np.empty(offsets.size, dtype=np.float32)
    lengths = None
    read = {"+": "-", "-": "+"}[strand] if clf.backward else strand
    for i in range(0, offsets.size, bs):
        ids = torch.from_numpy(tokens.gather(offsets[i:i + bs], read)).to(clf.device)
        if lengths is None or lengths.numel() != ids.size(0):
            lengths = torch.full((ids.size(0),), ids.size(1), dtype=torch.long, device=clf.device)
        scores[i:i + bs] = clf.batch_probs(ids, lengths)[:, target].cpu().numpy()
    return scores


#: multiply-adds per token below which a CPU scan runs on one thread by default: small models
#: gain little from a second thread and lose much when the cores are shared (issue 13: on a busy
#: 2-core machine, 2 threads scanned 2.5x slower than 1 with a 64/256/3 model)
SMALL_MODEL_MACS = 2_000_000


def macs_per_token(model) -> int:
    """Multiply-adds per token of a model's LSTM stack (4 gates x hidden x (input + hidden) per layer)."""
    return int(sum(4 * r.hidden_size * (r.input_size + r.hidden_size) for r in model.encoder.rnns))


def scan_threads(requested: int, clf: Classifier) -> int:
    """Threads of a scan: ``requested`` when > 0; else one for a small model on CPU
    (:data:`SMALL_MODEL_MACS`), else :func:`gulm.threads.resolve_threads`'s default."""
    from gulm.threads import resolve_threads

    if requested:
        return resolve_threads(requested)
    if clf.device.type == "cpu" and macs_per_token(clf.model) < SMALL_MODEL_MACS:
        return resolve_threads(1)
    return torch.get_num_threads()


def dinucleotide_shuffle(seq: str, draw) -> str:
    """A random permutation of ``seq`` with the same dinucleotide counts, first and last base
    (Altschul and Erickson 1985: a random Eulerian walk of the dinucleotide graph). ``draw``:
    a :class:`gulm.data.sampling.StableDraw`."""
    if len(seq) < 3:
        return seq
    edges: dict[str, list[str]] = {}
    for a, b in zip(seq, seq[1:]):
        edges.setdefault(a, []).append(b)
    last = seq[-1]
    while True:  # each vertex's last exit, forming a tree into the last base
        exit_ = {v: out[draw.integer(0, len(out) - 1)] for v, out in edges.items() if v != last}
        ok = True
        for v in exit_:
            seen, u = set(), v
            while u != last and ok:
                ok = u not in seen
                seen.add(u)
                u = exit_[u]
            if not ok:
                break
        if ok:
            break
    walk = {}
    for v, out in edges.items():
        out = list(out)
        if v in exit_:
            out.remove(exit_[v])
        out = [out[i] for i in draw.permutation(len(out))]
        walk[v] = out + ([exit_[v]] if v in exit_ else [])
    pos = dict.fromkeys(walk, 0)
    res, u = [seq[0]], seq[0]
    for _ in range(len(seq) - 1):
        nxt = walk[u][pos[u]]
        pos[u] += 1
        res.append(nxt)
        u = nxt
    return "".join(res)


@releases_scratch  # the CPU kernels' kept scratch memory, however the scan ends
def scan_genome(cfg: ScanConfig | None = None, **overrides) -> ScanResult:
    """Scan a genome (or regions of it) with a classifier checkpoint; see the module doc."""
    from gulm.scan_output import check_plot_regions, region_strings, resolve_threshold, versions

    cfg = config_from(ScanConfig, cfg, overrides)
    if not cfg.checkpoint or not cfg.fasta:
        raise ValueError("a scan needs a classifier checkpoint and a FASTA")
    device = setup(cfg.device, cfg.threads)
    clf = Classifier.load(cfg.checkpoint, device, cfg.dtype)
    threads = scan_threads(cfg.threads, clf)
    target = clf.target_index(cfg.target)
    window = cfg.window or clf.window
    if window < clf.tokenizer.k:
        raise ValueError(f"window ({window} bp) must be at least k={clf.tokenizer.k}")
    if cfg.stride < 1:
        raise ValueError(f"stride must be >= 1, got {cfg.stride}")
    if cfg.track_mode == "window" and cfg.stride < window:
        raise ValueError(f"{option_name('track_mode')} window needs stride >= window (bedGraph intervals "
                         "may not overlap)")
    genome = Genome(cfg.fasta)
    regions = _regions(cfg, genome)
    check_plot_regions(cfg.plot, regions, genome.lengths)  # before the work, not after
    # every rank (deterministic and cheap), so that a bad --threshold fails on all of them
    negatives, source = _negatives(cfg, clf, target, genome, regions, window)
    resolve_threshold(cfg, negatives, source)
    units = _chunks(regions, window, cfg.stride, cfg.chunk_size)
    strands = ["+", "-"] if cfg.strand == "both" else [cfg.strand]
    world = gdist.world_size()
    mine = units[gdist.rank()::world]
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
            tokens = _Tokens(clf.tokenizer, seq, window)
            for strand in strands:
                if offsets.size:
                    sc = _score_unit(clf, tokens, offsets, strand, cfg.batch_size, target)
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
    mcfg = clf.config.get("model", {})
    summary = {
        "checkpoint": clf.path, "fasta": os.path.abspath(cfg.fasta),
        "target_class": clf.classes[target], "window": window, "stride": cfg.stride,
        "track_mode": cfg.track_mode, "strands": strands, "regions": region_strings(regions),
        "regions_given": list(cfg.regions),
        "windows_scored": int(merged["score"].size), "windows_skipped_non_acgt": skipped,
        "bases_scanned": int(sum(e - s for _, s, e in regions)), "seconds": seconds_all,
        "windows_per_second": merged["score"].size / max(seconds_all, 1e-9),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "model": {"checkpoint": clf.path, "classes": clf.classes, "k": clf.tokenizer.k,
                  "token_stride": clf.tokenizer.stride, "emb_size": mcfg.get("emb_size"),
                  "hidden_size": mcfg.get("hidden_size"), "n_layers": mcfg.get("n_layers"),
                  "trained_with_gulm": clf.config.get("gulm_version"), "lm": clf.config.get("lm")},
        "dtype": cfg.dtype, "device": str(device), "threads": threads, "batch_size": cfg.batch_size,
        "world_size": world, "versions": versions(),
    }
    files = {}
    if gdist.is_main():
        files = write_scan_outputs(cfg, merged, window, clf.classes[target], summary, lengths=genome.lengths,
                                   regions=regions, negatives=negatives, source=source)
    gdist.barrier()
    return ScanResult(merged["chrom"], merged["start"], merged["strand"], merged["score"], window,
                      summary, files)


def _negatives(cfg: ScanConfig, clf: Classifier, target: int, genome, regions, window: int):
    """(scores, description) of the negatives that ``--threshold auto`` is set on (and narrowPeak
    p-values come from): the checkpoint's validation negatives, or shuffled genome windows."""
    from gulm.runtime.checkpoint import read_calibration
    from gulm.scan_output import validation_negatives

    auto = str(cfg.threshold).strip().lower() == "auto"
    if cfg.background == "valid":
        cal = read_calibration(clf.path)
        if cal is not None and cal.get("classes") == clf.classes:
            neg = validation_negatives(cal, clf.classes[target])
            if neg.size:
                return neg, f"{neg.size} validation negatives of {clf.path}"
        if not auto:
            return None, ""
    elif not auto:
        return None, ""
    return _shuffled_background(cfg, clf, target, genome, regions, window)


def _shuffled_background(cfg: ScanConfig, clf: Classifier, target: int, genome, regions, window: int):
    """Scores of ``background_windows`` dinucleotide-shuffled windows drawn at random from the
    scanned regions (a fixed seed: the same scan gives the same threshold)."""
    from gulm.data.sampling import StableDraw

    draw = StableDraw(0)
    spans = [(c, s, e) for c, s, e in regions if e - s >= window]
    if not spans or cfg.background_windows < 1:
        return None, "no scanned region holds a whole window"
    sizes = np.array([e - s - window + 1 for _, s, e in spans], dtype=float)
    cdf = np.cumsum(sizes) / sizes.sum()
    seqs, tries = [], 0
    while len(seqs) < cfg.background_windows and tries < 20 * cfg.background_windows:
        tries += 1
        c, s, e = spans[int(draw.categorical(cdf, 1)[0])]
        p = draw.integer(s, e - window)
        w = genome.fetch(c, p, p + window, upper=True)
        if len(w) == window and not w.strip("ACGT"):
            seqs.append(dinucleotide_shuffle(w, draw))
    if not seqs:
        return None, "no ACGT-only window found for the shuffled background"
    scores = clf.probs(seqs, bs=cfg.batch_size, rc_average=False)[:, target].astype(np.float32)
    return scores, f"{len(seqs)} dinucleotide-shuffled windows of the scanned regions"


def _merge_ranks(local, skipped, seconds, out_prefix):
    """Gather every rank's windows on rank 0 through files next to the output, sorted."""
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



