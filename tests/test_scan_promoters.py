"""Training sets that teach promoters (issue 13): intergenic and antisense negatives mixed in set
proportions, the same windows as a BED for --bed data, and the validation scores a classifier
checkpoint keeps for --threshold auto."""
import json
from collections import Counter

import numpy as np
import pytest

from gulm.data.intervals import Interval, write_bed
from gulm.data.labeled import read_labeled_bed
from gulm.data.promoters import parse_negatives, promoter_dataset, promoter_intervals
from gulm.demo.synthetic import synthetic_genome

MIX = "in_gene=0.5,intergenic=0.25,antisense=0.25"


@pytest.fixture(scope="module")
def genome():
    return synthetic_genome(200_000, seed=11)


def _kind(id_):
    name, label = id_.split("|")[:2]
    if label == "promoter":
        return "promoter"
    return "intergenic" if name == "intergenic" else "antisense" if name.endswith("~antisense") else "in_gene"


def _where(id_):
    loc = id_.split("|")[2]
    chrom, rest = loc.rsplit(":", 1)
    span, strand = rest[:-3], rest[-2]
    a, b = map(int, span.split("-"))
    return chrom, a, b, strand


def test_parse_negatives():
    assert parse_negatives("in_gene") == {"in_gene": 1.0}
    assert parse_negatives("intergenic=1,antisense=3") == {"intergenic": 0.25, "antisense": 0.75}
    assert parse_negatives({"in_gene": 2, "antisense": 2, "intergenic": 0}) == {"in_gene": 0.5, "antisense": 0.5}
    assert parse_negatives("operon_internal") == "operon_internal"
    with pytest.raises(ValueError, match="unknown negative kind"):
        parse_negatives("cds=1")
    with pytest.raises(ValueError, match="kind=share"):
        parse_negatives("in_gene=lots,intergenic=1")
    with pytest.raises(ValueError, match=">= 0"):
        parse_negatives("in_gene=-1,intergenic=2")


