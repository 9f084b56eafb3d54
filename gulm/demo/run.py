"""``gulm demo``: the three ULMFiT phases on a synthetic genome, end to end, in minutes.

1. Write a deterministic synthetic bacterial-like genome (genes with codon structure,
   sigma70-like promoters upstream of transcription units) and a promoter / non-promoter
   set cut from it like Genomic-ULMFiT's E. coli set, as files a user would have.
2. Pretrain a small AWD-LSTM language model on the genome.
3. Fine-tune it on the classification sequences.
4. Train the same classifier twice on few labels - from scratch (at its own learning rate) and
   from the fine-tuned LM, each keeping its best valid epoch - and fit the k-mer logistic
   regression on the same split; print the three side by side.
Everything lands under one output folder: data/, lm/, lm_finetuned/, clf_scratch/,
clf_ulmfit/, summary.json and evaluation.png (the three rows' curves on the test split).
"""
from __future__ import annotations

import json
import os
import time

import torch

from gulm.configs import ClassifierConfig, DataConfig, DemoConfig, FinetuneConfig, PretrainConfig
from gulm.configs.commands import KMER_KS
from gulm.configs.fields import config_from

__all__ = ["run_demo", "DEMO", "pretrain_config", "finetune_config", "classifier_config"]

# The demo recipe; "quick" scales it down to a smoke test. Chosen on the valid split only
# (benchmarks/demo_recipe.py; the test split played no part): 3-mer stride-1 tokens, 15 epochs of
# LM fine-tuning and 32 classifier epochs gave the best valid MCC, 0.631 against 0.407 for the
# earlier 5-mer stride-2 recipe with 4 + 10 epochs (the k-mer LR's: 0.570).
DEMO = dict(
    genome_length=1_000_000,
    n_train=200,
    k=3,
    stride=1,
    emb_size=64,
    hidden_size=256,
    n_layers=3,
    lm_epochs=4,
    lm_lr=1e-2,
    lm_bs=32,
    ft_epochs=15,
    ft_lr=5e-3,
    # gradual unfreezing (4 epochs per stage, as the seed's sigma70 notebook), then 20 epochs of the
    # whole model: one classifier epoch over 200 labels takes about a second
    clf_stages=[[4, 2e-2, 1], [4, 1e-2, 2], [4, 5e-3, 3], [20, 2e-3, 0]],
    # From scratch there is nothing to protect by freezing: a random encoder is trained whole, at
    # its own learning rate (the best valid MCC of 1e-3, 3e-3, 1e-2 and 3e-2 on this data,
    # benchmarks/demo_scratch_lr.py).
    scratch_stages=[[20, 1e-3, 0]],
    clf_bs=32,
    # both classifiers keep their best valid epoch (by MCC); the same drop_mult and head
    select="best",
    drop_mult=0.5,
    # the k-mer logistic regression on the same split: k = 1..6, C chosen on the valid split
    baseline_ks=list(KMER_KS),
)
QUICK = dict(genome_length=60_000, n_train=60, lm_epochs=1, ft_epochs=1,
             clf_stages=[[1, 2e-2, 1], [1, 1e-2, 0]], scratch_stages=[[2, 5e-3, 0]],
             emb_size=32, hidden_size=64, n_layers=2, baseline_ks=[1, 2, 3])


def _sizes(r: dict) -> dict:
    return dict(emb_size=r["emb_size"], hidden_size=r["hidden_size"], n_layers=r["n_layers"])


def pretrain_config(r: dict, genome, out: str, **run) -> PretrainConfig:
    """The demo's LM pretraining on ``genome`` for the recipe ``r`` (:data:`DEMO`'s keys); ``run``:
    device, dtype, seed, threads, progress."""
    return PretrainConfig(fasta=[str(genome)], out=out, k=r["k"], stride=r["stride"], epochs=r["lm_epochs"],
                          lr=r["lm_lr"], bs=r["lm_bs"], **_sizes(r), **run)


def finetune_config(r: dict, lm: str, data: DataConfig, out: str, **run) -> FinetuneConfig:
    """The demo's LM fine-tuning on the promoter set for the recipe ``r``."""
    return FinetuneConfig(lm=lm, data=data, out=out, epochs=r["ft_epochs"], lr=r["ft_lr"], bs=min(r["lm_bs"], 16),
                          **run)


def classifier_config(r: dict, data: DataConfig, lm: str, out: str, stages, **run) -> ClassifierConfig:
    """The demo's classifier for the recipe ``r``: from the LM at ``lm`` (or from scratch with
    ``lm=""``), trained with ``stages``, keeping its best valid epoch."""
    return ClassifierConfig(data=data, lm=lm, k=r["k"], stride=r["stride"], **_sizes(r), preset="seed",
                            select=r["select"], drop_mult=r["drop_mult"], out=out, stages=stages, bs=r["clf_bs"],
                            **run)


#: the rows of the demo's table, in its order
LR_ROW, SCRATCH_ROW, ULMFIT_ROW = "k-mer LR (scikit-learn)", "from scratch", "pretrained LM (ULMFiT)"


