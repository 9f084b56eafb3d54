"""The simple baseline of every table: k-mer frequencies + logistic regression.

Features: for each k in ``ks`` (default 1..6) the counts of all 4^k k-mers of the sequence
(windows with a non-ACGT base skipped), divided by the number of counted windows, so each k block
sums to 1; with ``both_strands`` the reverse-complement k-mers are counted too (strand-symmetric
features). Features are standardised on the training split. The features and the fit are
gulm's own (:mod:`gulm.baseline`, also behind ``gulm baseline``): scikit-learn's
``LogisticRegression`` (L2, lbfgs, multinomial for more than two classes); its inverse penalty C
is chosen from ``Cs`` by accuracy on the valid split, the model is trained on the train split
only (like the model rows) and scored on test with :func:`gulm.metrics.classification_metrics`.

The length-only baseline (task 5) is the same logistic regression on log10(sequence length); the
both-ends one (``kmer_ends``, task 5) counts the k-mers of the first and of the last
``ends_window`` nt as two blocks, the features of the classifiers' ``--kmer-window`` branch. The
strand-symmetric one (``kmer_both``, task 4) sums the counts of both strands, what a fixed
``--kmer-logreg`` branch fitted on both strands (``--rc-augment``) and averaged over them
(``--rc-average``) amounts to for a linear model. The gapped one (``kmer_gapped``, task 4) reads
the gapped k-mer spectrum of ``gapped`` = (window length, informative bases), both strands summed
(:func:`gulm.baseline.gapped_kmer_features`; the features of gkm-SVM, fitted by the same LR).
The positional one (``kmer_positional``, task 2) adds to the k-mer spectrum the counts of the
``positional`` = (k, bin) k-mers starting in each bin-base stretch of the sequence, up to the
longest training sequence (:func:`gulm.baseline.positional_kmer_features`; promoter windows are
aligned on their TSS, and a -10 box means something only at its place), given strand only: the
features of a classifier's ``--kmer-positional`` branch.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from gulm.baseline import (DEFAULT_CS, baseline_features, fit_kmer_logreg, gapped_kmer_features, kmer_features,
                           resolve_positional)
from gulm.data import read_labeled_csv
from gulm.data.batches import encode_labels
from gulm.metrics import classification_metrics

__all__ = ["kmer_features", "length_features", "fit_baseline", "run_baseline", "DEFAULT_CS"]


def length_features(sequences: Sequence[str]) -> np.ndarray:
    """[N, 1] log10 of the sequence length."""
    return np.log10(np.maximum(1, np.array([len(s) for s in sequences], dtype=np.float64)))[:, None]


def fit_baseline(csv: str, *, features: str = "kmer", ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
                 both_strands: bool = False, Cs: Sequence[float] = DEFAULT_CS, max_iter: int = 500,
                 ends_window: int = 1000, gapped: Sequence[int] = (10, 5), positional: Sequence[int] = (3, 3)) -> dict:
    """Fit one baseline on a ``sequence,label,set`` CSV (train split; C by valid accuracy). Returns
    the fitted model, every record's features (``x``), labels (``y``), split and classes, the
    feature description and the feature and fit seconds: what :func:`run_baseline` scores, and what
    ``ensemble.py --blend`` averages with a network's probabilities."""
    t0 = time.perf_counter()
    ds = read_labeled_csv(csv)
    if ds.split is None:
        raise ValueError(f"{csv}: needs a set column with train/valid/test")
    split = np.asarray(ds.split)
    y_all, classes = encode_labels(ds.labels)
    if features == "kmer":
        x_all = kmer_features(ds.sequences, ks, both_strands=both_strands)
        desc = {"features": "kmer", "ks": list(ks), "both_strands": both_strands}
    elif features == "kmer_both":  # both strands summed whatever both_strands says: the strand-symmetric LR
        x_all = kmer_features(ds.sequences, ks, both_strands=True)
        desc = {"features": "kmer_both", "ks": list(ks), "both_strands": True}
    elif features == "kmer_ends":  # the same spectrum over the first and the last ends_window bases, two blocks
        x_all = kmer_features(ds.sequences, ks, both_strands=both_strands, window=ends_window)
        desc = {"features": "kmer_ends", "ks": list(ks), "both_strands": both_strands, "window": ends_window}
    elif features == "kmer_gapped":  # gapped k-mers, both strands summed
        x_all = gapped_kmer_features(ds.sequences, *gapped, both_strands=True)
        desc = {"features": "kmer_gapped", "gapped": list(gapped), "both_strands": True}
    elif features == "kmer_positional":  # the spectrum + position-resolved k-mer counts, given strand
        span = resolve_positional(positional, [s for s, t in zip(ds.sequences, split) if t == "train"], "positional")
        x_all = baseline_features(ds.sequences, ks, positional=span)
        desc = {"features": "kmer_positional", "ks": list(ks), "positional": list(span), "both_strands": False}
    elif features == "length":
        x_all = length_features(ds.sequences)
        desc = {"features": "log10_length"}
    else:
        raise ValueError(f"features must be 'kmer', 'kmer_both', 'kmer_ends', 'kmer_gapped', 'kmer_positional' or "
                         f"'length', "
                         f"not {features!r}")
    t_feat = time.perf_counter() - t0
    tr, va = (split == "train"), (split == "valid")
    t1 = time.perf_counter()
    model = fit_kmer_logreg(x_all[tr], y_all[tr], x_all[va], y_all[va], classes, Cs=Cs, max_iter=max_iter)
    return {"model": model, "x": x_all, "y": y_all, "split": split, "classes": classes, "desc": desc,
            "feature_seconds": t_feat, "fit_seconds": time.perf_counter() - t1}


def run_baseline(csv: str, *, features: str = "kmer", **options) -> dict:
    """Fit and score one baseline on a ``sequence,label,set`` CSV (:func:`fit_baseline`'s options).
    Returns a result dict with the test metrics, the valid accuracy per C and wall times."""
    t0 = time.perf_counter()
    fit = fit_baseline(csv, features=features, **options)
    model, x_all, y_all, split, classes = fit["model"], fit["x"], fit["y"], fit["split"], fit["classes"]
    tr, va, te = (split == "train"), (split == "valid"), (split == "test")
    probs = model.probs_from_features(x_all[te])
    metrics = classification_metrics(y_all[te], probs, classes)
    vprobs = model.probs_from_features(x_all[va])
    return {
        "row": "kmer_logreg" if features == "kmer" else f"{features}_logreg",
        **fit["desc"], "C": model.C, "valid_accuracy_by_C": {str(c): a for c, a in model.valid_accuracy_by_C.items()},
        "metrics": metrics, "valid_metrics": classification_metrics(y_all[va], vprobs, classes),
        "n_features": int(x_all.shape[1]), "n_train": int(tr.sum()), "n_valid": int(va.sum()), "n_test": int(te.sum()),
        "classes": classes, "feature_seconds": round(fit["feature_seconds"], 2), "fit_seconds": round(fit["fit_seconds"], 2),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
