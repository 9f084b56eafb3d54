"""Choose between feature sets without reading valid or test: cross-validation inside each split's
**train** rows.

The valid halves of an ablation study decide rows, and every look at them spends some of their
honesty. This script asks the earlier question, which features a linear model should read, on the
training sequences alone: each split's train rows are cut into ``--folds`` stratified parts, the
k-mer logistic regression (standardised features, one fit per C of the grid, as the baseline row)
is fitted on all parts but one and scored on the one left out, and each feature set is reported at
its best C by the mean over the parts. Valid and test rows are never read.

    python benchmarks/reproduce/train_cv.py task2 --dataset umarov_ecoli \\
        --splits fold0,fold1,fold2,fold3,fold4 --features spectrum --features spectrum+pos3_3 \\
        --features spectrum+pos3_3+pos3_9 --cnn --out /work/runs/repro --results benchmarks/reproduce/results

A feature set is blocks joined by ``+``: ``spectrum`` (k = 1..6, :func:`gulm.baseline.kmer_features`),
``posK_B`` (the K-mers starting in each B-base bin up to the longest training sequence,
:func:`gulm.baseline.positional_kmer_features`, what ``--kmer-positional K B`` reads) and ``gapL_K``
(the gapped spectrum of L-base windows with K informative bases, both strands summed). ``--cnn``
adds a reference that is not gulm's model: a one-layer convolutional network trained from zero on
one-hot bases (64 filters of 11 bases, max-pooled over 9 equal parts of the window so that it knows
roughly where it saw a motif, dropout 0.5, AdamW 1e-3, weight decay 1e-2, 30 epochs, batch 64, no
early stopping), an untuned cousin of CNNProm: a check on how much a model of a different family
gets from the same training sequences. The metric is MCC at 0.5 for two classes, accuracy
otherwise; ROC-AUC beside it for two classes.

One JSON per dataset and split, ``<results>/<task>/probes/<dataset>__<split>__train_cv.json``, with
each row's command; rows add up across runs as in ``probe.py``. The split CSVs are the ones
``run.py TASK --data-only`` builds under ``<out>/data``.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ -> import reproduce

from reproduce.common import machine_info, write_json  # noqa: E402
from reproduce.probe import merged_rows  # noqa: E402

CS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
BLOCK = re.compile(r"^(spectrum|pos(\d+)_(\d+)|gap(\d+)_(\d+))$")


def parse_features(spec: str) -> list[tuple]:
    """``spectrum+pos3_3`` -> ``[("spectrum",), ("pos", 3, 3)]``; ValueError names a bad block."""
    blocks = []
    for part in spec.split("+"):
        m = BLOCK.match(part)
        if not m:
            raise ValueError(f"feature block {part!r} of {spec!r}: use spectrum, posK_B or gapL_K")
        if m.group(1) == "spectrum":
            blocks.append(("spectrum",))
        elif m.group(2):
            blocks.append(("pos", int(m.group(2)), int(m.group(3))))
        else:
            blocks.append(("gap", int(m.group(4)), int(m.group(5))))
    return blocks


def features(seqs: list[str], blocks: list[tuple], span: int) -> np.ndarray:
    """The columns of ``blocks`` side by side; positional blocks read the first ``span`` bases."""
    from gulm.baseline import gapped_kmer_features, kmer_features, positional_kmer_features

    out = []
    for block in blocks:
        if block[0] == "spectrum":
            out.append(kmer_features(seqs, (1, 2, 3, 4, 5, 6)))
        elif block[0] == "pos":
            out.append(positional_kmer_features(seqs, block[1], block[2], span))
        else:
            out.append(gapped_kmer_features(seqs, block[1], block[2], both_strands=True))
    return np.concatenate(out, axis=1)


def scores(y: np.ndarray, probs: np.ndarray) -> dict:
    """MCC (two classes) or accuracy, and ROC-AUC for two classes, of class probabilities
    (:func:`gulm.metrics.classification_metrics`, the harness's metrics)."""
    from gulm.metrics import classification_metrics

    keys = ("mcc", "roc_auc") if probs.shape[1] == 2 else ("accuracy",)
    return {k: float(v) for k, v in classification_metrics(y, probs).items() if k in keys}


def inner_folds(y: np.ndarray, folds: int):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(folds, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def logreg_cv(x: np.ndarray, y: np.ndarray, folds: int, Cs=CS) -> dict:
    """Mean inner-fold scores of the standardised LR at each C; the row holds the best C's."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    per_c = {C: [] for C in Cs}
    for a, b in inner_folds(y, folds):
        mean, scale = x[a].mean(0), x[a].std(0)
        scale[scale == 0] = 1.0
        xa, xb = (x[a] - mean) / scale, (x[b] - mean) / scale
        for C in Cs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LogisticRegression(C=C, max_iter=500, tol=1e-4).fit(xa, y[a])
            per_c[C].append(scores(y[b], model.predict_proba(xb)))
    means = {C: {k: float(np.mean([s[k] for s in runs])) for k in runs[0]} for C, runs in per_c.items()}
    key = "mcc" if "mcc" in means[Cs[0]] else "accuracy"
    best = max(Cs, key=lambda C: (means[C][key], -C))  # ties: the stronger penalty
    return {**means[best], "C": best, "by_C": {str(C): m[key] for C, m in means.items()},
            "n_features": int(x.shape[1])}


def one_hot(seqs: list[str], length: int):
    import torch

    table = np.full(256, 4, dtype=np.int64)
    for i, base in enumerate(b"ACGT"):
        table[base] = i
        table[ord(chr(base).lower())] = i
    x = np.zeros((len(seqs), 5, length), dtype=np.float32)
    for n, s in enumerate(seqs):
        codes = table[np.frombuffer(s[:length].encode(), dtype=np.uint8)]
        x[n, codes, np.arange(len(codes))] = 1.0
    return torch.from_numpy(x[:, :4])  # an unknown base is all zeros, as is padding


def cnn_cv(seqs: list[str], y: np.ndarray, folds: int, epochs: int = 30, seed: int = 0) -> dict:
    """Mean inner-fold scores of the reference CNN (module docstring), trained at a fixed schedule."""
    import torch
    from torch import nn

    length = max(len(s) for s in seqs)
    x, n_classes = one_hot(seqs, length), int(y.max()) + 1
    runs = []
    for a, b in inner_folds(y, folds):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv1d(4, 64, 11, padding=5), nn.ReLU(), nn.AdaptiveMaxPool1d(9), nn.Flatten(),
                            nn.Dropout(0.5), nn.Linear(64 * 9, n_classes))
        opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-2)
        xa, ya = x[a], torch.from_numpy(y[a])
        for _ in range(epochs):
            net.train()
            order = torch.randperm(len(a))
            for i in range(0, len(a), 64):
                j = order[i:i + 64]
                opt.zero_grad()
                nn.functional.cross_entropy(net(xa[j]), ya[j]).backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            runs.append(scores(y[b], torch.softmax(net(x[b]), 1).numpy()))
    return {**{k: float(np.mean([r[k] for r in runs])) for k in runs[0]}, "epochs": epochs, "seed": seed,
            "n_parameters": int(sum(p.numel() for p in net.parameters()))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    ap.add_argument("--dataset", required=True, help="dataset folder under <out>/data")
    ap.add_argument("--splits", required=True, help="comma-separated split names (fold0,fold1 or split)")
    ap.add_argument("--features", action="append", default=[], metavar="SET",
                    help="a feature set for the k-mer LR (repeatable): blocks spectrum, posK_B, gapL_K joined by +")
    ap.add_argument("--cnn", action="store_true", help="also the reference CNN trained from zero (module docstring)")
    ap.add_argument("--folds", type=int, default=5, help="parts of each train split (default 5)")
    ap.add_argument("--out", default="runs/repro", help="run.py's --out (the split CSVs)")
    ap.add_argument("--results", default="benchmarks/reproduce/results")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for --cnn (0: torch's choice)")
    args = ap.parse_args(argv)
    if not args.features and not args.cnn:
        ap.error("name one or more --features, or --cnn")
    if args.folds < 2:
        ap.error("--folds takes 2 or more")
    try:
        sets = {spec: parse_features(spec) for spec in args.features}
    except ValueError as e:
        ap.error(str(e))
    from gulm.data import read_labeled_csv
    from gulm.data.batches import encode_labels

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    for split_name in args.splits.split(","):
        csv = Path(args.out) / "data" / args.dataset / f"{split_name}.csv"
        if not csv.exists():
            sys.exit(f"train_cv.py: {csv} not found (build it with: run.py {args.task} --data-only --out {args.out})")
        ds = read_labeled_csv(str(csv), split_col="set")
        train = np.asarray(ds.split) == "train"  # valid and test are never read
        seqs = [s for s, t in zip(ds.sequences, train) if t]
        y, classes = encode_labels([lab for lab, t in zip(ds.labels, train) if t])
        y = np.asarray(y)
        span = max(len(s) for s in seqs)
        rows = {}
        for spec, blocks in sets.items():
            t0 = time.perf_counter()
            rows[f"logreg:{spec}"] = {**logreg_cv(features(seqs, blocks, span), y, args.folds),
                                      "seconds": round(time.perf_counter() - t0, 1)}
        if args.cnn:
            t0 = time.perf_counter()
            rows["cnn_scratch"] = {**cnn_cv(seqs, y, args.folds), "seconds": round(time.perf_counter() - t0, 1)}
        key = "mcc" if len(classes) == 2 else "accuracy"
        flags = [f"--features {spec}" for spec in args.features] + ["--cnn"] * args.cnn
        rerun = (f"python benchmarks/reproduce/train_cv.py {args.task} --dataset {args.dataset} --splits {split_name} "
                 + " ".join(flags + [f"--folds {args.folds}"]) + " --out OUT --results RESULTS")
        for name, row in rows.items():
            row["rerun"] = rerun
            print(f"[train_cv] {args.dataset} {split_name} {name}: inner-CV {key} {row[key]:.4f}"
                  + (f" ROC-AUC {row['roc_auc']:.4f}" if "roc_auc" in row else "")
                  + (f" (C {row['C']:g}, {row['n_features']} features)" if "C" in row else ""), flush=True)
        path = Path(args.results) / args.task / "probes" / f"{args.dataset}__{split_name}__train_cv.json"
        write_json(path, merged_rows(path, {
            "task": args.task, "dataset": args.dataset, "split": split_name, "csv": str(csv),
            "n_train": int(train.sum()), "n_valid": 0, "folds": args.folds, "classes": classes,
            "rows": rows, "machine": machine_info(), "rerun": rerun}))


if __name__ == "__main__":
    main()
