"""``gulm evaluate`` and ``gulm predict``: a trained classifier, or the mean of several
(``ensemble=``), on labelled data (metrics) or on sequences (probabilities), through
:class:`gulm.infer.Ensemble`."""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from gulm.configs import DataConfig, EvaluateConfig, PredictConfig
from gulm.configs.fields import config_from, option_name

__all__ = ["evaluate", "predict", "read_queries", "valid_fractions", "model_label", "MOSTLY_UNKNOWN"]


def evaluate(checkpoint: str | EvaluateConfig | None = None, data: DataConfig | None = None,
             split: str | None = None, **options) -> dict:
    """Metrics of a classifier checkpoint on one split of a data source (``split='all'`` for
    every sequence); options are :class:`~gulm.configs.EvaluateConfig`'s fields (``json=``
    also writes them to a file, ``figure=`` draws the ROC, precision-recall, reliability and
    confusion figure of :func:`gulm.plots.plot_evaluation`). When ``gulm baseline`` saved a k-mer
    LR beside the (first) checkpoint, its metrics on the same sequences are under ``"baseline"``
    (with its ``"name"``) and its curves are drawn beside the model's."""
    from gulm.baseline import baseline_probs
    from gulm.data.batches import encode_labels
    from gulm.data.errors import DataWarning
    from gulm.data.sources import load_labeled, select_split
    from gulm.infer import Ensemble
    from gulm.metrics import classification_metrics, single_class_note, write_metrics
    from gulm.plots import figure_path_problem, plot_evaluation
    from gulm.runtime.device import setup

    given = {k: v for k, v in (("data", data), ("split", split)) if v is not None}
    cfg = config_from(EvaluateConfig, checkpoint, {**given, **options}, value_field="checkpoint")
    problem = figure_path_problem(cfg.figure) if cfg.figure else None
    if problem:
        raise ValueError(f"{option_name('figure')} {cfg.figure}: {problem}")
    device = setup(cfg.device, cfg.threads)
    ens = Ensemble.load([cfg.checkpoint, *cfg.ensemble], device, cfg.dtype)
    seqs, labels = select_split(load_labeled(cfg.data), cfg.split)
    if not seqs:
        raise ValueError(f"the data has no sequences in split {cfg.split!r}")
    y, _ = encode_labels(labels, ens.classes)
    warn_short_of_span(ens, seqs, None, f"the {cfg.split} split")
    probs = ens.probs(seqs, cfg.bs, cfg.rc_average, cfg.progress, name=f"{cfg.split} split")
    metrics = classification_metrics(y, probs, ens.classes)
    note = single_class_note(y, ens.classes)
    if note:
        what = "the data" if cfg.split == "all" else f"the {cfg.split} split"
        warnings.warn(f"{what} holds {note}", DataWarning, stacklevel=2)
    base = baseline_probs(ens.members[0].path, seqs, ens.classes)  # did pretraining pay off?
    if base is not None:
        metrics["baseline"] = {**classification_metrics(y, base[1], ens.classes), "name": base[0]}
    if cfg.figure:
        curves = {model_label(len(ens.members)): probs, **({base[0]: base[1]} if base is not None else {})}
        plot_evaluation(curves, y, ens.classes, cfg.figure, f"{cfg.split} split, {len(seqs):,} sequences")
    if cfg.json:  # an ensemble's JSON names the checkpoints averaged
        members = {"ensemble_of": [m.path for m in ens.members]} if len(ens.members) > 1 else {}
        write_metrics(cfg.json, {**metrics, **members})
    return metrics


def model_label(members: int) -> str:
    """How tables and figures name a classifier, or the mean of ``members`` classifiers."""
    return f"gulm, mean of {members} models" if members > 1 else "gulm"


def warn_short_of_span(ens, seqs, ids, what: str) -> None:
    """A DataWarning when sequences are shorter than the windows a positional k-mer branch was
    trained on (``--kmer-positional``): it counts k-mers by their place, so they are misread."""
    from gulm.data.errors import DataWarning

    short, span = ens.short_of_span(seqs)
    if short.size:
        first = int(short[0])
        name = repr(ids[first]) if ids is not None else f"sequence {first + 1}"
        warnings.warn(f"{what}: {short.size} of {len(seqs)} sequences are shorter than the {span} bases the "
                      f"classifier's positional k-mer branch reads by place (--kmer-positional), e.g. {name} "
                      f"({len(seqs[first])} bases): give windows cut as the training ones were", DataWarning,
                      stacklevel=3)


