"""Compare language models for a task before paying for a classifier row: a linear probe.

Each LM's encoder, frozen, turns every sequence of a split into its pooled features (the
classifier head's input: [last, max, mean] of the last layer, :class:`gulm.infer.Encoder`); the
k-mer baseline's logistic regression (:func:`gulm.probe.linear_probe`, as ``gulm probe`` fits it:
standardised, C chosen by valid accuracy) is fitted on the train rows and scored on the **valid**
rows only. This script runs it on the harness's split CSVs and writes the results JSON.
Nothing touches test. The k-mer LR of the same split, fitted the same way, is the first line.

    python benchmarks/reproduce/probe.py task6 --dataset umarov_mouse_tata --splits fold2,fold3 \\
        --lm shipped:eukaryotes-3m1s --lm mammal_3m1s --out /work/runs/repro \\
        --results benchmarks/reproduce/results

``--kmer-variants`` probes no LM; it sets the k-mer LR's ways of reading strands side by side
(given strand; both strands summed, a strand-symmetric spectrum; both strands' given-strand spectra
as training rows with the two strands' probabilities averaged, what ``--kmer-logreg`` fits with
``--rc-augment`` and predicts with ``--rc-average``) and writes ``<dataset>__<split>__kmer.json``:

    python benchmarks/reproduce/probe.py task4 --dataset cohn_enhancers \\
        --splits fold0,fold1,fold2,fold3,fold4 --kmer-variants --out /work/runs/repro

``--gapped L,K`` adds the gapped k-mer spectrum (L-base windows, K informative bases; the features
of gkm-SVM, :func:`gulm.baseline.gapped_kmer_features`) read the last two ways.

``--positional K,B`` (repeatable) adds the k-mer spectrum with the counts of the K-mers starting in
each B-base bin of the sequence (up to the longest training sequence; given strand), the features of
``--kmer-positional K B`` (:func:`gulm.baseline.positional_kmer_features`), one row
``kmer_positional_K_B`` each: for windows aligned on a site (promoters around a TSS).

``--lm`` takes ``shipped:NAME`` (a model shipped in the package), the name of a shared LM that
``run.py --lm NAME`` pretrained under ``<out>/lm/NAME``, or a checkpoint folder; ``LABEL=LM`` names
the row ``LABEL`` (``--lm ft8_fold0=/scratch/ft8``), and ``--note`` says in words what the LM is
(its corpus, epochs, valid loss). Probes add up: rows already in the split's JSON are kept, each LM
row with its own rerun line and machine, so probing one more LM never loses an earlier one. The split CSVs
are the ones ``run.py TASK --data-only`` builds under ``<out>/data``. One JSON per dataset and split
goes to ``<results>/<task>/probes/`` (not a model row: ``run.py --summarize`` does not read it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ -> import reproduce

from reproduce.common import machine_info, write_json  # noqa: E402
from reproduce.settings import shipped_lm  # noqa: E402


def lm_label(spec: str) -> tuple[str, str]:
    """``(row label, LM name)`` of ``--lm [LABEL=]NAME``."""
    label, sep, name = spec.partition("=")
    return (label, name) if sep else (spec, spec)


def merged_rows(path: Path, body: dict) -> dict:
    """``body`` with the LM rows of an earlier probe of the same split (``path``) kept, each with the
    command that made it: the new run's rows replace rows of the same name only. A JSON of another
    split layout is refused."""
    if not path.exists():
        return body
    old = json.loads(path.read_text())
    same = ("classes", "n_train", "n_valid")
    if any(old.get(k) != body[k] for k in same):
        sys.exit(f"probe.py: {path} holds a probe of another split layout "
                 f"({', '.join(f'{k} {old.get(k)!r}' for k in same)}); move it away first")
    # an earlier row without its own rerun line was made by the earlier file's command (the k-mer
    # rows are always among the new run's rows, which replace them)
    kept = {name: {"machine": old.get("machine"), "rerun": old.get("rerun"), **row}
            for name, row in old.get("rows", {}).items()}
    return {**body, "rows": {**kept, **body["rows"]}}


def rerun_line(task: str, dataset: str, split_name: str, flags: list[str]) -> str:
    """The command that makes a probe row again (``OUT`` and ``RESULTS`` stand for the folders)."""
    return (f"python benchmarks/reproduce/probe.py {task} --dataset {dataset} --splits {split_name} "
            + " ".join(flags) + " --out OUT --results RESULTS")


def lm_folder(name: str, out: Path) -> Path:
    """The checkpoint folder of ``--lm NAME``."""
    shipped = shipped_lm(name)
    if shipped is not None:
        return shipped
    for folder in (out / "lm" / name, Path(name)):
        if (folder / "model.safetensors").exists():
            return folder
    sys.exit(f"probe.py: no LM {name!r}: neither {out / 'lm' / name} nor {name} holds a model.safetensors "
             f"(pretrain it with: run.py --lm {name} --out {out})")


def probe(x: np.ndarray, y: np.ndarray, split: np.ndarray, classes: list[str]) -> dict:
    """Valid metrics of the logistic regression fitted on the train rows of features ``x``
    (:func:`gulm.probe.linear_probe`, the code of ``gulm probe``)."""
    from gulm.probe import linear_probe

    tr, va = split == "train", split == "valid"
    return linear_probe(x[tr], y[tr], x[va], y[va], classes)


def kmer_variants(seqs: list[str], y: np.ndarray, split: np.ndarray, classes: list[str],
                  gapped: tuple[int, int] | None = None, positional: list[tuple[int, int]] = ()) -> dict:
    """Valid metrics of the k-mer LR (k = 1..6) reading the strands three ways: ``kmer_logreg`` (the
    given strand), ``kmer_logreg_both_strands`` (both strands' counts summed) and
    ``kmer_logreg_rc_rows`` (each strand's spectrum a training row; a valid sequence's two
    strands' probabilities averaged; C by valid accuracy over the same grid). ``gapped`` (length,
    informative) adds the gapped k-mer spectrum (:func:`gulm.baseline.gapped_kmer_features`) read
    the last two ways, ``kmer_gapped_L_K_both_strands`` and ``kmer_gapped_L_K_rc_rows``."""
    from gulm.baseline import gapped_kmer_features, kmer_features

    given = kmer_features(seqs, (1, 2, 3, 4, 5, 6))
    both = kmer_features(seqs, (1, 2, 3, 4, 5, 6), both_strands=True)
    # the reverse strand's own spectrum: ``both`` is the mean of the two strands' frequencies (both
    # strands have the same counted windows, so each k block's total doubles)
    rows = {"kmer_logreg": probe(given, y, split, classes),
            "kmer_logreg_both_strands": probe(both, y, split, classes),
            "kmer_logreg_rc_rows": rc_rows_probe(given, 2 * both - given, y, split, classes)}
    if gapped:
        from gulm.ops.kmer import revcomp

        t0 = time.perf_counter()
        g_given = gapped_kmer_features(seqs, *gapped)
        g_both = gapped_kmer_features(seqs, *gapped, both_strands=True)
        # counted on the reverse strand itself: a pattern's reverse complement falls in the mirrored
        # pattern's block, so with unknown bases the two strands' blocks need not count the same
        # windows and ``2 * g_both - g_given`` would not be the reverse strand's spectrum
        g_reverse = gapped_kmer_features([revcomp(s) for s in seqs], *gapped)
        count_seconds = round(time.perf_counter() - t0, 2)
        name = f"kmer_gapped_{gapped[0]}_{gapped[1]}"
        rows[f"{name}_both_strands"] = {**probe(g_both, y, split, classes), "count_seconds": count_seconds}
        rows[f"{name}_rc_rows"] = {**rc_rows_probe(g_given, g_reverse, y, split, classes),
                                   "count_seconds": count_seconds}
    if positional:
        from gulm.baseline import positional_kmer_features, resolve_positional

        train = [q for q, t in zip(seqs, split) if t == "train"]
        for k, stretch in positional:
            place = positional_kmer_features(seqs, *resolve_positional((k, stretch), train, "--positional"))
            rows[f"kmer_positional_{k}_{stretch}"] = probe(np.concatenate([given, place], axis=1), y, split, classes)
    return rows


def rc_rows_probe(given: np.ndarray, reverse: np.ndarray, y: np.ndarray, split: np.ndarray,
                  classes: list[str]) -> dict:
    """Valid metrics of the LR trained on both strands' features as rows (``given`` and
    ``reverse``), each valid sequence's two strands' probabilities averaged, C by valid accuracy."""
    from gulm.baseline import fit_kmer_logreg
    from gulm.configs.commands import KMER_CS
    from gulm.metrics import classification_metrics
    from gulm.probe import PROBE_METRICS

    tr, va = split == "train", split == "valid"
    t0, best = time.perf_counter(), None
    for C in KMER_CS:
        model = fit_kmer_logreg(np.concatenate([given[tr], reverse[tr]]), np.concatenate([y[tr], y[tr]]),
                                None, None, classes, Cs=[C])
        probs = (model.probs_from_features(given[va]) + model.probs_from_features(reverse[va])) / 2
        metrics = classification_metrics(y[va], probs, classes)
        if best is None or metrics["accuracy"] > best[1]["accuracy"]:
            best = (C, metrics)
    return {"valid": {k: best[1][k] for k in PROBE_METRICS if k in best[1]}, "C": best[0],
            "n_features": int(given.shape[1]), "fit_seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task")
    ap.add_argument("--dataset", required=True, help="dataset folder under <out>/data")
    ap.add_argument("--splits", required=True, help="comma-separated split names (fold2,fold3 or split)")
    ap.add_argument("--lm", action="append", default=[], metavar="[LABEL=]LM",
                    help="an LM to probe (repeatable); LABEL names its row (default: LM)")
    ap.add_argument("--note", default=None, help="what the LMs probed are, in words (kept in their rows)")
    ap.add_argument("--kmer-variants", action="store_true",
                    help="probe no LM: the k-mer LR on the given strand, on both strands summed, and on both "
                         "strands as training rows with averaged probabilities")
    ap.add_argument("--gapped", default=None, metavar="L,K",
                    help="with --kmer-variants: also the gapped k-mer spectrum of L-base windows with K "
                         "informative bases (e.g. 10,5), read both ways the strands are combined")
    ap.add_argument("--positional", action="append", default=[], metavar="K,B",
                    help="with --kmer-variants: also the spectrum with the counts of the K-mers starting in each "
                         "B-base bin (repeatable; e.g. 3,3)")
    ap.add_argument("--bins", type=int, default=0, metavar="N",
                    help="with --lm: each LM row's features also hold the mean encoder output over N equal parts "
                         "of every sequence (train-classifier --head-bins N); name such rows with LABEL=")
    ap.add_argument("--out", default="runs/repro", help="run.py's --out (data and shared LMs)")
    ap.add_argument("--results", default="benchmarks/reproduce/results")
    ap.add_argument("--bs", type=int, default=128, help="inference batch size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = ap.parse_args(argv)
    if bool(args.lm) == args.kmer_variants:
        ap.error("name one or more --lm, or --kmer-variants")
    gapped = tuple(int(v) for v in args.gapped.split(",")) if args.gapped else None
    if gapped and (not args.kmer_variants or len(gapped) != 2):
        ap.error("--gapped takes L,K and goes with --kmer-variants")
    if args.bins and (not args.lm or args.bins < 0):
        ap.error("--bins takes a number of parts (>= 1) and goes with --lm")
    bins_flag = [f"--bins {args.bins}"] if args.bins else []  # in every rerun line of an LM row
    positional = [tuple(int(v) for v in p.split(",")) for p in args.positional]
    if positional and (not args.kmer_variants or any(len(p) != 2 for p in positional)):
        ap.error("--positional takes K,B and goes with --kmer-variants")

    import torch

    from gulm.baseline import kmer_features
    from gulm.data import read_labeled_csv
    from gulm.data.batches import encode_labels
    from gulm.infer import Encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    specs = {lm_label(spec)[0]: spec for spec in args.lm}  # row label -> its --lm argument
    folders = {label: lm_folder(lm_label(spec)[1], out) for label, spec in specs.items()}
    for split_name in args.splits.split(","):
        csv = out / "data" / args.dataset / f"{split_name}.csv"
        if not csv.exists():
            sys.exit(f"probe.py: {csv} not found (build it with: run.py {args.task} --data-only --out {out})")
        ds = read_labeled_csv(str(csv), split_col="set")
        split = np.asarray(ds.split)
        keep = split != "test"  # test is never read
        seqs = [s for s, k in zip(ds.sequences, keep) if k]
        y, classes = encode_labels([lab for lab, k in zip(ds.labels, keep) if k])
        split = split[keep]
        if args.kmer_variants:
            rows = kmer_variants(seqs, y, split, classes, gapped, positional)
        else:
            rows = {"kmer_logreg": probe(kmer_features(seqs, (1, 2, 3, 4, 5, 6)), y, split, classes)}
        for name, folder in folders.items():
            t0 = time.perf_counter()
            x = Encoder.load(folder).features(seqs, bs=args.bs, bins=args.bins)
            rows[name] = {**probe(x, y, split, classes), "feature_seconds": round(time.perf_counter() - t0, 1),
                          "lm_path": str(folder), "machine": machine_info(),
                          "bins": args.bins,
                          "rerun": rerun_line(args.task, args.dataset, split_name,
                                              [f"--lm {specs[name]}"] + bins_flag)}
            if args.note:
                rows[name]["lm"] = args.note
        key = "mcc" if len(classes) == 2 else "accuracy"
        for name, r in rows.items():
            print(f"[probe] {args.dataset} {split_name} {name}: valid {key} {r['valid'][key]:.4f} "
                  f"acc {r['valid']['accuracy']:.4f} (C {r['C']:g}, {r['n_features']} features)")
        suffix = "__kmer" if args.kmer_variants else ""
        path = Path(args.results) / args.task / "probes" / f"{args.dataset}__{split_name}{suffix}.json"
        rerun = rerun_line(args.task, args.dataset, split_name,
                           [f"--lm {n}" for n in args.lm] + bins_flag
                           + ["--kmer-variants"] * args.kmer_variants
                           + [f"--gapped {args.gapped}"] * bool(args.gapped)
                           + [f"--positional {p}" for p in args.positional])
        write_json(path, merged_rows(path, {
            "task": args.task, "dataset": args.dataset, "split": split_name, "csv": str(csv),
            "n_train": int((split == "train").sum()), "n_valid": int((split == "valid").sum()),
            "classes": classes, "rows": rows, "machine": machine_info(), "rerun": rerun}))


if __name__ == "__main__":
    main()
