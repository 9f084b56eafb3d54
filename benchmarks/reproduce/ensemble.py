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

``--members ROW,ROW...`` averages different rows of the task instead (each at seed 0, or
``ROW@SEED``), for instance a forward and a backward classifier (``--backward``), written as
``--name``; a member trained on another view of the same split (another split folder of the
dataset, with the same records in the same order, such as task 5's ``split_ends1000`` beside
``split_first1000``) is found there and reads its own view. ``--study STUDY`` takes the members from an ablation study's valid-only results
(``run.py TASK --ablate STUDY``), where the "test" rows are the scoring half of each valid split,
and writes the ensemble there as a variant of the study (picked up by its summary):

    python benchmarks/reproduce/ensemble.py task2 --study bidirectional --members fwd,bwd \
        --name fwd_bwd --results benchmarks/reproduce/results

``--threshold mcc`` (two classes) calls the second class where its mean probability reaches the cut
with the best MCC on the valid split (in a study, the selection half) instead of 0.5, and scores
test there (``metrics.threshold``); the probabilities are moved on the logit scale, so ROC-AUC does
not change:

    python benchmarks/reproduce/ensemble.py task2 --study bidirectional_5fold --members fwd_poslogreg_wide \
        --threshold mcc --name fwd_poslogreg_cut_wide --results benchmarks/reproduce/results

Each member's probabilities on a split are kept beside its checkpoint
(``ensemble_probs/<split>-<dtype>-<key>.npy``, the key a hash of its weights, its config, the precision
and the sequences read), so an ensemble that shares members with one scored before (a seed ensemble
and a wider one holding the same seeds) scores only the new members; ``--no-cache`` scores everyone.

