"""Intervals: BED/GFF parsing, region strings, merge and subtract (all 0-based half-open)."""
from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gulm.data.errors import BedError, RegionError
from gulm.data.intervals import (
    Interval,
    merge_intervals,
    parse_region,
    read_bed,
    read_gff_features,
    subtract_intervals,
    write_bed,
)
from gulm_data_helpers import require_data


def test_interval_validates_and_measures():
    iv = Interval("chr1", 10, 20, "a", 5, "-")
    assert len(iv) == 10 and iv.region == "chr1:11-20"
    with pytest.raises(RegionError, match="start <= end"):
        Interval("chr1", 20, 10)
    with pytest.raises(RegionError, match="strand"):
        Interval("chr1", 1, 2, strand="x")


def test_read_bed_columns_headers_and_gzip(tmp_path):
    text = (
        "track name=x\n"
        "browser position chr1:1-100\n"
        "# comment\n"
        "\n"
        "chr1\t0\t10\n"
        "chr1\t5\t15\tfeat\t.\t-\n"
        "chr2\t100\t200\tg2\t960\t+\t100\t200\t0\t1\t100,\t0,\n"
        "chr3 7 9 spaced 2.5 .\r\n"
    )
    path = tmp_path / "a.bed.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert read_bed(path) == [
        Interval("chr1", 0, 10),
        Interval("chr1", 5, 15, "feat", None, "-"),
        Interval("chr2", 100, 200, "g2", 960, "+"),
        Interval("chr3", 7, 9, "spaced", 2.5, "."),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("chr1\t10", r"bad\.bed:3: expected at least 3 columns"),
        ("chr1\t10\t10", r"bad\.bed:3: start \(10\) must be less than end \(10\)"),
        ("chr1\t20\t10", r"bad\.bed:3: start \(20\) must be less than end"),
        ("chr1\t-1\t10", r"bad\.bed:3: start must be a non-negative integer, found '-1'"),
        ("chr1\t1.5\t10", r"bad\.bed:3: start must be a non-negative integer"),
        ("chr1\t1\tten", r"bad\.bed:3: end must be a non-negative integer, found 'ten'"),
        ("chr1\t1\t10\tn\thigh", r"bad\.bed:3: score must be a number"),
        ("chr1\t1\t10\tn\t0\tplus", r"bad\.bed:3: strand must be"),
    ],
)
def test_read_bed_errors_give_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.bed"
    path.write_text(f"# header\nchr1\t0\t5\n{line}\n")
    with pytest.raises(BedError, match=message):
        read_bed(path)


def test_write_bed_sorts_and_round_trips(tmp_path):
    ivs = [
        Interval("chr2", 5, 9, "b", 1.5, "+"),
        Interval("chr1", 50, 60),
        Interval("chr1", 5, 9, None, None, "-"),
    ]
    path = tmp_path / "o.bed"
    write_bed(path, ivs)
    assert path.read_text().splitlines() == [
        "chr1\t5\t9\t.\t.\t-",
        "chr1\t50\t60\t.\t.\t.",
        "chr2\t5\t9\tb\t1.5\t+",
    ]
    assert read_bed(path) == sorted(ivs, key=Interval.sort_key)
    write_bed(tmp_path / "o3.bed.gz", [Interval("c", 1, 2)])  # BED3 when there is nothing else to say
    assert gzip.decompress((tmp_path / "o3.bed.gz").read_bytes()) == b"c\t1\t2\n"


def test_parse_region_is_samtools_like():
    assert parse_region("chr1:1,001-2,000") == Interval("chr1", 1000, 2000)
    assert parse_region(" chr1:5-5 ") == Interval("chr1", 4, 5)
    assert parse_region("chr1:1-1") == Interval("chr1", 0, 1)
    lengths = {"chr1": 5000, "HLA-A*01:01": 300}
    assert parse_region("chr1", lengths) == Interval("chr1", 0, 5000)
    assert parse_region("chr1:4,001", lengths) == Interval("chr1", 4000, 5000)
    assert parse_region("chr1:4001-", lengths) == Interval("chr1", 4000, 5000)
    assert parse_region("HLA-A*01:01", lengths) == Interval("HLA-A*01:01", 0, 300)
    assert parse_region("HLA-A*01:01:2-3", lengths) == Interval("HLA-A*01:01", 1, 3)
    iv = Interval("chrX", 99, 200)
    assert parse_region(iv.region) == iv


@pytest.mark.parametrize(
    "region, lengths, message",
    [
        ("chr1:0-10", None, "1-based"),
        ("chr1:20-10", None, r"end \(10\) is before start \(20\)"),
        ("chr1", None, "needs the record lengths"),
        ("chr1:5", None, "open-ended"),
        ("chr1:a-b", None, "expected chrom:start-end"),
        ("", None, "empty"),
        ("chr9:1-10", {"chr1": 100}, "no record named 'chr9'"),
        ("chr1:50-101", {"chr1": 100}, r"past the end of chr1 \(length 100\)"),
    ],
)
def test_parse_region_errors(region, lengths, message):
    with pytest.raises(RegionError, match=message):
        parse_region(region, lengths)


