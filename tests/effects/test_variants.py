"""gulm variant-effect: windows, REF checks, chromosome names, outputs, bad input."""
import csv
import gzip
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

pysam = pytest.importorskip("pysam")

from gulm.data.errors import DataWarning  # noqa: E402
from gulm.data.fasta import reverse_complement  # noqa: E402
from gulm.infer import Classifier  # noqa: E402
from gulm.variants import ChromMap, VcfError, read_vcf_header, variant_effect  # noqa: E402

HEADER = """##fileformat=VCFv4.2
##contig=<ID={c1},length=300>
##contig=<ID={c2},length=120>
##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""


def write_vcf(path, records, c1="1", c2="2", header=True):
    """records: (chrom, 1-based pos, id, ref, alt[, info])."""
    with open(path, "w") as fh:
        if header:
            fh.write(HEADER.format(c1=c1, c2=c2))
        for r in records:
            chrom, pos, vid, ref, alt = r[:5]
            info = r[5] if len(r) > 5 else "DP=10"
            fh.write(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t50\tPASS\t{info}\n")
    return str(path)


def read_tsv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def both_strands(clf, windows):
    return clf.probs(windows, rc_average=True)


def test_windows_and_scores_match_an_independent_construction(tmp_path, tiny_clf, genome):
    fa, seqs = genome
    g = seqs["1"]
    W = 40  # the checkpoint's training window
    snv_pos, del_pos, ins_pos, multi_pos = 100, 150, 200, 250  # 1-based
    alt_snv = "A" if g[snv_pos - 1] != "A" else "C"
    records = [
        ("1", snv_pos, "snv", g[snv_pos - 1], alt_snv),
        ("1", del_pos, "del", g[del_pos - 1:del_pos + 2], g[del_pos - 1]),  # 2 bp deletion
        ("1", ins_pos, "ins", g[ins_pos - 1], g[ins_pos - 1] + "TTT"),  # 3 bp insertion
        ("1", multi_pos, "multi", g[multi_pos - 1], ",".join(b for b in "ACGT" if b != g[multi_pos - 1])),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", records)
    res = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "eff"), progress=False)
    assert res["window"] == W and res["records"] == 4 and res["alleles_scored"] == 6
    rows = read_tsv(tmp_path / "eff.tsv")
    assert [r["id"] for r in rows] == ["snv", "del", "ins", "multi", "multi", "multi"]

    def window(p0, ref_len, allele):  # left half-window, the allele, then the genome after REF
        left = g[p0 - W // 2:p0]
        return (left + allele + g[p0 + ref_len:])[:W]

    want_ref, want_alt = [], []
    for chrom, pos, vid, ref, alts in records:
        for alt in alts.split(","):
            want_ref.append(window(pos - 1, len(ref), ref))
            want_alt.append(window(pos - 1, len(ref), alt))
    assert all(len(w) == W for w in want_ref + want_alt)
    assert want_ref[0] == g[snv_pos - 1 - W // 2:snv_pos - 1 + W // 2]  # an SNV sits at the centre
    clf = Classifier.load(tiny_clf)
    t = clf.target_index()
    pr, pa = both_strands(clf, want_ref)[:, t], both_strands(clf, want_alt)[:, t]
    got = {k: np.array([float(r[k]) for r in rows]) for k in ("ref_score", "alt_score", "delta", "log_odds_delta")}
    np.testing.assert_allclose(got["ref_score"], pr, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["alt_score"], pa, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["delta"], pa - pr, atol=2e-6)
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    np.testing.assert_allclose(got["log_odds_delta"], logit(pa) - logit(pr), rtol=1e-4, atol=1e-4)
    assert np.abs(got["delta"]).max() > 1e-3  # the alleles do change the score
    assert all(r["ref_match"] == "true" for r in rows)

    # one strand only: the forward window, or its reverse complement
    for strand in ("+", "-"):
        variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / strand), strand=strand,
                       progress=False)
        ws = want_alt if strand == "+" else [reverse_complement(w) for w in want_alt]
        np.testing.assert_allclose([float(r["alt_score"]) for r in read_tsv(tmp_path / f"{strand}.tsv")],
                                   clf.probs(ws, rc_average=False)[:, t], rtol=1e-4, atol=1e-6)


def test_vcf_copy_has_info_fields_per_alt_and_bgzip_input_reads_the_same(tmp_path, tiny_clf, genome):
    fa, seqs = genome
    g = seqs["1"]
    records = [("1", 60, "m", g[59], ",".join(b for b in "ACGT" if b != g[59])),
               ("1", 90, "s", g[89], "<DEL>"),  # symbolic: counted, left unscored, kept in the copy
               ("2", 50, "x", seqs["2"][49], "A" if seqs["2"][49] != "A" else "G")]
    vcf = write_vcf(tmp_path / "v.vcf", records)
    res = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "a"), progress=False)
    assert res["alleles_not_scored"]["symbolic_allele"] == 1 and res["alleles_scored"] == 4
    assert res["files"]["vcf_index"].endswith(".tbi")
    rows = read_tsv(tmp_path / "a.tsv")
    out = list(pysam.VariantFile(str(tmp_path / "a.vcf.gz")))
    assert [r.id for r in out] == ["m", "s", "x"]
    hdr = pysam.VariantFile(str(tmp_path / "a.vcf.gz")).header
    for key in ("GULM_REF", "GULM_ALT", "GULM_DELTA", "GULM_LOD"):
        assert hdr.info[key].number == "A" and hdr.info[key].type == "Float"
    m = out[0]
    assert len(m.info["GULM_ALT"]) == 3 and m.info["DP"] == 10
    np.testing.assert_allclose(m.info["GULM_ALT"], [float(r["alt_score"]) for r in rows[:3]], rtol=1e-5)
    np.testing.assert_allclose(m.info["GULM_DELTA"], [float(r["delta"]) for r in rows[:3]], rtol=1e-4, atol=1e-6)
    assert "GULM_REF" not in out[1].info
    # bgzipped input: the same rows
    pysam.tabix_compress(vcf, str(tmp_path / "v.vcf.gz"))
    variant_effect(checkpoint=tiny_clf, vcf=str(tmp_path / "v.vcf.gz"), genome=fa, out=str(tmp_path / "b"),
                   progress=False)
    assert read_tsv(tmp_path / "b.tsv") == rows
    # plain gzip, which htslib cannot open: read through a temporary copy
    with open(vcf, "rb") as src, gzip.open(tmp_path / "g.vcf.gz", "wb") as dst:
        dst.write(src.read())
    variant_effect(checkpoint=tiny_clf, vcf=str(tmp_path / "g.vcf.gz"), genome=fa, out=str(tmp_path / "g"),
                   progress=False)
    assert read_tsv(tmp_path / "g.tsv") == rows
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gulm-vcf-")]
    summary = json.loads((tmp_path / "b.summary.json").read_text())
    assert summary["alleles_scored"] == 4 and summary["records"] == 3


def test_ref_mismatch_error_skip_warn(tmp_path, tiny_clf, genome):
    fa, seqs = genome
    g = seqs["1"]
    wrong = "A" if g[99] != "A" else "C"
    alt = next(b for b in "ACGT" if b not in (wrong, g[99]))
    good = ("1", 120, "ok", g[119], "A" if g[119] != "A" else "T")
    vcf = write_vcf(tmp_path / "v.vcf", [("1", 100, "bad", wrong, alt), good])
    with pytest.raises(VcfError, match=r"record 1 \(line 6, 1:100\): REF .* does not match"):
        variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "e"), ref_mismatch="error",
                       progress=False)
    res = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "s"), ref_mismatch="skip",
                         progress=False)
    assert res["ref_mismatches"] == 1 and res["alleles_not_scored"]["ref_mismatch"] == 1
    assert [r["id"] for r in read_tsv(tmp_path / "s.tsv")] == ["ok"]
    with pytest.warns(DataWarning, match="does not match"):
        res = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "w"), progress=False)
    rows = read_tsv(tmp_path / "w.tsv")
    assert res["ref_mismatches"] == 1 and [r["ref_match"] for r in rows] == ["false", "true"]
    # warn scores the VCF's REF in the REF window
    clf = Classifier.load(tiny_clf)
    ref_window = g[99 - 20:99] + wrong + g[100:100 + 19]
    assert float(rows[0]["ref_score"]) == pytest.approx(both_strands(clf, [ref_window])[0, 1], rel=1e-4)


def test_chromosome_names_prefix_map_and_missing(tmp_path, tiny_clf, genome):
    fa, seqs = genome
    g = seqs["1"]
    vcf = write_vcf(tmp_path / "chr.vcf", [("chr1", 100, "a", g[99], "A" if g[99] != "A" else "C")],
                    c1="chr1", c2="chr2")
    with pytest.raises(VcfError, match=r"chromosome 'chr1' is not in .*which names it '1'.*chrom_map= auto"):
        variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "x"), progress=False)
    a = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "a"), chrom_map=["auto"],
                       progress=False)
    b = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "b"), chrom_map=["chr1=1"],
                       progress=False)
    assert a["alleles_scored"] == b["alleles_scored"] == 1
    assert read_tsv(tmp_path / "a.tsv")[0]["chrom"] == "chr1"  # the output keeps the VCF's names
    names = tmp_path / "names.tsv"
    names.write_text("chr1\t1\n")
    assert variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "c"), chrom_map=[str(names)],
                          progress=False)["alleles_scored"] == 1
    other = write_vcf(tmp_path / "o.vcf", [("1", 100, "a", g[99], "A" if g[99] != "A" else "C"),
                                           ("chrZ", 5, "z", "A", "C")], c2="chrZ")
    with pytest.raises(VcfError, match=r"record 2 .*chromosome 'chrZ' is not in .*records: 1, 2.*missing_chrom= skip"):
        variant_effect(checkpoint=tiny_clf, vcf=other, genome=fa, out=str(tmp_path / "y"), progress=False)
    res = variant_effect(checkpoint=tiny_clf, vcf=other, genome=fa, out=str(tmp_path / "z"), missing_chrom="skip",
                         progress=False)
    assert res["alleles_scored"] == 1 and res["alleles_not_scored"]["missing_chrom"] == 1
    assert ChromMap.prefix_variants("chrM") == ["M", "MT"]


def test_windows_slide_inward_at_chromosome_ends(tmp_path, tiny_clf, genome):
    fa, seqs = genome
    g2 = seqs["2"]  # 120 bp
    recs = [("2", 3, "start", g2[2], "A" if g2[2] != "A" else "C"),
            ("2", 118, "end", g2[117:119], g2[117])]  # a deletion next to the last base
    vcf = write_vcf(tmp_path / "v.vcf", recs)
    variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "e"), strand="+", progress=False)
    rows = read_tsv(tmp_path / "e.tsv")
    clf = Classifier.load(tiny_clf)
    first = g2[:2] + recs[0][4] + g2[3:40]
    # the deletion's windows keep 40 bp by reaching further left; the REF window loses its last base
    last = g2[79:117] + g2[117] + g2[119]
    assert len(first) == len(last) == 40
    want = clf.probs([g2[:40], first, g2[79:119], last], rc_average=False)[:, 1]
    np.testing.assert_allclose([float(rows[0]["ref_score"]), float(rows[0]["alt_score"]),
                                float(rows[1]["ref_score"]), float(rows[1]["alt_score"])], want, rtol=1e-4)
    res = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "w"), window=200,
                         progress=False)
    assert res["alleles_scored"] == 0 and res["alleles_not_scored"]["window_does_not_fit"] == 2
    # deleting the last base would need REF and ALT windows with different left flanks: not scored
    vcf = write_vcf(tmp_path / "last.vcf", [("2", 119, "last", g2[118:120], g2[118])])
    res = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "l"), progress=False)
    assert res["alleles_scored"] == 0 and res["alleles_not_scored"]["window_does_not_fit"] == 1


def test_multiclass_columns_and_mutagenesis_percentile(tmp_path, tiny_clf3, genome):
    from gulm.interpretation import mutagenesis

    fa, seqs = genome
    g = seqs["1"]
    alt = "A" if g[149] != "A" else "G"
    vcf = write_vcf(tmp_path / "v.vcf", [("1", 150, "v", g[149], alt), ("1", 40, "i", g[39], g[39] + "GG")])
    with pytest.warns(DataWarning, match="not indexed"):  # the records are not sorted
        res = variant_effect(checkpoint=tiny_clf3, vcf=vcf, genome=fa, out=str(tmp_path / "m"), strand="+",
                             mutagenesis=True, target="b", progress=False)
    assert "vcf_index" not in res["files"]
    assert res["target"] == "b" and res["window"] == 30
    rows = read_tsv(tmp_path / "m.tsv")
    for c in "abc":
        assert f"ref_{c}" in rows[0] and f"delta_{c}" in rows[0]
    assert sum(float(rows[0][f"delta_{c}"]) for c in "abc") == pytest.approx(0, abs=1e-5)
    assert float(rows[0]["delta"]) == pytest.approx(float(rows[0]["delta_b"]), abs=1e-5)
    # the percentile against the window's saturation mutagenesis, computed by gulm.interpret's routine
    clf = Classifier.load(tiny_clf3)
    _, sat = mutagenesis(clf, g[149 - 15:149 + 15], clf.target_index("b"))
    sat = np.abs(sat[sat != 0])
    d = abs(float(rows[0]["delta"]))
    assert sat.size == 90
    assert float(rows[0]["mutagenesis_percentile"]) == pytest.approx(100 * np.mean(sat <= d + 1e-6), abs=2.3)
    assert 0 <= float(rows[1]["mutagenesis_percentile"]) <= 100
    assert "GULM_PCT" in pysam.VariantFile(str(tmp_path / "m.vcf.gz")).header.info


def test_bad_input_gets_one_clear_line(tmp_path, tiny_clf, tiny_lm, genome, error_lines):
    fa, seqs = genome
    g = seqs["1"]
    body = [("1", 100, "a", g[99], "A" if g[99] != "A" else "C")]
    headless = write_vcf(tmp_path / "headless.vcf", body, header=False)
    with pytest.raises(VcfError, match="line 1 is not a VCF header"):
        read_vcf_header(headless)
    (tmp_path / "empty.vcf").write_text("")
    with pytest.raises(VcfError, match="empty file"):
        read_vcf_header(tmp_path / "empty.vcf")
    (tmp_path / "half.vcf").write_text("##fileformat=VCFv4.2\n1\t5\t.\tA\tC\t.\t.\t.\n")
    with pytest.raises(VcfError, match="line 2: a record before the '#CHROM'"):
        read_vcf_header(tmp_path / "half.vcf")
    outside = write_vcf(tmp_path / "out.vcf", [("2", 121, "far", "A", "C")])
    with pytest.raises(VcfError, match=r"record 1 .*lies outside chromosome '2' \(length 120\)"):
        variant_effect(checkpoint=tiny_clf, vcf=outside, genome=fa, out=str(tmp_path / "o"), progress=False)
    good = write_vcf(tmp_path / "good.vcf", body)
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(ValueError, match="empty.fa: empty file"):
        variant_effect(checkpoint=tiny_clf, vcf=good, genome=str(tmp_path / "empty.fa"), out=str(tmp_path / "f"),
                       progress=False)
    with pytest.raises(ValueError, match="not a classifier checkpoint"):
        variant_effect(checkpoint=tiny_lm, vcf=good, genome=fa, out=str(tmp_path / "l"), progress=False)
    cli = [sys.executable, "-m", "gulm", "variant-effect", tiny_clf, "--genome", fa, "--out", str(tmp_path / "c"),
           "--progress", "false", "--vcf"]
    for vcf, message in ((headless, "line 1 is not a VCF header"), (outside, "lies outside chromosome"),
                         (str(tmp_path / "nope.vcf"), "VCF file not found")):
        p = subprocess.run(cli + [vcf], capture_output=True, text=True)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert len(error_lines(p.stderr)) == 1
    p = subprocess.run([sys.executable, "-m", "gulm", "variant-effect", tiny_lm, "--vcf", good, "--genome", fa,
                        "--out", str(tmp_path / "d")], capture_output=True, text=True)
    assert p.returncode == 2 and "not a classifier checkpoint" in p.stderr
    p = subprocess.run(cli[:-1] + ["--vcf", good, "--mutagenesis"], capture_output=True, text=True)
    assert p.returncode == 0 and "scored 1 of 1 alleles" in p.stdout, p.stderr
    assert not (tmp_path / "c.tsv.tmp").exists()


def test_missing_pysam_names_the_extra(monkeypatch, tmp_path, tiny_clf, genome):
    monkeypatch.setitem(sys.modules, "pysam", None)
    with pytest.raises(RuntimeError, match=r"pip install 'gulm\[vcf\]'"):
        variant_effect(checkpoint=tiny_clf, vcf="x.vcf", genome=genome[0], out=str(tmp_path / "x"))


def test_gzip_vcf_without_header_is_caught(tmp_path):
    path = tmp_path / "h.vcf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("1\t5\t.\tA\tC\t.\t.\t.\n")
    with warnings.catch_warnings():
        with pytest.raises(VcfError, match="not a VCF header"):
            read_vcf_header(path)


def test_bf16_scores_are_close_to_fp32(tmp_path, tiny_clf, genome):
    fa, seqs = genome
    g = seqs["1"]
    vcf = write_vcf(tmp_path / "v.vcf", [("1", p, f"v{p}", g[p - 1], "A" if g[p - 1] != "A" else "C")
                                         for p in (50, 100, 150, 200)])
    a = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "a"), progress=False)
    b = variant_effect(checkpoint=tiny_clf, vcf=vcf, genome=fa, out=str(tmp_path / "b"), dtype="bf16",
                       progress=False)
    assert a["dtype"] == "fp32" and b["dtype"] == "bf16"
    fp32 = np.array([float(r["alt_score"]) for r in read_tsv(tmp_path / "a.tsv")])
    bf16 = np.array([float(r["alt_score"]) for r in read_tsv(tmp_path / "b.tsv")])
    np.testing.assert_allclose(bf16, fp32, atol=0.05)
    assert not np.array_equal(bf16, fp32)  # bf16 really ran


def test_box_substitutions_move_the_planted_box_model_most(tmp_path, demo_model):
    """End to end on a model that reads only the planted -35/-10 boxes: every single-base
    substitution of a few promoters (each promoter a contig of exactly one window) through the
    VCF path; substitutions in the boxes change P(promoter) far more than the others."""
    ckpt, rows, _ = demo_model
    promoters = [r for r in rows if r[3] == "test" and r[2] == "promoter"][:4]
    fa = tmp_path / "p.fa"
    fa.write_text("".join(f">{r[0]}\n{r[1]}\n" for r in promoters))
    records = [(r[0], i + 1, ".", b, ",".join(x for x in "ACGT" if x != b))
               for r in promoters for i, b in enumerate(r[1])]
    with open(tmp_path / "s.vcf", "w") as fh:
        fh.write("##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={r[0]},length=80>\n" for r in promoters))
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        fh.writelines(f"{c}\t{p}\t{i}\t{ref}\t{alt}\t.\t.\t.\n" for c, p, i, ref, alt in records)
    res = variant_effect(checkpoint=ckpt, vcf=str(tmp_path / "s.vcf"), genome=str(fa), out=str(tmp_path / "e"),
                         window=80, strand="+", progress=False)
    assert res["alleles_scored"] == 4 * 80 * 3
    boxes = {r[0]: set(range(r[4], r[4] + 6)) | set(range(r[5], r[5] + 6)) for r in promoters}
    inside, outside = [], []
    for r in read_tsv(tmp_path / "e.tsv"):
        (inside if int(r["pos"]) - 1 in boxes[r["chrom"]] else outside).append(abs(float(r["delta"])))
    assert np.mean(inside) > 3 * np.mean(outside), (np.mean(inside), np.mean(outside))
