"""Labelled data as a command asks for it (:class:`~gulm.configs.DataConfig`): read from one
source, every sequence given a ``split`` of train, valid or test; and the checks that data must
pass before a classifier is trained on it (:func:`check_training_data`)."""
from __future__ import annotations

import warnings

from gulm.configs.base import DataConfig
from gulm.configs.fields import option_name
from gulm.data.errors import DataWarning, LabeledDataError
from gulm.data.labeled import SPLIT_NAMES, LabeledSequences

__all__ = ["load_labeled", "select_split", "label_source", "check_training_data"]


def load_labeled(cfg: DataConfig) -> LabeledSequences:
    """The labelled sequences of ``cfg`` with a split for every sequence: from the data's own
    split column when there is one, else a stratified random split."""
    from gulm.data import labeled
    from gulm.data.genome import Genome

    sources = sum(bool(x) for x in (cfg.csv, cfg.fasta, cfg.bed))
    if sources != 1:
        raise ValueError(
            f"give exactly one classification data source: {option_name('csv')}, "
            f"{option_name('fasta', DataConfig)} (one FASTA per class, LABEL=PATH) or "
            f"{option_name('bed')} with {option_name('genome')}")
    if cfg.csv:
        split_col = cfg.split_col if cfg.split_col not in ("", "none", None) else None
        ds = labeled.read_labeled_csv(cfg.csv, sequence_col=cfg.sequence_col, label_col=cfg.label_col,
                                      split_col=split_col)
    elif cfg.fasta:
        ds = labeled.read_labeled_fasta(cfg.fasta)
    else:
        if not cfg.genome:
            raise ValueError(f"a BED data source needs a genome FASTA ({option_name('genome')})")
        ds = labeled.read_labeled_bed(cfg.bed, Genome(cfg.genome))
    if ds.split is None:
        fr = (1.0 - cfg.valid_frac - cfg.test_frac, cfg.valid_frac, cfg.test_frac)
        ds = ds.random_split(fr, seed=cfg.split_seed)
    unknown = sorted(set(ds.split) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(f"unknown split names {unknown[:5]} in the data (expected train, valid, test)")
    return ds


def select_split(ds: LabeledSequences, split: str) -> tuple[list[str], list[str]]:
    """(sequences, labels) of one split, or of every sequence for ``split='all'``."""
    if split == "all":
        return list(ds.sequences), list(ds.labels)
    idx = [i for i, s in enumerate(ds.split) if s == split]
    return [ds.sequences[i] for i in idx], [ds.labels[i] for i in idx]


def label_source(cfg: DataConfig) -> str:
    """Where the labels of ``cfg`` come from, in the user's terms (for messages)."""
    if cfg.csv:
        return f"{cfg.csv}: label column {cfg.label_col!r} ({option_name('label_col')})"
    if cfg.fasta:
        return f"the {option_name('fasta', DataConfig)} files ({', '.join(f'{k}={v}' for k, v in cfg.fasta.items())})"
    return f"{cfg.bed}: the BED name column"


def _given(name: str, value) -> str:
    """An option with its value as the user writes it (``--valid-frac 0.1``, ``valid_frac=0.1``)."""
    flag = option_name(name)
    return f"{flag}{value}" if flag.endswith("=") else f"{flag} {value}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _count_text(counts: dict[str, dict[str, int]], label: str) -> str:
    return ", ".join(f"{counts.get(s, {}).get(label, 0)} {s}" for s in SPLIT_NAMES)


def check_training_data(ds: LabeledSequences, cfg: DataConfig) -> None:
    """Refuse labelled data a classifier cannot be trained and scored on, naming the label
    source and the class: fewer than two classes; a class without training sequences; a drawn
    split that leaves a class without valid or test sequences (its fraction is not 0); a valid or
    test split (named by the data) with one class only. What remains is said, not silent: an empty
    valid or test split, and a split that lacks some classes of a multi-class task, each give a
    DataWarning saying what follows from it."""
    where = label_source(cfg)
    classes = ds.classes
    if len(classes) < 2:
        only = classes[0] if classes else "none"
        raise LabeledDataError(f"{where}: one class only ({only!r}, {_n(len(ds), 'sequence')}); a classifier needs "
                               "at least two")
    counts = ds.split_counts()
    no_train = [c for c in classes if counts.get("train", {}).get(c, 0) == 0]
    drawn = ds.drawn_from
    if drawn is not None:
        wanted = dict(zip(SPLIT_NAMES, drawn))
        short = [c for c in classes if any(wanted[s] > 0 and counts.get(s, {}).get(c, 0) == 0 for s in SPLIT_NAMES)]
        if short:
            c = short[0]
            more = "" if len(short) == 1 else f" (and {len(short) - 1} more class{'es' if len(short) > 2 else ''})"
            raise LabeledDataError(
                f"{where}: class {c!r} has {_n(sum(counts[s].get(c, 0) for s in counts), 'sequence')}, too few for "
                f"the random split ({_given('valid_frac', cfg.valid_frac)}, {_given('test_frac', cfg.test_frac)}): "
                f"it gets {_count_text(counts, c)}{more}; every class needs sequences in each "
                f"split: give more sequences, other fractions, or a split column ({option_name('split_col')})")
    if no_train:
        c = no_train[0]
        raise LabeledDataError(f"{where}: class {c!r} has no training sequences ({_count_text(counts, c)}); "
                               "a classifier cannot learn a class it never sees")
    for split in ("valid", "test"):
        have = [c for c in classes if counts.get(split, {}).get(c, 0)]
        if not have:
            follows = (f"no validation metrics per epoch, and {option_name('select')} best cannot choose an epoch"
                       if split == "valid" else "the final metrics are computed on the valid split"
                       if any(counts.get("valid", {}).values()) else "no final metrics")
            warnings.warn(f"{where}: no {split} split: {follows}", DataWarning, stacklevel=2)
        elif len(have) < 2:
            raise LabeledDataError(
                f"{where}: the {split} split holds one class only ({have[0]!r}, "
                f"{_n(counts[split][have[0]], 'sequence')}), so its MCC and ROC-AUC are undefined; give it sequences of every class")
        elif len(have) < len(classes):
            lack = [c for c in classes if c not in have]
            warnings.warn(f"{where}: the {split} split has no sequences of {len(lack)} of {len(classes)} classes "
                          f"({', '.join(repr(c) for c in lack[:5])}); its metrics cover the classes it has",
                          DataWarning, stacklevel=2)