def test_merge_intervals():
    ivs = [
        Interval("chr1", 20, 30, "b", strand="-"),
        Interval("chr1", 0, 10, "a", strand="+"),
        Interval("chr1", 10, 15, strand="+"),  # book-ended with [0, 10)
        Interval("chr1", 17, 18, strand="+"),
        Interval("chr2", 0, 5),
    ]
    assert merge_intervals(ivs) == [
        Interval("chr1", 0, 15),
        Interval("chr1", 17, 18),
        Interval("chr1", 20, 30),
        Interval("chr2", 0, 5),
    ]
    assert merge_intervals(ivs, distance=1) == merge_intervals(ivs)  # gaps of 2 bp stay
    assert merge_intervals(ivs, distance=2) == [Interval("chr1", 0, 30), Interval("chr2", 0, 5)]
    assert merge_intervals(ivs, stranded=True) == [
        Interval("chr1", 0, 15, strand="+"),
        Interval("chr1", 17, 18, strand="+"),
        Interval("chr1", 20, 30, strand="-"),
        Interval("chr2", 0, 5, strand="."),
    ]
    assert merge_intervals([]) == []


def test_subtract_intervals_keeps_annotation_and_order():
    corpus = [Interval("chr2", 0, 100, "c2", 1, "+"), Interval("chr1", 0, 100, "c1")]
    exclude = [Interval("chr1", 10, 20), Interval("chr1", 15, 30), Interval("chr1", 90, 120), Interval("chr3", 0, 9)]
    assert subtract_intervals(corpus, exclude) == [
        Interval("chr2", 0, 100, "c2", 1, "+"),
        Interval("chr1", 0, 10, "c1"),
        Interval("chr1", 30, 90, "c1"),
    ]
    assert subtract_intervals([Interval("chr1", 5, 8)], [Interval("chr1", 0, 100)]) == []
    stranded = subtract_intervals([Interval("c", 0, 10, strand="+")], [Interval("c", 0, 5, strand="-")], stranded=True)
    assert stranded == [Interval("c", 0, 10, strand="+")]


_ivs = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 60), st.integers(1, 15)).map(
        lambda t: Interval(t[0], t[1], t[1] + t[2])
    ),
    max_size=12,
)


def _bases(ivs):
    return {(iv.chrom, x) for iv in ivs for x in range(iv.start, iv.end)}


@settings(max_examples=150, deadline=None)
@given(_ivs, _ivs)
def test_merge_and_subtract_match_base_sets(a, b):
    merged = merge_intervals(a)
    assert _bases(merged) == _bases(a)
    for x, y in zip(merged, merged[1:]):  # disjoint, not touching, sorted
        assert x.chrom < y.chrom or x.end < y.start
    assert _bases(subtract_intervals(a, b)) == _bases(a) - _bases(b)
    assert all(len(iv) > 0 for iv in subtract_intervals(a, b))


_GFF = """##gff-version 3
#!genome-build test
ctg1\tsrc\tregion\t1\t5000\t.\t+\t.\tID=ctg1
ctg1\tsrc\tgene\t190\t255\t.\t+\t.\tID=gene-b0001;Name=thrL;locus_tag=b0001
ctg1\tsrc\tCDS\t190\t255\t.\t+\t0\tID=cds-1;Parent=gene-b0001;gene=thrL
ctg1\tsrc\tgene\t1000\t2000\t.\t-\t.\tID=gene-b2;locus_tag=b0002
ctg1\tsrc\tCDS\t1000\t1500\t.\t-\t0\tID=cds-2;Parent=gene-b2;Name=split%3Bprotein
ctg1\tsrc\tCDS\t1498\t2000\t.\t-\t2\tID=cds-2;Parent=gene-b2;Name=split%3Bprotein
ctg1\tsrc\tgene\t3000\t3100\t7.5\t?\t.\tID=gene-3
##FASTA
>ctg1
ACGT
"""


def test_read_gff_features(tmp_path):
    path = tmp_path / "a.gff3"
    path.write_text(_GFF)
    assert read_gff_features(path, "gene") == [
        Interval("ctg1", 189, 255, "thrL", None, "+"),
        Interval("ctg1", 999, 2000, "b0002", None, "-"),
        Interval("ctg1", 2999, 3100, "gene-3", 7.5, "."),
    ]
    assert read_gff_features(path, "CDS") == [
        Interval("ctg1", 189, 255, "thrL", None, "+"),
        Interval("ctg1", 999, 2000, "split;protein", None, "-"),  # two lines joined by their ID
    ]
    parts = read_gff_features(path, "CDS", join_parts=False)
    assert [(iv.start, iv.end) for iv in parts] == [(189, 255), (999, 1500), (1497, 2000)]
    assert len(read_gff_features(path, ("gene", "CDS"))) == 5


def test_read_gtf_attributes(tmp_path):
    path = tmp_path / "a.gtf"
    path.write_text('chr1\tsrc\tgene\t11\t20\t.\t-\t.\tgene_id "G1"; gene_name "abc";\n')
    assert read_gff_features(path) == [Interval("chr1", 10, 20, "abc", None, "-")]


def test_read_gff_errors_give_file_and_line(tmp_path):
    path = tmp_path / "bad.gff"
    path.write_text("##gff-version 3\nctg1\tsrc\tgene\t10\t5\t.\t+\t.\tID=x\n")
    with pytest.raises(BedError, match=r"bad\.gff:2: GFF coordinates need 1 <= start <= end"):
        read_gff_features(path)
    path.write_text("ctg1 src gene 10 50 . + . ID=x\n")
    with pytest.raises(BedError, match=r"bad\.gff:1: expected 9 tab-separated"):
        read_gff_features(path)


@pytest.mark.data
def test_real_ecoli_gff():
    path = require_data("ecoli_k12_mg1655", "GCF_000005845.2_ASM584v2_genomic.gff.gz")
    cds = read_gff_features(path, "CDS")
    assert len(cds) == 4315  # PROVENANCE: 4,315 CDS IDs
    assert cds[0] == Interval("NC_000913.3", 189, 255, "NP_414542.1", None, "+")
    genes = read_gff_features(path, "gene")
    assert genes[0].name == "thrL" and {g.strand for g in genes} == {"+", "-"}