def test_mixed_negatives_come_in_their_shares_from_where_they_should(genome):
    data = promoter_dataset(genome, negatives=MIX, seed=1)
    kinds = Counter(_kind(i) for i in data.ids)
    n = kinds["promoter"]
    assert n > 100 and kinds["in_gene"] + kinds["intergenic"] + kinds["antisense"] == n  # balanced
    assert abs(kinds["in_gene"] - n / 2) <= 1 and abs(kinds["intergenic"] - n / 4) <= 1
    assert abs(kinds["antisense"] - n / 4) <= 1
    genes = genome.genes
    positives = {_where(i) for i in data.ids if _kind(i) == "promoter"}
    all_pos = {_where(i) for i in promoter_dataset(genome, negatives="in_gene", balance=False, seed=0).ids
               if _kind(i) == "promoter"}
    assert positives <= all_pos
    for id_, seq in zip(data.ids, data.sequences):
        kind, (chrom, a, b, strand) = _kind(id_), _where(id_)
        assert len(seq) == 150 and seq == genome.fetch(chrom, a, b, strand, upper=True)
        if kind == "intergenic":  # centred between genes, either strand
            assert not any(g.start <= (a + b) // 2 < g.end for g in genes)
        if kind in ("intergenic", "antisense"):
            for g in genes:  # no gene on the window's strand starts within 200 bp downstream of it
                if g.strand != strand:
                    continue
                if strand == "+":
                    assert not (g.start - 200 < b and a < g.start + 50), (id_, g)
                else:
                    assert not (g.end - 50 < b and a < g.end + 200), (id_, g)
        if kind == "antisense":  # on the other strand, from a gene's promoter window to 50 bp before its end
            gene = next(g for g in genes if g.name == id_.split("|")[0].split("~")[0])
            assert gene.strand != strand
            if gene.strand == "+":
                assert gene.start - 100 <= a and b <= gene.end - 50
            else:
                assert gene.start + 50 <= a and b <= gene.end + 100
    assert set(data.split) == {"train", "valid", "test"}
    assert promoter_dataset(genome, negatives=MIX, seed=1) == data
    assert promoter_dataset(genome, negatives=MIX, seed=2) != data


def test_negative_ratio(genome):
    data = promoter_dataset(genome, negatives="in_gene=1,antisense=1", negative_ratio=1.6, balance=False, seed=0)
    kinds = Counter(_kind(i) for i in data.ids)
    n = kinds["promoter"]
    assert kinds["in_gene"] + kinds["antisense"] == round(1.6 * n)
    assert abs(kinds["in_gene"] - kinds["antisense"]) <= 1
    with pytest.raises(ValueError, match="negative_ratio"):
        promoter_dataset(genome, negatives=MIX, negative_ratio=0)


def test_a_short_pool_gives_what_it_has_and_the_seed_set_is_unchanged(genome):
    only = promoter_dataset(genome, negatives="intergenic", balance=False, seed=0)
    kinds = Counter(_kind(i) for i in only.ids)
    assert set(kinds) == {"promoter", "intergenic"} and 0 < kinds["intergenic"] <= kinds["promoter"]
    seed = promoter_dataset(genome, seed=3)
    assert promoter_dataset(genome, negatives={"in_gene": 1.0}, seed=3) == seed
    assert {_kind(i) for i in seed.ids} == {"promoter", "in_gene"}


def test_the_same_windows_as_a_bed_for_bed_data(genome, tmp_path):
    ivs = promoter_intervals(genome, negatives=MIX, seed=1)
    data = promoter_dataset(genome, negatives=MIX, seed=1)
    assert sorted((iv.chrom, iv.start, iv.end, iv.strand, iv.name) for iv in ivs) == sorted(
        (*_where(i), lab) for i, lab in zip(data.ids, data.labels))
    write_bed(tmp_path / "p.bed", ivs)
    fasta = tmp_path / "g.fa"
    fasta.write_text(f">{next(iter(genome.lengths))}\n{genome.sequence}\n")
    back = read_labeled_bed(tmp_path / "p.bed", str(fasta))
    assert Counter(zip(back.sequences, back.labels)) == Counter(zip(data.sequences, data.labels))


def test_training_stores_the_valid_splits_scores_for_calibration(tmp_path):
    import gulm
    from gulm.runtime.checkpoint import read_calibration

    pytest.importorskip("gulm._C", reason="compiled extension not built")
    g = synthetic_genome(40_000, seed=5)
    data = promoter_dataset(g, negatives=MIX, seed=0)
    csv = tmp_path / "set.csv"
    csv.write_text("sequence,label,split\n" + "".join(f"{s},{y},{p}\n" for s, y, p in
                                                       zip(data.sequences, data.labels, data.split)))
    out = tmp_path / "clf"
    gulm.train_classifier(data=gulm.DataConfig(csv=str(csv)), out=str(out), k=3, stride=1, emb_size=8,
                          hidden_size=16, n_layers=2, stages=[[1, 1e-2, 0]], bs=16, progress=False, threads=1)
    cal = read_calibration(out)
    n_valid = data.split.count("valid")
    assert cal["split"] == "valid" and cal["classes"] == ["non_promoter", "promoter"]
    assert len(cal["labels"]) == len(cal["probs"]) == n_valid
    assert Counter(cal["labels"]) == Counter(0 if y == "non_promoter" else 1
                                             for y, s in zip(data.labels, data.split) if s == "valid")
    probs = np.array(cal["probs"])
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    # the scores of each sequence on its own strand, as a scan computes them
    valid = [s for s, p in zip(data.sequences, data.split) if p == "valid"]
    clf = gulm.Classifier.load(out)
    assert np.allclose(clf.probs(valid, rc_average=False), probs, atol=2e-6)
    # a checkpoint saved again without validation scores does not keep the old ones
    from gulm.runtime.checkpoint import load_checkpoint, save_checkpoint

    model, tok, cfg = load_checkpoint(out)
    save_checkpoint(out, model, kind="classifier", model_config=cfg["model"], tokenizer=tok,
                    extra={"classes": cfg["classes"], "window": cfg["window"]})
    assert read_calibration(out) is None and json.loads((out / "config.json").read_text())["window"] == 150
