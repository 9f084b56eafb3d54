"""Classification metrics (scikit-learn), the ones Genomic-ULMFiT's tables report.

``classification_metrics(y_true, probs)`` returns accuracy, precision, recall, F1, MCC,
specificity, ROC-AUC and the confusion matrix. Binary tasks report precision/recall/F1 for
the positive class (label index 1); multiclass tasks report macro averages (specificity too).
"""
from __future__ import annotations

import json
import math
import warnings
from typing import Mapping, Sequence

import numpy as np

__all__ = ["classification_metrics", "single_class_note", "format_table", "write_metrics"]

SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "mcc", "specificity", "roc_auc")


def _specificity(cm: np.ndarray) -> float:
    """Macro-averaged true-negative rate over classes (the binary case: TN / (TN + FP))."""
    total = cm.sum()
    spec = []
    for c in range(cm.shape[0]):
        fp = cm[:, c].sum() - cm[c, c]
        tn = total - cm[c, :].sum() - cm[:, c].sum() + cm[c, c]
        spec.append(tn / (tn + fp) if tn + fp > 0 else float("nan"))
    # binary: the positive class is index 1, so its TNR is the usual specificity
    return float(spec[1]) if cm.shape[0] == 2 else float(np.nanmean(spec))


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Metrics of predicted class probabilities.

    Args:
        y_true: [N] integer labels in ``[0, C)``.
        probs: [N, C] class probabilities (rows sum to 1); predictions are the argmax.
        class_names: optional names of the C classes, stored in the result.

    Returns:
        dict with ``n``, ``accuracy``, ``precision``, ``recall``, ``f1``, ``mcc``,
        ``specificity``, ``roc_auc`` (NaN when only one class is present) and
        ``confusion_matrix`` (rows: true class, columns: predicted class).
    """
    with warnings.catch_warnings():
        # sklearn's warnings about a class absent from y_true: single_class_note says it in words
        warnings.filterwarnings("ignore", message=".*single label was found", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*(ill-defined|no (true|predicted) samples)")
        return _classification_metrics(y_true, probs, class_names)


def _classification_metrics(y_true, probs, class_names) -> dict:
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"probs must be [N, C] with N = {y_true.shape[0]}; got {probs.shape}")
    if y_true.size == 0:
        raise ValueError("no examples to score")
    n_classes = probs.shape[1]
    labels = np.arange(n_classes)
    y_pred = probs.argmax(axis=1)
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    binary = n_classes == 2
    avg = "binary" if binary else "macro"
    prf = dict(average=avg, zero_division=0)
    if not binary:
        prf["labels"] = labels
    out = {
        "n": int(y_true.size),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, **prf)),
        "recall": float(skm.recall_score(y_true, y_pred, **prf)),
        "f1": float(skm.f1_score(y_true, y_pred, **prf)),
        "mcc": float(skm.matthews_corrcoef(y_true, y_pred)),
        "specificity": _specificity(cm),
    }
    present = np.unique(y_true)
    if present.size < 2:
        out["roc_auc"] = float("nan")
    elif binary:
        out["roc_auc"] = float(skm.roc_auc_score(y_true, probs[:, 1]))
    else:
        # one-vs-rest macro AUC over the classes present in y_true
        p = probs[:, present] / np.clip(probs[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        if present.size == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true == present[1], p[:, 1]))
        else:
            out["roc_auc"] = float(
                skm.roc_auc_score(y_true, p, multi_class="ovr", average="macro", labels=present)
            )
    out["confusion_matrix"] = cm.tolist()
    if class_names is not None:
        out["classes"] = list(class_names)
    return out


def single_class_note(y_true, class_names: Sequence[str] | None = None) -> str | None:
    """Why some metrics are undefined when ``y_true`` holds one class only (None otherwise)."""
    present, counts = np.unique(np.asarray(y_true, dtype=np.int64), return_counts=True)
    if present.size != 1:
        return None
    name = class_names[int(present[0])] if class_names is not None else str(int(present[0]))
    return (f"one class only ({name!r}, {int(counts[0])} sequences): MCC (0 by convention), ROC-AUC (nan) "
            f"and the rates of the absent classes are undefined, since they compare classes; accuracy "
            f"here is the share predicted as {name!r}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def format_table(rows: Mapping[str, Mapping] | Mapping, keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A fixed-width text table: one row per named metrics dict (or a single dict)."""
    if rows and all(isinstance(v, Mapping) for v in rows.values()):
        named = dict(rows)
    else:
        named = {"": rows}
    width = max([len(n) for n in named] + [5])
    head = f"{'':<{width}}  " + "  ".join(f"{k:>11}" for k in keys)
    lines = [head, "-" * len(head)]
    for name, m in named.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_fmt(m.get(k, '')):>11}" for k in keys))
    return "\n".join(lines)


def write_metrics(path, metrics: Mapping) -> None:
    """Write metrics as JSON (NaN written as null)."""

    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, Mapping):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    with open(path, "w") as fh:
        json.dump(clean(metrics), fh, indent=2)
        fh.write("\n")
