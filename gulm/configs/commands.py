"""The configs of the commands that use a trained model: ``gulm evaluate``, ``predict``,
``scan``, ``call``, ``interpret`` and ``demo``."""
from __future__ import annotations

from dataclasses import dataclass

from gulm.configs.base import DTYPES, TRAIN_DTYPES, DataConfig, RunOptions
from gulm.configs.fields import opt

__all__ = ["InferOptions", "ClassifyOptions", "EvaluateConfig", "PredictConfig", "ScanConfig", "InterpretConfig",
           "DemoConfig", "TRACK_MODES", "CallOptions", "CallConfig", "BACKGROUNDS"]

#: bedGraph layouts of a scan's scores
TRACK_MODES = {
    "center": "each window's score on a tile of min(stride, window) bp centred on the window (tiles "
              "never overlap nor leave the window, so the file is valid bedGraph)",
    "window": "each window's score over the whole window (needs --stride >= --window)",
}

#: where ``--threshold auto`` measures its false-positive rate
BACKGROUNDS = {
    "valid": "the classifier's validation negatives, stored in its checkpoint at training (checkpoints "
             "without them fall back to shuffled)",
    "shuffled": "dinucleotide-shuffled windows of the scanned regions",
}


@dataclass
class InferOptions(RunOptions):
    """Options of every command that runs a trained classifier."""

    dtype: str = opt("fp32", "compute precision (bf16/fp16: autocast; fp16 needs CUDA)", choices=DTYPES)
    checkpoint: str = opt("", "classifier checkpoint folder", positional="?")


@dataclass
class ClassifyOptions(InferOptions):
    """Options of the commands that classify whole sequences (evaluate, predict)."""

    bs: int = opt(64, "sequences per batch")
    rc_average: bool | None = opt(None, "average over both strands (default: as the classifier was trained)")


@dataclass
class EvaluateConfig(ClassifyOptions):
    """Metrics of a classifier on one split of labelled data."""

    data: DataConfig = opt(factory=DataConfig, help="the labelled data")
    split: str = opt("test", "split to score ('all': every sequence)", choices=("train", "valid", "test", "all"))
    json: str = opt("", "also write the metrics to this JSON file")
    progress: bool = opt(True, "show a progress bar")


@dataclass
class PredictConfig(ClassifyOptions):
    """Class probabilities of sequences."""

    sequences: list[str] = opt(factory=list, help="sequences given on the command line", positional="*")
    fasta: str = opt("", "FASTA file of query sequences (plain or compressed)")
    out: str = opt("", "output TSV ('-': standard output, where the command line writes without --out)")
    progress: bool = opt(False, "show a progress bar")


@dataclass
class CallOptions:
    """How scored windows become calls and plots (``gulm scan`` and ``gulm call``)."""

    threshold: str = opt("auto", "score at or above which windows are called: a number in [0, 1], or auto: "
                                 "the lowest score that at most --fpr of the negatives reach (see --background)")
    fpr: float = opt(0.01, "false-positive rate of --threshold auto, as a share of negative windows")
    merge_gap: int = opt(0, "join called windows closer than this many bp")
    split_drop: float = opt(0.1, "split a call where the score falls this far below the peaks on both "
                                 "sides (0: never split)")
    min_width: int = opt(0, "calls are at least this many bp wide: no split leaves a narrower piece and "
                            "narrower calls are dropped (0: the window length)")
    plot: list[str] = opt(factory=list, metavar="REGION",
                          help="regions to plot, chrom:start-end (1-based inclusive) inside the scanned "
                               "regions; one PNG each")
    annotation: str = opt("", "GFF3/GTF/BED of genes drawn on the plots")
    feature_type: str = opt("gene", "GFF feature type drawn on the plots")


@dataclass
class ScanConfig(CallOptions, InferOptions):
    """Options of :func:`gulm.scan_genome` (and ``gulm scan``)."""

    fasta: str = opt("", "genome FASTA to scan (plain or compressed)", positional="?")
    out: str = opt("scan", "output prefix of the files written")
    regions: list[str] = opt(factory=list, metavar="REGION",
                             help="regions to scan: chrom:start-end, 1-based inclusive as in genome "
                                  "browsers (chr1:1-1000 is the first 1000 bp), or BED files (0-based "
                                  "half-open); overlapping regions are merged; default: every record")
    window: int = opt(0, "window length in bp (0: the classifier's median training length)")
    stride: int = opt(50, "bp between consecutive window starts")
    strand: str = opt("both", "strands to score", choices=("+", "-", "both"))
    batch_size: int = opt(512, "windows per batch")
    target: str = opt("", "class to score (default: 'promoter' if present, else the last class)")
    background: str = opt("valid", "negatives of --threshold auto: "
                          + "; ".join(f"{k}: {v}" for k, v in BACKGROUNDS.items()), choices=tuple(BACKGROUNDS))
    background_windows: int = opt(2000, "shuffled windows scored for --background shuffled")
    chunk_size: int = opt(1_000_000, "bp of genome per work unit (and per rank when distributed)")
    track_mode: str = opt("center", "bedGraph layout: " + "; ".join(f"{k}: {v}" for k, v in TRACK_MODES.items()),
                          choices=tuple(TRACK_MODES))
    windows_tsv: bool = opt(True, "also write every window's score to <out>.windows.tsv (gulm call reads it)")
    progress: bool = opt(True, "show a progress bar")


@dataclass
class CallConfig(CallOptions, RunOptions):
    """Options of :func:`gulm.call_scan` (and ``gulm call``): call again from a scan's files."""

    scan: str = opt("", "output prefix of a finished scan (<scan>.summary.json and its windows TSV or "
                        "bedGraphs)", positional="?")
    out: str = opt("", "output prefix of the new calls (default: the scan's, replacing its calls)")


@dataclass
class InterpretConfig(InferOptions):
    """Options of :func:`gulm.interpret`."""

    sequence: str = opt("", "the sequence to analyse (or --fasta)")
    fasta: str = opt("", "FASTA whose first record (or --record) is analysed")
    record: str = opt("", "record of --fasta to analyse")
    out: str = opt("interpret", "output prefix of the TSVs and PNGs")
    ks: list[int] = opt(factory=lambda: [1, 3, 5, 7, 9, 11, 13, 15], metavar="K",
                        help="lengths of the randomized stretches")
    mutagenesis: bool = opt(True, "also score every single-base substitution")
    target: str = opt("", "class to score (default: 'promoter' if present, else the last class)")
    mark: int = opt(-1, "0-based position to mark on the plots, e.g. the TSS (-1: none)")
    seed: int = opt(0, "seed of the random stretches")
    batch_size: int = opt(256, "variants per batch")


@dataclass
class DemoConfig(RunOptions):
    """Options of :func:`gulm.run_demo`."""

    out: str = opt("demo_out", "output folder")
    quick: bool = opt(False, "a much shorter run (smoke test)")
    seed: int = opt(0, "seed of the synthetic genome and of training")
    dtype: str = opt("fp32", "compute precision", choices=TRAIN_DTYPES)
