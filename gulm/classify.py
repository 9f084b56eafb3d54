"""``gulm evaluate`` and ``gulm predict``: a trained classifier on labelled data (metrics) or on
sequences (probabilities), through :class:`gulm.infer.Classifier`."""
from __future__ import annotations

import sys

import numpy as np

from gulm.configs import DataConfig, EvaluateConfig, PredictConfig
from gulm.configs.fields import config_from, option_name

__all__ = ["evaluate", "predict", "read_queries"]


def evaluate(checkpoint: str | EvaluateConfig | None = None, data: DataConfig | None = None,
             split: str | None = None, **options) -> dict:
    """Metrics of a classifier checkpoint on one split of a data source (``split='all'`` for
    every sequence); options are :class:`~gulm.configs.EvaluateConfig`'s fields (``json=``
    also writes them to a file)."""
    from gulm.data.batches import TokenizedSet, encode_labels
    from gulm.data.sources import load_labeled, select_split
    from gulm.infer import Classifier
    from gulm.metrics import classification_metrics, write_metrics
    from gulm.runtime.device import setup

    given = {k: v for k, v in (("data", data), ("split", split)) if v is not None}
    cfg = config_from(EvaluateConfig, checkpoint, {**given, **options}, value_field="checkpoint")
    device = setup(cfg.device, cfg.threads)
    clf = Classifier.load(cfg.checkpoint, device, cfg.dtype)
    seqs, labels = select_split(load_labeled(cfg.data), cfg.split)
    if not seqs:
        raise ValueError(f"the data has no sequences in split {cfg.split!r}")
    y, _ = encode_labels(labels, clf.classes)
    rc = clf.rc_average if cfg.rc_average is None else cfg.rc_average
    data_set = TokenizedSet.build(seqs, clf.tokenizer, y, with_rc=rc, name=f"{cfg.split} split")
    probs = clf.probs_of_set(data_set, cfg.bs, rc, cfg.progress)
    metrics = classification_metrics(y, probs, clf.classes)
    if cfg.json:
        write_metrics(cfg.json, metrics)
    return metrics


def read_queries(cfg: PredictConfig) -> tuple[list[str], list[str]]:
    """(ids, sequences) to predict: the records of ``cfg.fasta``, then ``cfg.sequences``
    (named seq1, seq2, ...)."""
    ids, seqs = [], []
    if cfg.fasta:
        from gulm.data.genome import Genome

        for name, seq in Genome(cfg.fasta).records():
            ids.append(name)
            seqs.append(seq)
    for i, s in enumerate(cfg.sequences):
        ids.append(f"seq{i + 1}")
        seqs.append(s)
    if not seqs:
        raise ValueError(f"nothing to predict: give sequences or {option_name('fasta')}")
    return ids, seqs


def predict(checkpoint: str | PredictConfig | None = None, sequences=None, **options):
    """Class probabilities [N, C] of sequences (str or bytes, plus the records of ``fasta=``)
    and the class names; options are :class:`~gulm.configs.PredictConfig`'s fields (``out=``
    also writes the predictions TSV)."""
    from gulm.infer import Classifier, write_predictions
    from gulm.runtime.device import setup

    given = {"sequences": list(sequences)} if sequences is not None else {}
    cfg = config_from(PredictConfig, checkpoint, {**given, **options}, value_field="checkpoint")
    device = setup(cfg.device, cfg.threads)
    clf = Classifier.load(cfg.checkpoint, device, cfg.dtype)
    ids, seqs = read_queries(cfg)
    probs = clf.probs(seqs, cfg.bs, cfg.rc_average, cfg.progress)
    if cfg.out:
        write_predictions(sys.stdout if cfg.out == "-" else cfg.out, ids, probs, clf.classes)
    return np.asarray(probs), clf.classes
