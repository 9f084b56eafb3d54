"""The ``gulm`` command line. Every command is one entry of :data:`COMMANDS`: its config
dataclass (from which every option is generated, with its help), its description and the API
function it calls. Every command takes ``--config file.yaml`` plus options that override it;
``gulm <command> --help`` lists them with examples."""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from dataclasses import dataclass
from typing import Callable

from gulm import configs

__all__ = ["main", "build_parser", "COMMANDS"]


@dataclass
class Command:
    config: type  # the config dataclass; one option per field
    summary: str  # one line in `gulm --help`
    description: str
    examples: str
    run: Callable  # run(cfg) with the built config


def _pretrain(cfg):
    from gulm.train.phases import pretrain_lm

    _print_lm(pretrain_lm(cfg))


def _finetune(cfg):
    from gulm.train.phases import finetune_lm

    _print_lm(finetune_lm(cfg))


def _train_classifier(cfg):
    from gulm.metrics import format_table
    from gulm.train.classifier import train_classifier

    m = train_classifier(cfg)
    if "accuracy" in m:
        print(format_table({f"{m['split']} ({m['n']})": m}))


def _evaluate(cfg):
    from gulm.classify import evaluate, model_label
    from gulm.metrics import format_table

    m = evaluate(cfg)
    b = m.pop("baseline", None)
    rows = {f"{model_label(1 + len(cfg.ensemble))}, {cfg.split} ({m['n']})": m}
    if b is not None:
        rows[f"{b.pop('name')}, {cfg.split} ({b['n']})"] = b
    print(format_table(rows))
    if b is None:
        print(f"(no k-mer baseline beside {cfg.checkpoint}: "
              f"`gulm baseline {cfg.checkpoint}` fits one on the same split)")
    if cfg.figure:
        print(f"figure: {cfg.figure}")


def _baseline(cfg):
    from gulm.baseline import kmer_baseline
    from gulm.metrics import format_table

    r = kmer_baseline(cfg)
    rows = {}
    if r.get("classifier_test"):
        rows[f"gulm classifier, test ({r['classifier_test']['n']})"] = r["classifier_test"]
    for split in ("valid", "test"):
        if split in r:
            rows[f"{r['name']}, {split} ({r[split]['n']})"] = r[split]
    print(format_table(rows))
    print(f"{r['name']} (C={r['C']:g}, fitted in {r['seconds']:.1f} s) saved in {r['saved_in']}; "
          "`gulm evaluate` now prints it beside the model")


def _print_columns(table) -> None:
    """Rows of cells, each column as wide as its widest cell (the first row is the header)."""
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


def _probe(cfg):
    from gulm.probe import probe_lms

    r = probe_lms(cfg)
    head = ("model", "valid acc", "valid MCC", "valid AUC", "C", "features", "seconds")
    table = [head]
    for name in ["k-mer LR"] + r["ranking"]:
        row, v = r["rows"][name], r["rows"][name]["valid"]
        table.append((name, f"{v['accuracy']:.4f}", f"{v['mcc']:.4f}",
                      f"{v['roc_auc']:.4f}" if "roc_auc" in v else "-", f"{row['C']:g}", str(row["n_features"]),
                      f"{row['feature_seconds'] + row['fit_seconds']:.1f}"))
    print(f"linear probes on {r['n_valid']} valid sequences (fitted on {r['n_train']} train; test not read), "
          f"language models best first by valid {r['metric']}:")
    _print_columns(table)
    if cfg.out:
        print(f"table written to {cfg.out}")


def _models(cfg):
    from gulm import presets, pretrained

    if cfg.presets:
        print(presets.describe())
        return
    if cfg.name:
        print(json.dumps(pretrained.card(cfg.name), indent=2))
        return
    rows = pretrained.table()
    if cfg.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no pretrained models are shipped with this installation")
        return
    head = ("name", "tokens", "size", "params", "valid loss", "valid acc", "corpus")
    table = [head] + [(r["name"], r["tokens"], r["size"], f"{r['params'] / 1e6:.1f}M", f"{r['valid_loss']:.4f}",
                       f"{r['valid_accuracy']:.3f}", r["corpus"]) for r in rows]
    _print_columns(table)


