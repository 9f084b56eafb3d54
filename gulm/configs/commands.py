"""The configs of the commands that use a trained model: ``gulm evaluate``, ``predict``,
``scan``, ``call``, ``interpret`` and ``demo``."""
from __future__ import annotations

from dataclasses import dataclass

from gulm.configs.base import DTYPES, TRAIN_DTYPES, DataConfig, RunOptions
from gulm.configs.fields import opt

__all__ = ["InferOptions", "ClassifyOptions", "EvaluateConfig", "PredictConfig", "ScanConfig", "InterpretConfig",
           "DemoConfig", "BaselineConfig", "ProbeConfig", "ModelsConfig", "KMER_KS", "KMER_CS", "TRACK_MODES", "CallOptions", "CallConfig", "BACKGROUNDS"]

#: the k-mer logistic regression's defaults (``gulm baseline``, ``gulm probe``, the demo's LR row):
#: k-mer lengths of the features and the inverse L2 penalties tried, the best valid accuracy winning
KMER_KS = (1, 2, 3, 4, 5, 6)
KMER_CS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)

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

    dtype: str = opt("fp32", "compute precision (bf16/fp16: autocast; fp16 needs CUDA; CPU bf16 is fast only with AVX512-BF16 or AMX)", choices=DTYPES)
    checkpoint: str = opt("", "classifier checkpoint folder", positional="?")


@dataclass
class ClassifyOptions(InferOptions):
    """Options of the commands that classify whole sequences (evaluate, predict)."""

    bs: int = opt(64, "sequences per batch")
    rc_average: bool | None = opt(None, "average over both strands (default: as the classifier was trained)")
    ensemble: list[str] = opt(factory=list, help="more classifier checkpoints with the same classes (the same recipe "
                                                 "trained with other --seed values): their class probabilities are "
                                                 "averaged with the first checkpoint's", metavar="CHECKPOINT")


@dataclass
class EvaluateConfig(ClassifyOptions):
    """Metrics of a classifier on one split of labelled data."""

    data: DataConfig = opt(factory=DataConfig, help="the labelled data")
    split: str = opt("test", "split to score ('all': every sequence)", choices=("train", "valid", "test", "all"))
    json: str = opt("", "also write the metrics to this JSON file")
    figure: str = opt("", "also draw the ROC and precision-recall curves, the reliability diagram and the "
                          "confusion matrix to this figure (.png, .pdf or .svg), the k-mer baseline's curves "
                          "beside the model's when `gulm baseline` saved one")
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
                                 "the lowest score that at most --fpr of the negatives reach (a scan's --background)")
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
    fasta: str = opt("", "FASTA holding the sequence (one record, or choose it with --record)")
    record: str = opt("", "record of --fasta to analyse (needed when it holds several)")
    out: str = opt("interpret", "output prefix of the TSVs and PNGs")
    ks: list[int] = opt(factory=lambda: [1, 3, 5, 7, 9, 11, 13, 15], metavar="K",
                        help="lengths of the randomized stretches")
    mutagenesis: bool = opt(True, "also score every single-base substitution (false: leave ism out of --method)")
    target: str = opt("", "class to score (default: 'promoter' if present, else the last class)")
    mark: int = opt(-1, "0-based position to mark on the plots, e.g. the TSS (-1: none)")
    seed: int = opt(0, "seed of the random stretches")
    batch_size: int = opt(256, "variants per batch")
    method: list[str] = opt(factory=lambda: ["perturb", "ism", "saliency"], metavar="METHOD",
                            help="methods to run: perturb (randomized stretches), ism (every single-base "
                                 "substitution), saliency (gradient x input and integrated gradients over "
                                 "the token embeddings)")
    ig_steps: int = opt(64, "Gauss-Legendre points of the integrated-gradients path integral (doubled, up to 8 "
                            "times, until the attributions sum to the log-odds difference within 1%)")


