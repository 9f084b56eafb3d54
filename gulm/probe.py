"""Which language model suits a labelled set? A linear probe, before any classifier trains.

Each language model's encoder, frozen, turns the train and valid sequences into pooled features
([last, max, mean] of the last layer: the classifier head's input, :class:`gulm.infer.Encoder`);
a standardised logistic regression (:func:`gulm.baseline.fit_kmer_logreg`, C chosen by valid
accuracy) is fitted on the train rows and scored on the valid rows. The k-mer (k = 1..6)
logistic regression of the same split is fitted the same way as the reference line. Test
sequences are never read.

It costs one forward pass per model (about a minute for 7,000 sequences of 150 bp on two CPU
cores), against several minutes to an hour for each classifier. On task 1 of the reproduction
(``REPRODUCTION.md``) the probe ranked four E. coli and bacterial LMs in the order their trained
classifiers came in, and told apart two LMs of the same settings and different training seeds
whose valid losses differed by 0.004 (probe .827 and .873; classifiers .910 and .953 on test).

    gulm probe bacteria-3m1s runs/lm_a runs/lm_b --csv set.csv
"""
from __future__ import annotations

import json
import os
import time
from typing import Sequence

import numpy as np

from gulm.configs.commands import KMER_CS

__all__ = ["linear_probe", "probe_lms", "PROBE_METRICS"]

#: metrics of each probe row, on the valid split
PROBE_METRICS = ("accuracy", "mcc", "roc_auc")


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
                 classes: Sequence[str], *, Cs: Sequence[float] = KMER_CS, max_iter: int = 500) -> dict:
    """Valid metrics of a standardised logistic regression fitted on ``x_train`` (C chosen by
    valid accuracy): ``{"valid": {accuracy, mcc, roc_auc}, "C", "n_features", "fit_seconds"}``."""
    from gulm.baseline import fit_kmer_logreg
    from gulm.metrics import classification_metrics

    t0 = time.perf_counter()
    model = fit_kmer_logreg(x_train, y_train, x_valid, y_valid, classes, Cs=Cs, max_iter=max_iter)
    metrics = classification_metrics(y_valid, model.probs_from_features(x_valid), classes)
    return {"valid": {k: metrics[k] for k in PROBE_METRICS if k in metrics}, "C": model.C,
            "n_features": int(x_train.shape[1]), "fit_seconds": round(time.perf_counter() - t0, 2)}


def probe_lms(cfg=None, **options) -> dict:
    """Probe every language model of ``cfg.lms`` (shipped names or checkpoint folders, LM or
    classifier) on the labelled data's train and valid splits, beside the k-mer LR. Returns
    ``{"classes", "n_train", "n_valid", "metric", "rows": {name: probe row}, "ranking"}`` where
    ``ranking`` lists the LMs best first by ``metric`` (MCC for two classes, else accuracy)."""
    from gulm.baseline import kmer_features
    from gulm.configs import ProbeConfig, option_name
    from gulm.configs.fields import config_from
    from gulm.data.batches import encode_labels
    from gulm.data.sources import label_source, load_labeled, select_split
    from gulm.infer import Encoder
    from gulm.runtime.checkpoint import resolve_checkpoint
    from gulm.runtime.device import setup

    cfg = config_from(ProbeConfig, cfg, options, value_field="lms")
    if not cfg.lms:
        raise ValueError("name at least one language model to probe (a shipped name from `gulm models`, "
                         "or a checkpoint folder)")
    if cfg.batch_size < 1:
        raise ValueError(f"{option_name('batch_size')} must be >= 1")
    if cfg.bins < 0:
        raise ValueError(f"{option_name('bins')} must be 0 or a number of parts, got {cfg.bins}")
    for name in cfg.lms:  # a wrong name fails before any data is read
        resolve_checkpoint(name)
    device = setup(cfg.device, cfg.threads)
    ds = load_labeled(cfg.data)
    where = cfg.data.csv or cfg.data.bed or label_source(cfg.data)
    train, valid = select_split(ds, "train"), select_split(ds, "valid")
    if not train[0] or not valid[0]:
        raise ValueError(f"{where}: the probe needs train and valid sequences; found {len(train[0])} train and "
                         f"{len(valid[0])} valid (give a split column or a --valid-frac above 0)")
    y_train, classes = encode_labels(train[1])
    if len(classes) < 2:
        raise ValueError(f"{label_source(cfg.data)}: the training split holds one class ({classes[0]!r}); "
                         "a probe needs two")
    unseen = sorted(set(valid[1]) - set(classes))
    if unseen:
        raise ValueError(f"{label_source(cfg.data)}: valid labels {unseen} never occur in the training split")
    y_valid, _ = encode_labels(valid[1], classes)
    fit = dict(Cs=cfg.cs, max_iter=cfg.max_iter)
    t0 = time.perf_counter()
    rows = {"k-mer LR": linear_probe(kmer_features(train[0], cfg.ks), y_train, kmer_features(valid[0], cfg.ks),
                                     y_valid, classes, **fit)}
    rows["k-mer LR"]["feature_seconds"] = round(time.perf_counter() - t0 - rows["k-mer LR"]["fit_seconds"], 1)
    for name in cfg.lms:
        t0 = time.perf_counter()
        enc = Encoder.load(name, device, cfg.dtype)
        x = enc.features(list(train[0]) + list(valid[0]), bs=cfg.batch_size, progress=cfg.progress, bins=cfg.bins)
        n = len(train[0])
        rows[name] = {**linear_probe(x[:n], y_train, x[n:], y_valid, classes, **fit),
                      "feature_seconds": round(time.perf_counter() - t0, 1)}
    metric = "mcc" if len(classes) == 2 else "accuracy"
    ranking = sorted(cfg.lms, key=lambda n: -rows[n]["valid"][metric])
    out = {"classes": classes, "n_train": len(train[0]), "n_valid": len(valid[0]), "metric": metric,
           "rows": rows, "ranking": ranking}
    if cfg.out:  # whole or not at all: written beside, then renamed
        os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
        tmp = f"{cfg.out}.tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, cfg.out)
    return out
