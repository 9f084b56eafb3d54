"""Genome scans: window arithmetic, N handling, strands, output formats, plots, DDP merge."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

import gulm
from gulm.data.fasta import reverse_complement
from gulm.configs import ScanConfig
from gulm.scan import scan_genome, window_starts
from gulm.scan_output import call_regions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))


def _tiny_classifier(path, **training):
    """An untrained tiny classifier saved as a real checkpoint (scores are arbitrary but fixed:
    the same weights whatever ``training`` records)."""
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import AWDConfig, classifier
    from gulm.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    tok = KmerTokenizer(3, 1)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=8, hidden_size=16, n_layers=2, n_classes=2)
    model = classifier(cfg).eval()
    with torch.no_grad():  # make the head's output spread over [0, 1]
        model.head.layers[-1].weight.mul_(40)
    save_checkpoint(path, model, kind="classifier", model_config=cfg.to_dict(), tokenizer=tok,
                    extra={"classes": ["other", "promoter"], "window": 60}, **({"training": training} if training else {}))
    return str(path)


@pytest.fixture(scope="module")
def clf_ckpt(tmp_path_factory):
    return _tiny_classifier(tmp_path_factory.mktemp("ckpt") / "clf")


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    rng = np.random.default_rng(3)
    a = "".join(rng.choice(list("ACGT"), 1000))
    a = a[:400] + "N" + a[401:]  # one N at position 400
    b = "".join(rng.choice(list("acgt"), 333))  # lowercase, length not a multiple of the stride
    path = tmp_path_factory.mktemp("fa") / "g.fa"
    path.write_text(f">chrA\n{a}\n>chrB\n{b}\n")
    return str(path), {"chrA": a, "chrB": b.upper()}


def test_window_starts_arithmetic():
    assert window_starts(0, 1000, 150, 50).tolist() == list(range(0, 851, 50))
    assert window_starts(10, 159, 150, 50).tolist() == []
    assert window_starts(10, 160, 150, 50).tolist() == [10]


def _scan(clf_ckpt, fasta, tmp_path, **kw):
    opts = dict(checkpoint=clf_ckpt, fasta=fasta[0], out=str(tmp_path / "s"), window=150, stride=50,
                progress=False, chunk_size=400, batch_size=7)
    opts.update(kw)
    return scan_genome(ScanConfig(**opts))


def test_scan_windows_skip_n_and_respect_record_ends(clf_ckpt, fasta, tmp_path):
    res = _scan(clf_ckpt, fasta, tmp_path)
    plus = res.strand == "+"
    a = plus & (res.chrom == "chrA")
    # chrA: starts 0..850; the N at 400 kills the windows starting at 300, 350, 400
    assert res.start[a].tolist() == [s for s in range(0, 851, 50) if not 250 < s <= 400]
    # chrB (333 bp): starts 0..150
    assert res.start[plus & (res.chrom == "chrB")].tolist() == [0, 50, 100, 150]
    assert res.summary["windows_skipped_non_acgt"] == 3 * 2
    assert ((res.score >= 0) & (res.score <= 1)).all()



def test_scan_gives_the_kernels_scratch_memory_back(clf_ckpt, fasta, tmp_path):
    """The CPU LSTM kernels keep their workspaces between calls; a scan frees them when it ends."""
    from gulm import _ext

    if not _ext.HAS_EXTENSION:
        pytest.skip("compiled extension not built")
    _scan(clf_ckpt, fasta, tmp_path)
    assert _ext._C.lstm_scratch_bytes() == 0

def test_minus_strand_scores_are_the_reverse_complement(clf_ckpt, fasta, tmp_path):
    res = _scan(clf_ckpt, fasta, tmp_path)
    seqs = fasta[1]
    pick = [(c, s) for c, s, st in zip(res.chrom, res.start, res.strand) if st == "-"][:6]
    windows = [reverse_complement(seqs[c][s:s + 150]) for c, s in pick]
    probs, classes = gulm.predict(clf_ckpt, windows)
    want = probs[:, classes.index("promoter")]
    got = [res.score[(res.chrom == c) & (res.start == s) & (res.strand == "-")][0] for c, s in pick]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    fwd = [seqs[c][s:s + 150] for c, s in pick]
    got_plus = [res.score[(res.chrom == c) & (res.start == s) & (res.strand == "+")][0] for c, s in pick]
    np.testing.assert_allclose(got_plus, gulm.predict(clf_ckpt, fwd)[0][:, 1], rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, got_plus)


def test_a_backward_classifier_reads_each_window_from_its_3_end(clf_ckpt, fasta, tmp_path):
    """Its + strand score is the same weights' forward score of the window's reverse complement,
    which the forward scan reports on the - strand."""
    bwd = _tiny_classifier(tmp_path / "bwd", backward=True)
    fwd, back = _scan(clf_ckpt, fasta, tmp_path / "f"), _scan(bwd, fasta, tmp_path / "b")
    for strand, other in (("+", "-"), ("-", "+")):
        assert (back.start[back.strand == strand] == fwd.start[fwd.strand == other]).all()
        np.testing.assert_allclose(back.score[back.strand == strand], fwd.score[fwd.strand == other],
                                   rtol=1e-4, atol=1e-5)
    assert not np.allclose(back.score[back.strand == "+"], fwd.score[fwd.strand == "+"])


def _read_track(path):
    lines = open(path).read().splitlines()
    assert lines[0].startswith("track type=bedGraph")
    rows = [l.split("\t") for l in lines[1:]]
    return [(r[0], int(r[1]), int(r[2]), float(r[3])) for r in rows]


def test_outputs_are_valid_sorted_bed_and_bedgraph(clf_ckpt, fasta, tmp_path):
    res = _scan(clf_ckpt, fasta, tmp_path, threshold=0.5, regions=["chrA:1-1000", "chrB:1-333"],
                plot="chrA:1-1000")
    for strand in ("+", "-"):
        rows = _read_track(res.files[f"bedgraph{strand}"])
        assert rows == sorted(rows, key=lambda r: (r[0], r[1]))
        for (c1, s1, e1, _), (c2, s2, e2, _) in zip(rows, rows[1:]):
            assert s1 < e1 and (c1 != c2 or e1 <= s2)  # half-open, no overlaps
    beds = [l.split("\t") for l in open(res.files["calls"]).read().splitlines()]
    hits = res.score >= 0.5
    assert (len(beds) > 0) == bool(hits.any())
    for r in beds:
        s, e, score, thick = int(r[1]), int(r[2]), int(r[4]), int(r[6])
        assert 0 <= s < e and 0 <= score <= 1000 and r[5] in "+-" and s <= thick < e
    assert [(r[0], int(r[1])) for r in beds] == sorted((r[0], int(r[1])) for r in beds)
    png = res.files["plot"]
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 5000


def test_call_regions_merges_adjacent_windows():
    chrom = np.array(["c"] * 5, dtype=object)
    start = np.array([0, 50, 100, 300, 350])
    strand = np.array(["+"] * 5)
    score = np.array([0.6, 0.9, 0.2, 0.7, 0.8], dtype=np.float32)
    regs = call_regions(chrom, start, strand, score, 100, threshold=0.5)
    assert [(r[1], r[2], round(r[3], 2), r[5]) for r in regs] == [(0, 150, 0.9, 50), (300, 450, 0.8, 350)]


def test_distributed_scan_equals_single_process(clf_ckpt, fasta, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    args = ["scan", clf_ckpt, fasta[0], "--window", "150", "--stride", "50", "--chunk-size", "300",
            "--batch-size", "5", "--progress", "false"]
    one = subprocess.run([sys.executable, "-m", "gulm", *args, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29531", "-m", "gulm", *args, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    for suffix in (".plus.bedGraph", ".minus.bedGraph", ".windows.tsv", ".calls.bed"):
        a = (tmp_path / f"one{suffix}").read_text()
        b = (tmp_path / f"two{suffix}").read_text()
        assert a == b, suffix
    assert not list(tmp_path.glob("*.part*.npz"))


def test_bigwig_matches_bedgraph(clf_ckpt, fasta, tmp_path):
    pyBigWig = pytest.importorskip("pyBigWig")
    res = _scan(clf_ckpt, fasta, tmp_path)
    for strand in ("+", "-"):
        rows = _read_track(res.files[f"bedgraph{strand}"])
        bw = pyBigWig.open(res.files[f"bigwig{strand}"])
        try:
            assert bw.chroms() == {"chrA": 1000, "chrB": 333}
            for c, s, e, v in rows:
                (got,) = bw.stats(c, s, e, type="mean")
                assert got == pytest.approx(v, abs=6e-5)  # the bedGraph keeps 4 decimals
        finally:
            bw.close()
