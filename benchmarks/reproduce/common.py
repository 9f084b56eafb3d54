"""Small shared helpers: machine description, JSON output, fold summaries."""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["machine_info", "write_json", "summarize_folds", "SUMMARY_KEYS"]

SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "mcc", "specificity", "roc_auc")


def machine_info() -> dict:
    """CPU model, logical cores, load average and library versions (results are only comparable
    on the same machine and load)."""
    import sklearn
    import torch

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version(), "platform": platform.platform()}
    try:
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.floating,)):
        return _clean(float(v))
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_json(path: str | os.PathLike, obj) -> None:
    """Indented JSON (NaN as null), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(obj), indent=1) + "\n")
    os.replace(tmp, path)


def save_figure(fig, path: str | os.PathLike, title: str, fontsize: int = 9) -> Path:
    """Title, lay out, write (its folder made) and close a matplotlib figure; returns the path."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summarize_folds(metrics: Sequence[Mapping], keys: Sequence[str] = SUMMARY_KEYS) -> dict:
    """``{key: {"mean": m, "sd": s, "n": folds}}`` over per-fold metric dicts (sd with ddof=1)."""
    out = {}
    for k in keys:
        vals = np.array([m[k] for m in metrics if m.get(k) is not None], dtype=float)
        vals = vals[~np.isnan(vals)]
        if vals.size:
            out[k] = {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
                      "n": int(vals.size)}
    return out