``--blend kmer`` adds a baseline as one more member (a late blend): the k-mer logistic regression of
:func:`reproduce.baseline.fit_baseline` (``kmer_gapped`` and the other baseline features likewise),
fitted on the first member's training split with C chosen on its valid split, exactly as the task's
baseline row, and its probabilities averaged with the networks' at weight 1 / (members + 1). A
blend holds k-mer features, so its name must end in ``_wide`` (issue 10's rule for such rows):

    python benchmarks/reproduce/ensemble.py task2 --study bidirectional_5fold --members fwd_s2 \
        --blend kmer --name fwd_s2_kmer_blend_wide --results benchmarks/reproduce/results
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ -> import reproduce

from reproduce.common import write_json  # noqa: E402
from reproduce.settings import profile_suffix, seed_tag  # noqa: E402


def member_paths(results: Path, task: str, members: list[tuple[str, int]], suffix: str = "",
                 study: str | None = None) -> dict[Path, list[Path]]:
    """Per split folder, the result JSON of each member (row, seed); seed 0 is the row itself.
    ``study``: the folders of that ablation study instead of the task's test rows."""
    root = results / task / "ablations" / study if study else results / task
    row = members[0][0]
    found: dict[Path, list[Path]] = {}
    for first in sorted(root.glob(f"*/*/{row}{suffix}.json")):
        paths = [_member_file(first.parent, f"{seed_tag(r, s)}{suffix}.json") for r, s in members]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            how = (f"run.py {task} --ablate {study}:{','.join(sorted({r for r, _ in members}))}" if study else
                   f"run.py {task} --rows {','.join(sorted({r for r, _ in members}))} "
                   f"--seeds {','.join(sorted({str(s) for _, s in members}))}")
            sys.exit(f"ensemble.py: {first.parent}: no result for {', '.join(missing)} (run: {how})")
        found[first.parent] = paths
    if not found:
        sys.exit(f"ensemble.py: no results of row {row} under {root}")
    return found


def _member_file(folder: Path, name: str) -> Path:
    """A member's result in ``folder``, or else in the one other split folder of the same dataset
    that holds it: a row trained on another view of the same split (say ``split_ends1000`` beside
    ``split_first1000``), which :func:`aligned_views` checks row by row."""
    here = folder / name
    if here.exists():
        return here
    views = [p for p in sorted(folder.parent.glob(f"*/{name}")) if p.parent != folder]
    return views[0] if len(views) == 1 else here


def aligned_views(results: list[dict]):
    """Each member's labelled data (its own CSV); every view must hold the same records, in the same
    order, with the same labels and split, so averaging row i averages one sequence's predictions."""
    from gulm.data import read_labeled_csv

    cache = {}
    for res in results:
        if res["csv"] not in cache:
            cache[res["csv"]] = read_labeled_csv(res["csv"], split_col="set")
    first = cache[results[0]["csv"]]
    for csv, data in cache.items():
        if (list(data.ids), list(data.labels), list(data.split)) != (list(first.ids), list(first.labels), list(first.split)):
            sys.exit(f"ensemble.py: {csv}: its records (ids, labels or split) differ from {results[0]['csv']}'s; "
                     "members on different views must share the same records in the same order")
    return [cache[res["csv"]] for res in results]


def member_key(folder: str, dtype: str, reads_rc: bool, sequences) -> str:
    """What a member's probabilities on ``sequences`` depend on: its weights and config (the files
    its checkpoint folder loads), the precision, whether it reads reverse complements, the sequences."""
    h = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        with open(os.path.join(folder, name), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    h.update(f"|{dtype}|{int(reads_rc)}|".encode())
    for seq in sequences:
        h.update(seq.encode() if isinstance(seq, str) else bytes(seq))
        h.update(b"\n")
    return h.hexdigest()[:20]


def cached_member_probs(ens, sequences_per_member: list, split: str, dtype: str, use_cache: bool = True) -> list:
    """Each member's probabilities [N, C] on its own sequences of ``split``, read from the member's
    ``ensemble_probs/`` when that member scored the same sequences before, else computed (members that
    share a tokenizer share one tokenization) and written there atomically."""
    out: list = [None] * len(ens.members)
    paths = []
    for i, (m, seqs) in enumerate(zip(ens.members, sequences_per_member)):
        key = member_key(m.path, dtype, m.reads_rc(None), seqs)
        path = Path(m.path) / "ensemble_probs" / f"{split}-{dtype}-{key}.npy"
        paths.append(path)
        if use_cache and path.exists():
            out[i] = np.load(path)
    todo = [i for i, p in enumerate(out) if p is None]
    if todo:
        pending = type(ens)([ens.members[i] for i in todo])
        if all(seqs is sequences_per_member[0] for seqs in sequences_per_member):
            sets = pending.tokenize(sequences_per_member[0], name=f"{split} split")
        else:
            sets = [m.tokenize(sequences_per_member[i], with_rc=m.reads_rc(None), name=f"{split} split")
                    for i, m in zip(todo, pending.members)]
        for i, probs in zip(todo, pending.member_probs(sets)):
            out[i] = probs
            if use_cache:
                paths[i].parent.mkdir(exist_ok=True)
                tmp = paths[i].with_name(paths[i].name + ".tmp.npy")
                np.save(tmp, out[i])
                os.replace(tmp, paths[i])
    print(f"    {split}: {len(out) - len(todo)} of {len(out)} members' probabilities read from their cache")
    return out


def blend_member(csv: str, features: str, classes: list) -> dict:
    """A baseline as an ensemble member: fitted on ``csv``'s training split (C by valid accuracy),
    its probabilities on every record of ``csv``, columns in ``classes``' order."""
    from reproduce.baseline import fit_baseline

    fit = fit_baseline(csv, features=features)
    model, own = fit["model"], list(fit["classes"])
    if sorted(own) != sorted(classes):
        sys.exit(f"ensemble.py: {csv}: the baseline's classes {own} are not the networks' {classes}")
    probs = model.probs_from_features(fit["x"])[:, [own.index(c) for c in classes]]
    return {"probs": probs, "C": model.C, "desc": fit["desc"], "seconds": fit["feature_seconds"] + fit["fit_seconds"]}


def mcc_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The cut on the second class's probability ``p`` (called at ``p >= cut``) with the best MCC
    on labels ``y``; the candidates are 0.5 and every value of ``p``; ties go to the cut nearest 0.5."""
    from sklearn.metrics import matthews_corrcoef

    grid = np.unique(np.concatenate([[0.5], p]))
    mcc = np.array([matthews_corrcoef(y, p >= t) for t in grid])
    best = grid[np.isclose(mcc, mcc.max())]
    return float(best[np.argmin(np.abs(best - 0.5))])


def cut_at(probs: np.ndarray, cut: float) -> np.ndarray:
    """Two-class probabilities moved on the logit scale so that 0.5 falls where ``cut`` was (the
    ranking, and so ROC-AUC, is unchanged; a probability equal to ``cut`` goes to the second class)."""
    eps = 1e-7
    p = np.clip(probs[:, 1], eps, 1 - eps)
    c = min(max(cut, eps), 1 - eps)
    z = np.log(p / (1 - p)) - np.log(c / (1 - c))  # |z| < 33 after the clipping: no overflow
    second = 1 / (1 + np.exp(-z))
    second = np.where(p >= c, np.maximum(second, np.nextafter(0.5, 1)), np.minimum(second, np.nextafter(0.5, 0)))
    return np.stack([1 - second, second], axis=1)


def parse_members(text: str) -> list[tuple[str, int]]:
    """``ROW[@SEED],...`` -> [(row, seed)]."""
    out = []
    for item in text.split(","):
        row, _, seed = item.strip().partition("@")
        out.append((row, int(seed) if seed else 0))
    return out


def training_seconds(results: list[dict]) -> float:
    """The members' training time: each member's ``task_seconds``, with a fine-tuned LM that
    several members share (the same ``configs.classifier.lm``) counted once."""
    total, tuned = 0.0, set()
    for m in results:
        total += m["timing"]["task_seconds"]
        ft, lm = m["timing"].get("finetune_seconds"), m["configs"]["classifier"].get("lm")
        if ft and lm is not None:
            total -= ft if lm in tuned else 0.0
            tuned.add(lm)
    return total


def member_descriptions(results: list[dict]) -> str:
    """What the members are: one row's description, or each row's, named, when rows are mixed."""
    rows = {m["row"]: m.get("description", "") for m in results}
    if len(rows) == 1:
        return next(iter(rows.values()))
    return "; ".join(f"{row}: {text}" for row, text in rows.items())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--row", help="a row whose training seeds (--seeds) are averaged")
    who.add_argument("--members", help="comma-separated rows to average, ROW or ROW@SEED each (needs --name)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds of --row (default 0,1,2)")
    ap.add_argument("--name", default=None, help="the ensemble's row name (default with --row: ROW_ensN)")
    ap.add_argument("--study", default=None, help="an ablation study of the task: its valid-only members")
    ap.add_argument("--results", default="benchmarks/reproduce/results")
    ap.add_argument("--dtype", default="fp32", help="inference precision (default fp32)")
    ap.add_argument("--profile", default=None, help="run.py's --profile of the members (e.g. smoke)")
    ap.add_argument("--blend", default=None, metavar="FEATURES",
                    help="add a baseline logistic regression as one more member: kmer, kmer_both, kmer_gapped or "
                         "kmer_positional "
                         "(fitted on the first member's split; the name must end in _wide)")
    ap.add_argument("--threshold", choices=["mcc"], default=None,
                    help="two classes only: cut at the probability that gives the best MCC on the valid split "
                         "(the selection half of a study) instead of at 0.5, and score test there")
    ap.add_argument("--no-cache", action="store_true",
                    help="score every member again instead of reading probabilities kept by an earlier run")
    args = ap.parse_args(argv)

    import torch

    from gulm.infer import Ensemble
    from gulm.metrics import classification_metrics

    torch.manual_seed(0)
    if args.members:
        if not args.name:
            ap.error("--members needs --name (the ensemble's row name)")
        members = parse_members(args.members)
        what = f"rows {args.members}"
    else:
        members = [(args.row, int(s)) for s in args.seeds.split(",")]
        what = f"{len(members)} training seeds ({args.seeds}) of {args.row}"
    seeds = [s for _, s in members]
    name = args.name or f"{args.row}_ens{len(members)}"
    if args.blend and not name.endswith("_wide"):
        ap.error(f"--blend adds k-mer features, so the row's name must end in _wide (got {name})")
    argv_used = [args.task] + (["--members", args.members, "--name", name] if args.members
                               else ["--row", args.row, "--seeds", args.seeds])
    argv_used += (["--study", args.study] if args.study else []) + (["--profile", args.profile] if args.profile else [])
    argv_used += ["--blend", args.blend] if args.blend else []
    argv_used += ["--threshold", args.threshold] if args.threshold else []
    suffix = profile_suffix(args.profile)
    for folder, paths in member_paths(Path(args.results), args.task, members, suffix, args.study).items():
        results = [json.loads(p.read_text()) for p in paths]
        first = results[0]
        views = aligned_views(results)
        data = views[0]
        t0 = time.perf_counter()
        try:  # the checkpoints as recorded by run.py
            ens = Ensemble.load([res["configs"]["classifier"]["out"] for res in results], dtype=args.dtype)
        except ValueError as err:
            sys.exit(f"ensemble.py: {folder}: {err}")
        classes = ens.classes
        blend = blend_member(results[0]["csv"], args.blend, classes) if args.blend else None

        def split_probs(split: str) -> tuple[np.ndarray, list[np.ndarray]]:
            """The labels of one split and each member's class probabilities on it."""
            rows = [i for i, s in enumerate(data.split) if s == split]
            y = np.array([classes.index(data.labels[i]) for i in rows])
            # members on other views of the split each read their own sequences of the same records
            seqs = {id(v): [v.sequences[i] for i in rows] for v in views}
            probs = cached_member_probs(ens, [seqs[id(v)] for v in views], split, args.dtype, not args.no_cache)
            if blend is not None:
                probs.append(blend["probs"][rows])
            return y, probs

        cut = None
        if args.threshold:
            if len(classes) != 2 or "valid" not in data.split:
                sys.exit(f"ensemble.py: {folder}: --threshold needs two classes and a valid split")
            y_valid, valid_probs = split_probs("valid")
            cut = mcc_threshold(y_valid, np.mean(valid_probs, axis=0)[:, 1])

        def score(split: str) -> tuple[dict, list[dict]]:
            """The ensemble's metrics on one split and each member's (the ensemble's at ``cut``)."""
            y, probs = split_probs(split)
            mean = np.mean(probs, axis=0) if cut is None else cut_at(np.mean(probs, axis=0), cut)
            return (classification_metrics(y, mean, classes),
                    [classification_metrics(y, p, classes) for p in probs])

        test, test_members = score("test")
        test_seconds = time.perf_counter() - t0  # loading + test, as in the rows written before valid was scored
        metrics = {"split": "test", **test, "complete": True, "ensemble_of": len(members)}
        if cut is not None:
            metrics["threshold"] = cut
        member_acc = [m["accuracy"] for m in test_members[:len(members)]]
        # valid: the members' epochs were chosen on it, so both sides are optimistic alike; it says whether
        # averaging pays without a look at test
        t1 = time.perf_counter()
        valid, valid_members = score("valid") if "valid" in data.split else (None, [])
        timing = {"classifier_seconds": sum(m["timing"].get("classifier_seconds") or 0 for m in results),
                  "task_seconds": training_seconds(results),
                  "ensemble_inference_seconds": test_seconds, "valid_scoring_seconds": time.perf_counter() - t1}
        if "pretrain_seconds_shared" in first["timing"]:
            timing["pretrain_seconds_shared"] = first["timing"]["pretrain_seconds_shared"]
        # what the ensemble is, in a line (a study's summary lists it under its levers)
        levers = (f"mean class probabilities of {what}" + (f" and the {args.blend} logistic regression" if blend else "")
                  + (f", cut at {cut:.4f} (the best MCC on the valid split) instead of 0.5" if cut is not None else ""))
        res = {**{k: first.get(k) for k in ("task", "dataset", "split", "protocol", "model", "lm", "data_key",
                                             "csv", "profile", "machine")},
               "row": name, "seed": 0, "study": args.study, "selection": first.get("selection"),
               "levers": levers, "description": f"{levers}: {member_descriptions(results)}",
               "metrics": metrics, "valid_metrics": valid,
               "valid_members": [{k: m.get(k) for k in ("accuracy", "mcc", "roc_auc")} for m in valid_members],
               "complete": True, "timing": timing, "throughput": {},
               "members": [{"file": p.name, "row": m["row"], "seed": s,
                            "training_seed": m["configs"]["classifier"].get("seed", s),
                            "test_accuracy": a, "test_mcc": m["metrics"].get("mcc")}
                           for p, s, a, m in zip(paths, seeds, member_acc, results)]
               + ([{"row": f"{args.blend}_logreg (blend)", "C": blend["C"], "test_accuracy": test_members[-1]["accuracy"],
                    "test_mcc": test_members[-1].get("mcc"), "fit_seconds": blend["seconds"]}] if blend else []),
               "blend": ({"features": blend["desc"], "C": blend["C"], "weight": 1 / (len(members) + 1)}
                         if blend else None),
               "configs": first.get("configs"), "config_key": first.get("config_key"),
               "rerun": "python benchmarks/reproduce/ensemble.py " + " ".join(argv_used) + " --results RESULTS"}
        write_json(folder / f"{name}{suffix}.json", res)
        print(f"[{args.task}] {first['dataset']} {first['split']} {name}: test acc {metrics['accuracy']:.4f} "
              f"mcc {metrics.get('mcc', float('nan')):.4f} (members: "
              + ", ".join(f"{m['accuracy']:.4f}" for m in test_members) + f"); {timing['task_seconds'] / 60:.1f} min of training")
        if valid is not None:
            key = "mcc" if "mcc" in valid else "accuracy"
            print(f"    valid {key} {valid[key]:.4f} (members: " + ", ".join(f"{m[key]:.4f}" for m in valid_members) + ")")


if __name__ == "__main__":
    main()
