"""Do the LM's valid loss and its frozen probe predict the classifier trained on it? One figure.

For each row given (one task, one dataset and split; each row a classifier recipe on one LM),
the points are: the LM's own valid loss (``lm.metrics.loss`` of the row's result), its linear
probe on the task's valid split (``probe.py``: ``results/<task>/probes/<dataset>__<split>.json``)
and the test accuracy of every training seed of the row (``ROW.json``, ``ROW__seedN.json``). Two
panels share the y axis: valid loss against accuracy, probe against accuracy.

    python benchmarks/reproduce/report.py --results benchmarks/reproduce/results --lm-figure \\
        docs/task1_lms.png --task task1 --rows bacteria_lm_noft_long,ecoli_3m1s_lm_noft_long
"""
from __future__ import annotations

import json
from pathlib import Path

from .common import save_figure

__all__ = ["lm_points", "lm_figure"]


def lm_points(results: Path, task: str, rows: list[str]) -> list[dict]:
    """One dict per row: ``row``, ``lm``, ``lm_loss``, ``probe`` (valid accuracy, None without a
    probe of that LM), ``test`` (accuracy of each seed, seed order) and ``dataset``/``split``."""
    out = []
    for row in rows:
        firsts = sorted((Path(results) / task).glob(f"*/*/{row}.json"))
        if not firsts:
            raise FileNotFoundError(f"no result of row {row!r} under {Path(results) / task}")
        first = firsts[0]
        seeds = [first] + sorted(first.parent.glob(f"{row}__seed*.json"), key=lambda p: int(p.stem.rsplit("seed", 1)[1]))
        runs = [json.loads(p.read_text()) for p in seeds]
        lm = runs[0].get("lm") or {}
        dataset, split = first.parent.parent.name, first.parent.name
        probe_file = Path(results) / task / "probes" / f"{dataset}__{split}.json"
        probe = None
        if probe_file.exists():
            probe_row = json.loads(probe_file.read_text())["rows"].get(lm.get("name", ""))
            probe = probe_row["valid"]["accuracy"] if probe_row else None
        out.append({"row": row, "lm": lm.get("name", "?"), "lm_loss": (lm.get("metrics") or {}).get("loss"),
                    "probe": probe, "test": [r["metrics"]["accuracy"] for r in runs],
                    "dataset": dataset, "split": split})
    return out


def lm_figure(points: list[dict], path: str | Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, pt in enumerate(points):
        c = colors[i % len(colors)]
        for ax, x in zip(axes, (pt["lm_loss"], pt["probe"])):
            if x is None:
                continue
            ax.scatter([x] * len(pt["test"]), pt["test"], s=14, color=c, alpha=0.5, zorder=2)
            ax.errorbar(x, np.mean(pt["test"]), yerr=np.std(pt["test"], ddof=1) if len(pt["test"]) > 1 else 0,
                        fmt="o", ms=8, color=c, capsize=3, zorder=3,
                        label=f"{pt['lm']} ({len(pt['test'])} seed{'s' if len(pt['test']) > 1 else ''})")
    axes[0].set_xlabel("LM valid loss, nats/token (each LM on its own valid split)")
    axes[1].set_xlabel(f"linear probe of the frozen LM: valid accuracy ({points[0]['dataset']}, {points[0]['split']})")
    axes[0].set_ylabel("classifier test accuracy (dots: training seeds; mean ± sd)")
    axes[0].xaxis.set_major_locator(MaxNLocator(5))
    axes[0].xaxis.set_major_formatter(FormatStrFormatter("%.3f"))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    return save_figure(fig, path, title or "Which LM makes the better classifier? The probe tells, the LM loss "
                                            "does not", fontsize=10)
