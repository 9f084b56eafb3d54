"""Promoter / non-promoter training sets cut from a genome and its genes, like Genomic-ULMFiT's
E. coli set (used by the demo on its synthetic genome and by the reproduction on real genomes).

The seed's negatives are windows inside genes, so a classifier trained on them learns mostly
"coding against non-coding" and calls most intergenic DNA and the antisense strand of genes
(issue 13). ``negatives`` can mix in two kinds that teach promoters instead
(:data:`NEGATIVE_KINDS`): intergenic windows away from any gene start, and windows read on the
strand opposite to a gene (its promoter read backwards included). :func:`promoter_intervals` gives
the same windows as labelled BED intervals, for ``gulm train-classifier --bed``.
"""
from __future__ import annotations

import inspect
from typing import Mapping, Protocol, Sequence

import numpy as np

from gulm.data.intervals import Interval, merge_intervals, subtract_intervals
from gulm.data.labeled import SPLIT_NAMES, LabeledSequences, stratified_split
from gulm.data.sampling import StableDraw, apportion

__all__ = ["promoter_dataset", "promoter_intervals", "parse_negatives", "LABELS", "NEGATIVE_KINDS"]

LABELS = ("promoter", "non_promoter")

#: kinds of negative windows that ``negatives`` mixes, with what each is
NEGATIVE_KINDS = {
    "in_gene": "a window inside a gene, at least `margin` bp from its ends, read on the gene's strand "
               "(the seed's negatives)",
    "intergenic": "a window centred between genes (no gene on either strand at its centre), read on either "
                  "strand, outside the `clearance` bp upstream of any gene start on that strand",
    "antisense": "a window read on the strand opposite to a gene, anywhere from its promoter window to "
                 "`margin` bp before its end (so the promoter read backwards too), outside the `clearance` bp "
                 "upstream of any gene start on that strand",
}


#: the options of promoter_dataset that choose the windows (promoter_intervals takes them too)
_WINDOW_OPTIONS = ("window", "upstream", "anchor", "negatives", "negative_ratio", "margin", "clearance", "balance")


class _Fetcher(Protocol):
    lengths: dict[str, int]

    def fetch(self, chrom: str, start: int, end: int, strand: str = "+", *, upper: bool = False) -> str: ...


def _sense_window(anchor: int, strand: str, upstream: int, window: int) -> tuple[int, int]:
    """Genome ``[start, end)`` of the window reading ``upstream`` bp before ``anchor`` on ``strand``."""
    if strand == "+":
        return anchor - upstream, anchor - upstream + window
    return anchor + upstream - window + 1, anchor + upstream + 1


def parse_negatives(spec: str | Mapping[str, float]) -> dict[str, float] | str:
    """``negatives`` as shares of :data:`NEGATIVE_KINDS` summing to 1, or ``"operon_internal"``.

    Accepts a kind (``"in_gene"``), a mapping (``{"in_gene": 2, "intergenic": 1}``) or its text form
    ``"in_gene=0.5,intergenic=0.25,antisense=0.25"``; shares are normalised.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text == "operon_internal":
            return text
        if "=" not in text:
            spec = {text: 1.0}
        else:
            spec = {}
            for part in text.split(","):
                key, eq, value = part.partition("=")
                try:
                    spec[key.strip()] = float(value)
                except ValueError:
                    raise ValueError(f"promoter_dataset: negatives {text!r}: expected kind=share, got {part!r}") from None
    shares = {str(k): float(v) for k, v in dict(spec).items()}
    unknown = sorted(set(shares) - set(NEGATIVE_KINDS))
    if unknown:
        raise ValueError(f"promoter_dataset: unknown negative kind(s) {unknown}; choose from "
                         f"{', '.join(NEGATIVE_KINDS)} (or 'operon_internal')")
    if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        raise ValueError(f"promoter_dataset: negative shares must be >= 0 and not all 0, got {shares}")
    total = sum(shares.values())
    return {k: shares[k] / total for k in NEGATIVE_KINDS if shares.get(k, 0) > 0}


def _gene_name(g: Interval) -> str:
    return g.name or f"{g.chrom}:{g.start}-{g.end}"


def _in_gene_windows(genes, window: int, margin: int, draw: StableDraw) -> list[tuple]:
    """One random window inside each gene longer than ``window + 2 * margin``, on its strand."""
    out = []
    for g in genes:
        if g.strand not in ("+", "-") or len(g) <= window + 2 * margin:
            continue
        u = draw.integer(margin, len(g) - window - margin - 1)  # sense offset of the window in the gene
        start, end = (g.start + u, g.start + u + window) if g.strand == "+" else (g.end - u - window, g.end - u)
        out.append((LABELS[1], g.chrom, start, end, g.strand, _gene_name(g)))
    return out


def _start_zones(genes, window: int, upstream: int, clearance: int) -> list[Interval]:
    """Per strand, the ``clearance`` bp upstream of every gene start plus the part of the promoter
    window inside the gene: where a window read on that strand may hold that gene's promoter."""
    zones = []
    for g in genes:
        if g.strand == "+":
            zones.append(Interval(g.chrom, max(0, g.start - clearance), g.start + window - upstream, strand="+"))
        elif g.strand == "-":
            zones.append(Interval(g.chrom, max(0, g.end - (window - upstream)), g.end + clearance, strand="-"))
    return zones