@dataclass
class DemoConfig(RunOptions):
    """Options of :func:`gulm.run_demo`."""

    out: str = opt("demo_out", "output folder")
    quick: bool = opt(False, "a much shorter run (smoke test)")
    seed: int = opt(0, "seed of the synthetic genome and of training")
    dtype: str = opt("fp32", "compute precision", choices=TRAIN_DTYPES)


@dataclass
class BaselineConfig:
    """Options of :func:`gulm.kmer_baseline` (``gulm baseline``): the k-mer logistic regression on
    the same split as a classifier checkpoint."""

    checkpoint: str = opt("", "classifier checkpoint whose split the baseline uses", positional="?")
    data: DataConfig = opt(factory=DataConfig, help="labelled data (default: the checkpoint's own)")
    ks: list[int] = opt(factory=lambda: list(KMER_KS), metavar="K", help="k-mer lengths of the features")
    both_strands: bool | None = opt(None, "count k-mers on both strands (default: as the classifier, "
                                          "yes when it was trained with reverse complements; no with --positional)")
    window: int | None = opt(None, "count the k-mers over the first and the last N bases, two blocks (default: "
                                   "as the classifier's --kmer-window; 0: the whole sequence)")
    gapped: list[int] = opt(factory=list, metavar="N",
                            help="gapped k-mers in place of --ks: window length and informative bases, e.g. "
                                 "10 5 (the features of gkm-SVM; stronger on enhancers, slower)")
    positional: list[int] = opt(factory=list, metavar="N",
                                help="add position-resolved k-mer counts for windows aligned on a site (promoters "
                                     "around a TSS): K B [S] counts the K-mers starting in each B-base bin of the "
                                     "first S bases (default S: the longest training sequence), e.g. 3 3; default: "
                                     "as the classifier's --kmer-positional, if any (0: none)")
    cs: list[float] = opt(factory=lambda: list(KMER_CS), metavar="C", flag="cs",
                          help="inverse L2 penalties tried; the best valid accuracy wins")
    max_iter: int = opt(500, "iterations of the logistic-regression solver")
    out: str = opt("", "folder for baseline.npz/json (default: the checkpoint folder)")
    threads: int = opt(0, "CPU threads (0: automatic)")


@dataclass
class ProbeConfig(RunOptions):
    """Options of :func:`gulm.probe_lms` (``gulm probe``): rank language models for a labelled set by
    a linear probe of their frozen features on its valid split, beside the k-mer LR."""

    lms: list[str] = opt(factory=list, positional="*",
                         help="language models to compare: shipped names (gulm models) or LM or classifier "
                              "checkpoint folders")
    data: DataConfig = opt(factory=DataConfig, help="labelled data with train and valid splits (test is never read)")
    ks: list[int] = opt(factory=lambda: list(KMER_KS), metavar="K", help="k-mer lengths of the reference LR")
    cs: list[float] = opt(factory=lambda: list(KMER_CS), metavar="C", flag="cs",
                          help="inverse L2 penalties tried for every probe; the best valid accuracy wins")
    max_iter: int = opt(500, "iterations of the logistic-regression solver")
    bins: int = opt(0, "also probe the mean encoder output over each of N equal parts of every sequence (what "
                       "train-classifier --head-bins N adds to the head); 0: [last, max, mean] alone")
    dtype: str = opt("fp32", "precision of the encoders' forward pass", choices=DTYPES)
    batch_size: int = opt(64, "sequences per batch")
    out: str = opt("", "also write the table as JSON to this file")
    progress: bool = opt(True, "show a progress bar")


@dataclass
class ModelsConfig:
    """Options of ``gulm models``: the pretrained language models shipped with gulm."""

    name: str = opt("", "print this model's card instead of the table", positional="?")
    json: bool = opt(False, "print JSON")
    presets: bool = opt(False, "list the recipe presets of finetune and train-classifier instead")


