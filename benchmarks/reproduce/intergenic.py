"""Rule (nn) of REPRODUCTION.md, step 1's LM: the shipped bacterial LM fine-tuned on the intergenic
DNA of E. coli K-12 MG1655, leak-safe for tasks 1 and 2.

The corpus is the complement of the RefSeq GFF's ``gene`` features on NC_000913.3, minus the
leak-exclusion BEDs that ``run.py`` writes for tasks 1 and 2 (every locus of both sets and its
k=21 homologs, the masks the shipped LM was pretrained without), cut into records of at least
``--min-length`` bases; ``gulm finetune`` then reads them as a BED on the genome (both strands,
10 % of the records held out). Then probe it as REPRODUCTION.md says:

    GULM_DATA=../shared/data python benchmarks/reproduce/run.py task1 --data-only --out /work/runs/repro
    GULM_DATA=../shared/data python benchmarks/reproduce/run.py task2 --data-only --out /work/runs/repro
    GULM_DATA=../shared/data python benchmarks/reproduce/intergenic.py --out /work/runs/ig --repro /work/runs/repro
    python benchmarks/reproduce/probe.py task2 --dataset umarov_ecoli --splits fold0,fold1,fold2,fold3,fold4 \\
        --lm ig_ft4=/work/runs/ig/ft --out /work/runs/repro
"""
from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from gulm.data.intervals import read_bed, read_gff_features

GENOME = "ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic"
CHROM = "NC_000913.3"


def intergenic_bed(data: Path, masks: list[Path], out: Path, min_length: int) -> tuple[int, int]:
    """Write the leak-safe intergenic records as a BED (label ``ig``); (records, bases)."""
    fasta = out / "ecoli.fa"
    with gzip.open(data / f"{GENOME}.fna.gz", "rt") as src, open(fasta, "w") as dst:
        dst.write(src.read())
    length = sum(len(line.strip()) for line in open(fasta) if not line.startswith(">"))
    genic = np.zeros(length, bool)
    for iv in read_gff_features(data / f"{GENOME}.gff.gz", "gene"):
        if iv.chrom == CHROM:
            genic[iv.start:iv.end] = True
    masked = np.zeros(length, bool)
    for iv in (iv for bed in masks for iv in read_bed(bed)):
        if iv.chrom == CHROM:
            masked[iv.start:iv.end] = True
    if not masked.any():
        raise SystemExit(f"intergenic.py: the leak masks name no base of {CHROM}: nothing would be left out")
    print(f"intergenic.py: {int(masked.sum()):,} bases masked, {int((~genic & masked).sum()):,} of them intergenic",
          flush=True)
    keep = ~genic & ~masked
    edges = np.diff(np.concatenate([[0], keep.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = [(s, e) for s, e in zip(starts, ends) if e - s >= min_length]
    with open(out / "intergenic.bed", "w") as fh:
        fh.writelines(f"{CHROM}\t{s}\t{e}\tig\n" for s, e in runs)
    return len(runs), int(sum(e - s for s, e in runs))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for the BED, the genome FASTA and the LM (ft/)")
    ap.add_argument("--repro", required=True, help="run.py's --out, whose data/ holds the leak-exclusion BEDs")
    ap.add_argument("--min-length", type=int, default=60, help="shortest record kept (default 60)")
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (default 4, rule (nn))")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args(argv)
    data = Path(os.environ.get("GULM_DATA", "../shared/data"))
    if not (data / f"{GENOME}.gff.gz").exists():
        sys.exit(f"intergenic.py: {data / GENOME}.gff.gz not found: set GULM_DATA")
    masks = [Path(args.repro) / "data" / d / "leak_exclude.bed" for d in ("ecoli_promoters", "umarov_ecoli")]
    missing = [str(m) for m in masks if not m.exists()]
    if missing:
        sys.exit(f"intergenic.py: no {', '.join(missing)}: run run.py task1/task2 --data-only first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, bases = intergenic_bed(data, masks, out, args.min_length)
    print(f"intergenic.py: {n:,} records, {bases:,} bases -> {out / 'intergenic.bed'}", flush=True)
    subprocess.run([sys.executable, "-m", "gulm", "finetune", "--lm", "bacteria-3m1s",
                    "--bed", str(out / "intergenic.bed"), "--genome", str(out / "ecoli.fa"),
                    "--both-strands", "true", "--preset", "short", "--epochs", str(args.epochs),
                    "--dtype", "bf16", "--threads", str(args.threads), "--test-frac", "0", "--valid-frac", "0.1",
                    "--out", str(out / "ft"), "--resume", "true", "--progress", "false"], check=True)


if __name__ == "__main__":
    main()
