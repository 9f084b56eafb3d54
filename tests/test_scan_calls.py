"""Scan calls (issue 13): calibrated thresholds, summits and split runs, narrowPeak, re-calling
from a scan's files (`gulm call`), the summary, plots, no partial outputs, the thread default."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

import gulm
from gulm.configs import ScanConfig
from gulm.scan import scan_genome
from gulm.scan_output import auto_threshold, call_regions, find_calls, read_scan_windows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))
CLASSES = ["other", "promoter"]


def tiny_checkpoint(path, calibration=None, emb=8, hidden=16):
    """An untrained tiny 3-mer classifier saved as a real checkpoint (scores arbitrary but fixed)."""
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import AWDConfig, classifier
    from gulm.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    tok = KmerTokenizer(3, 1)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=emb, hidden_size=hidden, n_layers=2, n_classes=2)
    model = classifier(cfg).eval()
    with torch.no_grad():  # spread the head's output over [0, 1]
        model.head.layers[-1].weight.mul_(40)
    save_checkpoint(path, model, kind="classifier", model_config=cfg.to_dict(), tokenizer=tok,
                    extra={"classes": CLASSES, "window": 60}, calibration=calibration)
    return str(path)


#: validation scores stored with the calibrated checkpoint: negatives P(promoter) 0.00 .. 0.99
NEG = np.arange(100) / 100.0
CALIBRATION = {"split": "valid", "classes": CLASSES, "labels": [0] * 100 + [1] * 10,
               "probs": [[1 - p, p] for p in NEG] + [[0.05, 0.95]] * 10}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {"plain": tiny_checkpoint(root / "plain"), "calibrated": tiny_checkpoint(root / "cal", CALIBRATION)}


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    rng = np.random.default_rng(7)
    a = "".join(rng.choice(list("ACGT"), 3000))
    b = "".join(rng.choice(list("ACGT"), 700))
    root = tmp_path_factory.mktemp("fa")
    (root / "g.fa").write_text(f">chrA\n{a}\n>chrB\n{b}\n")
    (root / "genes.gff3").write_text(
        "##gff-version 3\n"
        "chrA\ttest\tgene\t201\t900\t.\t+\t.\tID=g1;Name=alpha\n"
        "chrA\ttest\tgene\t1201\t1800\t.\t-\t.\tID=g2;Name=beta\n"
        "chrA\ttest\tgene\t2101\t2900\t.\t+\t.\tID=g3;Name=gamma\n")
    return {"fasta": str(root / "g.fa"), "gff": str(root / "genes.gff3"), "seq": {"chrA": a, "chrB": b}}


def scan(ckpt, genome, tmp_path, name="s", **kw):
    opts = dict(checkpoint=ckpt, fasta=genome["fasta"], out=str(tmp_path / name), window=60, stride=10,
                progress=False, batch_size=64, threads=1)
    opts.update(kw)
    return scan_genome(ScanConfig(**opts))


def gulm_cli(*args):
    """The command line as a user runs it (a subprocess)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GULM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gulm", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def in_process_cli(capsys, *args):
    """(exit code, stdout, stderr) of ``gulm.cli.main`` in this process (faster than a subprocess)."""
    from gulm.cli import main
    from gulm.configs.fields import set_command_line

    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    finally:
        set_command_line(False)
    out = capsys.readouterr()
    return rc, out.out, out.err


# ---------------------------------------------------------------------------- thresholds
def test_auto_threshold_keeps_at_most_fpr_of_the_negatives():
    neg = np.arange(100, dtype=np.float32) / 100
    for fpr in (0.0, 0.01, 0.05, 0.1, 0.5):
        t = auto_threshold(neg, fpr)
        assert (neg >= t).mean() <= fpr + 1e-12
        assert (neg >= np.float32(t) - 0.011).mean() > fpr  # the lowest such threshold
    assert auto_threshold(neg, 1.0) == 0.0
    with pytest.raises(ValueError, match="negative"):
        auto_threshold(np.zeros(0), 0.01)
    with pytest.raises(ValueError, match="fpr"):
        auto_threshold(neg, 1.5)


# ---------------------------------------------------------------------------- calls
def _run(scores, stride=10, window=50, chrom="c", strand="+"):
    n = len(scores)
    return (np.array([chrom] * n, dtype=object), np.arange(n) * stride, np.array([strand] * n),
            np.array(scores, dtype=np.float32), window)