def _figure(out: str, data: DataConfig, device, dtype: str) -> str:
    """``out/evaluation.png``: :func:`gulm.plots.plot_evaluation` of the table's three rows on the
    test split (the pretrained classifier first, so the confusion matrix is its)."""
    from gulm.baseline import baseline_probs
    from gulm.data.batches import encode_labels
    from gulm.data.sources import load_labeled, select_split
    from gulm.infer import Classifier
    from gulm.plots import plot_evaluation

    seqs, labels = select_split(load_labeled(data), "test")
    ulmfit = Classifier.load(os.path.join(out, "clf_ulmfit"), device, dtype)
    scratch = Classifier.load(os.path.join(out, "clf_scratch"), device, dtype)
    models = {ULMFIT_ROW: ulmfit.probs(seqs), SCRATCH_ROW: scratch.probs(seqs),
              LR_ROW: baseline_probs(os.path.join(out, "clf_ulmfit"), seqs, ulmfit.classes)[1]}
    y, _ = encode_labels(labels, ulmfit.classes)
    return plot_evaluation(models, y, ulmfit.classes, os.path.join(out, "evaluation.png"),
                           f"gulm demo: synthetic promoters, test split ({len(seqs)} sequences)")


def run_demo(cfg: DemoConfig | str | None = None, *, recipe: dict | None = None, **overrides) -> dict:
    """Run the demo into ``out`` (a :class:`~gulm.configs.DemoConfig`, or the output folder;
    options are its fields); returns the summary (also written to ``out/summary.json``).
    ``recipe`` overrides entries of :data:`DEMO`."""
    from gulm.baseline import kmer_baseline
    from gulm.demo.synthetic import write_demo_data
    from gulm.metrics import format_table
    from gulm.runtime.device import setup
    from gulm.train.classifier import train_classifier
    from gulm.train.phases import finetune_lm, pretrain_lm

    cfg = config_from(DemoConfig, cfg, overrides, value_field="out")
    setup(cfg.device, cfg.threads)
    out, quick, seed, dtype, device = cfg.out, cfg.quick, cfg.seed, cfg.dtype, cfg.device
    r = dict(DEMO)
    if quick:
        r.update(QUICK)
    r.update(recipe or {})
    t_start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    print(f"gulm demo: {'quick ' if quick else ''}run into {out}/ "
          f"(torch threads: {torch.get_num_threads()}, device: {device}, dtype: {dtype})")

    print(f"[1/4] synthetic genome ({r['genome_length']:,} bp) and promoter set "
          f"({r['n_train']} training labels)")
    paths = write_demo_data(os.path.join(out, "data"), length=r["genome_length"], seed=seed,
                            n_train=r["n_train"])
    data = DataConfig(csv=str(paths["promoters"]))
    common = dict(device=device, dtype=dtype, seed=seed, threads=cfg.threads)
    timings = {}

    print("[2/4] pretraining the language model on the genome")
    t = time.perf_counter()
    lm = pretrain_lm(pretrain_config(r, paths["genome"], os.path.join(out, "lm"), **common))
    timings["pretrain"] = time.perf_counter() - t

    print("[3/4] fine-tuning the language model on the classification sequences")
    t = time.perf_counter()
    ft = finetune_lm(finetune_config(r, os.path.join(out, "lm"), data, os.path.join(out, "lm_finetuned"), **common))
    timings["finetune"] = time.perf_counter() - t

    print("[4/4] classifiers: the k-mer logistic regression, from scratch, and from the fine-tuned "
          "language model, on the same split")
    results = {}
    for name, lm_path, stages in (("scratch", "", r["scratch_stages"]),
                                  ("ulmfit", os.path.join(out, "lm_finetuned"), r["clf_stages"])):
        t = time.perf_counter()
        results[name] = train_classifier(classifier_config(r, data, lm_path, os.path.join(out, f"clf_{name}"),
                                                           stages, **common))
        timings[f"classifier_{name}"] = time.perf_counter() - t
    t = time.perf_counter()
    base = kmer_baseline(os.path.join(out, "clf_ulmfit"), ks=r["baseline_ks"], threads=cfg.threads)
    timings["baseline"] = time.perf_counter() - t

    total = time.perf_counter() - t_start
    rows = {LR_ROW: base["test"], SCRATCH_ROW: results["scratch"], ULMFIT_ROW: results["ulmfit"]}
    print()
    print(f"Promoter classification on the synthetic genome, test split (n={results['scratch']['n']}), "
          f"{r['n_train']} training labels:")
    print(format_table(rows, keys=("accuracy", "mcc", "f1", "roc_auc")))
    print(f"language model: perplexity {lm.get('perplexity', float('nan')):.2f} on held-out genome "
          f"after pretraining; {ft.get('perplexity', float('nan')):.2f} on the classification "
          f"sequences' valid split after fine-tuning")
    try:  # the figure adds to the table; a failure to draw it does not lose the run's summary
        figure = _figure(out, data, device, dtype)
        print(f"figure: {figure} (the three rows' ROC and precision-recall curves, reliability, and "
              f"the pretrained classifier's confusion matrix)")
    except Exception as err:
        figure = None
        print(f"no figure: {' '.join(str(err).split())}")
    print(f"total time {total / 60:.1f} min; outputs in {out}/")
    summary = {
        "recipe": r, "quick": quick, "seed": seed, "dtype": dtype, "device": device,
        "lm": lm, "lm_finetuned": ft,
        "classifier": {k: {m: v for m, v in res.items() if m != "confusion_matrix"}
                       for k, res in results.items()},
        "kmer_logreg": {"C": base["C"], **{m: v for m, v in base["test"].items() if m != "confusion_matrix"}},
        "seconds": {**timings, "total": total},
        "figure": figure,
    }
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2, default=float)
    return summary
