"""The simple baseline of every table: k-mer frequencies + logistic regression.

Features: for each k in ``ks`` (default 1..6) the counts of all 4^k k-mers of the sequence
(windows with a non-ACGT base skipped), divided by the number of counted windows, so each k block
sums to 1; with ``both_strands`` the reverse-complement k-mers are counted too (strand-symmetric
features). Features are standardised on the training split. The classifier is scikit-learn's
``LogisticRegression`` (L2, lbfgs, multinomial for more than two classes); its inverse penalty C
is chosen from ``Cs`` by accuracy on the valid split, the model is trained on the train split
only (like the model rows) and scored on test with :func:`gulm.metrics.classification_metrics`.

The length-only baseline (task 5) is the same logistic regression on log10(sequence length).
"""
from __future__ import annotations

import time
import warnings
from typing import Sequence

import numpy as np

from gulm.data import read_labeled_csv
from gulm.data.batches import encode_labels
from gulm.metrics import classification_metrics

from .homology import _rolling, encode_2bit

__all__ = ["kmer_features", "length_features", "fit_logreg", "run_baseline", "DEFAULT_CS"]

DEFAULT_CS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def kmer_features(sequences: Sequence[str], ks: Sequence[int] = (1, 2, 3, 4, 5, 6), *,
                  both_strands: bool = False, dtype=np.float32) -> np.ndarray:
    """[N, sum(4^k)] normalised k-mer frequencies (see the module doc)."""
    widths = [4 ** k for k in ks]
    offsets = np.concatenate(([0], np.cumsum(widths)))
    out = np.zeros((len(sequences), int(offsets[-1])), dtype=dtype)
    for i, seq in enumerate(sequences):
        codes = encode_2bit(seq)
        for k, off, w in zip(ks, offsets[:-1], widths):
            fwd, rev, valid = _rolling(codes, k)
            if not valid.any():
                continue
            counts = np.bincount(fwd[valid].astype(np.int64), minlength=w)
            if both_strands:
                counts = counts + np.bincount(rev[valid].astype(np.int64), minlength=w)
            out[i, off:off + w] = counts / counts.sum()
    return out


def length_features(sequences: Sequence[str]) -> np.ndarray:
    """[N, 1] log10 of the sequence length."""
    return np.log10(np.maximum(1, np.array([len(s) for s in sequences], dtype=np.float64)))[:, None]


def fit_logreg(x_train, y_train, x_valid, y_valid, Cs: Sequence[float] = DEFAULT_CS, max_iter: int = 500):
    """Standardise, fit one LogisticRegression per C, keep the best valid accuracy (ties: the
    smaller C). Returns (scaler, model, C, {C: valid accuracy})."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    xt = scaler.transform(x_train).astype(x_train.dtype, copy=False)
    xv = scaler.transform(x_valid).astype(x_valid.dtype, copy=False)
    best, scores = None, {}
    for C in sorted(Cs):
        model = LogisticRegression(C=C, max_iter=max_iter, tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(xt, y_train)
        acc = float((model.predict(xv) == y_valid).mean())
        scores[C] = acc
        if best is None or acc > best[2]:
            best = (model, C, acc)
    return scaler, best[0], best[1], scores


def _probs(model, x, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class index, also when a class is absent from train."""
    p = model.predict_proba(x)
    out = np.zeros((x.shape[0], n_classes))
    out[:, model.classes_] = p
    return out


def run_baseline(csv: str, *, features: str = "kmer", ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
                 both_strands: bool = False, Cs: Sequence[float] = DEFAULT_CS, max_iter: int = 500) -> dict:
    """Fit and score one baseline on a ``sequence,label,set`` CSV. Returns a result dict with the
    test metrics, the valid accuracy per C and wall times."""
    t0 = time.perf_counter()
    ds = read_labeled_csv(csv)
    if ds.split is None:
        raise ValueError(f"{csv}: needs a set column with train/valid/test")
    split = np.asarray(ds.split)
    y_all, classes = encode_labels(ds.labels)
    if features == "kmer":
        x_all = kmer_features(ds.sequences, ks, both_strands=both_strands)
        desc = {"features": "kmer", "ks": list(ks), "both_strands": both_strands}
    elif features == "length":
        x_all = length_features(ds.sequences)
        desc = {"features": "log10_length"}
    else:
        raise ValueError(f"features must be 'kmer' or 'length', not {features!r}")
    t_feat = time.perf_counter() - t0
    tr, va, te = (split == "train"), (split == "valid"), (split == "test")
    t1 = time.perf_counter()
    scaler, model, C, scores = fit_logreg(x_all[tr], y_all[tr], x_all[va], y_all[va], Cs, max_iter)
    t_fit = time.perf_counter() - t1
    probs = _probs(model, scaler.transform(x_all[te]).astype(x_all.dtype, copy=False), len(classes))
    metrics = classification_metrics(y_all[te], probs, classes)
    vprobs = _probs(model, scaler.transform(x_all[va]).astype(x_all.dtype, copy=False), len(classes))
    return {
        "row": "kmer_logreg" if features == "kmer" else "length_logreg",
        **desc, "C": C, "valid_accuracy_by_C": {str(c): a for c, a in scores.items()},
        "metrics": metrics, "valid_metrics": classification_metrics(y_all[va], vprobs, classes),
        "n_features": int(x_all.shape[1]), "n_train": int(tr.sum()), "n_valid": int(va.sum()), "n_test": int(te.sum()),
        "classes": classes, "feature_seconds": round(t_feat, 2), "fit_seconds": round(t_fit, 2),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