def test_long_runs_split_where_the_score_drops_and_summits_are_best_windows():
    c, p, s, x, w = _run([0.9, 0.95, 0.99, 0.8, 0.6, 0.85, 0.97, 0.9])
    whole = find_calls(c, p, s, x, w, threshold=0.5)
    assert whole["start"].tolist() == [0] and whole["end"].tolist() == [120]
    assert whole["best"].tolist() == [20] and whole["summit"].tolist() == [45]
    split = find_calls(c, p, s, x, w, threshold=0.5, split_drop=0.2)
    # the valley window starts at 40: the cut is its centre, 65
    assert list(zip(split["start"].tolist(), split["end"].tolist())) == [(0, 65), (65, 120)]
    assert split["best"].tolist() == [20, 60] and split["summit"].tolist() == [45, 85]
    assert np.allclose(split["peak"], [0.99, 0.97])
    # a drop that is not deep on both sides does not split
    assert find_calls(c, p, s, x, w, threshold=0.5, split_drop=0.4)["start"].size == 1
    # a valley below the threshold inside overlapping windows splits too (it is a valley), unless
    # a piece would be narrower than the minimum width (by default the window's 50 bp)
    c, p, s, x, w = _run([0.9, 0.2, 0.9])
    assert find_calls(c, p, s, x, w, threshold=0.5)["start"].size == 1
    assert find_calls(c, p, s, x, w, threshold=0.5, split_drop=0.3)["start"].size == 1
    narrow = find_calls(c, p, s, x, w, threshold=0.5, split_drop=0.3, min_width=30)
    assert list(zip(narrow["start"].tolist(), narrow["end"].tolist())) == [(0, 35), (35, 70)]


def test_min_width_merge_gap_and_strands():
    chrom = np.array(["c"] * 6, dtype=object)
    start = np.array([0, 10, 200, 0, 300, 420])
    strand = np.array(["+", "+", "+", "-", "-", "-"])
    score = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9], dtype=np.float32)
    calls = find_calls(chrom, start, strand, score, 50, 0.5)
    got = list(zip(calls["start"].tolist(), calls["end"].tolist(), calls["strand"].tolist()))
    assert got == [(0, 60, "+"), (0, 50, "-"), (200, 250, "+"), (300, 350, "-"), (420, 470, "-")]
    wide = find_calls(chrom, start, strand, score, 50, 0.5, min_width=55)
    assert list(zip(wide["start"].tolist(), wide["strand"].tolist())) == [(0, "+")]
    gap = find_calls(chrom, start, strand, score, 50, 0.5, merge_gap=70)
    assert list(zip(gap["start"].tolist(), gap["end"].tolist(), gap["strand"].tolist())) == [
        (0, 60, "+"), (0, 50, "-"), (200, 250, "+"), (300, 470, "-")]
    # the list form used by older callers
    assert call_regions(chrom, start, strand, score, 50, 0.5)[0] == ("c", 0, 60, pytest.approx(0.9), "+", 0)


# ---------------------------------------------------------------------------- scan outputs
def _lines(path):
    return [ln.split("\t") for ln in open(path).read().splitlines()]


def test_scan_writes_narrowpeak_summits_and_a_complete_summary(ckpts, genome, tmp_path):
    res = scan(ckpts["plain"], genome, tmp_path, threshold="0.5", split_drop=0.1)
    s = res.summary
    for key in ("threshold", "merge_gap", "split_drop", "min_width", "regions", "stride", "window", "model",
                "dtype", "versions", "threads", "track_mode", "fraction_called"):
        assert key in s, key
    assert s["threshold"] == 0.5 and s["threshold_mode"] == "fixed" and s["regions"] == ["chrA:1-3000", "chrB:1-700"]
    assert s["model"]["k"] == 3 and s["model"]["hidden_size"] == 16 and s["model"]["classes"] == CLASSES
    assert set(s["versions"]) == {"gulm", "torch", "numpy", "python"}
    on_disk = json.load(open(res.files["summary"]))
    assert on_disk["threshold"] == 0.5 and on_disk["files"]["peaks"] == res.files["peaks"]
    peaks, calls, summits = _lines(res.files["peaks"]), _lines(res.files["calls"]), _lines(res.files["summits"])
    want = find_calls(res.chrom, res.start, res.strand, res.score, 60, 0.5, 0, 0.1)
    assert len(peaks) == len(calls) == len(summits) == want["start"].size == s["regions_called"] > 3
    lengths = {"chrA": 3000, "chrB": 700}
    for pk, cl in zip(peaks, calls):
        assert len(pk) == 10 and pk[:6] == cl[:6]
        a, b, score, offset = int(pk[1]), int(pk[2]), int(pk[4]), int(pk[9])
        assert 0 <= a < b <= lengths[pk[0]] and 0 <= score <= 1000 and pk[5] in "+-"
        assert 0 <= offset < b - a and float(pk[6]) >= 0.5 and pk[7] == "-1.00000" and pk[8] == "-1"
        assert a <= int(cl[6]) < int(cl[7]) <= b
    assert [(r[0], int(r[1])) for r in peaks] == sorted((r[0], int(r[1])) for r in peaks)
    names = {r[3] for r in peaks}
    assert {r[3] for r in summits} == names
    for r in summits:  # the best window of its call
        assert int(r[2]) - int(r[1]) == 60


