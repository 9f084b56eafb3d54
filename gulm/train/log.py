"""The training record: ``log.csv`` (one row per epoch, rewritten atomically), TensorBoard
scalars when tensorboard is installed, the one-line summary printed after each epoch (with or
without progress bars) and the notices of a run (resuming, starting fresh) on stderr."""
from __future__ import annotations

import csv
import math
import os
import sys

__all__ = ["write_log_csv", "tensorboard_scalars", "epoch_line", "notice"]

_SHOWN = ("train_loss", "valid_loss", "valid_perplexity", "valid_accuracy", "valid_mcc", "valid_roc_auc")
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


def epoch_line(desc: str, row: dict, epochs: int | None = None) -> str:
    """``classifier stage 1 epoch 2/3: train_loss=0.6931  valid_loss=0.6012  valid_mcc=0.41  (12.3 s)``."""
    def shown(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4f}"
        return str(v)

    head = f"{desc} stage {row.get('stage', 0)} epoch {row.get('epoch', '?')}" + (f"/{epochs}" if epochs else "")
    values = "  ".join(f"{k}={shown(row[k])}" for k in _SHOWN if k in row)
    seconds = f"  ({row['seconds']:.1f} s)" if isinstance(row.get("seconds"), (int, float)) else ""
    return f"{head.strip()}: {values}{seconds}"


def notice(text: str) -> None:
    """One line about the run on stderr (``gulm: ...``)."""
    print(f"gulm: {text}", file=sys.stderr, flush=True)
