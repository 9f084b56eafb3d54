"""Issue 10's targets against the measured rows: a Markdown table and a figure, both computed from
the result JSONs (``models_summary.json``, ``baseline_summary.json``) and ``configs/targets.yaml``,
so the numbers in REPRODUCTION.md's targets table are never typed by hand.

    python benchmarks/reproduce/report.py --results benchmarks/reproduce/results --targets
    python benchmarks/reproduce/report.py --results benchmarks/reproduce/results --figure docs/targets.png

A row's number is its mean over every run on the set's split: each fold and each training seed
for ``split: folds``, each seed for a named split. A target is met when the held row's mean
reaches it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import save_figure, summarize_folds
from .settings import CONFIG_DIR, load_config

TARGETS = CONFIG_DIR / "targets.yaml"
METRIC_NAMES = {"accuracy": "accuracy", "mcc": "MCC", "roc_auc": "ROC-AUC"}


def load_targets(path: str | Path | None = None) -> list[dict]:
    """The sets of ``configs/targets.yaml`` (or ``path``)."""
    path = path or TARGETS
    return load_targets_from(load_config(path), path)


def load_targets_from(spec: dict, path: str | Path) -> list[dict]:
    """Check a targets spec (``path`` names it in errors) and return its sets."""
    sets = spec.get("sets") if isinstance(spec, dict) else None
    if not isinstance(sets, list) or not sets:
        raise ValueError(f"{path}: needs a non-empty 'sets' list")
    for s in sets:
        missing = [k for k in ("name", "task", "dataset", "split", "metric", "target", "held", "rows") if k not in s]
        if missing:
            raise ValueError(f"{path}: set {s.get('name', '?')!r} lacks {', '.join(missing)}")
        if s["held"] not in s["rows"]:
            raise ValueError(f"{path}: set {s['name']!r}: held row {s['held']!r} is not among its rows")
    return sets


def _entries(results: Path, task: str, dataset: str) -> dict[str, dict]:
    """Every row of ``dataset`` (model and baseline summaries merged), with ``baseline`` marked."""
    out: dict[str, dict] = {}
    for fname, baseline in (("baseline_summary.json", True), ("models_summary.json", False)):
        path = results / task / fname
        if path.exists():
            for row, entry in json.loads(path.read_text())["rows"].get(dataset, {}).items():
                out[row] = dict(entry, baseline=baseline)
    return out


def runs(entry: dict, split: str) -> list[dict]:
    """The metrics of every run of a summary entry on ``split``: ``folds`` takes each fold at each
    seed (``fold3@seed1``), a split name takes that split at each seed."""
    return [m for key, m in entry["splits"].items()
            if (key.split("@")[0].startswith("fold") if split == "folds" else key.split("@")[0] == split)]


def measure(results: str | Path, sets: list[dict] | None = None) -> list[dict]:
    """Per set: each row's mean, sd and number of runs (None where the row has no result), the
    target's value and whether the held row meets it."""
    results = Path(results)
    out = []
    for s in sets if sets is not None else load_targets():
        entries = _entries(results, s["task"], s["dataset"])
        rows = {}
        for row, label in s["rows"].items():
            stats = summarize_folds(runs(entries[row], s["split"]), (s["metric"],)).get(s["metric"]) if row in entries else None
            n = stats["n"] if stats else 0
            rows[row] = {"label": label, "baseline": bool(entries.get(row, {}).get("baseline")),
                         "mean": stats["mean"] if stats else None, "sd": stats["sd"] if n > 1 else None, "n": n}
        target = s["target"]
        if isinstance(target, dict):
            ref = rows.get(target["above"], {}).get("mean")
            value = None if ref is None else ref + float(target["by"])
            how = f"LR + {float(target['by']):g}"
        else:
            value, how = float(target), None
        held = rows[s["held"]]["mean"]
        status = "no result" if held is None or value is None else ("met" if held >= value else "missed")
        out.append(dict(s, rows=rows, target_value=value, target_how=how, status=status))
    return out


def _digits(m: dict) -> int:
    """Decimals for a set's numbers: 4 where the target is within 0.01 of a perfect score (16S
    amplicon, where one read of 1,864 is 0.0005), 3 elsewhere."""
    return 4 if m["target_value"] is not None and m["target_value"] > 0.99 else 3


def _fmt(r: dict, digits: int = 3) -> str:
    if r["mean"] is None:
        return "no result"
    return f"{r['mean']:.{digits}f}" + (f" ± {r['sd']:.{digits}f} ({r['n']} runs)" if r["n"] > 1 else "")