def _predict(cfg):
    from gulm.classify import predict

    predict(cfg, out=cfg.out or "-")


def _scan(cfg):
    from gulm.runtime import distributed as gdist
    from gulm.scan import scan_genome

    res = scan_genome(cfg)
    if gdist.is_main():
        s = res.summary
        print(f"scanned {s['bases_scanned']:,} bp ({', '.join(s['strands'])}): {s['windows_scored']:,} windows "
              f"in {s['seconds']:.1f} s ({s['windows_per_second']:.0f} windows/s, {s['threads']} thread(s)), "
              f"{s['windows_skipped_non_acgt']:,} skipped (non-ACGT)")
        _print_calls(s)
        print(json.dumps(res.files, indent=1))


def _call(cfg):
    from gulm.scan_output import call_scan

    res = call_scan(cfg)
    _print_calls(res.summary)
    print(json.dumps(res.files, indent=1))


def _print_calls(s: dict) -> None:
    cal = s["calibration"]
    how = (f"auto: at most {cal['fpr']:g} of {cal['n_negatives']} negatives ({cal['negatives']}) reach it"
           if s["threshold_mode"] == "auto" else "fixed")
    print(f"threshold {s['threshold']:.4f} ({how})")
    if cal.get("note"):
        print(f"note: {cal['note']}")
    print(f"{s['regions_called']:,} regions called, {100 * s['fraction_called']:.2f}% of the scanned bp "
          f"(merge gap {s['merge_gap']} bp, split drop {s['split_drop']:g}, min width {s['min_width']} bp)")


def _interpret(cfg):
    from gulm.interpretation import interpret

    res = interpret(cfg)
    print(f"P({res['target']}) of the sequence: {res['reference']:.4f}")
    for k, v in res.get("perturbation", {}).items():
        i = int(v.argmin())
        print(f"  k={k:>2}: lowest P={v[i]:.4f} when randomizing [{i}, {i + k})")
    if "saliency" in res:
        ig = res["saliency"]["integrated_gradients"]
        top = sorted(range(len(ig.bases)), key=lambda j: -abs(ig.bases[j]))[:5]
        hint = " (over 1%: raise --ig-steps, or use --dtype fp32)" if ig.completeness_error > 0.01 else ""
        print(f"  integrated gradients ({res['ig_steps']} points): log-odds {ig.output:.3f} (baseline "
              f"{ig.baseline:.3f}), completeness error {100 * ig.completeness_error:.2f}%{hint}; largest at "
              f"positions {', '.join(map(str, top))}")
    for name, path in res["files"].items():
        print(f"  {name}: {path}")


def _variant_effect(cfg):
    from gulm.variants import variant_effect

    s = variant_effect(cfg)
    skipped = ", ".join(f"{k} {v}" for k, v in s["alleles_not_scored"].items() if v) or "none"
    print(f"scored {s['alleles_scored']:,} of {s['alleles']:,} alleles in {s['records']:,} records "
          f"({s['window']} bp windows, strand {s['strand']}, P({s['target']})) in {s['seconds']:.1f} s; "
          f"{s['ref_mismatches']} REF mismatches ({s['ref_mismatch_policy']}); not scored: {skipped}")
    print(json.dumps(s["files"], indent=1))


def _embed(cfg):
    from gulm.embed import embed

    res = embed(cfg)
    parts = f", then the means of {res['bins']} parts" if res["bins"] else ""
    print(f"embedded {res['n']:,} sequences: {res['dim']} features each ({res['pool']} pooling of layer "
          f"{res['layer']}{parts})")
    print(json.dumps(res["files"], indent=1))


def _demo(cfg):
    from gulm.demo import run_demo

    run_demo(cfg)


def _print_lm(metrics: dict) -> None:
    keys = [k for k in ("loss", "accuracy", "perplexity", "train_seconds") if k in metrics]
    print("  ".join(f"{k}={metrics[k]:.4f}" for k in keys))


