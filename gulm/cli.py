"""The ``gulm`` command line. Every subcommand takes ``--config file.yaml`` plus options that
override it; ``gulm <command> --help`` lists them with examples."""
from __future__ import annotations

import argparse
import os
import sys
import textwrap

__all__ = ["main"]

EXAMPLES = {
    "pretrain": """\
        gulm pretrain --fasta genome.fna.gz --out runs/lm --epochs 10
        gulm pretrain --fasta a.fna.gz b.fna.gz --exclude-bed test_loci.bed --k 5 --stride 2
        gulm pretrain --config lm.yaml --dtype bf16
        torchrun --nproc_per_node 2 -m gulm pretrain --config lm.yaml""",
    "finetune": """\
        gulm finetune --lm runs/lm --csv promoters.csv --out runs/lm_ft --epochs 5""",
    "train-classifier": """\
        gulm train-classifier --lm runs/lm_ft --csv promoters.csv --out runs/clf
        gulm train-classifier --fasta-class promoter=pos.fa --fasta-class other=neg.fa --lm runs/lm
        gulm train-classifier --bed sites.bed --genome genome.fa --k 5 --stride 2   # from scratch
        gulm train-classifier --config clf.yaml --stages 1:2e-2:1,1:1e-2:2,2:1e-3:0""",
    "evaluate": """\
        gulm evaluate runs/clf --csv promoters.csv --split test --json metrics.json""",
    "predict": """\
        gulm predict runs/clf --fasta queries.fa --out predictions.tsv
        gulm predict runs/clf ACGTTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGC""",
    "scan": """\
        gulm scan runs/clf genome.fna.gz --out scans/ecoli --strand both --stride 50
        gulm scan runs/clf genome.fna.gz --regions NC_000913.3:1-40000 --plot NC_000913.3:1-40000 \\
            --annotation genes.gff3 --dtype bf16
        torchrun --nproc_per_node 2 --no-python gulm scan runs/clf genome.fna.gz --out scans/all""",
    "interpret": """\
        gulm interpret runs/clf --sequence TTGACAATTAATCATCGGCTCGTATAATGTGTGG... --mark 100
        gulm interpret runs/clf --fasta promoter.fa --ks 1 5 9 --out interp/p1""",
    "demo": """\
        gulm demo                      # synthetic genome, all three phases, ~10 min on 2 cores
        gulm demo --out demo_out --quick""",
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _sub(subparsers, name, help_, description):
    p = subparsers.add_parser(
        name, help=help_, formatter_class=_Formatter,
        description=description,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(EXAMPLES[name]), "  "),
    )
    p.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file (overridden by the command line)")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return p


