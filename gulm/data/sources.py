"""Labelled data as a command asks for it (:class:`~gulm.configs.DataConfig`): read from one
source, every sequence given a ``split`` of train, valid or test."""
from __future__ import annotations

from gulm.configs.base import DataConfig
from gulm.configs.fields import option_name
from gulm.data.labeled import SPLIT_NAMES, LabeledSequences

__all__ = ["load_labeled", "select_split"]


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
