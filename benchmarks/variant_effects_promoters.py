"""Variant effects on E. coli promoter boxes: do single-base substitutions in the -10 and -35
boxes move a promoter model's score more than substitutions elsewhere in the window?

    GULM_DATA=../shared/data python benchmarks/variant_effects_promoters.py --out /tmp/ve --json ve.json
    ... --checkpoint runs/ecoli_clf          # score with an existing promoter classifier
    ... --lm bacteria-3m1s                   # fine-tune the classifier from a language model

Data: the Umarov & Solovyev E. coli sigma70 set (``umarov_promoters/Ecoli_prom.fa.gz``, 839
promoters of 81 bp, -60..+20 around the TSS, so the TSS (+1) is index 60; PROVENANCE.md) and its
3,000 non-promoters.

Boxes: for each promoter, the -10 hexamer start ``s10`` is searched in indexes 44..51 (the
consensus position -12..-7, index 48, +-4 bp) and the -35 hexamer start in ``s10 - 6 - spacer``
for spacers of 15..19 bp; the pair with the most matches to TATAAT + TTGACA wins (ties: spacer
nearest 17, then ``s10`` nearest 48). Promoters whose best pair matches fewer than
``--min-match`` of the 12 consensus bases are left out (their boxes cannot be placed).

Model: unless ``--checkpoint`` is given, a small classifier (3-mers stride 1, emb 64, hidden 256,
2 layers, ``--epochs`` epochs from scratch, or fine-tuned from ``--lm``) is trained on a
stratified 70/10/20 split of promoters and non-promoters (seed 0). The test promoters become the
contigs of a FASTA (each exactly one 81-bp window) and every single-base substitution of each is
written to a VCF; ``gulm.variant_effect`` scores them (window 81, forward strand), so every
variant is scored in the same window, its promoter's. Reported: mean |delta P(promoter)| and
|log-odds delta| in the -10 box, the -35 box and elsewhere; the share of promoters whose box
substitutions move the score more than the rest; the AUROC of |delta| (box vs elsewhere); and
the positional profile.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time

import numpy as np

BOX10, BOX35 = "TATAAT", "TTGACA"
TSS = 60  # index of +1 in the 81-bp Umarov windows (-60..+20)
S10_RANGE = range(44, 52)
SPACERS = range(15, 20)


def load_dataset(name: str):
    """(promoters [(id, SEQ, scored)], non-promoters [SEQ]); ``scored``: a sigma70 promoter whose
    TSS is index 60, whose boxes the benchmark looks at."""
    from gulm.data.fasta import iter_fasta

    data = os.environ.get("GULM_DATA")
    if not data or not os.path.isdir(os.path.join(data, "umarov_promoters")):
        sys.exit("set GULM_DATA to the shared data folder (with umarov_promoters/)")
    if name == "umarov":
        folder = os.path.join(data, "umarov_promoters")
        pos = [(rid, s, True) for rid, s in iter_fasta(os.path.join(folder, "Ecoli_prom.fa.gz"), upper=True)]
        return pos, [s for _, s in iter_fasta(os.path.join(folder, "Ecoli_non_prom.fa.gz"), upper=True)]
    folder = os.path.join(data, "ipromoter2l_ecoli_promoters")
    sigma70 = {rid for rid, _ in iter_fasta(os.path.join(folder, "sigma_subtypes", "sigma70promoter.fa.gz"))}
    pos = []
    for rid, s in iter_fasta(os.path.join(folder, "positive2860.fa.gz")):
        upper = [i for i, c in enumerate(s) if c.isupper()]  # the TSS is the one upper-case base
        pos.append((rid, s.upper(), rid in sigma70 and upper == [TSS]))
    return pos, [s for _, s in iter_fasta(os.path.join(folder, "negative2860.fa.gz"), upper=True)]


def matches(seq: str, start: int, motif: str) -> int:
    return sum(a == b for a, b in zip(seq[start:start + 6], motif))


def find_boxes(seq: str) -> tuple[int, int, int]:
    """(start of the -35 box, start of the -10 box, consensus matches of the two, 0..12)."""
    best = None
    for s10 in S10_RANGE:
        for spacer in SPACERS:
            s35 = s10 - 6 - spacer
            if s35 < 0:
                continue
            score = matches(seq, s10, BOX10) + matches(seq, s35, BOX35)
            key = (score, -abs(spacer - 17), -abs(s10 - 48))
            if best is None or key > best[0]:
                best = (key, s35, s10)
    return best[1], best[2], best[0][0]


def train(args, rows, out) -> tuple[str, dict]:
    from gulm.configs import ClassifierConfig, DataConfig
    from gulm.train.classifier import train_classifier

    path = os.path.join(out, "set.csv")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "sequence", "label", "set"])
        w.writerows(rows)
    kw = dict(data=DataConfig(csv=path), out=os.path.join(out, "clf"), stages=[[args.epochs, args.lr, 0]],
              bs=32, progress=False, seed=0, threads=args.threads, drop_mult=0.5)
    if args.lm:
        kw["lm"] = args.lm
    else:
        kw.update(k=3, stride=1, emb_size=64, hidden_size=256, n_layers=2)
    t = time.perf_counter()
    metrics = train_classifier(ClassifierConfig(**kw))
    metrics["train_seconds_wall"] = round(time.perf_counter() - t, 1)
    return kw["out"], metrics


def write_variants(promoters, out) -> tuple[str, str]:
    """The promoters as contigs of a FASTA, and all their single-base substitutions as a VCF."""
    fa, vcf = os.path.join(out, "promoters.fa"), os.path.join(out, "substitutions.vcf")
    with open(fa, "w") as fh:
        for name, seq, *_ in promoters:
            fh.write(f">{name}\n{seq}\n")
    with open(vcf, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        fh.writelines(f"##contig=<ID={name},length={len(seq)}>\n" for name, seq, *_ in promoters)
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for name, seq, *_ in promoters:
            for i, ref in enumerate(seq):
                alts = ",".join(b for b in "ACGT" if b != ref)
                fh.write(f"{name}\t{i + 1}\t{name}:{i - TSS}\t{ref}\t{alts}\t.\t.\t.\n")
    return fa, vcf


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a box substitution's |delta| exceeds another's), ties counted half."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg]))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="ve_promoters", help="working folder")
    p.add_argument("--dataset", default="umarov", choices=("umarov", "ipromoter2l"),
                   help="promoters and non-promoters to train on (boxes are scored on sigma70 test promoters)")
    p.add_argument("--json", default="", help="write the results here")
    p.add_argument("--checkpoint", default="", help="an E. coli promoter classifier to use instead of training")
    p.add_argument("--lm", default="", help="fine-tune the classifier from this LM (path or shipped name)")
    p.add_argument("--epochs", type=int, default=4, help="training epochs (all layers)")
    p.add_argument("--lr", type=float, default=5e-3, help="learning rate")
    p.add_argument("--min-match", type=int, default=8, help="least consensus matches (of 12) to place the boxes")
    p.add_argument("--max-promoters", type=int, default=0, help="score at most this many test promoters (0: all)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="precision of the scoring")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)

    import torch

    import gulm
    from gulm.data.labeled import stratified_split

    os.makedirs(args.out, exist_ok=True)
    pos, neg = load_dataset(args.dataset)
    labels = ["promoter"] * len(pos) + ["non_promoter"] * len(neg)
    split = np.empty(len(labels), dtype=object)
    for name, idx in zip(("train", "valid", "test"), stratified_split(labels, (0.7, 0.1, 0.2), 0)):
        split[idx] = name
    records = [(f"p{i}", s) for i, (_, s, _) in enumerate(pos)] + [(f"n{i}", s) for i, s in enumerate(neg)]
    rows = [(rid, s, lab, sp) for (rid, s), lab, sp in zip(records, labels, split)]
    scored = {f"p{i}" for i, (_, _, ok) in enumerate(pos) if ok}

    if args.checkpoint:
        ckpt, metrics = args.checkpoint, {}
    else:
        torch.set_num_threads(args.threads)
        ckpt, metrics = train(args, rows, args.out)
        print(f"classifier: test accuracy {metrics['accuracy']:.3f}, MCC {metrics['mcc']:.3f}, "
              f"AUC {metrics.get('roc_auc', float('nan')):.3f} ({metrics['train_seconds_wall']} s)")

    test = [(rid, s) for rid, s, lab, sp in rows if lab == "promoter" and sp == "test" and rid in scored]
    boxed = []
    for rid, s in test:
        s35, s10, score = find_boxes(s)
        if score >= args.min_match and set(s) <= set("ACGT"):
            boxed.append((rid, s, s35, s10, score))
    if args.max_promoters:
        boxed = boxed[:args.max_promoters]
    fa, vcf = write_variants(boxed, args.out)
    summary = gulm.variant_effect(checkpoint=ckpt, vcf=vcf, genome=fa, out=os.path.join(args.out, "effects"),
                                  window=81, strand="+", dtype=args.dtype, threads=args.threads, progress=False)

    # per promoter, position and base: the signed delta P(promoter) and log-odds delta (NaN at REF)
    index = {rid: i for i, (rid, *_) in enumerate(boxed)}
    signed = np.full((len(boxed), 81, 4), np.nan)
    signed_lod = np.full_like(signed, np.nan)
    ref_p = np.zeros(len(boxed))
    with open(summary["files"]["tsv"]) as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            i, j, b = index[r["chrom"]], int(r["pos"]) - 1, "ACGT".index(r["alt"])
            signed[i, j, b] = float(r["delta"])
            signed_lod[i, j, b] = float(r["log_odds_delta"])
            ref_p[i] = float(r["ref_score"])
    assert (np.isfinite(signed).sum(2) == 3).all(), "every substitution should have been scored"
    delta, lod = np.abs(signed), np.abs(signed_lod)
    where = np.zeros((len(boxed), 81), dtype=int)  # 0 elsewhere, 1 -35 box, 2 -10 box
    consensus = np.full((len(boxed), 81), -1)  # the consensus base's index at box positions
    for i, (_, _, s35, s10, _) in enumerate(boxed):
        for start, code, motif in ((s35, 1, BOX35), (s10, 2, BOX10)):
            where[i, start:start + 6] = code
            consensus[i, start:start + 6] = ["ACGT".index(c) for c in motif]
    scored_mask = np.isfinite(signed)
    mask = {name: (where == code)[:, :, None] & scored_mask for code, name in
            ((0, "elsewhere"), (1, "box35"), (2, "box10"))}
    mask["boxes"] = mask["box35"] | mask["box10"]
    ref_is_consensus = np.array([[seq[j] == "ACGT"[consensus[i, j]] if consensus[i, j] >= 0 else False
                                  for j in range(81)] for i, (_, seq, *_) in enumerate(boxed)])
    to_consensus = np.zeros_like(scored_mask)
    for b in range(4):
        to_consensus[:, :, b] = consensus == b
    signed_masks = {  # substitutions that break a consensus base of a box, or make one
        "box_breaks_consensus": mask["boxes"] & ref_is_consensus[:, :, None],
        "box_makes_consensus": mask["boxes"] & ~ref_is_consensus[:, :, None] & to_consensus,
        "elsewhere": mask["elsewhere"],
    }

    def stats(values: np.ndarray, signed_values: np.ndarray) -> dict:
        out = {name: round(float(values[m].mean()), 5) for name, m in mask.items()}
        out["median"] = {name: round(float(np.median(values[m])), 5) for name, m in mask.items()}
        out["ratio_boxes_to_elsewhere"] = round(out["boxes"] / out["elsewhere"], 2)
        out["ratio_box10_to_elsewhere"] = round(out["box10"] / out["elsewhere"], 2)
        per = np.array([values[i][mask["boxes"][i]].mean() > values[i][mask["elsewhere"][i]].mean()
                        for i in range(len(boxed))])
        out["promoters_boxes_larger"] = round(float(per.mean()), 3)
        out["auroc_boxes_vs_elsewhere"] = round(auroc(values[mask["boxes"]], values[mask["elsewhere"]]), 3)
        out["auroc_box10_vs_elsewhere"] = round(auroc(values[mask["box10"]], values[mask["elsewhere"]]), 3)
        out["signed_mean"] = {name: round(float(signed_values[m].mean()), 5) for name, m in signed_masks.items()}
        out["signed_n"] = {name: int(m.sum()) for name, m in signed_masks.items()}
        breaks, rest = signed_masks["box_breaks_consensus"], signed_masks["elsewhere"]
        lower = [signed_values[i][breaks[i]].mean() < signed_values[i][rest[i]].mean()
                 for i in range(len(boxed)) if breaks[i].any()]
        out["promoters_breaking_consensus_lowers_more"] = round(float(np.mean(lower)), 3)
        return out

    # the positional profile: mean |delta| at each position relative to the TSS
    profile = np.nanmean(delta, axis=(0, 2))
    top = np.argsort(-profile)[:12]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                   f"{args.threads} torch thread(s), shared 2-core VM",
        "checkpoint": summary["checkpoint"], "classifier_metrics": {k: metrics[k] for k in
                                                                     ("accuracy", "mcc", "roc_auc", "n",
                                                                      "train_seconds_wall") if k in metrics},
        "dataset": args.dataset, "test_promoters": len(test), "promoters_with_boxes": len(boxed), "min_match": args.min_match,
        "mean_box_matches": round(float(np.mean([b[4] for b in boxed])), 2),
        "substitutions_scored": summary["alleles_scored"], "scoring_seconds": summary["seconds"],
        "substitutions_per_second": summary["alleles_per_second"], "dtype": args.dtype,
        "mean_p_promoter_of_reference": round(float(ref_p.mean()), 4),
        "abs_delta": stats(delta, signed), "abs_log_odds_delta": stats(lod, signed_lod),
        "profile_top_positions_rel_tss": [int(j - TSS) for j in top],
        "profile_rel_tss": {int(j - TSS): round(float(profile[j]), 5) for j in range(81)},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "profile_rel_tss"}, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
