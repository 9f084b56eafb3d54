"""Promoter / non-promoter training sets cut from a genome and its genes, like Genomic-ULMFiT's
E. coli set (used by the demo on its synthetic genome and by the reproduction on real genomes)."""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from gulm.data.intervals import Interval
from gulm.data.labeled import SPLIT_NAMES, LabeledSequences, stratified_split
from gulm.data.sampling import StableDraw, apportion

__all__ = ["promoter_dataset", "LABELS"]

LABELS = ("promoter", "non_promoter")


class _Fetcher(Protocol):
    lengths: dict[str, int]

    def fetch(self, chrom: str, start: int, end: int, strand: str = "+", *, upper: bool = False) -> str: ...


def _sense_window(anchor: int, strand: str, upstream: int, window: int) -> tuple[int, int]:
    """Genome ``[start, end)`` of the window reading ``upstream`` bp before ``anchor`` on ``strand``."""
    if strand == "+":
        return anchor - upstream, anchor - upstream + window
    return anchor + upstream - window + 1, anchor + upstream + 1


def promoter_dataset(
    genome: _Fetcher,
    genes: Sequence[Interval] | None = None,
    *,
    window: int = 150,
    upstream: int = 100,
    anchor: str = "gene_start",
    negatives: str = "in_gene",
    margin: int = 50,
    balance: bool = True,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    n_train: int | None = None,
    seed: int = 0,
) -> LabeledSequences:
    """Promoter / non-promoter windows cut like Genomic-ULMFiT's E. coli set, with a train/valid/test split.

    - positives (label ``"promoter"``): the ``window`` bp from ``upstream`` bp before the anchor, read on the
      gene's strand. ``anchor="gene_start"`` (default, as the seed: -100/+50 around each CDS start, whether
      or not the gene has its own promoter) or ``"tss"`` (one window per annotated promoter, around its TSS;
      synthetic genomes only);
    - negatives (``"non_promoter"``), ``negatives="in_gene"`` (default, as the seed): one random ``window`` bp
      window inside each gene longer than ``window + 2 * margin``, starting in ``[margin, length - window -
      margin)`` of the gene in sense orientation (the seed's ``[start+50, end-200)`` for 150 bp windows),
      read on the gene's strand. ``negatives="operon_internal"`` (synthetic genomes, ``anchor="gene_start"``):
      positives are the gene-start windows of genes with their own promoter and negatives those of genes
      inside operons, without one - both hold an RBS and a start codon at the same offset, so the boxes and
      the upstream context are what is left to learn;
    - genes without a strand ('.') are skipped, and windows that would leave the chromosome are dropped;
      with ``balance`` the larger class is subsampled to the size of the smaller;
    - ``split`` is a stratified ``fractions`` split (train/valid/test); ``n_train`` then keeps only that many
      training examples (class shares kept), leaving valid and test as they are.

    ``genome`` is a :class:`~gulm.demo.synthetic.SyntheticGenome` or any object with ``lengths`` and ``fetch`` (a
    :class:`~gulm.data.genome.Genome`), with ``genes`` e.g. from ``read_gff_features(gff, "CDS")``.
    Deterministic for a given ``seed``. Ids are ``gene|label|chrom:start-end(strand)``.
    """
    if genes is None:
        genes = getattr(genome, "genes", None)
        if genes is None:
            raise ValueError("promoter_dataset: pass genes= (e.g. read_gff_features(gff, 'CDS')) for this genome")
    if anchor not in ("gene_start", "tss"):
        raise ValueError(f"promoter_dataset: anchor must be 'gene_start' or 'tss', not {anchor!r}")
    if negatives not in ("in_gene", "operon_internal"):
        raise ValueError(f"promoter_dataset: negatives must be 'in_gene' or 'operon_internal', not {negatives!r}")
    if not 0 <= upstream <= window:
        raise ValueError(f"promoter_dataset: need 0 <= upstream <= window, got {upstream}, {window}")
    lengths = genome.lengths
    draw = StableDraw(seed)

    anchors: list[tuple[str, int, str, str]] = []  # chrom, +1 position, strand, gene name
    if anchor == "tss":
        promoters = getattr(genome, "promoters", None)
        if promoters is None:
            raise ValueError("promoter_dataset: anchor='tss' needs a genome with annotated promoters")
        anchors = [(p.chrom, p.tss, p.strand, p.gene) for p in promoters]
    else:
        anchors = [
            (g.chrom, g.start if g.strand == "+" else g.end - 1, g.strand, g.name or f"{g.chrom}:{g.start}-{g.end}")
            for g in genes
            if g.strand in ("+", "-")
        ]

    own_promoter: set[str] | None = None
    if negatives == "operon_internal":
        if anchor != "gene_start" or getattr(genome, "promoters", None) is None:
            raise ValueError("promoter_dataset: negatives='operon_internal' needs anchor='gene_start' and a "
                             "genome with annotated promoters")
        own_promoter = {p.gene for p in genome.promoters}

    items: list[tuple[str, str, int, int, str, str]] = []  # label, chrom, start, end, strand, gene
    for chrom, pos, strand, gene in anchors:
        start, end = _sense_window(pos, strand, upstream, window)
        if 0 <= start and end <= lengths.get(chrom, -1):
            label = LABELS[0] if own_promoter is None or gene in own_promoter else LABELS[1]
            items.append((label, chrom, start, end, strand, gene))
    for g in genes:
        if own_promoter is not None:
            break
        if g.strand not in ("+", "-") or len(g) <= window + 2 * margin:
            continue
        u = draw.integer(margin, len(g) - window - margin - 1)  # sense offset of the window in the gene
        start, end = (g.start + u, g.start + u + window) if g.strand == "+" else (g.end - u - window, g.end - u)
        items.append((LABELS[1], g.chrom, start, end, g.strand, g.name or f"{g.chrom}:{g.start}-{g.end}"))

    pos_idx = [i for i, it in enumerate(items) if it[0] == LABELS[0]]
    neg_idx = [i for i, it in enumerate(items) if it[0] == LABELS[1]]
    if not pos_idx or not neg_idx:
        raise ValueError(f"promoter_dataset: {len(pos_idx)} positive and {len(neg_idx)} negative windows; need both")
    if balance:
        n = min(len(pos_idx), len(neg_idx))
        pos_idx = sorted(np.asarray(pos_idx)[draw.permutation(len(pos_idx))[:n]].tolist())
        neg_idx = sorted(np.asarray(neg_idx)[draw.permutation(len(neg_idx))[:n]].tolist())
    items = [items[i] for i in pos_idx + neg_idx]
    labels = [it[0] for it in items]

    split = [""] * len(items)
    for name, idx in zip(SPLIT_NAMES, stratified_split(labels, fractions, seed)):
        for i in idx:
            split[i] = name
    keep = np.ones(len(items), dtype=bool)
    if n_train is not None:
        train = np.flatnonzero(np.asarray(split) == "train")
        if not 0 < n_train <= len(train):
            raise ValueError(f"promoter_dataset: n_train must be in [1, {len(train)}], got {n_train}")
        keep[train] = False
        train_labels = np.asarray([labels[i] for i in train])
        classes = sorted(set(train_labels.tolist()))
        shares = np.array([(train_labels == c).mean() for c in classes])
        for c, k in zip(classes, apportion(n_train, shares)):
            members = train[train_labels == c]
            keep[members[draw.permutation(len(members))[:k]]] = True

    seqs, ids, out_labels, out_split = [], [], [], []
    for i in np.flatnonzero(keep):
        label, chrom, start, end, strand, gene = items[i]
        seqs.append(genome.fetch(chrom, start, end, strand, upper=True))
        ids.append(f"{gene}|{label}|{chrom}:{start}-{end}({strand})")
        out_labels.append(label)
        out_split.append(split[i])
    return LabeledSequences(seqs, out_labels, ids, out_split)