def table(measured: list[dict]) -> list[str]:
    """Markdown: one line per set with the target, the held row, the k-mer LR and naive."""
    out = ["| task / set | metric | target | held row | its number | k-mer LR | naive | status |",
           "|---|---|---:|---|---:|---:|---:|---|"]
    for m in measured:
        rows = m["rows"]
        lr = next((r for r in rows.values() if r["baseline"]), None)
        naive = next((r for name, r in rows.items() if "naive" in name), None)
        d = _digits(m)
        tgt = "-" if m["target_value"] is None else f"{m['target_value']:.{d}f}"
        if m["target_how"]:
            tgt += f" ({m['target_how']})"
        out.append(f"| {m['name']} | {METRIC_NAMES.get(m['metric'], m['metric'])} | {tgt} | `{m['held']}` | "
                   f"{_fmt(rows[m['held']], d)} | {_fmt(lr, d) if lr else '-'} | {_fmt(naive, d) if naive else '-'} | "
                   f"{'**met**' if m['status'] == 'met' else m['status']} |")
    return out


def _focus(m: dict) -> tuple[float, float]:
    """A panel's x range: around the held row, the baselines and the target, so a gap of one read
    stays visible; rows far below it are drawn as arrows at the left edge."""
    focus = [r for name, r in m["rows"].items() if r["mean"] is not None and (r["baseline"] or name == m["held"])]
    pts = [r["mean"] + d * (r["sd"] or 0) for r in focus for d in (-1, 1)]
    pts += [m["target_value"]] if m["target_value"] is not None else []
    pts = pts or [r["mean"] for r in m["rows"].values() if r["mean"] is not None] or [0.5]
    span = max(max(pts) - min(pts), 0.02)
    return min(pts) - 0.6 * span, max(pts) + 0.25 * span


def figure(measured: list[dict], path: str | Path, title: str | None = None) -> Path:
    """One panel per set: each row's mean (a dot; a bar of ± 1 sd where it has several runs), the
    k-mer LR in grey, the held row in its status colour, and the target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    n = len(measured)
    cols = 3 if n > 4 else n
    nrows = -(-n // cols)
    # each grid row as tall as its longest panel needs: about a quarter inch per drawn row
    drawn = [sum(r["mean"] is not None for r in m["rows"].values()) for m in measured]
    heights = [max(1.6, 0.3 * max(drawn[i * cols:(i + 1) * cols]) + 0.9) for i in range(nrows)]
    fig, axes = plt.subplots(nrows, cols, figsize=(5.0 * cols, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, m in zip(axes.flat, measured):
        names = [r for r in m["rows"] if m["rows"][r]["mean"] is not None]
        ys = np.arange(len(names))[::-1]
        lo, hi = _focus(m)
        fmt = f"{{:.{_digits(m)}f}}"  # the table's decimals, so figure and table print the same numbers
        for y, r in zip(ys, names):
            row = m["rows"][r]
            color = ("#8c8c8c" if row["baseline"] else
                     ({"met": "#1a7f37", "missed": "#cf222e"}.get(m["status"], "#0969da") if r == m["held"] else "#0969da"))
            if row["mean"] < lo:  # far below the target: an arrow at the left edge, with its value
                ax.plot(lo, y, marker="<", color=color, ms=7, clip_on=False)
                ax.annotate(fmt.format(row["mean"]), (lo, y), textcoords="offset points", xytext=(8, -3),
                            ha="left", fontsize=7, color=color)
                continue
            ax.errorbar(row["mean"], y, xerr=row["sd"] or 0, fmt="o", color=color, ms=6, capsize=3, lw=1.2)
            ax.annotate(fmt.format(row["mean"]), (row["mean"], y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7, color=color)
        ax.set_yticks(ys)
        ax.set_yticklabels([m["rows"][r]["label"] + (" *" if r == m["held"] else "") for r in names], fontsize=8)
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_ylim(-0.7, len(names) - 0.2)
        if m["target_value"] is not None:
            ax.axvline(m["target_value"], color="#cf222e", ls="--", lw=1)
        ax.set_title(f"{m['name']}: {m['status']}", fontsize=9)
        ax.set_xlabel(f"test {METRIC_NAMES.get(m['metric'], m['metric'])}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return save_figure(fig, path, title or "gulm against issue 10's targets (dashed: target; *: the row it is judged "
                                            "on; grey: k-mer LR; bars: ± 1 sd over folds and seeds)")
