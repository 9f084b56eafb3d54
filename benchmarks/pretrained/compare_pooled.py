"""Is one LM pooling the three eukaryote genome samples as good as a per-sample LM?

    GULM_DATA=/work/shared/data python benchmarks/pretrained/compare_pooled.py \
        --pooled eukaryotes-3m1s --single runs/repro/lm/athaliana_3m1s

Scores both on the A. thaliana sample's own position-held-out valid split (the last 10 % of
each chromosome sample, the task-6 loci left out as in pretraining), with the same bs, bptt and
carried state as training's validation, and prints loss and accuracy of each.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import lm_loss  # noqa: E402


def main(argv=None) -> int:
    import yaml

    import gulm
    from gulm.data.corpus import LMCorpus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pooled", required=True)
    p.add_argument("--single", required=True)
    p.add_argument("--resolved", default=None, help="the single LM's resolved YAML (default: beside it)")
    args = p.parse_args(argv)
    single = Path(args.single)
    pre = yaml.safe_load(Path(args.resolved or single.parent / f"{single.name}.resolved.yaml").read_text())
    out = {}
    for name, ckpt in (("pooled", args.pooled), ("single", args.single)):
        model, tok, _ = gulm.load(ckpt)
        corpus = LMCorpus.from_fasta(pre["fasta"], tok, valid_frac=pre["valid_frac"],
                                     both_strands=pre["both_strands"], exclude_bed=pre.get("exclude_bed") or None)
        out[name] = {"checkpoint": os.fspath(ckpt), **lm_loss(model, corpus.valid, bs=min(64, pre["bs"]),
                                                              bptt=pre["bptt"])}
        print(f"{name:>7} {ckpt}: A. thaliana valid loss {out[name]['loss']:.4f} "
              f"accuracy {out[name]['accuracy']:.4f} ({out[name]['tokens']:,} tokens)", flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