COMMANDS: dict[str, Command] = {
    "pretrain": Command(
        configs.PretrainConfig, "phase 1: language model on unlabeled genome FASTA",
        "Pretrain an AWD-LSTM language model on one genome or an ensemble (plain or compressed FASTA).",
        """\
        gulm pretrain --fasta genome.fna.gz --out runs/lm --epochs 10
        gulm pretrain --fasta a.fna.gz b.fna.gz --exclude-bed test_loci.bed --k 5 --stride 2
        gulm pretrain --config lm.yaml --dtype bf16
        torchrun --nproc_per_node 2 -m gulm pretrain --config lm.yaml""", _pretrain),
    "finetune": Command(
        configs.FinetuneConfig, "phase 2: fine-tune a language model on the task's sequences",
        "Fine-tune a language model on the classification sequences (train and valid splits).",
        """\
        gulm finetune --lm runs/lm --csv promoters.csv --out runs/lm_ft --epochs 5
        gulm finetune --lm runs/lm --fasta-class promoter=pos.fa --fasta-class other=neg.fa""", _finetune),
    "train-classifier": Command(
        configs.ClassifierConfig, "phase 3: classifier with gradual unfreezing",
        "Train a classifier; its encoder comes from --lm (or is trained from scratch).",
        """\
        gulm train-classifier --lm runs/lm_ft --csv promoters.csv --out runs/clf
        gulm train-classifier --lm runs/lm_ft --csv promoters.csv --seed 1 --out runs/clf_s1   # a second seed
        gulm train-classifier --lm runs/lm_ft --csv promoters.csv --backward --out runs/clf_bwd   # read from 3' ends
        gulm train-classifier --fasta-class promoter=pos.fa --fasta-class other=neg.fa --lm runs/lm
        gulm train-classifier --bed sites.bed --genome genome.fa --k 5 --stride 2   # from scratch
        gulm train-classifier --config clf.yaml --stages 1:2e-2:1,1:1e-2:2,2:1e-3:0""", _train_classifier),
    "evaluate": Command(
        configs.EvaluateConfig, "metrics of a classifier on labeled data",
        "Score a classifier checkpoint on one split of a labeled data source.",
        """\
        gulm evaluate runs/clf --csv promoters.csv --split test --json metrics.json
        gulm evaluate runs/clf --csv promoters.csv --split valid --ensemble runs/clf_s1
        gulm evaluate runs/clf --csv promoters.csv --figure test_curves.png""", _evaluate),
    "predict": Command(
        configs.PredictConfig, "class probabilities of sequences or a FASTA",
        "Predict class probabilities; writes a TSV (id, one column per class, prediction).",
        """\
        gulm predict runs/clf --fasta queries.fa --out predictions.tsv
        gulm predict runs/clf ACGTTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGC""", _predict),
    "scan": Command(
        configs.ScanConfig, "score windows along a genome (bedGraph, BED, PNG)",
        "Slide a window along a genome (both strands by default), score each window with a classifier "
        "and write <out>.plus/minus.bedGraph (and .bw with pyBigWig), <out>.calls.bed, "
        "<out>.peaks.narrowPeak, <out>.summits.bed, <out>.windows.tsv, <out>.summary.json (and PNGs "
        "with --plot). Regions are chrom:start-end, 1-based and inclusive as in genome browsers, or "
        "BED files (0-based half-open); overlapping regions are merged. Every output is 0-based "
        "half-open (BED). The default --threshold auto calls the windows that at most --fpr of the "
        "classifier's validation negatives reach; the value chosen is printed and kept in the summary.",
        """\
        gulm scan runs/clf genome.fna.gz --out scans/ecoli --strand both --stride 50
        gulm scan runs/clf genome.fna.gz --regions NC_000913.3:1-40000 --plot NC_000913.3:1-20000 \\
            NC_000913.3:20001-40000 --annotation genes.gff3 --dtype bf16
        gulm scan runs/clf genome.fna.gz --regions test_loci.bed --threshold 0.9 --split-drop 0.2
        torchrun --nproc_per_node 2 --no-python gulm scan runs/clf genome.fna.gz --out scans/all""", _scan),
    "call": Command(
        configs.CallConfig, "call again from a scan's files, without rescoring",
        "Call regions again from a finished scan's <scan>.windows.tsv (or its bedGraphs) with another "
        "threshold, FPR, merge gap, split drop or minimum width, and plot regions of it; writes "
        "<out>.calls.bed, <out>.peaks.narrowPeak, <out>.summits.bed, <out>.summary.json and PNGs. "
        "--threshold auto uses the negatives the scan stored (<scan>.calibration.json) or the "
        "checkpoint's validation negatives.",
        """\
        gulm call scans/ecoli --threshold 0.9
        gulm call scans/ecoli --threshold auto --fpr 0.005 --out scans/ecoli_strict
        gulm call scans/ecoli --plot NC_000913.3:1-20000 --annotation genes.gff3""", _call),
    "interpret": Command(
        configs.InterpretConfig, "attributions, perturbation and mutagenesis of one sequence",
        "Interpret one sequence: perturb (randomize k-bp stretches at every position, for each k), ism "
        "(every single-base substitution) and saliency (gradient x input and integrated gradients of the "
        "target's log-odds over the token embeddings). Writes TSVs (<out>.attribution.tsv per position) and "
        "PNGs (trace, heatmap, sequence logo) under the --out prefix.",
        """\
        gulm interpret runs/clf --sequence TTTACACTTTATGCTTCCGGCTCGTATGTTGTGTGGAATTGTGAGCGGATAACAATTTCACACAGGA --mark 30
        gulm interpret runs/clf --fasta promoter.fa --ks 1 5 9 --out interp/p1
        gulm interpret runs/clf --fasta promoter.fa --method saliency --ig-steps 128""", _interpret),
    "variant-effect": Command(
        configs.VariantEffectConfig, "score VCF variants: REF vs ALT windows (TSV, annotated VCF)",
        "Score the REF and ALT windows of every VCF allele (plain or bgzipped; multi-allelic records split; "
        "SNVs, MNVs and indels) with a classifier. Each window keeps the genome's bases before the variant "
        "(half the window) and takes the rest after the allele, so REF and ALT windows have the same length; "
        "it slides inward near chromosome ends. Writes <out>.tsv (ref_score, alt_score, delta, log-odds delta, "
        "per-class columns for multiclass models), <out>.vcf.gz with INFO GULM_REF/GULM_ALT/GULM_DELTA/GULM_LOD "
        "(tabix-indexed when sorted) and <out>.summary.json. Needs pysam: pip install 'gulm[vcf]'.",
        """\
        gulm variant-effect runs/clf --vcf calls.vcf.gz --genome genome.fa --out effects/calls
        gulm variant-effect runs/clf --vcf calls.vcf --genome genome.fa --chrom-map auto --ref-mismatch skip \\
            --strand + --mutagenesis --dtype bf16""", _variant_effect),
    "embed": Command(
        configs.EmbedConfig, "pooled encoder features of sequences (.npy or parquet)",
        "Embed sequences with the encoder of a language-model or classifier checkpoint: [last, max, mean] "
        "pooling of a layer's outputs (or one of them). Input is streamed in chunks into a memory-mapped .npy "
        "(with the ids in <out>.ids.txt) or a parquet file (needs pyarrow).",
        """\
        gulm embed runs/clf --fasta seqs.fa --out emb.npy
        gulm embed runs/lm --csv set.csv --sequence-col seq --out emb.parquet --pool mean --layer 1
        gulm embed runs/clf --bed sites.bed --genome genome.fa --out sites.npy""", _embed),
    "baseline": Command(
        configs.BaselineConfig, "k-mer logistic regression on a classifier's own split",
        "Fit the k-mer (k = 1..6) frequency logistic regression (scikit-learn) on the same train/valid/"
        "test split as a classifier checkpoint, print its metrics beside the classifier's and save it "
        "in the checkpoint folder, so `gulm evaluate` shows both: did pretraining pay off on your data? "
        "--gapped L K reads gapped k-mers instead (gkm-SVM's features), the stronger baseline for enhancers; "
        "--positional K B adds the counts of K-mers per B-base bin, for windows aligned on a site (promoters).",
        """\
        gulm baseline runs/clf
        gulm baseline runs/clf --ks 1 2 3 4 --both-strands true
        gulm baseline runs/clf --gapped 8 4
        gulm baseline runs/clf --positional 3 3""", _baseline),
    "probe": Command(
        configs.ProbeConfig, "rank language models for a labelled set by a linear probe",
        "Before training any classifier: turn the train and valid sequences into each language model's "
        "frozen pooled features (the classifier head's input), fit a logistic regression on the train "
        "rows and score it on the valid rows, beside the k-mer (k = 1..6) logistic regression of the same "
        "split. One forward pass per model; test sequences are never read. Pick the LM to fine-tune or "
        "train a classifier on by its valid score.",
        """\
        gulm probe bacteria-3m1s eukaryotes-3m1s --csv promoters.csv
        gulm probe bacteria-3m1s runs/lm --csv promoters.csv --valid-frac 0.2 --out probes.json""", _probe),
    "models": Command(
        configs.ModelsConfig, "the pretrained language models shipped with gulm",
        "List the pretrained language models that ship inside the package (usable offline by name "
        "wherever a checkpoint path is accepted, e.g. --lm bacteria-3m1s), or print one model's card.",
        """\
        gulm models
        gulm models --presets""", _models),
    "demo": Command(
        configs.DemoConfig, "all three phases on a synthetic genome (the embedded default)",
        "Generate a synthetic bacterial-like genome with planted sigma70-like promoters, pretrain a "
        "small LM on it, fine-tune, and compare a classifier trained from scratch with one from the "
        "pretrained LM.",
        """\
        gulm demo                      # synthetic genome, all three phases (its time: see the README)
        gulm demo --out demo_out --quick""", _demo),
}


