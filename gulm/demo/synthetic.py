"""A deterministic synthetic bacterial-like genome and its promoter set: the embedded data of ``gulm demo``.

Nothing is downloaded; the same arguments give the same bytes. All randomness comes from
``numpy.random.default_rng(seed).random()`` (uniform doubles, whose stream NumPy keeps stable) and
inverse-CDF lookups written here, not from Generator methods whose algorithms may change.

Layout (built in the sense orientation of each transcription unit, reverse-complemented for ``-``):

    unit with a promoter:
      leader (30-200 bp background)
      -35 box (6)  spacer (15-19, mode 17)  -10 box (6)  (TSS offset - 1) bp  TSS (+1, A/G-rich)
      5' UTR filler (8-60)  RBS (6, AGGAGG-like)  gap (5-9)  gene 1
      [ filler (0-40)  RBS  gap  gene 2 ] ...   (further genes of the operon: no promoter of their own)
      tail (10-80 bp background)

    gene: start codon (ATG 90 %, GTG 10 %), sense codons drawn from an E. coli-like codon-usage table (no
    in-frame stop), stop codon (TAA 62 %, TGA 30 %, TAG 8 %); length 300-3000 bp, log-normal around
    ``median_gene_length``.

The -35 (TTGACA) and -10 (TATAAT) boxes and the RBS are drawn from position weight matrices: position i takes
the consensus base with probability ``0.25 + strength * (c_i - 0.25)`` (``c_i`` from sigma70 promoter
statistics: the -10 box's A2 and T6 are near-invariant, the -35 box's 3' half is loose), otherwise one of the
other three bases. The TSS lies 6-8 bp (mode 7) past the last base of the -10 box.

Knobs for tuning the demo (see :func:`synthetic_genome` and :func:`promoter_dataset`):

- ``promoter_fraction``: fraction of genes that start a new transcription unit with a promoter (the rest
  follow in an operon, so operons hold ``1 / promoter_fraction`` genes on average);
- ``motif_strength``: 1.0 for sigma70-like boxes, 0.0 for boxes drawn uniformly (no promoter signal at
  all); values above 1 push every position further toward the consensus (probability clipped at 1);
- ``rbs_strength``: the same for the Shine-Dalgarno site;
- ``gc``: GC content of coding sequence (codon usage is tilted to reach it); intergenic DNA is
  ``intergenic_gc`` (default ``gc - 0.1``, AT-rich as in bacteria);
- ``n_train`` of :func:`promoter_dataset`: the number of labeled training examples, leaving valid and test
  unchanged, so the same test set measures pretrained against from-scratch classifiers as labels get scarce.

Why this shows the ULMFiT effect: a language model trained on the whole genome learns codon periodicity and
codon bias (85-90 % of the genome), the start/stop/RBS grammar at gene boundaries and the -35/-10 boxes
upstream of genes. The promoter classifier needs exactly these features - positives hold upstream
non-coding DNA, the boxes, the RBS and a start codon at a fixed offset; negatives are in-gene windows - so
a classifier fine-tuned from the LM needs far fewer labeled windows than one trained from scratch.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gulm.data.fasta import reverse_complement
from gulm.data.intervals import Interval
from gulm.data.labeled import write_labeled_csv
from gulm.data.promoters import promoter_dataset
from gulm.data.sampling import StableDraw

__all__ = [
    "CODON_USAGE",
    "Promoter",
    "SyntheticGenome",
    "synthetic_genome",
    "write_demo_data",
]

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_CODE = {b: i for i, b in enumerate("ACGT")}

#: Codon usage per thousand codons, close to E. coli K-12's (rounded values after the Codon Usage
#: Database). Stop codons are listed for completeness; genes draw internal codons from the 61 sense codons.
CODON_USAGE: dict[str, float] = {
    "TTT": 22.1, "TTC": 16.0, "TTA": 14.3, "TTG": 13.0, "CTT": 11.9, "CTC": 10.2, "CTA": 4.2, "CTG": 48.4,
    "ATT": 29.8, "ATC": 23.7, "ATA": 6.8, "ATG": 26.4, "GTT": 19.8, "GTC": 14.3, "GTA": 11.6, "GTG": 24.4,
    "TCT": 10.4, "TCC": 9.1, "TCA": 8.9, "TCG": 8.5, "CCT": 7.5, "CCC": 5.4, "CCA": 8.6, "CCG": 20.9,
    "ACT": 10.3, "ACC": 22.0, "ACA": 9.3, "ACG": 13.7, "GCT": 17.1, "GCC": 24.2, "GCA": 21.2, "GCG": 30.1,
    "TAT": 17.5, "TAC": 12.2, "TAA": 2.0, "TAG": 0.3, "CAT": 12.5, "CAC": 9.3, "CAA": 14.6, "CAG": 28.4,
    "AAT": 20.6, "AAC": 21.4, "AAA": 35.3, "AAG": 12.4, "GAT": 32.7, "GAC": 19.2, "GAA": 39.1, "GAG": 18.7,
    "TGT": 5.2, "TGC": 6.1, "TGA": 1.0, "TGG": 13.9, "CGT": 20.0, "CGC": 19.7, "CGA": 3.8, "CGG": 5.9,
    "AGT": 9.9, "AGC": 15.2, "AGA": 3.6, "AGG": 2.1, "GGT": 25.5, "GGC": 27.1, "GGA": 9.5, "GGG": 11.3,
}
STOP_CODONS = ("TAA", "TGA", "TAG")
_START = (("ATG", 0.9), ("GTG", 0.1))
_STOP = (("TAA", 0.62), ("TGA", 0.30), ("TAG", 0.08))

# Consensus and per-position consensus frequency of sigma70 boxes (Harley & Reynolds 1987) and the
# Shine-Dalgarno core.
BOX35 = ("TTGACA", (0.82, 0.84, 0.79, 0.64, 0.53, 0.45))
BOX10 = ("TATAAT", (0.79, 0.95, 0.44, 0.59, 0.51, 0.96))
RBS = ("AGGAGG", (0.70, 0.85, 0.90, 0.85, 0.70, 0.60))
_SPACER = ((15, 0.05), (16, 0.20), (17, 0.50), (18, 0.20), (19, 0.05))
_TSS_OFFSET = ((6, 0.25), (7, 0.50), (8, 0.25))  # bp from the -10 box's last base to the TSS
_TSS_BASE = (0.50, 0.05, 0.40, 0.05)  # A, C, G, T at +1

def _codes(seq: str) -> np.ndarray:
    return np.array([_CODE[b] for b in seq], dtype=np.uint8)


def _cdf(probs: Sequence[float]) -> np.ndarray:
    c = np.cumsum(np.asarray(probs, dtype=float))
    return c / c[-1]


def _tilted_codons(gc: float) -> tuple[np.ndarray, np.ndarray]:
    """Sense codons ``[61, 3]`` and the cdf of their usage, tilted by ``r ** n_GC`` to mean GC ``gc``."""
    sense = [c for c in CODON_USAGE if c not in STOP_CODONS]
    usage = np.array([CODON_USAGE[c] for c in sense])
    n_gc = np.array([sum(b in "GC" for b in c) for c in sense], dtype=float)
    lo, hi = -12.0, 12.0
    for _ in range(80):  # bisection on log r; GC rises monotonically with r
        mid = (lo + hi) / 2
        w = usage * np.exp(mid * n_gc)
        if (w * n_gc).sum() / (3 * w.sum()) < gc:
            lo = mid
        else:
            hi = mid
    w = usage * np.exp(lo * n_gc)
    return np.stack([_codes(c) for c in sense]), _cdf(w)


def _pwm(motif: tuple[str, Sequence[float]], strength: float) -> tuple[np.ndarray, np.ndarray]:
    consensus, conservation = motif
    p = np.clip(0.25 + strength * (np.asarray(conservation) - 0.25), 0.25, 1.0)
    return _codes(consensus), p


def _sample_motif(draw: StableDraw, pwm: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    consensus, p = pwm
    u = draw.uniform(len(p))
    other = (consensus + 1 + np.minimum(((u - p) / np.maximum(1 - p, 1e-12) * 3).astype(int), 2)) % 4
    return np.where(u < p, consensus, other).astype(np.uint8)


@dataclass(frozen=True)
class Promoter:
    """A synthetic sigma70-like promoter; all coordinates are 0-based genome positions.

    ``tss`` is the +1 base; ``box35``/``box10`` are 6 bp Intervals on the promoter's strand, so
    ``genome.fetch(b.chrom, b.start, b.end, b.strand)`` reads the box 5'->3' as the polymerase sees it.
    ``spacer`` is the number of bases between the two boxes.
    """

    chrom: str
    tss: int
    strand: str
    gene: str
    box35: Interval
    box10: Interval
    spacer: int


@dataclass
class SyntheticGenome:
    """One synthetic chromosome and its annotation (0-based half-open coordinates throughout).

    ``genes`` are Intervals from the first base of the start codon to the last base of the stop codon (in
    genome orientation, so a ``-`` gene starts at ``end - 1``), sorted by position and named ``gene00001``...;
    ``promoters`` belong to the first gene of each transcription unit; ``rbs`` are the 6 bp Shine-Dalgarno
    sites, named after their gene. ``params`` records the generation arguments.
    """

    name: str
    sequence: str
    genes: list[Interval]
    promoters: list[Promoter]
    rbs: list[Interval]
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def lengths(self) -> dict[str, int]:
        """``{name: length}``, like :attr:`Genome.lengths`."""
        return {self.name: len(self.sequence)}

    def fetch(self, chrom: str, start: int, end: int, strand: str = "+", *, upper: bool = False) -> str:
        """Bases ``[start, end)``, reverse-complemented for ``strand="-"`` (same contract as Genome.fetch)."""
        if chrom != self.name or not 0 <= start <= end <= len(self.sequence):
            raise IndexError(f"synthetic genome {self.name!r}: bad region {chrom}:{start}-{end}")
        seq = self.sequence[start:end]
        return reverse_complement(seq) if strand == "-" else seq

    def write_fasta(self, path: str | os.PathLike, *, width: int = 80) -> Path:
        """Write the genome as FASTA (gzip when ``path`` ends in ``.gz``, with a fixed header so the bytes
        depend only on the genome)."""
        path = Path(path)
        seq = self.sequence
        body = "\n".join(seq[i : i + width] for i in range(0, len(seq), width))
        data = f">{self.name} synthetic bacterial-like genome (gulm, seed={self.params.get('seed')})\n{body}\n"
        _write_bytes(path, data.encode("ascii"))
        return path

    def write_gff(self, path: str | os.PathLike) -> Path:
        """Write genes (``gene`` and ``CDS``) and promoters (``promoter`` from the -35 box to the TSS) as GFF3."""
        path = Path(path)
        lines = ["##gff-version 3", f"##sequence-region {self.name} 1 {len(self.sequence)}"]
        rows = []
        for g in self.genes:
            for ftype, fid in (("gene", g.name), ("CDS", f"cds-{g.name}")):
                attrs = f"ID={fid};Name={g.name}" + (f";Parent={g.name}" if ftype == "CDS" else "")
                phase = "0" if ftype == "CDS" else "."
                rows.append((g.start, ftype, f"{self.name}\tgulm\t{ftype}\t{g.start + 1}\t{g.end}\t.\t{g.strand}\t{phase}\t{attrs}"))
        for p in self.promoters:
            lo = min(p.box35.start, p.tss)
            hi = max(p.box35.end, p.tss + 1)
            attrs = f"ID=prom-{p.gene};Name={p.gene};tss={p.tss + 1};spacer={p.spacer}"
            rows.append((lo, "promoter", f"{self.name}\tgulm\tpromoter\t{lo + 1}\t{hi}\t.\t{p.strand}\t.\t{attrs}"))
        rows.sort(key=lambda r: (r[0], r[1]))
        _write_bytes(path, ("\n".join(lines + [r[2] for r in rows]) + "\n").encode("ascii"))
        return path


def _write_bytes(path: Path, data: bytes) -> None:
    if path.name.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def synthetic_genome(
    length: int = 1_000_000,
    seed: int = 0,
    gc: float = 0.5,
    *,
    promoter_fraction: float = 0.6,
    motif_strength: float = 1.0,
    rbs_strength: float = 1.0,
    median_gene_length: int = 900,
    gene_length: tuple[int, int] = (300, 3000),
    intergenic_gc: float | None = None,
    name: str = "synthetic",
) -> SyntheticGenome:
    """Generate a bacterial-like chromosome of exactly ``length`` bp with genes on both strands.

    See the module docstring for the layout and the knobs. Deterministic: the same arguments give the same
    sequence and annotation. About 0.1 s per Mbp.
    """
    if length < 1:
        raise ValueError(f"synthetic_genome: length must be positive, got {length}")
    if not 0.0 < promoter_fraction <= 1.0:
        raise ValueError(f"synthetic_genome: promoter_fraction must be in (0, 1], got {promoter_fraction}")
    if not 0.2 <= gc <= 0.8:
        raise ValueError(f"synthetic_genome: gc must be in [0.2, 0.8], got {gc}")
    lo_len, hi_len = gene_length
    if not 9 <= lo_len <= hi_len:
        raise ValueError(f"synthetic_genome: gene_length must satisfy 9 <= min <= max, got {gene_length}")
    ig_gc = gc - 0.1 if intergenic_gc is None else intergenic_gc
    params = dict(
        length=length, seed=seed, gc=gc, promoter_fraction=promoter_fraction, motif_strength=motif_strength,
        rbs_strength=rbs_strength, median_gene_length=median_gene_length, gene_length=tuple(gene_length),
        intergenic_gc=ig_gc, name=name,
    )

    draw = StableDraw(seed)
    bg_cdf = _cdf([(1 - ig_gc) / 2, ig_gc / 2, ig_gc / 2, (1 - ig_gc) / 2])
    codons, codon_cdf = _tilted_codons(gc)
    start_codons = np.stack([_codes(c) for c, _ in _START])
    start_cdf = _cdf([p for _, p in _START])
    stop_codons = np.stack([_codes(c) for c, _ in _STOP])
    stop_cdf = _cdf([p for _, p in _STOP])
    pwm35, pwm10, pwm_rbs = _pwm(BOX35, motif_strength), _pwm(BOX10, motif_strength), _pwm(RBS, rbs_strength)
    spacer_cdf, tss_cdf = _cdf([p for _, p in _SPACER]), _cdf([p for _, p in _TSS_OFFSET])
    tss_base_cdf = _cdf(_TSS_BASE)

    def background(n: int) -> np.ndarray:
        return draw.categorical(bg_cdf, n).astype(np.uint8)

    def gene_codes() -> np.ndarray:
        size = median_gene_length * np.exp(0.5 * draw.normal())
        n_codons = int(np.clip(size, lo_len, hi_len)) // 3
        body = codons[draw.categorical(codon_cdf, n_codons - 2)].reshape(-1)
        start = start_codons[draw.categorical(start_cdf, 1)[0]]
        stop = stop_codons[draw.categorical(stop_cdf, 1)[0]]
        return np.concatenate([start, body, stop])

    pieces: list[np.ndarray] = []  # genome pieces, left to right
    genes: list[tuple[int, int, str]] = []  # (start, end, strand) in genome coordinates
    promoters: list[tuple[int, str, int, int, int, int]] = []  # (tss, strand, box35, box10, spacer, gene index)
    rbs_sites: list[tuple[int, int]] = []  # (start, gene index)
    offset = 0
    while True:
        # --- one transcription unit in sense orientation; local coordinates are offsets into `unit`
        parts: list[np.ndarray] = []
        local_genes: list[tuple[int, int]] = []
        local_rbs: list[int] = []
        size = 0

        def add(codes: np.ndarray) -> int:
            nonlocal size
            parts.append(codes)
            size += len(codes)
            return size - len(codes)

        add(background(draw.integer(30, 200)))
        b35 = add(_sample_motif(draw, pwm35))
        spacer = _SPACER[int(draw.categorical(spacer_cdf, 1)[0])][0]
        add(background(spacer))
        b10 = add(_sample_motif(draw, pwm10))
        tss_offset = _TSS_OFFSET[int(draw.categorical(tss_cdf, 1)[0])][0]
        add(background(tss_offset - 1))
        tss = add(draw.categorical(tss_base_cdf, 1).astype(np.uint8))
        first = True
        while first or draw.uniform() >= promoter_fraction:  # further genes of the operon
            add(background(draw.integer(8, 60) if first else draw.integer(0, 40)))
            local_rbs.append(add(_sample_motif(draw, pwm_rbs)))
            add(background(draw.integer(5, 9)))
            g = gene_codes()
            local_genes.append((add(g), size))
            first = False
        add(background(draw.integer(10, 80)))
        unit = np.concatenate(parts)
        if offset + len(unit) > length:
            break
        strand = "+" if draw.uniform() < 0.5 else "-"
        n = len(unit)

        def span(a: int, b: int) -> tuple[int, int]:  # local [a, b) -> genome [start, end)
            return (offset + a, offset + b) if strand == "+" else (offset + n - b, offset + n - a)

        def point(x: int) -> int:
            return offset + x if strand == "+" else offset + n - 1 - x

        first_gene = len(genes)
        for a, b in local_genes:
            genes.append((*span(a, b), strand))
        for i, r in enumerate(local_rbs):
            rbs_sites.append((span(r, r + 6)[0], first_gene + i))
        promoters.append((point(tss), strand, span(b35, b35 + 6)[0], span(b10, b10 + 6)[0], spacer, first_gene))
        pieces.append(unit if strand == "+" else (3 - unit[::-1]))
        offset += n
    pieces.append(background(length - offset))
    codes = np.concatenate(pieces)
    sequence = _ACGT[codes].tobytes().decode("ascii")

    order = sorted(range(len(genes)), key=lambda i: genes[i][0])
    gene_name = {old: f"gene{new + 1:05d}" for new, old in enumerate(order)}
    gene_ivs = [Interval(name, genes[i][0], genes[i][1], gene_name[i], None, genes[i][2]) for i in order]
    promoter_objs = sorted(
        (
            Promoter(name, tss, s, gene_name[gi], Interval(name, b35, b35 + 6, None, None, s),
                     Interval(name, b10, b10 + 6, None, None, s), spacer)
            for tss, s, b35, b10, spacer, gi in promoters
        ),
        key=lambda p: p.tss,
    )
    rbs_ivs = sorted(
        (Interval(name, r, r + 6, gene_name[gi], None, genes[gi][2]) for r, gi in rbs_sites),
        key=lambda iv: iv.start,
    )
    return SyntheticGenome(name, sequence, gene_ivs, promoter_objs, rbs_ivs, params)


def write_demo_data(
    outdir: str | os.PathLike,
    *,
    length: int = 1_000_000,
    seed: int = 0,
    n_train: int | None = None,
    genome_kwargs: dict | None = None,
    dataset_kwargs: dict | None = None,
) -> dict[str, Path]:
    """Write the demo inputs a user would have: ``genome.fa.gz``, ``genes.gff3`` and ``promoters.csv``.

    Returns ``{"genome": ..., "annotation": ..., "promoters": ...}``. The CSV has ``id,sequence,label,set``.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    genome = synthetic_genome(length, seed, **(genome_kwargs or {}))
    data = promoter_dataset(genome, n_train=n_train, seed=seed, **(dataset_kwargs or {}))
    paths = {
        "genome": genome.write_fasta(out / "genome.fa.gz"),
        "annotation": genome.write_gff(out / "genes.gff3"),
        "promoters": out / "promoters.csv",
    }
    write_labeled_csv(paths["promoters"], data)
    return paths
