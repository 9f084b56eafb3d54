"""The synthetic demo genome: determinism, gene and promoter grammar, and the promoter set cut from it."""
from __future__ import annotations

import hashlib
import time
from collections import Counter

import numpy as np
import pytest

from gulm.data.genome import Genome
from gulm.data.intervals import read_gff_features
from gulm.data.labeled import read_labeled_csv
from gulm.data.promoters import promoter_dataset
from gulm.demo.synthetic import (
    BOX10,
    BOX35,
    STOP_CODONS,
    synthetic_genome,
    write_demo_data,
)

LENGTH = 200_000


@pytest.fixture(scope="module")
def genome():
    return synthetic_genome(LENGTH, seed=11)


def _identity(seq: str, consensus: str) -> float:
    return sum(a == b for a, b in zip(seq, consensus)) / len(consensus)


def _sense(genome, iv) -> str:
    return genome.fetch(iv.chrom, iv.start, iv.end, iv.strand)


def test_same_seed_same_bytes_other_seed_differs(genome, tmp_path):
    again = synthetic_genome(LENGTH, seed=11)
    assert again.sequence == genome.sequence
    assert again.genes == genome.genes and again.promoters == genome.promoters
    a = genome.write_fasta(tmp_path / "a.fa.gz").read_bytes()
    b = again.write_fasta(tmp_path / "b.fa.gz").read_bytes()
    assert a == b  # gzip header carries no timestamp
    other = synthetic_genome(LENGTH, seed=12)
    assert other.sequence != genome.sequence
    # A fingerprint of seed 0, so the demo data are the same on every machine and NumPy version. If the
    # generator is changed on purpose, update it and say so in the commit: old demo results then differ.
    digest = hashlib.sha256(synthetic_genome(20_000, seed=0).sequence.encode()).hexdigest()
    assert digest == "52dbfddb34762e7fcc0f35994feaa7ff844f63faa7a05f0868f2f09561deba27"


def test_length_alphabet_and_composition(genome):
    seq = genome.sequence
    assert len(seq) == LENGTH and set(seq) == set("ACGT")
    coding = sum(len(g) for g in genome.genes) / LENGTH
    assert 0.75 < coding < 0.95  # bacterial gene density
    gc = (seq.count("G") + seq.count("C")) / LENGTH
    assert 0.45 < gc < 0.52
    gc_rich = synthetic_genome(50_000, seed=1, gc=0.65)
    coding_gc = np.mean([_gc(_sense(gc_rich, g)) for g in gc_rich.genes])
    assert abs(coding_gc - 0.65) < 0.02


def _gc(s: str) -> float:
    return (s.count("G") + s.count("C")) / len(s)


def test_genes_are_open_reading_frames_on_both_strands(genome):
    genes = genome.genes
    assert Counter(g.strand for g in genes).keys() == {"+", "-"}
    assert all(a.end <= b.start for a, b in zip(genes, genes[1:]))  # sorted, not overlapping
    for g in genes:
        orf = _sense(genome, g)
        assert len(orf) % 3 == 0 and 300 <= len(orf) <= 3000
        assert orf[:3] in ("ATG", "GTG") and orf[-3:] in STOP_CODONS
        codons = {orf[i : i + 3] for i in range(3, len(orf) - 3, 3)}
        assert not codons & set(STOP_CODONS), g.name


def test_codon_bias_is_e_coli_like(genome):
    counts = Counter()
    for g in genome.genes:
        orf = _sense(genome, g)
        counts.update(orf[i : i + 3] for i in range(3, len(orf) - 3, 3))
    # leucine: CTG dominates CTA by an order of magnitude, as in E. coli
    assert counts["CTG"] > 6 * counts["CTA"]
    # frame matters: codon-position GC differs (third positions are the most variable)
    frames = [Counter(), Counter(), Counter()]
    for g in genome.genes:
        orf = _sense(genome, g)
        for f in range(3):
            frames[f].update(orf[f::3])
    gc = [(c["G"] + c["C"]) / sum(c.values()) for c in frames]
    assert max(gc) - min(gc) > 0.1


def test_promoter_boxes_are_where_annotated(genome):
    proms = genome.promoters
    assert len(proms) > 50
    id35 = np.mean([_identity(_sense(genome, p.box35), BOX35[0]) for p in proms])
    id10 = np.mean([_identity(_sense(genome, p.box10), BOX10[0]) for p in proms])
    assert id35 > 0.6 and id10 > 0.6  # consensus-like...
    assert np.mean([_sense(genome, p.box10) == BOX10[0] for p in proms]) < 0.5  # ...but varied
    rng = np.random.default_rng(0)
    random_starts = rng.integers(0, LENGTH - 6, 500)
    background = np.mean([_identity(genome.sequence[s : s + 6], BOX10[0]) for s in random_starts])
    assert background < 0.4
    by_gene = {g.name: g for g in genome.genes}
    for p in proms:
        sign = 1 if p.strand == "+" else -1
        # sense-orientation distances: -35 box, spacer, -10 box, TSS ~7 bp later, gene downstream
        b35 = p.box35.start if p.strand == "+" else p.box35.end - 1
        b10 = p.box10.start if p.strand == "+" else p.box10.end - 1
        assert sign * (b10 - b35) == 6 + p.spacer and 15 <= p.spacer <= 19
        assert 6 <= sign * (p.tss - b10) - 5 <= 8
        gene = by_gene[p.gene]
        gene_start = gene.start if gene.strand == "+" else gene.end - 1
        assert gene.strand == p.strand and 20 <= sign * (gene_start - p.tss) <= 80