def build_parser() -> argparse.ArgumentParser:
    from gulm.config import add_dataclass_args

    parser = argparse.ArgumentParser(
        prog="gulm", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Genomic-ULMFiT: pretrain AWD-LSTM language models on genomes, fine-tune "
                    "them and train DNA/RNA sequence classifiers.",
        epilog="run 'gulm <command> --help' for the options and examples of a command",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.summary, description=textwrap.fill(cmd.description, 100),
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="examples:\n" + textwrap.indent(textwrap.dedent(cmd.examples), "  "))
        p.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file (overridden by the command line)")
        p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
        add_dataclass_args(p, cmd.config)
    return parser


def _finish_distributed(rc: int) -> None:
    """End a torchrun rank: leave the process group together (after a barrier, so no rank exits
    while another still talks to it; not after an error, which the other ranks may never share),
    then leave the process at once with ``rc``, its output flushed. torch's DDP keeps the gloo
    process group and its worker threads alive past destroy_process_group, and a worker that
    drops its last finished collective while the interpreter is shutting down aborts the rank
    ("terminate called without an active exception", about one run in 50). Outside torchrun
    this returns."""
    from gulm.runtime import distributed as gdist

    if not gdist.is_distributed():
        gdist.shutdown()
        return
    if rc == 0:
        gdist.barrier()
        gdist.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def main(argv=None) -> int:
    from gulm.configs.fields import set_command_line

    set_command_line(True)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    import warnings

    from gulm.data.errors import one_line_warnings

    previous = one_line_warnings(f"gulm {args.command}")
    try:
        return _run(args)
    finally:
        warnings.showwarning = previous


def _run(args) -> int:
    try:
        from gulm.config import build_config, load_yaml

        cmd = COMMANDS[args.command]
        cmd.run(build_config(cmd.config, load_yaml(args.config), args))
        _finish_distributed(0)
        return 0
    except KeyboardInterrupt:
        print("gulm: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line unless --debug
        if getattr(args, "debug", False) or os.environ.get("GULM_DEBUG"):
            raise
        from gulm._ext import ExtensionMissingError

        # one line: a message of several lines (torch's, say) is joined, not cut at its first line
        msg = " ".join(str(err).split()) or type(err).__name__
        if len(msg) > 600:
            msg = msg[:597] + "..."
        if not isinstance(err, ExtensionMissingError) and not isinstance(err, (ValueError, OSError, KeyError, RuntimeError, MemoryError)):
            msg = f"{type(err).__name__}: {msg}"
        print(f"gulm {args.command}: error: {msg}", file=sys.stderr)
        _finish_distributed(2)
        return 2


if __name__ == "__main__":
    sys.exit(main())