def _outside_zones(cands: list[tuple], zones) -> list[tuple]:
    """The candidate windows (label, chrom, start, end, strand, name) that overlap no start zone
    of their own strand."""
    ivs = [Interval(c, s, e, name=str(i), strand=st) for i, (_, c, s, e, st, _) in enumerate(cands)]
    whole = {int(iv.name) for iv in subtract_intervals(ivs, zones, stranded=True)
             if len(iv) == cands[int(iv.name)][3] - cands[int(iv.name)][2]}
    return [cands[i] for i in sorted(whole)]


def _intergenic_windows(lengths, genes, zones, window: int) -> list[tuple]:
    """Every ``window``-bp tile whose centre lies between genes (no gene on either strand), on
    each strand, outside that strand's start zones."""
    whole = [Interval(c, 0, n) for c, n in lengths.items()]
    gaps = subtract_intervals(whole, [Interval(g.chrom, g.start, g.end) for g in genes])
    half = window // 2
    cands = []
    for iv in gaps:
        first = max(iv.start - half, 0)
        last = min(iv.end - 1 - half, lengths[iv.chrom] - window)  # the centre p + half stays in the gap
        for p in range(first, last + 1, window):
            for strand in ("+", "-"):
                cands.append((LABELS[1], iv.chrom, p, p + window, strand, "intergenic"))
    return _outside_zones(cands, zones)


def _antisense_windows(lengths, genes, zones, window: int, upstream: int, margin: int, draw: StableDraw) -> list[tuple]:
    """One random window per gene read on the other strand, from its promoter window (``upstream``
    bp before the start) to ``margin`` bp before its end, outside the start zones of that strand."""
    flip = {"+": "-", "-": "+"}
    cands = []
    for g in genes:
        if g.strand not in ("+", "-") or len(g) + upstream < window + margin:
            continue
        u = draw.integer(-upstream, len(g) - window - margin)  # sense offset of the window from the start
        start, end = (g.start + u, g.start + u + window) if g.strand == "+" else (g.end - u - window, g.end - u)
        if 0 <= start and end <= lengths.get(g.chrom, -1):
            cands.append((LABELS[1], g.chrom, start, end, flip[g.strand], f"{_gene_name(g)}~antisense"))
    return _outside_zones(cands, zones)


def _labelled_windows(genome, genes, *, window, upstream, anchor, negatives, negative_ratio, margin, clearance,
                      balance,
                      draw: StableDraw) -> list[tuple]:
    """(label, chrom, start, end, strand, name) of every window of the set, balanced if asked."""
    if genes is None:
        genes = getattr(genome, "genes", None)
        if genes is None:
            raise ValueError("promoter_dataset: pass genes= (e.g. read_gff_features(gff, 'CDS')) for this genome")
    if anchor not in ("gene_start", "tss"):
        raise ValueError(f"promoter_dataset: anchor must be 'gene_start' or 'tss', not {anchor!r}")
    shares = parse_negatives(negatives)
    if not 0 <= upstream <= window:
        raise ValueError(f"promoter_dataset: need 0 <= upstream <= window, got {upstream}, {window}")
    if clearance < upstream:
        raise ValueError(f"promoter_dataset: clearance ({clearance}) must be at least upstream ({upstream})")
    lengths = genome.lengths

    anchors: list[tuple[str, int, str, str]] = []  # chrom, +1 position, strand, gene name
    if anchor == "tss":
        promoters = getattr(genome, "promoters", None)
        if promoters is None:
            raise ValueError("promoter_dataset: anchor='tss' needs a genome with annotated promoters")
        anchors = [(p.chrom, p.tss, p.strand, p.gene) for p in promoters]
    else:
        anchors = [(g.chrom, g.start if g.strand == "+" else g.end - 1, g.strand, _gene_name(g))
                   for g in genes if g.strand in ("+", "-")]

    own_promoter: set[str] | None = None
    if shares == "operon_internal":
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
    if own_promoter is None and shares == {"in_gene": 1.0}:  # the seed's set, draws unchanged
        items += _in_gene_windows(genes, window, margin, draw)
    elif own_promoter is None:
        zones = _start_zones([g for g in genes if g.strand in ("+", "-")], window, upstream, clearance)
        pools = {
            "in_gene": lambda: _in_gene_windows(genes, window, margin, draw),
            "intergenic": lambda: _intergenic_windows(lengths, genes, zones, window),
            "antisense": lambda: _antisense_windows(lengths, genes, zones, window, upstream, margin, draw),
        }
        if negative_ratio <= 0:
            raise ValueError(f"promoter_dataset: negative_ratio must be > 0, got {negative_ratio}")
        quota = apportion(int(round(negative_ratio * len(items))), np.array(list(shares.values())))
        for kind, n in zip(shares, quota):
            pool = pools[kind]()
            pick = sorted(draw.permutation(len(pool))[:n].tolist())  # a short pool gives what it has
            items += [pool[i] for i in pick]

    pos_idx = [i for i, it in enumerate(items) if it[0] == LABELS[0]]
    neg_idx = [i for i, it in enumerate(items) if it[0] == LABELS[1]]
    if not pos_idx or not neg_idx:
        raise ValueError(f"promoter_dataset: {len(pos_idx)} positive and {len(neg_idx)} negative windows; need both")
    if balance:
        n = min(len(pos_idx), len(neg_idx))
        pos_idx = sorted(np.asarray(pos_idx)[draw.permutation(len(pos_idx))[:n]].tolist())
        neg_idx = sorted(np.asarray(neg_idx)[draw.permutation(len(neg_idx))[:n]].tolist())
    return [items[i] for i in pos_idx + neg_idx]


