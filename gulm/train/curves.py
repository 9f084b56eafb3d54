"""``curves.png``: the figure each training run writes beside its ``log.csv`` when it ends, the
loss (train and valid) and the valid metrics epoch by epoch, the stages of gradual unfreezing and
the epoch kept marked."""
from __future__ import annotations

import numpy as np

from gulm.figure import pyplot, save_figure

__all__ = ["plot_training_curves", "kept_epoch", "CURVES_PNG"]

#: the training-curve figure each training run writes beside its log.csv
CURVES_PNG = "curves.png"
_METRICS = (("valid_accuracy", "accuracy"), ("valid_mcc", "MCC"), ("valid_roc_auc", "ROC-AUC"))


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def kept_epoch(rows: list[dict]) -> int | None:
    """The epoch (1-based, counted over all stages) a run that selects its best valid epoch kept:
    the last row whose ``best`` column is true; None when no row is marked."""
    marked = [i + 1 for i, r in enumerate(rows) if str(r.get("best", "")).strip().lower() in ("true", "1")]
    return marked[-1] if marked else None


def plot_training_curves(rows: list[dict], path: str, title: str = "") -> str | None:
    """The loss (train and valid) and the valid metrics of a run, epoch by epoch (``rows``: the
    rows of its log.csv), stages of gradual unfreezing marked by dashed lines, and the epoch kept
    (:func:`kept_epoch`) circled. None (nothing written) without rows."""
    if not rows:
        return None
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    x = np.arange(1, len(rows) + 1)
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        y = np.array([_number(r.get(key)) for r in rows])
        if np.isfinite(y).any():
            loss_ax.plot(x, y, marker="o", ms=3, lw=1.3, label=f"{label} loss")
    metrics = [(k, name) for k, name in _METRICS if any(np.isfinite(_number(r.get(k))) for r in rows)]
    if any("valid_perplexity" in r for r in rows):  # a language model: its accuracy is the next token's
        metrics = [(k, "next-token accuracy" if k == "valid_accuracy" else name) for k, name in metrics]
    for key, name in metrics:
        metric_ax.plot(x, [_number(r.get(key)) for r in rows], marker="o", ms=3, lw=1.3, label=f"valid {name}")
    kept = kept_epoch(rows)
    if kept is not None and metrics:
        metric_ax.plot([kept] * len(metrics), [_number(rows[kept - 1].get(k)) for k, _ in metrics], "o", ms=11,
                       mfc="none", mec="black", label=f"epoch kept ({kept})")
    stages = [_number(r.get("stage")) for r in rows]
    for ax in (loss_ax, metric_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for i in range(1, len(rows)):
            if stages[i] != stages[i - 1]:
                ax.axvline(x[i] - 0.5, color="gray", ls="--", lw=0.8)
        ax.set_xlabel("epoch" + (" (dashed: a new stage of unfreezing)" if len(set(stages)) > 1 else ""))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    loss_ax.set(ylabel="cross-entropy (nats)", title="loss")
    metric_ax.set(ylabel="valid metric", title="validation" if metrics else "no validation metrics")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
