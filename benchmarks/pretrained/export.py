"""Ship a trained language model inside the package (gulm/pretrained/models/<name>/).

    GULM_DATA=/work/shared/data python benchmarks/pretrained/export.py \
        --lm runs/repro/lm/bacteria_3m1s --name bacteria-3m1s \
        --config benchmarks/reproduce/configs/lm/bacteria_3m1s.yaml

Writes fp16 ``model.safetensors`` and ``config.json``, measures the fp16 weights on the LM's own
position-held-out valid split (rebuilt from the resolved pretraining config, exclusions included),
on a fixed valid slice of the first genome (tested when GULM_DATA is set) and on a seeded synthetic
sequence (tested always), writes the model card ``card.json`` and records the sha256 of the
weights and config in ``gulm/pretrained/registry.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce.common import machine_info  # noqa: E402

LICENCES = {
    "bacteria": ("NCBI RefSeq/GenBank genome records: public, no use restrictions "
                 "(https://www.ncbi.nlm.nih.gov/home/about/policies/). The weights are released "
                 "with gulm under the MIT licence."),
    "eukaryotes": ("TAIR10 (A. thaliana), WormBase (C. elegans) and FlyBase (D. melanogaster) "
                   "reference assemblies, as copied in iankorf/MCB185 (MIT); the sequences are public "
                   "INSDC records. The weights are released with gulm under the MIT licence."),
    "athaliana": ("TAIR10 (A. thaliana) reference assembly, as copied in iankorf/MCB185 (MIT); the sequence is "
                  "a public INSDC record. The weights are released with gulm under the MIT licence."),
}
# The seed's (kheyer/Genomic-ULMFiT) valid figures per tokenization: bacterial LMs, 10 epochs.
SEED_FIGURES = {(5, 2): {"loss": 2.499, "accuracy": 0.182}, (5, 1): {"loss": 1.287, "accuracy": 0.395},
                (3, 1): {"loss": 1.2755, "accuracy": 0.401}}
SYNTHETIC_BASES, SLICE_TOKENS = 20_000, 20_000


@torch.no_grad()
def lm_loss(model, tokens: np.ndarray, bs: int = 16, bptt: int = 70) -> dict:
    """Mean next-token cross-entropy and accuracy over a token stream, read as ``bs`` parallel
    streams in ``bptt`` windows with the LSTM state carried (how training validates)."""
    from gulm.data.corpus import LMBatches

    model.eval()
    model.reset()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in LMBatches(np.asarray(tokens), bs, bptt, shuffle=False):
        logits = model(x)[0].float()
        loss_sum += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                                      reduction="sum").item()
        correct += int((logits.argmax(-1) == y).sum())
        n += y.numel()
    model.reset()
    return {"loss": loss_sum / n, "accuracy": correct / n, "tokens": n}


def synthetic_tokens(tokenizer, seed: int = 0) -> np.ndarray:
    seq = bytes(np.random.default_rng(seed).choice(np.frombuffer(b"ACGT", np.uint8), SYNTHETIC_BASES))
    return tokenizer.encode(seq).numpy()


def _accessions(paths) -> list[dict]:
    from gulm.data.genome import Genome

    out = []
    for p in paths:
        g = Genome(p)
        out.append({"file": os.path.relpath(p, os.environ.get("GULM_DATA", "/")),
                    "records": [{"name": n, "bases": int(length)} for n, length in g.lengths.items()]})
    return out


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _train_seconds(folder: Path) -> float:
    import csv

    with open(folder / "log.csv") as fh:
        return float(sum(float(r["seconds"]) for r in csv.DictReader(fh)))


def main(argv=None) -> int:
    import gulm
    import yaml
    from safetensors.torch import load_file, save_file

    from gulm.data.corpus import LMCorpus
    from gulm.pretrained import MODELS_DIR, REGISTRY, sha256_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", required=True, help="trained LM checkpoint folder")
    p.add_argument("--name", required=True, help="shipped name, e.g. bacteria-3m1s")
    p.add_argument("--config", required=True, help="the LM's harness config (its description goes on the card)")
    p.add_argument("--resolved", default=None, help="resolved pretraining YAML (default: <lm>.resolved.yaml)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    src = Path(args.lm)
    resolved = Path(args.resolved) if args.resolved else src.parent / f"{src.name}.resolved.yaml"
    pre = yaml.safe_load(resolved.read_text())
    harness_cfg = yaml.safe_load(Path(args.config).read_text())
    config = json.loads((src / "config.json").read_text())
    metrics = json.loads((src / "metrics.json").read_text())
    dest = MODELS_DIR / args.name
    dest.mkdir(parents=True, exist_ok=True)

    state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in load_file(src / "model.safetensors").items()}
    save_file(state, dest / "model.safetensors", metadata={"format": "pt", "gulm_model": args.name})
    config = {**config, "weights_dtype": "float16", "pretrained_name": args.name}
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    model, tok, _ = gulm.load(dest)  # the shipped fp16 weights, loaded as users load them
    print(f"[export] rebuilding the valid split of {args.name} ...", flush=True)
    corpus = LMCorpus.from_fasta(pre["fasta"], tok, valid_frac=pre["valid_frac"], both_strands=pre["both_strands"],
                                 exclude_bed=pre.get("exclude_bed") or None)
    valid = lm_loss(model, corpus.valid, bs=min(64, pre["bs"]), bptt=pre["bptt"])
    print(f"[export] fp16 valid loss {valid['loss']:.4f} accuracy {valid['accuracy']:.4f} "
          f"({valid['tokens']:,} tokens; training-time fp32 {metrics.get('loss', float('nan')):.4f})", flush=True)
    # a fixed slice: the first SLICE_TOKENS tokens of the valid part of the first record of the first file
    first = pre["fasta"][0]
    from gulm.data.genome import Genome

    g = Genome(first)
    rec, length = next(iter(g.lengths.items()))
    start = int(round(length * (1.0 - pre["valid_frac"])))
    end = min(length, start + SLICE_TOKENS * tok.stride + tok.k)
    seq = g.fetch(rec, start, end)
    slice_check = {"file": os.path.relpath(first, os.environ.get("GULM_DATA", "/")), "record": rec,
                   "start": start, "end": end, "strand": "+", "bs": 1,
                   **lm_loss(model, tok.encode(seq).numpy(), bs=1, bptt=pre["bptt"])}
    synth = {"seed": 0, "bases": SYNTHETIC_BASES, "bs": 1,
             **lm_loss(model, synthetic_tokens(tok), bs=1, bptt=pre["bptt"])}
    n_params = sum(t.numel() for t in model.parameters())
    seconds = _train_seconds(src)
    done = src / "repro_key.json"  # the harness records the machine and thread count it trained with
    threads = json.loads(done.read_text())["machine"].get("torch_threads", 1) if done.exists() else 1
    accessions = _accessions(pre["fasta"])
    excluded = corpus.stats["excluded_bases"]
    kind = args.name.split("-")[0]
    card = {
        "name": args.name,
        "description": " ".join(str(harness_cfg.get("description", "")).split()),
        "kind": "lm",
        "tokenizer": {"k": tok.k, "stride": tok.stride, "vocab": tok.vocab, "vocab_size": tok.vocab_size},
        "model": {"emb_size": config["model"]["emb_size"], "hidden_size": config["model"]["hidden_size"],
                  "n_layers": config["model"]["n_layers"], "parameters": int(n_params),
                  "weights": "float16 safetensors"},
        "corpus": {
            "summary": f"{len(accessions)} FASTA files, {corpus.stats['bases'] / 1e6:.1f} Mbp, "
                       f"{'both strands' if pre['both_strands'] else 'forward strand'}",
            "files": accessions, "bases": corpus.stats["bases"], "acgt_bases": corpus.stats["acgt_bases"],
            "both_strands": pre["both_strands"], "train_tokens": corpus.stats["train_tokens"],
            "valid_tokens": corpus.stats["valid_tokens"],
            "valid_split": f"position-held-out: the last {pre['valid_frac']:.0%} of every record"},
        "exclusions": {"beds": [os.path.relpath(b, str(ROOT)) if str(b).startswith(str(ROOT)) else
                                os.path.basename(os.path.dirname(b)) + "/" + os.path.basename(b)
                                for b in (pre.get("exclude_bed") or [])],
                       "excluded_bases": int(excluded),
                       "what": "the loci of every evaluation set built from these genomes, with their k=21 "
                               "homologs (benchmarks/reproduce/datasets.py, leak_exclude.bed)"},
        "training": {"epochs": pre["epochs"], "lr": pre["lr"], "bs": pre["bs"], "bptt": pre["bptt"],
                     "drop_mult": pre["drop_mult"], "dtype": pre["dtype"], "optimizer": "AdamW, one-cycle",
                     "seconds": round(seconds, 1), "threads": threads,
                     "cpu_hours": round(seconds * threads / 3600, 2),
                     "machine": machine_info()["cpu"]},
        "valid": {"loss": round(valid["loss"], 4), "accuracy": round(valid["accuracy"], 4),
                  "tokens": valid["tokens"], "weights": "float16 (as shipped)",
                  "training_time_fp32_loss": metrics.get("loss"), "training_time_accuracy": metrics.get("accuracy")},
        "seed_figure": SEED_FIGURES.get((tok.k, tok.stride)),
        "checks": {"slice": slice_check, "synthetic": synth},
        "licence": LICENCES.get(kind, "see the card's corpus"),
        "created": datetime.date.today().isoformat(), "gulm_version": gulm.__version__, "git_commit": _git_commit(),
    }
    (dest / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    for f in dest.iterdir():  # readable by everyone who can read the package
        f.chmod(0o644)
    reg = json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}
    reg[args.name] = {"sha256": {f: sha256_file(dest / f) for f in ("model.safetensors", "config.json")}}
    REGISTRY.write_text(json.dumps(dict(sorted(reg.items())), indent=2) + "\n")
    size = sum(f.stat().st_size for f in dest.iterdir())
    print(f"[export] {dest}: {size / 1e6:.1f} MB; slice loss {slice_check['loss']:.4f}, synthetic {synth['loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