def test_threshold_auto_uses_the_checkpoints_validation_negatives(ckpts, genome, tmp_path):
    res = scan(ckpts["calibrated"], genome, tmp_path, fpr=0.05)
    cal = res.summary["calibration"]
    assert res.summary["threshold_mode"] == "auto" and cal["n_negatives"] == 100 and "validation" in cal["negatives"]
    assert res.summary["threshold"] == pytest.approx(auto_threshold(NEG, 0.05)) and 0.94 < res.summary["threshold"] <= 0.95
    stored = json.load(open(res.files["calibration"]))
    assert np.allclose(sorted(stored["scores"]), NEG)
    # narrowPeak pValue: -log10 of the empirical p among those negatives
    for r in _lines(res.files["peaks"]):
        above = (NEG >= float(r[6]) - 1e-6).sum()
        assert float(r[7]) == pytest.approx(-np.log10((1 + above) / 101), abs=2e-3)


def test_threshold_auto_without_stored_scores_uses_a_shuffled_background(ckpts, genome, tmp_path, capsys):
    res = scan(ckpts["plain"], genome, tmp_path, background_windows=40, fpr=0.1)
    cal = res.summary["calibration"]
    assert "shuffled" in cal["negatives"] and cal["n_negatives"] == 40
    assert cal["negatives_at_or_above"] <= 0.1
    again = scan(ckpts["plain"], genome, tmp_path, name="again", background_windows=40, fpr=0.1)
    assert again.summary["threshold"] == res.summary["threshold"]  # a fixed seed
    rc, out, err = in_process_cli(capsys, "scan", ckpts["plain"], genome["fasta"], "--window", "60", "--stride",
                                  "20", "--progress", "false", "--background", "shuffled", "--background-windows",
                                  "30", "--threads", "1", "--out", tmp_path / "cli")
    assert rc == 0, err
    assert "threshold 0." in out and "auto: at most 0.01 of 30 negatives" in out
    rc, out, err = in_process_cli(capsys, "scan", ckpts["plain"], genome["fasta"], "--threshold", "high", "--out",
                                  tmp_path / "bad")
    assert rc == 2 and err.strip() == "gulm scan: error: --threshold must be a number in [0, 1] or auto, got 'high'"
    assert not list(tmp_path.glob("bad*"))


