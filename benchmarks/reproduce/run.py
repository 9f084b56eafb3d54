"""Reproduce one or more Genomic-ULMFiT tables on real data.

    python benchmarks/reproduce/run.py task1 --data $GULM_DATA --out runs/repro
    python benchmarks/reproduce/run.py task2 --rows naive,ensemble_lm --folds 0
    python benchmarks/reproduce/run.py all --baseline-only --results benchmarks/reproduce/results
    python benchmarks/reproduce/run.py --lm ecoli --lm ensemble          # pretrain shared LMs only
    python benchmarks/reproduce/run.py task1 --smoke --out /tmp/smoke    # seconds, tiny models
    python benchmarks/reproduce/run.py task2 --profile quick             # minutes: fold 0, short LM
    python benchmarks/reproduce/run.py task2 --rows bacteria_lm --seeds 0,1,2    # 3 training seeds
    python benchmarks/reproduce/run.py task2 --ablate levers             # an ablation study (valid only)

Steps per task: build the datasets (cached), the k-mer logistic-regression baseline(s), then
every row in configs/<task>/ (shared LMs are pretrained once into <out>/lm and reused). Results:
one JSON per dataset/split/row under <results>/<task>/, plus summaries. See README.md here.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ -> import reproduce

from reproduce import datasets as dsets  # noqa: E402
from reproduce.harness import TASKS, Runner, row_names  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", nargs="*", help=f"tasks to run: {', '.join(TASKS)} or all")
    p.add_argument("--data", default=None, help="real-data folder (default: $GULM_DATA)")
    p.add_argument("--out", default="runs/repro", help="data, LM and checkpoint folder (default: runs/repro)")
    p.add_argument("--results", default=None, help="result JSON folder (default: <out>/results)")
    p.add_argument("--rows", default=None, help="comma-separated rows (default: every non-optional row)")
    p.add_argument("--folds", default=None, help="comma-separated fold numbers for CV tasks (default: all)")
    p.add_argument("--splits", default=None,
                   help="comma-separated split names to run, e.g. random_train100 (default: each row's own)")
    p.add_argument("--lm", action="append", default=[], metavar="NAME", help="pretrain this shared LM (repeatable)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated training seeds to repeat each row with (e.g. 0,1,2; 0 is the row itself)")
    p.add_argument("--ablate", default=None, metavar="STUDY[:VARIANT,...]",
                   help="run an ablation study of the task (configs/ablations/<task>/STUDY.yaml), or some of its "
                        "variants, on its splits with the test rows removed (valid metrics, for selection)")
    p.add_argument("--data-only", action="store_true", help="only build the datasets")
    p.add_argument("--baseline-only", action="store_true", help="datasets and baselines, no gulm training")
    p.add_argument("--models-only", action="store_true", help="skip the baselines")
    p.add_argument("--summarize", action="store_true",
                   help="only rewrite each task's models_summary.json from the row results on disk")
    p.add_argument("--profile", default=None, help="override profile configs/NAME.yaml (smoke, quick)")
    p.add_argument("--smoke", action="store_true", help="same as --profile smoke (tiny data and models)")
    p.add_argument("--force", action="store_true", help="rebuild and retrain even when cached")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--list", action="store_true", help="list tasks, datasets and rows, then exit")
    p.add_argument("--estimate", action="store_true",
                   help="print training tokens and estimated minutes per row (and per --lm), train nothing")
    args = p.parse_args(argv)

    if args.list:
        for task in TASKS:
            print(f"{task}: datasets {', '.join(dsets.TASK_DATASETS[task])}; rows {', '.join(row_names(task, True))}")
        return 0
    tasks = list(TASKS) if args.tasks == ["all"] else args.tasks
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)} or all")
    if not tasks and not args.lm:
        p.error("nothing to do: give a task, all, or --lm NAME")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        runner = Runner(args.data, args.out, results=args.results, profile="smoke" if args.smoke else args.profile, force=args.force,
                        folds=[int(x) for x in args.folds.split(",")] if args.folds else None,
                        splits=args.splits.split(",") if args.splits else None)
    except dsets.DataMissing as err:
        print(f"run.py: {err}", file=sys.stderr)
        return 2
    rows = args.rows.split(",") if args.rows else None
    if args.estimate:
        for name in args.lm:
            e = runner.estimate_lm(name)
            print(f"[estimate] lm {name}: {e['tokens_per_epoch']:,} tokens/epoch, {e['tokens']:,} in all, "
                  f"{e['minutes']} min at {e['tokens_per_s']} tok/s")
        for task in tasks:
            est = runner.estimate(task, rows)
            for e in est:
                print(f"[estimate] {task} {e['row']}: {e['tokens']:,} tokens, {e['minutes']} min at "
                      f"{e['tokens_per_s']} tok/s {e['architecture']}" + (f" (+ shared LM {e['lm']})" if e["lm"] not in (None, "task") else ""))
            print(f"[estimate] {task} total: {sum(e['minutes'] or 0 for e in est):.0f} min")
        return 0
    if args.summarize:
        for task in tasks:
            models = runner.summarize(task)
            print(f"[summary] {task}: " + "; ".join(f"{name}: {', '.join(rows)}" for name, rows in models.items()))
        return 0
    for name in args.lm:
        print(f"[lm] {name}: {runner.lm(name)}")
    if args.ablate:
        study, _, wanted = args.ablate.partition(":")
        from reproduce.settings import ablation_study

        for task in tasks:
            variants = wanted.split(",") if wanted else list(ablation_study(task, study)["variants"])
            for v in variants:
                runner.run_variant(task, study, v)
            summary = runner.summarize_ablation(task, study)
            metric = summary["metric"]
            for v, r in summary["variants"].items():
                print(f"[ablation] {task}/{study} {v:<28} valid {metric} {r['valid'].get(metric, float('nan')):.4f} "
                      f"acc {r['valid'].get('accuracy', float('nan')):.4f} ({r['n_splits']} splits, {r['minutes']} min)")
        return 0
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
    for task in tasks:
        if args.data_only:
            for name in dsets.TASK_DATASETS[task]:
                runner.dataset(name)
            continue
        runner.run(task, rows, baseline=not args.models_only, models=not args.baseline_only, seeds=seeds)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