# ---------------------------------------------------------------------------- variant effects, embeddings
__all__ += ["VariantEffectConfig", "EmbedConfig", "POOLS"]

#: poolings of the encoder outputs that ``gulm embed`` writes
POOLS = {
    "concat": "[last, max, mean] concatenated (3 x layer size; the classifier head's input)",
    "last": "the output at the last token",
    "max": "the maximum over the tokens",
    "mean": "the mean over the tokens",
}


@dataclass
class VariantEffectConfig(InferOptions):
    """Options of :func:`gulm.variant_effect` (and ``gulm variant-effect``)."""

    vcf: str = opt("", "VCF of the variants (plain or bgzipped)")
    genome: str = opt("", "reference genome FASTA the VCF was called against (plain or compressed)")
    out: str = opt("effects", "output prefix: <out>.tsv, <out>.vcf.gz (+ .tbi) and <out>.summary.json")
    window: int = opt(0, "window length in bp, centred on the variant (0: the classifier's median training length)")
    strand: str = opt("both", "strand to score: both (the mean of the two probabilities), + or -",
                      choices=("+", "-", "both"))
    ref_mismatch: str = opt("warn", "a REF allele that differs from the genome: error (stop), skip (leave the "
                                    "record unscored) or warn (score it with the VCF's REF and flag it); counted in "
                                    "the summary", choices=("error", "skip", "warn"))
    chrom_map: list[str] = opt(factory=list, metavar="VCF=FASTA",
                               help="rename VCF chromosomes to FASTA records: VCF=FASTA pairs, files of two "
                                    "columns, or 'auto' (add or drop a 'chr' prefix, chrM/MT)")
    missing_chrom: str = opt("error", "records on chromosomes that the FASTA lacks: error, or skip (counted)",
                             choices=("error", "skip"))
    max_indel: int = opt(50, "longest indel scored, in bp of length change (longer ones are counted, not scored)")
    target: str = opt("", "class to score (default: 'promoter' if present, else the last class)")
    mutagenesis: bool = opt(False, "also place each variant's |delta| among those of every single-base "
                                   "substitution of its window (an empirical percentile; 3 x window more windows)")
    batch_size: int = opt(256, "windows per batch")
    chunk_size: int = opt(1024, "VCF records read, scored and written at a time")
    progress: bool = opt(True, "show a progress bar")


@dataclass
class EmbedConfig(InferOptions):
    """Options of :func:`gulm.embed` (and ``gulm embed``)."""

    checkpoint: str = opt("", "language-model or classifier checkpoint folder", positional="?")
    fasta: str = opt("", "FASTA of the sequences to embed (plain or compressed)")
    csv: str = opt("", "CSV/TSV with a column of sequences (plain or compressed)")
    sequence_col: str = opt("sequence", "column of the CSV holding the sequences")
    id_col: str = opt("auto", "column of the CSV holding the ids ('auto': an id or name column if present, "
                              "else file:line)")
    bed: str = opt("", "BED of intervals to embed, read on their strand (needs --genome)")
    genome: str = opt("", "genome FASTA the BED intervals are cut from")
    out: str = opt("embeddings.npy", "output file: .npy (float32 [N, D], with the ids in <out>.ids.txt) or "
                                     ".parquet (id and embedding columns; needs pyarrow)")
    pool: str = opt("concat", "pooling of the encoder outputs: " + "; ".join(f"{k}: {v}" for k, v in POOLS.items()),
                    choices=tuple(POOLS))
    layer: int = opt(-1, "LSTM layer whose outputs are pooled (0 the first, -1 the last)")
    bins: int = opt(0, "append the mean output over each of N equal parts of every sequence to the pooled "
                       "features (as train-classifier --head-bins N pools); 0: none")
    batch_size: int = opt(64, "sequences per batch")
    chunk_size: int = opt(4096, "sequences read, embedded and written at a time")
    progress: bool = opt(True, "show a progress bar")