def read_queries(cfg: PredictConfig) -> tuple[list[str], list[str]]:
    """(ids, sequences) to predict: the records of ``cfg.fasta``, then ``cfg.sequences``
    (named seq1, seq2, ...). Repeated ids are made unique (``x``, ``x_2``...) with a warning."""
    from gulm.data.fasta import iter_fasta, unique_ids

    ids, seqs = [], []
    if cfg.fasta:
        for name, seq in iter_fasta(cfg.fasta):
            ids.append(name)
            seqs.append(seq)
    for i, s in enumerate(cfg.sequences):
        _check_query(s, i)
        ids.append(f"seq{i + 1}")
        seqs.append(s)
    if not seqs:
        raise ValueError(f"nothing to predict: give sequences or {option_name('fasta')}")
    if cfg.fasta and cfg.sequences:
        ids = unique_ids(ids, f"{cfg.fasta} and the sequences given", "ids")
    return ids, seqs


def _check_query(seq: str | bytes, i: int) -> None:
    """Refuse the ``i``-th sequence given on the command line unless it holds nucleotide symbols
    only; a FASTA path given there (existing or not) is named as such, with the option it needs."""
    from gulm.data.fasta import check_sequence, foreign_symbol

    if foreign_symbol(seq) is None:
        return
    text = seq.decode("utf-8", "replace") if isinstance(seq, (bytes, bytearray)) else seq
    if os.path.isfile(text):
        raise ValueError(f"{text!r} is a file, not a sequence: give a FASTA with {option_name('fasta')} {text}")
    if "/" in text or text.lower().endswith((".fa", ".fasta", ".fna", ".gz", ".bz2", ".xz", ".zst")):
        raise ValueError(f"{text!r}: no such file, and not a sequence (FASTA files are given with "
                         f"{option_name('fasta')})")
    shown = text[:20] + ("..." if len(text) > 20 else "")
    check_sequence(seq, f"sequence {i + 1} given on the command line ({shown!r})")


#: below this fraction of known k-mers a prediction is flagged as mostly unknown
MOSTLY_UNKNOWN = 0.5


def valid_fractions(data, unk_id: int) -> np.ndarray:
    """[N] share of each tokenized sequence's k-mers that are known (only A/C/G/T in the
    window), i.e. not the unknown token."""
    unknown = np.add.reduceat((data.tokens == unk_id).astype(np.int64), data.offsets[:-1]) if len(data) else []
    return 1.0 - np.asarray(unknown, dtype=np.float64) / np.maximum(data.lengths, 1)


def predict(checkpoint: str | PredictConfig | None = None, sequences=None, **options):
    """Class probabilities [N, C] of sequences (str or bytes, plus the records of ``fasta=``)
    and the class names; options are :class:`~gulm.configs.PredictConfig`'s fields (``out=``
    also writes the predictions TSV, with a ``valid_fraction`` column: the share of each
    sequence's k-mers made of A/C/G/T only). Sequences that are mostly unknown k-mers (N or
    IUPAC codes) give a DataWarning with their count: their probabilities mean little."""
    from gulm.data.errors import DataWarning
    from gulm.infer import Ensemble, write_predictions
    from gulm.runtime.device import setup

    if sequences is not None:  # one sequence as a str or bytes is one query (config_from lists it)
        sequences = sequences if isinstance(sequences, (str, bytes)) else list(sequences)
    given = {"sequences": sequences} if sequences is not None else {}
    cfg = config_from(PredictConfig, checkpoint, {**given, **options}, value_field="checkpoint")
    device = setup(cfg.device, cfg.threads)
    ens = Ensemble.load([cfg.checkpoint, *cfg.ensemble], device, cfg.dtype)
    ids, seqs = read_queries(cfg)
    sets = ens.tokenize(seqs, cfg.rc_average, name=cfg.fasta or "the sequences")
    probs = ens.probs_of_sets(sets, cfg.bs, cfg.rc_average, cfg.progress)
    warn_short_of_span(ens, seqs, ids, cfg.fasta or "the sequences")
    known = valid_fractions(sets[0], ens.members[0].tokenizer.unk_id)  # as the first member reads them
    low = np.flatnonzero(known < MOSTLY_UNKNOWN)
    if low.size:
        first = int(low[0])
        warnings.warn(
            f"{low.size} of {len(ids)} sequences are mostly unknown k-mers (N or IUPAC codes; valid_fraction < "
            f"{MOSTLY_UNKNOWN}), e.g. {ids[first]!r} (valid_fraction {known[first]:.2f}); their probabilities "
            "say little about the sequence", DataWarning, stacklevel=2)
    if cfg.out:
        write_predictions(sys.stdout if cfg.out == "-" else cfg.out, ids, probs, ens.classes,
                          {"valid_fraction": known})
    return np.asarray(probs), ens.classes
