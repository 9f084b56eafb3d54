"""Labeled sequence sets: CSV/TSV, FASTA per class, BED + genome, and deterministic splits."""
from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest

from gulm.data.errors import DataWarning, FastaError, LabeledDataError
from gulm.data.fasta import reverse_complement
from gulm.data.genome import Genome
from gulm.data.labeled import (
    LabeledSequences,
    kfold_indices,
    read_labeled_bed,
    read_labeled_csv,
    read_labeled_fasta,
    stratified_split,
    write_labeled_csv,
)
from gulm_data_helpers import require_data, write_fasta


def test_csv_basic_with_split_and_ids(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,sequence,label,set\nr1,acgt,pos,train\nr2, GGCC ,neg,valid\n\nr3,ttaa,pos,test\n")
    data = read_labeled_csv(path)
    assert data.sequences == ["ACGT", "GGCC", "TTAA"]
    assert data.labels == ["pos", "neg", "pos"] and data.ids == ["r1", "r2", "r3"]
    assert data.split == ["train", "valid", "test"]
    assert data.classes == ["neg", "pos"] and data.counts() == {"neg": 1, "pos": 2}
    assert list(data.by_split()) == ["train", "valid", "test"]


@pytest.mark.parametrize(
    "name, text",
    [
        ("d.tsv", "sequence\tlabel\nACGT\t1\nGGCC\t0,5\n"),  # a comma inside a TSV field is data
        ("d.txt", "sequence\tlabel\nACGT\t1\nGGCC\t0,5\n"),  # sniffed from the header
        ("d.txt", "sequence;label\nACGT;1\nGGCC;0,5\n"),
    ],
)
def test_delimiter_from_extension_or_content(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    data = read_labeled_csv(path)
    assert data.sequences == ["ACGT", "GGCC"] and data.labels == ["1", "0,5"]
    assert data.ids == [f"{name}:2", f"{name}:3"] and data.split is None


def test_csv_gzip_crlf_bom_and_case_insensitive_columns(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress("\ufeffSeq,Class,Split\r\nAC,x,train\r\nGT,y,test\r\n".encode()))
    data = read_labeled_csv(path, sequence_col="seq", label_col="class")
    assert data.sequences == ["AC", "GT"] and data.labels == ["x", "y"] and data.split == ["train", "test"]


def test_missing_column_names_it_and_lists_the_others(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("seq,label\nACGT,1\n")
    with pytest.raises(LabeledDataError) as err:
        read_labeled_csv(path)
    assert str(err.value) == (
        f"{path}: no sequence column 'sequence' (available columns: seq, label); pass sequence_col= to choose one"
    )
    with pytest.raises(LabeledDataError, match="no label column 'y'"):
        read_labeled_csv(path, sequence_col="seq", label_col="y")


def test_csv_row_problems(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sequence,label\nACGT,1\n,0\nGG,1\n")
    with pytest.warns(DataWarning, match=r"d\.csv:3: empty sequence"):
        assert read_labeled_csv(path).sequences == ["ACGT", "GG"]
    path.write_text("sequence,label\nACGT,1\nGG,\n")
    with pytest.raises(LabeledDataError, match=r"d\.csv:3: empty label"):
        read_labeled_csv(path)
    path.write_text("sequence,label\nACGT,1,extra\n")
    with pytest.raises(LabeledDataError, match=r"d\.csv:2: expected 2 fields, found 3"):
        read_labeled_csv(path)
    path.write_text("sequence,label\n")
    with pytest.raises(LabeledDataError, match="no labeled sequences"):
        read_labeled_csv(path)
    path.write_text("")
    with pytest.raises(LabeledDataError, match="empty table"):
        read_labeled_csv(path)


def test_csv_round_trip(tmp_path):
    data = LabeledSequences(["ACGT", "GG"], ["a", "b"], ["x1", "x,2"], ["train", "test"])
    for name in ("o.csv", "o.tsv.gz"):
        write_labeled_csv(tmp_path / name, data)
        assert read_labeled_csv(tmp_path / name) == data


def test_fasta_per_class_never_uses_headers(tmp_path):
    pos = write_fasta(tmp_path / "pos.fa", ">p1 label=promoter chr1:100-181\nacgT\n>p2\nGGGG\n", "gzip")
    neg = write_fasta(tmp_path / "neg.fa", ">n1 promoter\nTTTT\n")
    data = read_labeled_fasta({"promoter": pos, "non_promoter": neg})
    assert data.sequences == ["ACGT", "GGGG", "TTTT"]
    assert data.labels == ["promoter", "promoter", "non_promoter"]
    assert data.ids == ["p1", "p2", "n1"]
    assert not any("promoter" in s or "chr" in s for s in data.sequences)
    with pytest.raises(LabeledDataError, match="no files"):
        read_labeled_fasta({})
    empty = tmp_path / "e.fa"
    empty.write_text(">only\n")
    with pytest.warns(DataWarning), pytest.raises(FastaError, match="no FASTA records"):
        read_labeled_fasta({"x": empty})


def test_bed_plus_genome_is_strand_aware(tmp_path):
    chrom = "ACGTTGCAAGGCTTAAcgta"
    genome = Genome(write_fasta(tmp_path / "g.fa", f">c\n{chrom}\n"))
    bed = tmp_path / "r.bed"
    bed.write_text("c\t0\t4\tpos\t0\t+\nc\t4\t10\tneg\t0\t-\nc\t16\t20\tpos\t0\t.\n")
    data = read_labeled_bed(bed, genome)
    assert data.sequences == ["ACGT", reverse_complement(chrom[4:10]).upper(), "CGTA"]
    assert data.labels == ["pos", "neg", "pos"]
    assert data.ids == ["c:0-4(+)", "c:4-10(-)", "c:16-20(.)"]
    assert read_labeled_bed(bed, genome, label="enh").labels == ["enh"] * 3

    bed.write_text("c\t0\t4\n")
    with pytest.raises(LabeledDataError, match=r"r\.bed: interval 1 \(c:0-4\) has no name column"):
        read_labeled_bed(bed, genome)
    bed.write_text("c\t0\t4\tx\nchr9\t0\t4\tx\n")
    with pytest.raises(LabeledDataError, match=r"interval 2 \(chr9:0-4\): record 'chr9' is not in"):
        read_labeled_bed(bed, genome)
    bed.write_text("c\t10\t21\tx\n")
    with pytest.raises(LabeledDataError, match=r"ends past c \(length 20\)"):
        read_labeled_bed(bed, genome)
    bed.write_text("track name=empty\n")
    with pytest.raises(LabeledDataError, match="no labeled sequences"):
        read_labeled_bed(bed, genome)


def test_stratified_split_proportions_and_determinism():
    labels = ["a"] * 500 + ["b"] * 300 + ["c"] * 7
    parts = stratified_split(labels, (0.8, 0.1, 0.1), seed=3)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(labels)))  # a partition
    for cls, n in (("a", 500), ("b", 300), ("c", 7)):
        got = [sum(labels[i] == cls for i in p) for p in parts]
        expect = [n * f for f in (0.8, 0.1, 0.1)]
        assert all(abs(g - e) < 1 for g, e in zip(got, expect)), (cls, got)
    again = stratified_split(labels, (0.8, 0.1, 0.1), seed=3)
    assert all((x == y).all() for x, y in zip(parts, again))
    other = stratified_split(labels, (0.8, 0.1, 0.1), seed=4)
    assert not all((x == y).all() for x, y in zip(parts, other))
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, (0.8, 0.3))


def test_random_split_names():
    data = LabeledSequences(["A"] * 20, ["x"] * 10 + ["y"] * 10, [str(i) for i in range(20)])
    split = data.random_split((0.5, 0.5), seed=0, names=("train", "test")).split
    assert Counter(zip(split, data.labels)) == {("train", "x"): 5, ("test", "x"): 5, ("train", "y"): 5, ("test", "y"): 5}


def test_kfold_is_stratified_and_deterministic():
    labels = ["a"] * 23 + ["b"] * 11
    folds = kfold_indices(labels, 5, seed=1)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(34))
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert not set(train.tolist()) & set(test.tolist()) and len(train) + len(test) == 34
        n_b = sum(labels[i] == "b" for i in test)
        assert n_b in (2, 3)
    again = kfold_indices(labels, 5, seed=1)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    with pytest.raises(ValueError, match="2 <= k"):
        kfold_indices(labels, 1)
    with pytest.warns(DataWarning, match="fewer than k"):
        kfold_indices(["a"] * 10 + ["b"], 3)