def test_gulm_call_recalls_from_the_windows_file_or_the_bedgraphs(ckpts, genome, tmp_path, capsys):
    res = scan(ckpts["calibrated"], genome, tmp_path, threshold="0.6", regions=["chrA:1-3000"])
    out = gulm_cli("call", tmp_path / "s", "--threshold", "0.6", "--out", tmp_path / "same")
    assert out.returncode == 0, out.stderr
    for kind in ("calls.bed", "peaks.narrowPeak", "summits.bed"):
        assert (tmp_path / f"same.{kind}").read_text() == (tmp_path / f"s.{kind}").read_text(), kind
    rc, out, err = in_process_cli(capsys, "call", tmp_path / "s", "--threshold", "auto", "--fpr", "0.2",
                                  "--split-drop", "0", "--out", tmp_path / "auto")
    assert rc == 0, err
    assert out.startswith("threshold 0.7900 (auto") and "auto: at most 0.2 of 100 negatives" in out
    s = json.load(open(tmp_path / "auto.summary.json"))
    assert s["threshold"] == pytest.approx(auto_threshold(NEG, 0.2)) and s["threshold_mode"] == "auto"
    assert s["window"] == 60 and s["called_from"] == str(tmp_path / "s")
    want = find_calls(res.chrom, res.start, res.strand, res.score, 60, s["threshold"])
    assert len(_lines(tmp_path / "auto.calls.bed")) == want["start"].size == s["regions_called"]
    # from the bedGraphs alone (scores kept to 4 decimals there)
    os.remove(tmp_path / "s.windows.tsv")
    d = read_scan_windows(str(tmp_path / "s"))
    assert d["start"].tolist() == res.start.tolist() and d["strand"].tolist() == res.strand.tolist()
    assert np.allclose(d["score"], res.score, atol=5e-5)
    res2 = gulm.call_scan(scan=str(tmp_path / "s"), threshold="0.6", out=str(tmp_path / "bg"))
    assert res2.summary["regions_called"] == res.summary["regions_called"]
    # the scan's own prefix: calls replaced, its other files kept in the summary
    res3 = gulm.call_scan(scan=str(tmp_path / "s"), threshold="0.7")
    on_disk = json.load(open(tmp_path / "s.summary.json"))
    assert on_disk["threshold"] == 0.7 and "bedgraph+" in on_disk["files"] and res3.files["calls"] == str(tmp_path / "s.calls.bed")
    rc, _, err = in_process_cli(capsys, "call", tmp_path / "nothing")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "no scan summary" in err


def test_track_from_bedgraph_in_window_mode(ckpts, genome, tmp_path):
    res = scan(ckpts["plain"], genome, tmp_path, threshold="0.5", stride=60, track_mode="window", windows_tsv=False)
    d = read_scan_windows(str(tmp_path / "s"))
    assert d["start"].tolist() == res.start.tolist()


# ---------------------------------------------------------------------------- plots
def test_several_plots_and_a_clear_error_outside_the_scanned_area(ckpts, genome, tmp_path, capsys):
    res = scan(ckpts["plain"], genome, tmp_path, threshold="0.5", regions=["chrA:1-3000"],
               plot=["chrA:1-1500", "chrA:1001-3000"], annotation=genome["gff"])
    assert res.files["plots"] == [str(tmp_path / "s.chrA_1-1500.png"), str(tmp_path / "s.chrA_1001-3000.png")]
    for p in res.files["plots"]:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(p) > 10_000
    with pytest.raises(ValueError, match="outside the scanned regions"):
        scan(ckpts["plain"], genome, tmp_path, name="out", regions=["chrA:1-1000"], plot=["chrA:901-1200"])
    assert not list(tmp_path.glob("out*"))
    rc, _, err = in_process_cli(capsys, "scan", ckpts["plain"], genome["fasta"], "--regions", "chrA:1-1000",
                                "--plot", "chrB:1-100", "--out", tmp_path / "cli")
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "--plot chrB:1-100: outside the scanned regions (chrA:1-1000)" in lines[0]


# ---------------------------------------------------------------------------- failures and threads
def test_a_failing_scan_leaves_no_partial_outputs(ckpts, genome, tmp_path, monkeypatch):
    import gulm.plots

    def boom(*a, **k):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(gulm.plots, "plot_scan_region", boom)
    with pytest.raises(RuntimeError, match="plotting failed"):
        scan(ckpts["plain"], genome, tmp_path, threshold="0.5", plot=["chrA:1-1000"])
    assert sorted(os.listdir(tmp_path)) == []


def test_small_models_scan_on_one_thread_by_default(ckpts, genome, tmp_path, monkeypatch):
    import gulm.threads
    from gulm.infer import Classifier
    from gulm.scan import SMALL_MODEL_MACS, macs_per_token, scan_threads

    seen = []
    monkeypatch.setattr(gulm.threads, "resolve_threads", lambda n=None: seen.append(n) or (n or 4))
    small = Classifier.load(ckpts["plain"])
    assert macs_per_token(small.model) == 4 * 16 * (8 + 16) + 4 * 8 * (16 + 8) < SMALL_MODEL_MACS
    assert scan_threads(0, small) == 1 and seen == [1]
    assert scan_threads(3, small) == 3 and seen == [1, 3]
    big = Classifier.load(tiny_checkpoint(tmp_path / "big", emb=400, hidden=1150))
    assert macs_per_token(big.model) >= SMALL_MODEL_MACS
    seen.clear()
    scan_threads(0, big)
    assert seen == []  # left to resolve_threads' own default (set by setup)
