"""A seed ensemble of one row: the classifiers trained with several seeds (``run.py TASK --rows ROW
--seeds 0,1,2``), their class probabilities averaged (:class:`gulm.infer.Ensemble`), scored on each
split's test set and, as ``valid_metrics`` / ``valid_members``, on its valid split (where the members'
epochs were chosen: optimistic for both, but no look at test).

    python benchmarks/reproduce/ensemble.py task1 --row bacteria_lm_noft_long --seeds 0,1,2 \\
        --results benchmarks/reproduce/results

Each member's classifier is loaded from the checkpoint folder its result JSON records
(``configs.classifier.out``), so the run's ``--out`` need not be given again.

Writes ``<ROW>_ens<N>.json`` beside the members' results (row ``<ROW>_ens<N>``, picked up by
``run.py --summarize``), with the members, their own test metrics and the summed training time:
an ensemble of N costs N trainings and N forward passes. The members are chosen before any test
score is seen (all the seeds asked for); nothing is selected on test.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ -> import reproduce

from reproduce.common import write_json  # noqa: E402
from reproduce.settings import profile_suffix, seed_tag  # noqa: E402


def member_paths(results: Path, task: str, row: str, seeds: list[int], suffix: str = "") -> dict[Path, list[Path]]:
    """Per split folder, the result JSON of each seed (seed 0 is the row itself)."""
    found: dict[Path, list[Path]] = {}
    for first in sorted((results / task).glob(f"*/*/{row}{suffix}.json")):
        paths = [first.parent / f"{seed_tag(row, s)}{suffix}.json" for s in seeds]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            sys.exit(f"ensemble.py: {first.parent}: no result for {', '.join(missing)} "
                     f"(run: run.py {task} --rows {row} --seeds {','.join(map(str, seeds))})")
        found[first.parent] = paths
    if not found:
        sys.exit(f"ensemble.py: no results of row {row} under {results / task}")
    return found


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    ap.add_argument("--row", required=True)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    ap.add_argument("--results", default="benchmarks/reproduce/results")
    ap.add_argument("--dtype", default="fp32", help="inference precision (default fp32)")
    ap.add_argument("--profile", default=None, help="run.py's --profile of the members (e.g. smoke)")
    args = ap.parse_args(argv)

    import torch

    from gulm.data import read_labeled_csv
    from gulm.infer import Ensemble
    from gulm.metrics import classification_metrics

    torch.manual_seed(0)
    seeds = [int(s) for s in args.seeds.split(",")]
    name = f"{args.row}_ens{len(seeds)}"
    suffix = profile_suffix(args.profile)
    for folder, paths in member_paths(Path(args.results), args.task, args.row, seeds, suffix).items():
        members = [json.loads(p.read_text()) for p in paths]
        first = members[0]
        data = read_labeled_csv(first["csv"], split_col="set")
        t0 = time.perf_counter()
        try:  # the checkpoints as recorded by run.py
            ens = Ensemble.load([res["configs"]["classifier"]["out"] for res in members], dtype=args.dtype)
        except ValueError as err:
            sys.exit(f"ensemble.py: {folder}: {err}")
        classes = ens.classes

        def score(split: str) -> tuple[dict, list[dict]]:
            """The ensemble's metrics on one split and each member's."""
            rows = [i for i, s in enumerate(data.split) if s == split]
            y = np.array([classes.index(data.labels[i]) for i in rows])
            probs = ens.member_probs(ens.tokenize([data.sequences[i] for i in rows], name=f"{split} split"))
            return (classification_metrics(y, np.mean(probs, axis=0), classes),
                    [classification_metrics(y, p, classes) for p in probs])

        test, test_members = score("test")
        test_seconds = time.perf_counter() - t0  # loading + test, as in the rows written before valid was scored
        metrics = {"split": "test", **test, "complete": True, "ensemble_of": len(seeds)}
        member_acc = [m["accuracy"] for m in test_members]
        # valid: the members' epochs were chosen on it, so both sides are optimistic alike; it says whether
        # averaging pays without a look at test
        t1 = time.perf_counter()
        valid, valid_members = score("valid") if "valid" in data.split else (None, [])
        timing = {"classifier_seconds": sum(m["timing"].get("classifier_seconds") or 0 for m in members),
                  "task_seconds": sum(m["timing"]["task_seconds"] for m in members),
                  "ensemble_inference_seconds": test_seconds, "valid_scoring_seconds": time.perf_counter() - t1}
        if "pretrain_seconds_shared" in first["timing"]:
            timing["pretrain_seconds_shared"] = first["timing"]["pretrain_seconds_shared"]
        res = {**{k: first.get(k) for k in ("task", "dataset", "split", "protocol", "model", "lm", "data_key",
                                             "csv", "profile", "machine")},
               "row": name, "seed": 0, "study": None, "selection": None,
               "description": f"mean class probabilities of {len(seeds)} training seeds ({args.seeds}) of "
                              f"{args.row}: {first.get('description', '')}",
               "metrics": metrics, "valid_metrics": valid,
               "valid_members": [{k: m.get(k) for k in ("accuracy", "mcc", "roc_auc")} for m in valid_members],
               "complete": True, "timing": timing, "throughput": {},
               "members": [{"file": p.name, "seed": s, "test_accuracy": a, "test_mcc": m["metrics"].get("mcc")}
                           for p, s, a, m in zip(paths, seeds, member_acc, members)],
               "configs": first.get("configs"), "config_key": first.get("config_key"),
               "rerun": f"python benchmarks/reproduce/ensemble.py {args.task} --row {args.row} --seeds {args.seeds} "
                        f"--results RESULTS"}
        write_json(folder / f"{name}{suffix}.json", res)
        print(f"[{args.task}] {first['dataset']} {first['split']} {name}: test acc {metrics['accuracy']:.4f} "
              f"mcc {metrics.get('mcc', float('nan')):.4f} (members: "
              + ", ".join(f"{a:.4f}" for a in member_acc) + f"); {timing['task_seconds'] / 60:.1f} min of training")
        if valid is not None:
            key = "mcc" if "mcc" in valid else "accuracy"
            print(f"    valid {key} {valid[key]:.4f} (members: " + ", ".join(f"{m[key]:.4f}" for m in valid_members) + ")")


if __name__ == "__main__":
    main()