def test_rbs_precedes_each_start_codon(genome):
    by_gene = {g.name: g for g in genome.genes}
    assert len(genome.rbs) == len(genome.genes)
    ids = []
    for r in genome.rbs:
        gene = by_gene[r.name]
        gap = gene.start - r.end if gene.strand == "+" else r.start - gene.end
        assert 5 <= gap <= 9
        ids.append(_identity(_sense(genome, r), "AGGAGG"))
    assert np.mean(ids) > 0.6


def test_knobs_change_the_genome():
    flat = synthetic_genome(100_000, seed=2, motif_strength=0.0)
    id10 = np.mean([_identity(_sense(flat, p.box10), BOX10[0]) for p in flat.promoters])
    assert id10 < 0.35  # no promoter signal left
    every = synthetic_genome(100_000, seed=2, promoter_fraction=1.0)
    assert len(every.promoters) == len(every.genes)
    some = synthetic_genome(300_000, seed=2, promoter_fraction=0.4)
    assert 0.3 < len(some.promoters) / len(some.genes) < 0.5
    with pytest.raises(ValueError, match="promoter_fraction"):
        synthetic_genome(1000, promoter_fraction=0.0)


def test_one_megabase_is_fast():
    start = time.perf_counter()
    g = synthetic_genome(1_000_000, seed=5)
    assert len(g) == 1_000_000
    assert time.perf_counter() - start < 3.0


def test_promoter_dataset_windows(genome):
    data = promoter_dataset(genome, seed=0)
    counts = data.counts()
    assert counts["promoter"] == counts["non_promoter"] > 100  # balanced
    assert {len(s) for s in data.sequences} == {150}
    assert Counter(data.split) == Counter(
        {k: v for k, v in Counter(data.split).items() if k in ("train", "valid", "test")}
    )
    n = len(data)
    assert abs(data.split.count("train") - 0.8 * n) <= 2 and abs(data.split.count("test") - 0.1 * n) <= 2
    genes = {g.name: _sense(genome, g) for g in genome.genes}
    for seq, label, id_ in zip(data.sequences, data.labels, data.ids):
        gene = id_.split("|")[0]
        if label == "promoter":  # -100/+50 around the gene start: the ORF begins at offset 100
            assert seq[100:150] == genes[gene][:50]
        else:  # inside the gene, at least 50 bp from either end, on its strand
            where = genes[gene].find(seq)
            assert 50 <= where <= len(genes[gene]) - 200


def test_promoter_dataset_tss_anchor(genome):
    data = promoter_dataset(genome, anchor="tss", seed=0)
    pos = [s for s, lab in zip(data.sequences, data.labels) if lab == "promoter"]
    assert len(pos) == len(genome.promoters)
    # the -10 box ends 6-8 bp before the TSS at offset 100: best TATAAT match in [86, 89)
    near = np.mean([max(_identity(s[i : i + 6], BOX10[0]) for i in (86, 87, 88)) for s in pos])
    assert near > 0.65


def test_n_train_leaves_valid_and_test_alone(genome):
    full = promoter_dataset(genome, seed=4)
    few = promoter_dataset(genome, seed=4, n_train=40)
    assert Counter(zip(few.split, few.labels))[("train", "promoter")] == 20
    assert Counter(zip(few.split, few.labels))[("train", "non_promoter")] == 20
    for name in ("valid", "test"):
        assert full.by_split()[name] == few.by_split()[name]
    assert promoter_dataset(genome, seed=4, n_train=40) == few  # deterministic
    assert promoter_dataset(genome, seed=5, n_train=40) != few
    with pytest.raises(ValueError, match="n_train"):
        promoter_dataset(genome, n_train=10**6)


def test_demo_files_round_trip_through_the_readers(tmp_path):
    paths = write_demo_data(tmp_path, length=60_000, seed=3, n_train=30)
    g = Genome(paths["genome"])
    ref = synthetic_genome(60_000, seed=3)
    assert g.sequence("synthetic") == ref.sequence
    cds = read_gff_features(paths["annotation"], "CDS")
    assert [(c.start, c.end, c.strand, c.name) for c in cds] == [(x.start, x.end, x.strand, x.name) for x in ref.genes]
    table = read_labeled_csv(paths["promoters"])
    assert table == promoter_dataset(ref, seed=3, n_train=30)
    # the same set can be cut from the files alone, as a user with a real genome would
    assert promoter_dataset(g, cds, seed=3, n_train=30) == table


def test_operon_internal_negatives_differ_only_upstream(genome):
    data = promoter_dataset(genome, negatives="operon_internal", seed=0)
    own = {p.gene for p in genome.promoters}
    genes = {g.name: _sense(genome, g) for g in genome.genes}
    assert data.counts()["promoter"] == data.counts()["non_promoter"] > 20
    for seq, label, id_ in zip(data.sequences, data.labels, data.ids):
        gene = id_.split("|")[0]
        assert (gene in own) == (label == "promoter")
        assert seq[100:150] == genes[gene][:50]  # both classes: the ORF starts at offset 100
    with pytest.raises(ValueError, match="operon_internal"):
        promoter_dataset(genome, anchor="tss", negatives="operon_internal")