def promoter_intervals(genome: _Fetcher, genes: Sequence[Interval] | None = None, *, seed: int = 0,
                       **options) -> list[Interval]:
    """The windows of :func:`promoter_dataset` (its window options - ``window``, ``upstream``,
    ``anchor``, ``negatives``, ``margin``, ``clearance``, ``balance`` - with the same defaults, and
    the same draws for a ``seed``) as BED intervals named by their label and stranded, sorted: write
    them with :func:`~gulm.data.intervals.write_bed` and train with
    ``gulm train-classifier --bed promoters.bed --genome genome.fa``."""
    params = inspect.signature(promoter_dataset).parameters
    unknown = sorted(set(options) - set(_WINDOW_OPTIONS))
    if unknown:
        raise TypeError(f"promoter_intervals: unknown option(s) {unknown}; choose from {', '.join(_WINDOW_OPTIONS)}")
    chosen = {k: options.get(k, params[k].default) for k in _WINDOW_OPTIONS}
    items = _labelled_windows(genome, genes, draw=StableDraw(seed), **chosen)
    return sorted((Interval(c, s, e, label, None, st) for label, c, s, e, st, _ in items), key=Interval.sort_key)


def promoter_dataset(
    genome: _Fetcher,
    genes: Sequence[Interval] | None = None,
    *,
    window: int = 150,
    upstream: int = 100,
    anchor: str = "gene_start",
    negatives: str | Mapping[str, float] = "in_gene",
    negative_ratio: float = 1.0,
    margin: int = 50,
    clearance: int = 200,
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
      read on the gene's strand;
    - ``negatives`` may instead mix the kinds of :data:`NEGATIVE_KINDS` in set proportions, e.g.
      ``"in_gene=0.4,intergenic=0.3,antisense=0.3"`` (or a mapping): ``negative_ratio`` negatives per
      positive (with ``balance=False`` for a ratio other than 1), each kind its share, drawn from all its
      candidates (``intergenic``: every ``window``-bp tile centred between genes, on each strand; ``antisense``: one random window per gene read on the other strand,
      from its promoter window to ``margin`` bp before its end; neither within ``clearance`` bp upstream
      of a gene start on the strand it is read on); a kind with fewer candidates than its share gives
      what it has;
    - ``negatives="operon_internal"`` (synthetic genomes, ``anchor="gene_start"``): positives are the
      gene-start windows of genes with their own promoter and negatives those of genes inside operons,
      without one - both hold an RBS and a start codon at the same offset, so the boxes and the upstream
      context are what is left to learn;
    - genes without a strand ('.') are skipped, and windows that would leave the chromosome are dropped;
      with ``balance`` the larger class is subsampled to the size of the smaller;
    - ``split`` is a stratified ``fractions`` split (train/valid/test); ``n_train`` then keeps only that many
      training examples (class shares kept), leaving valid and test as they are.

    ``genome`` is a :class:`~gulm.demo.synthetic.SyntheticGenome` or any object with ``lengths`` and ``fetch`` (a
    :class:`~gulm.data.genome.Genome`), with ``genes`` e.g. from ``read_gff_features(gff, "CDS")``; windows are
    drawn from ``genome.lengths`` only (a wrapper with shorter lengths restricts them to part of a record).
    Deterministic for a given ``seed``. Ids are ``gene|label|chrom:start-end(strand)`` (``intergenic`` and
    ``gene~antisense`` for those kinds).
    """
    draw = StableDraw(seed)
    items = _labelled_windows(genome, genes, window=window, upstream=upstream, anchor=anchor, negatives=negatives,
                              negative_ratio=negative_ratio, margin=margin, clearance=clearance, balance=balance,
                              draw=draw)
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
