"""The training record: ``log.csv`` (one row per epoch, rewritten atomically), TensorBoard
scalars when tensorboard is installed, and the one-line summary printed after each epoch."""
from __future__ import annotations

import csv
import os

__all__ = ["write_log_csv", "tensorboard_scalars", "epoch_line"]

_SHOWN = ("stage", "epoch", "train_loss", "valid_loss", "valid_accuracy", "valid_perplexity", "valid_mcc",
          "valid_roc_auc", "seconds")
_WRITERS = {}


def write_log_csv(out_dir: str, rows: list[dict]) -> None:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "log.csv")
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("stage", "epoch"), k))
    with open(path + ".tmp", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(path + ".tmp", path)


def tensorboard_scalars(out_dir: str, row: dict, step: int) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: the CSV log is the record
        return
    w = _WRITERS.get(out_dir)
    if w is None:
        w = _WRITERS[out_dir] = SummaryWriter(os.path.join(out_dir, "tb"))
    for k, v in row.items():
        if isinstance(v, (int, float)) and k not in ("stage", "epoch"):
            w.add_scalar(k, v, step)
    w.flush()


def epoch_line(desc: str, row: dict) -> str:
    shown = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items() if k in _SHOWN}
    return f"{desc} " + "  ".join(f"{k}={v}" for k, v in shown.items())