def build_parser() -> argparse.ArgumentParser:
    from gulm.config import add_dataclass_args
    from gulm.train.phases import ClassifierConfig, DataConfig, FinetuneConfig, PretrainConfig

    parser = argparse.ArgumentParser(
        prog="gulm", formatter_class=_Formatter,
        description="Genomic-ULMFiT: pretrain AWD-LSTM language models on genomes, fine-tune "
                    "them and train DNA/RNA sequence classifiers.",
        epilog="run 'gulm <command> --help' for the options and examples of a command",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    p = _sub(sub, "pretrain", "phase 1: language model on unlabeled genome FASTA",
             "Pretrain an AWD-LSTM language model on one genome or an ensemble (plain or gzip FASTA).")
    add_dataclass_args(p, PretrainConfig)
    p = _sub(sub, "finetune", "phase 2: fine-tune a language model on the task's sequences",
             "Fine-tune a language model on the classification sequences (train and valid splits).")
    add_dataclass_args(p, FinetuneConfig)
    p = _sub(sub, "train-classifier", "phase 3: classifier with gradual unfreezing",
             "Train a classifier; its encoder comes from --lm (or is trained from scratch).")
    add_dataclass_args(p, ClassifierConfig)
    p = _sub(sub, "evaluate", "metrics of a classifier on labeled data",
             "Score a classifier checkpoint on one split of a labeled data source.")
    p.add_argument("checkpoint")
    add_dataclass_args(p, DataConfig)
    p.add_argument("--split", default=None, help="train, valid, test or all (default: test)")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    p.add_argument("--bs", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16"])
    p = _sub(sub, "predict", "class probabilities of sequences or a FASTA",
             "Predict class probabilities; writes a TSV (id, one column per class, prediction).")
    p.add_argument("checkpoint")
    p.add_argument("sequences", nargs="*", help="sequences given on the command line")
    p.add_argument("--fasta", default=None, help="a FASTA file (plain or gzip) of sequences")
    p.add_argument("--out", default=None, help="output TSV (default: standard output)")
    p.add_argument("--bs", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16"])
    from gulm.interpret import InterpretConfig
    from gulm.scan import ScanConfig

    p = _sub(sub, "scan", "score windows along a genome (bedGraph, BED, PNG)",
             "Slide a window along a genome (both strands by default), score each window with a "
             "classifier and write <out>.plus/minus.bedGraph, <out>.calls.bed, <out>.windows.tsv, "
             "<out>.summary.json (and <out>.png with --plot).")
    p.add_argument("checkpoint", nargs="?", default=None)
    p.add_argument("fasta", nargs="?", default=None)
    add_dataclass_args(p, ScanConfig, skip=("checkpoint", "fasta"))
    p = _sub(sub, "interpret", "perturbation and mutagenesis of one sequence",
             "Randomize k-bp stretches at every position (for each k) and mutate every base; "
             "writes TSVs and PNGs under the --out prefix.")
    p.add_argument("checkpoint", nargs="?", default=None)
    add_dataclass_args(p, InterpretConfig, skip=("checkpoint",))
    p = _sub(sub, "demo", "all three phases on a synthetic genome (the embedded default)",
             "Generate a synthetic bacterial-like genome with planted sigma70-like promoters, "
             "pretrain a small LM on it, fine-tune, and compare a classifier trained from "
             "scratch with one from the pretrained LM.")
    p.add_argument("--out", default=None, help="output folder (default: demo_out)")
    p.add_argument("--quick", action="store_true", default=None, help="a much shorter run (smoke test)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16"])
    p.add_argument("--device", default=None)
    return parser


def _run(args, parser) -> int:
    from gulm.config import build_config, load_yaml
    from gulm.train import phases

    values = load_yaml(args.config)
    cmd = args.command
    if cmd == "pretrain":
        metrics = phases.pretrain_lm(build_config(phases.PretrainConfig, values, args))
        _print_lm(metrics)
    elif cmd == "finetune":
        metrics = phases.finetune_lm(build_config(phases.FinetuneConfig, values, args))
        _print_lm(metrics)
    elif cmd == "train-classifier":
        from gulm.metrics import format_table

        m = phases.train_classifier(build_config(phases.ClassifierConfig, values, args))
        if "accuracy" in m:
            print(format_table({f"{m['split']} ({m['n']})": m}))
    elif cmd == "evaluate":
        from gulm.metrics import format_table

        data = build_config(phases.DataConfig, values.get("data", values), args)
        opts = {k: _pick(args, values, k, d) for k, d in (("split", "test"), ("bs", 64), ("device", "cpu"), ("dtype", "fp32"))}
        m = phases.evaluate(args.checkpoint, data, opts["split"], bs=opts["bs"], device=opts["device"],
                            dtype=opts["dtype"], out=_pick(args, values, "json", None))
        print(format_table({f"{opts['split']} ({m['n']})": m}))
    elif cmd == "predict":
        _predict(args, values)
    elif cmd == "scan":
        import json as _json

        from gulm.scan import ScanConfig, scan_genome

        cfg = build_config(ScanConfig, values, args)
        cfg.checkpoint = args.checkpoint or cfg.checkpoint
        cfg.fasta = args.fasta or cfg.fasta
        res = scan_genome(cfg)
        from gulm.train import distributed as gdist

        if gdist.is_main():
            s = res.summary
            print(f"scanned {s['bases_scanned']:,} bp ({', '.join(s['strands'])}): {s['windows_scored']:,} windows "
                  f"in {s['seconds']:.1f} s ({s['windows_per_second']:.0f} windows/s), "
                  f"{s['windows_skipped_non_acgt']:,} skipped (non-ACGT), {s['regions_called']} regions called")
            print(_json.dumps(res.files, indent=1))
    elif cmd == "interpret":
        from gulm.interpret import InterpretConfig, interpret

        cfg = build_config(InterpretConfig, values, args)
        cfg.checkpoint = args.checkpoint or cfg.checkpoint
        res = interpret(cfg)
        print(f"P({res['target']}) of the sequence: {res['reference']:.4f}")
        for k, v in res["perturbation"].items():
            i = int(v.argmin())
            print(f"  k={k:>2}: lowest P={v[i]:.4f} when randomizing [{i}, {i + k})")
        for name, path in res["files"].items():
            print(f"  {name}: {path}")
    elif cmd == "demo":
        from gulm.demo import run_demo

        run_demo(out=_pick(args, values, "out", "demo_out"), quick=bool(_pick(args, values, "quick", False)),
                 seed=_pick(args, values, "seed", 0), dtype=_pick(args, values, "dtype", "fp32"),
                 device=_pick(args, values, "device", "cpu"))
    else:
        parser.print_help()
        return 2
    return 0


def _pick(args, values, name, default):
    v = getattr(args, name, None)
    if v is None:
        v = values.get(name, default)
    return v


def _print_lm(metrics: dict) -> None:
    keys = [k for k in ("loss", "accuracy", "perplexity", "train_seconds") if k in metrics]
    print("  ".join(f"{k}={metrics[k]:.4f}" for k in keys))


def _predict(args, values) -> None:
    from gulm.train.phases import predict

    ids, seqs = [], []
    fasta = _pick(args, values, "fasta", None)
    if fasta:
        from gulm.data.genome import Genome

        for name, seq in Genome(fasta).records():
            ids.append(name)
            seqs.append(seq)
    for i, s in enumerate(args.sequences):
        ids.append(f"seq{i + 1}")
        seqs.append(s)
    if not seqs:
        raise ValueError("nothing to predict: give sequences or --fasta FILE")
    probs, classes = predict(args.checkpoint, seqs, bs=_pick(args, values, "bs", 64),
                             device=_pick(args, values, "device", "cpu"),
                             dtype=_pick(args, values, "dtype", "fp32"))
    out_path = _pick(args, values, "out", None)
    fh = open(out_path, "w") if out_path else sys.stdout
    try:
        fh.write("id\t" + "\t".join(f"p_{c}" for c in classes) + "\tprediction\n")
        for name, p in zip(ids, probs):
            fh.write(name + "\t" + "\t".join(f"{x:.6f}" for x in p) + f"\t{classes[int(p.argmax())]}\n")
    finally:
        if out_path:
            fh.close()


def _finish_distributed() -> None:
    """Leave the process group together, so no rank exits while another still talks to it."""
    from gulm.train import distributed as gdist

    if gdist.is_distributed():
        gdist.barrier()
    gdist.shutdown()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        code = _run(args, parser)
        _finish_distributed()
        return code
    except KeyboardInterrupt:
        print("gulm: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line unless --debug
        if getattr(args, "debug", False) or os.environ.get("GULM_DEBUG"):
            raise
        from gulm._ext import ExtensionMissingError

        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, ExtensionMissingError):
            msg = str(err).replace("\n", " ")
        elif not isinstance(err, (ValueError, OSError, KeyError, RuntimeError, MemoryError)):
            msg = f"{type(err).__name__}: {msg}"
        print(f"gulm {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
