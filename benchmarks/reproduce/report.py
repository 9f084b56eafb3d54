"""Markdown rows for REPRODUCTION.md from the result JSONs that run.py wrote.

    python benchmarks/reproduce/report.py --results runs/repro/results [task1 task2 ...]
    python benchmarks/reproduce/report.py --results benchmarks/reproduce/results --ablations
    python benchmarks/reproduce/report.py --results benchmarks/reproduce/results --targets --figure docs/targets.png
    python benchmarks/reproduce/report.py --results benchmarks/reproduce/results --lm-figure docs/task1_lms.png \
        --task task1 --rows bacteria_lm_noft_long,ecoli_3m1s_lm_noft_long

One row per dataset/split-group/row: metrics (mean ± sd over folds for CV tasks), model size,
training time of the task (fine-tuning + classifier, plus a task LM; shared pretraining is listed
separately) and the machine. ``--targets`` prints issue 10's targets table and ``--figure`` draws it
(``targets.py``, from ``configs/targets.yaml``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ -> import reproduce

KEYS = ("accuracy", "precision", "recall", "f1", "mcc", "specificity", "roc_auc")


def _fmt(entry: dict, key: str) -> str:
    cv = entry.get("cv")
    if cv and key in cv:
        return f"{cv[key]['mean']:.3f} ± {cv[key]['sd']:.3f}"
    vals = [m.get(key) for m in entry["splits"].values()]
    vals = [v for v in vals if v is not None]
    return f"{vals[0]:.3f}" if len(vals) == 1 else ("-" if not vals else " / ".join(f"{v:.3f}" for v in vals))


def _machine(m: dict) -> str:
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch {m.get('torch', '?')}"


def rows(results: Path, task: str) -> list[str]:
    out = []
    base = results / task / "baseline_summary.json"
    if base.exists():
        b = json.loads(base.read_text())
        for name, by_row in b["rows"].items():
            for row, entry in by_row.items():
                for group, sub in _groups(entry):
                    out.append(f"| {row} (ours, measured) | {name} {group} | "
                               + " | ".join(_fmt(sub, k) for k in KEYS)
                               + f" | {_features(results, task, name, row)} | {entry['wall_seconds']:.0f} s (all splits) | "
                               + f"{_machine(b['machine'])} |")
    for fname in ("models_summary.json",):
        path = results / task / fname
        if not path.exists():
            continue
        s = json.loads(path.read_text())
        for name, by_row in s["rows"].items():
            for row, entry in by_row.items():
                m = entry["model"]
                size = f"{m['emb_size']}/{m['hidden_size']}/{m['n_layers']}, {m['k']}-mer s{m['stride']}, {m['parameters'] / 1e6:.2f} M"
                for group, sub in _groups(entry):
                    out.append(f"| {row} (ours, measured) | {name} {group} | "
                               + " | ".join(_fmt(sub, k) for k in KEYS)
                               + f" | {size} | {entry['task_seconds']:.0f} s | {_machine(s['machine'])} |")
    return out


def _groups(entry: dict):
    """Split a summary entry into fold-CV (one group) and named single splits."""
    folds = {k: v for k, v in entry["splits"].items() if k.startswith("fold")}
    others = {k: v for k, v in entry["splits"].items() if not k.startswith("fold")}
    if folds:
        n_seeds = len(entry.get("seeds", [0]))  # the harness's summary lists a row's training seeds
        n_folds = len(folds) // n_seeds
        label = f"{n_folds}-fold CV" + (f" x {n_seeds} seeds" if n_seeds > 1 else "")
        yield label, {"splits": folds, "cv": entry.get("cv") if len(folds) > 1 else None}
    for k, v in others.items():
        yield k, {"splits": {k: v}}


def _features(results: Path, task: str, name: str, row: str) -> str:
    for f in sorted((results / task / name).glob(f"*/baseline_{row}.json")):
        r = json.loads(f.read_text())
        kind, n = r.get("features"), f"{r['n_features']:,}"
        if kind in ("kmer", "kmer_both", "kmer_ends"):
            how = {"kmer": "", "kmer_both": ", both strands summed",
                   "kmer_ends": f", first and last {r.get('window')} nt"}[kind]
            return f"LR on {n} k-mer freqs (k={min(r['ks'])}..{max(r['ks'])}{how})"
        if kind == "kmer_gapped":
            return f"LR on {n} gapped k-mer freqs ({r['gapped'][0]}, {r['gapped'][1]}), both strands summed"
        if kind == "kmer_positional":
            k, stretch, span = r["positional"]
            return (f"LR on {n} k-mer freqs (k={min(r['ks'])}..{max(r['ks'])}) and {k}-mer counts per {stretch}-base "
                    f"bin of the first {span} bases")
        return "LR on log10 length"
    return "-"


_LABEL = {"roc_auc": "ROC-AUC"}


def ablation_rows(results: Path, task: str) -> list[str]:
    """One Markdown table per ablation study of ``task``: each variant's valid metrics (epoch
    chosen on one half of each valid split, scored on the other), its levers and its minutes."""
    out = []
    for path in sorted((results / task / "ablations").glob("*/summary.json")):
        s = json.loads(path.read_text())
        metric = s.get("metric", "mcc")
        out.append(f"\n#### {task} / {s['study']}\n\n{' '.join(str(s.get('description', '')).split())}\n")
        cols = [metric] + [m for m in ("accuracy", "roc_auc") if m != metric]  # the study's metric once
        out.append(f"| variant | levers | {' | '.join('valid ' + _LABEL.get(m, m) for m in cols)} | splits | minutes |")
        out.append("|---|---|" + "---:|" * (len(cols) + 2))
        rows_ = sorted(s["variants"].items(), key=lambda kv: -(kv[1]["valid"].get(metric) or 0))
        for name, v in rows_:
            val = v["valid"]
            nums = " | ".join(f"{val.get(m) if val.get(m) is not None else float('nan'):.4f}" for m in cols)
            out.append(f"| {name} | {v.get('levers', '')} | {nums} | {v['n_splits']} | {v['minutes']} |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", nargs="*", default=None)
    p.add_argument("--results", default="runs/repro/results")
    p.add_argument("--ablations", action="store_true", help="print the ablation tables instead")
    p.add_argument("--targets", action="store_true", help="print issue 10's targets table instead (configs/targets.yaml)")
    p.add_argument("--figure", default=None, metavar="PNG", help="draw the targets against the measured rows into PNG")
    p.add_argument("--lm-figure", default=None, metavar="PNG",
                   help="draw LM valid loss and frozen probe against classifier accuracy for --task's --rows (lm_figure.py)")
    p.add_argument("--task", default=None, help="the task of --lm-figure")
    p.add_argument("--rows", default=None, help="comma-separated rows of --lm-figure, one recipe on several LMs")
    args = p.parse_args(argv)
    results = Path(args.results)
    if args.lm_figure:
        from reproduce.lm_figure import lm_figure, lm_points

        if not (args.task and args.rows):
            p.error("--lm-figure needs --task and --rows")
        points = lm_points(results, args.task, args.rows.split(","))
        for pt in points:
            probe = f"{pt['probe']:.3f}" if pt["probe"] is not None else "-"
            loss = f"{pt['lm_loss']:.4f}" if pt["lm_loss"] is not None else "-"
            print(f"| {pt['row']} | {pt['lm']} | {loss} | {probe} | "
                  + " / ".join(f"{t:.3f}" for t in pt["test"]) + " |")
        print(f"[figure] {lm_figure(points, args.lm_figure)}")
        return 0
    if args.targets or args.figure:
        from reproduce import targets

        measured = targets.measure(results)
        if args.targets:
            print("\n".join(targets.table(measured)))
        if args.figure:
            print(f"[figure] {targets.figure(measured, args.figure)}")
        return 0
    tasks = args.tasks or sorted(d.name for d in results.iterdir() if d.is_dir())
    head = ("| row | data / split | " + " | ".join(KEYS) + " | model | train time | machine |\n|"
            + "---|" * (len(KEYS) + 5))
    if args.ablations:
        for task in tasks:
            for line in ablation_rows(results, task):
                print(line)
        return 0
    for task in tasks:
        print(f"\n### {task}\n\n{head}")
        for line in rows(results, task):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