def test_lengths_must_agree():
    with pytest.raises(LabeledDataError, match="lengths differ"):
        LabeledSequences(["A"], ["x", "y"], ["1"])


@pytest.mark.data
def test_real_labeled_sets():
    cohn = require_data("gb_human_enhancers_cohn", "test.csv.gz")
    data = read_labeled_csv(cohn, sequence_col="seq")
    assert len(data) == 6948 and data.counts() == {"0": 3474, "1": 3474}
    assert {len(s) for s in data.sequences} == {500}
    prom = require_data("umarov_promoters", "Ecoli_prom.fa.gz")
    nonprom = require_data("umarov_promoters", "Ecoli_non_prom.fa.gz")
    umarov = read_labeled_fasta({"promoter": prom, "non_promoter": nonprom})
    assert umarov.counts() == {"non_promoter": 3000, "promoter": 839}
    assert all(set(s) <= set("ACGTN") for s in umarov.sequences)


def test_repeated_ids_follow_the_one_rule_in_every_source(tmp_path):
    """FASTA per class (within and across files) and a CSV id column: kept, made unique, one warning."""
    pos = write_fasta(tmp_path / "pos.fa", ">r1\nACGTAC\n>r1\nGGGTTT\n")
    neg = write_fasta(tmp_path / "neg.fa", ">r1\nTTTAAA\n>r2\nCCCGGG\n")
    with pytest.warns(DataWarning, match="pos.fa: 1 duplicate record name"), \
            pytest.warns(DataWarning, match=r"pos.fa, .*neg.fa: 1 duplicate record name: the repeated 'r1'"):
        ds = read_labeled_fasta({"p": pos, "n": neg})
    assert ds.ids == ["r1", "r1_2", "r1_3", "r2"] and ds.labels == ["p", "p", "n", "n"]
    csv = tmp_path / "t.csv"
    csv.write_text("id,sequence,label\na,ACGT,x\na,GGCC,y\nb,TTAA,x\n")
    with pytest.warns(DataWarning, match=r"t.csv: column 'id': 1 duplicate id: the repeated 'a' is kept as 'a_2'"):
        assert read_labeled_csv(csv).ids == ["a", "a_2", "b"]


def test_split_counts_and_the_record_of_a_drawn_split():
    data = LabeledSequences(["A"] * 20, ["x"] * 10 + ["y"] * 10, [str(i) for i in range(20)])
    drawn = data.random_split((0.8, 0.1, 0.1), seed=0)
    assert drawn.drawn_from == (0.8, 0.1, 0.1) and data.drawn_from is None
    assert drawn.split_counts() == {"train": {"x": 8, "y": 8}, "valid": {"x": 1, "y": 1}, "test": {"x": 1, "y": 1}}
    assert drawn.with_split(drawn.split).drawn_from is None  # a split given by hand is the data's own
    with pytest.raises(LabeledDataError, match="no split column"):
        data.split_counts()
