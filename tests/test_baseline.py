"""The k-mer logistic-regression baseline (gulm.baseline)."""
import numpy as np
import pytest

pytest.importorskip("gulm._C", reason="compiled extension not built")
pytest.importorskip("sklearn")

from gulm.baseline import KmerLogReg, fit_kmer_logreg, kmer_features  # noqa: E402


def test_kmer_features_count_and_normalise():
    x = kmer_features(["AAAA", "ACGT", "ACNGT", "AC"], ks=[1, 2])
    assert x.shape == (4, 4 + 16)
    np.testing.assert_allclose(x[0, :4], [1, 0, 0, 0])  # A only
    np.testing.assert_allclose(x[0, 4], 1.0)  # AA is the first 2-mer
    np.testing.assert_allclose(x[1, :4], [0.25] * 4)
    # windows touching N are skipped: ACNGT has 2-mers AC and GT only
    assert x[2, 4 + 1] == pytest.approx(0.5) and x[2, 4 + 11] == pytest.approx(0.5)
    np.testing.assert_allclose(x[:, :4].sum(1), 1.0)
    both = kmer_features(["AAAA"], ks=[1], both_strands=True)
    np.testing.assert_allclose(both[0], [0.5, 0, 0, 0.5])  # A on one strand, T on the other


def _motif_set(n, rng):
    seqs, y = [], []
    for i in range(n):
        s = "".join(rng.choice(list("ACGT"), 60))
        if i % 2:
            pos = rng.integers(0, 50)
            s = s[:pos] + "TATAAT" + s[pos + 6:]
        seqs.append(s)
        y.append(i % 2)
    return seqs, np.array(y)


def test_a_window_gives_the_first_and_the_last_bases_as_two_blocks():
    seqs = ["A" * 10 + "C" * 10, "ACGT", "GGGGTTTT" * 3]
    x = kmer_features(seqs, [1, 2], window=6)
    assert x.shape == (3, 2 * (4 + 16))
    np.testing.assert_allclose(x[:, :4], kmer_features([s[:6] for s in seqs], [1])[:, :4])
    assert x[0, 0] == 1.0 and x[0, 20 + 1] == 1.0  # first 6 nt all A, last 6 all C
    np.testing.assert_allclose(x[1, :20], x[1, 20:])  # shorter than the window: the same block twice
    np.testing.assert_allclose(kmer_features(seqs, [1, 2], window=0), kmer_features(seqs, [1, 2]))


def test_fit_learns_a_motif_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    seqs, y = _motif_set(400, rng)
    x = kmer_features(seqs, ks=[1, 2, 3, 4, 5, 6])
    model = fit_kmer_logreg(x[:300], y[:300], x[300:350], y[300:350], ["other", "motif"], Cs=[0.01, 0.1, 1.0])
    acc = (model.probs(seqs[350:]).argmax(1) == y[350:]).mean()
    assert acc > 0.8
    assert model.C in model.valid_accuracy_by_C
    model.save(tmp_path)
    again = KmerLogReg.load(tmp_path)
    np.testing.assert_allclose(again.probs(seqs[350:]), model.probs(seqs[350:]))
    assert KmerLogReg.exists(tmp_path) and not KmerLogReg.exists(tmp_path / "nope")


def test_fit_refuses_a_single_class():
    x = kmer_features(["ACGT" * 5] * 6)
    with pytest.raises(ValueError, match="two classes"):
        fit_kmer_logreg(x, np.zeros(6, dtype=int), None, None, ["a"])


def test_multiclass_probabilities_sum_to_one():
    rng = np.random.default_rng(1)
    motifs = ["TTGACA", "GGGCCC", "ATATAT"]
    seqs, y = [], []
    for i in range(150):
        s = list(rng.choice(list("ACGT"), 50))
        s[10:16] = motifs[i % 3]
        seqs.append("".join(s))
        y.append(i % 3)
    y = np.array(y)
    x = kmer_features(seqs, ks=[1, 2, 3])
    m = fit_kmer_logreg(x[:120], y[:120], x[120:], y[120:], ["a", "b", "c"], ks=[1, 2, 3], Cs=[0.1, 1.0])
    p = m.probs(seqs[120:])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (p.argmax(1) == y[120:]).mean() > 0.7  # chance is 1/3


def _gulm(cwd):
    """``run(*args)``: ``python -m gulm ARGS`` in ``cwd``, its output captured."""
    import subprocess
    import sys

    return lambda *a: subprocess.run([sys.executable, "-m", "gulm", *map(str, a)], capture_output=True, text=True,
                                     cwd=cwd)


def test_baseline_command_on_a_classifier_split_and_evaluate_shows_it(tmp_path):
    """`gulm baseline CKPT` fits on the checkpoint's own split and saves beside it; `gulm evaluate`
    then prints both rows."""
    import json

    import gulm
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=40_000, seed=2, n_train=40)
    clf = tmp_path / "clf"
    train_classifier(data=gulm.DataConfig(csv=str(files["promoters"])), out=str(clf), k=3, stride=1, emb_size=16,
                     hidden_size=32, n_layers=1, stages=[[1, 1e-2, 0]], bs=16, progress=False)
    run = _gulm(tmp_path)
    r = run("baseline", clf, "--ks", "1", "2", "3", "--cs", "0.1", "1")
    assert r.returncode == 0, r.stderr
    assert "k-mer LR, test" in r.stdout and "gulm classifier, test" in r.stdout
    meta = json.loads((clf / "baseline.json").read_text())
    assert meta["ks"] == [1, 2, 3] and meta["metrics"]["test"]["n"] > 0
    assert meta["window"] == 0  # as the classifier: no --kmer-window
    r = run("evaluate", clf, "--csv", files["promoters"])
    assert r.returncode == 0, r.stderr
    assert "k-mer LR, test" in r.stdout and "gulm, test" in r.stdout
    r = run("baseline", clf, "--ks", "1", "2", "--cs", "0.1", "--window", "20")  # both ends, two blocks
    assert r.returncode == 0, r.stderr
    meta = json.loads((clf / "baseline.json").read_text())
    assert meta["window"] == 20 and np.load(clf / "baseline.npz")["coef"].shape[1] == 2 * (4 + 16)
    r = run("evaluate", clf, "--csv", files["promoters"])  # evaluate reads the saved window back
    assert r.returncode == 0 and "k-mer LR, test" in r.stdout, r.stderr
    r = run("baseline", clf, "--gapped", "6", "4", "--cs", "0.1")  # gapped k-mers in place of --ks
    assert r.returncode == 0 and "gapped k-mer LR (6, 4), test" in r.stdout, r.stderr
    meta = json.loads((clf / "baseline.json").read_text())
    assert meta["gapped"] == [6, 4] and np.load(clf / "baseline.npz")["coef"].shape[1] == 6 * 256
    r = run("evaluate", clf, "--csv", files["promoters"])  # evaluate reads the gapped features back
    assert r.returncode == 0 and "gapped k-mer LR (6, 4), test" in r.stdout, r.stderr
    r = run("baseline", clf, "--gapped", "4", "6")
    assert r.returncode == 2 and "--gapped" in r.stderr and "Traceback" not in r.stderr
    r = run("baseline", clf, "--ks", "1", "2", "--positional", "2", "10", "--cs", "0.1")  # given strand by default
    assert r.returncode == 0 and "k-mer LR + positional (2, 10, " in r.stdout, r.stderr
    meta = json.loads((clf / "baseline.json").read_text())
    span = meta["positional"][2]  # the longest training sequence
    assert meta["positional"][:2] == [2, 10] and span > 10
    assert np.load(clf / "baseline.npz")["coef"].shape[1] == 4 + 16 + -(-(span - 1) // 10) * 16
    r = run("evaluate", clf, "--csv", files["promoters"])  # evaluate reads the positional features back
    assert r.returncode == 0 and "k-mer LR + positional (2, 10, " in r.stdout, r.stderr
    for bad in (["--positional", "2"], ["--positional", "2", "10", "--both-strands", "true"]):
        r = run("baseline", clf, *bad)
        assert r.returncode == 2 and "--positional" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run("baseline", tmp_path / "nope")
    assert r.returncode == 2 and "no such checkpoint" in r.stderr


def test_the_baseline_of_a_positional_classifier_is_its_own_branch(tmp_path):
    """A classifier with the positional branch (the `aligned` preset's) gets the positional k-mer LR
    as its baseline by default, the regression it holds; `--positional 0` fits the plain one."""
    import json

    import gulm
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=40_000, seed=2, n_train=40)
    clf = tmp_path / "clf"
    train_classifier(data=gulm.DataConfig(csv=str(files["promoters"])), out=str(clf), k=3, stride=1, emb_size=16,
                     hidden_size=32, n_layers=1, stages=[[1, 1e-2, 0]], bs=16, progress=False,
                     kmer_features=[1, 2], kmer_positional=[2, 10], kmer_logreg=True)
    run = _gulm(tmp_path)
    r = run("baseline", clf, "--ks", "1", "2", "--cs", "0.1")
    assert r.returncode == 0 and "k-mer LR + positional (2, 10, 150), test" in r.stdout, r.stdout + r.stderr
    assert json.loads((clf / "baseline.json").read_text())["positional"] == [2, 10, 150]
    r = run("baseline", clf, "--ks", "1", "2", "--cs", "0.1", "--positional", "0")
    assert r.returncode == 0 and "k-mer LR, test" in r.stdout, r.stdout + r.stderr
    assert json.loads((clf / "baseline.json").read_text())["positional"] is None


def test_gapped_kmer_features_count_patterns_and_match_plain_kmers():
    from gulm.baseline import gapped_kmer_features

    # length 3, 2 informative: one mask (first and last base, middle a wildcard)
    x = gapped_kmer_features(["ACGTA", "AANCA"], 3, 2)
    assert x.shape == (2, 16)
    # ACGTA: windows ACG, CGT, GTA -> patterns A.G, C.T, G.A
    want = np.zeros(16)
    for a, b in ("AG", "CT", "GA"):
        want["ACGT".index(a) * 4 + "ACGT".index(b)] = 1 / 3
    np.testing.assert_allclose(x[0], want)
    # AANCA: AAN (skipped), ANC (wildcard N: counted as A.C), NCA (skipped)
    assert x[1]["ACGT".index("A") * 4 + "ACGT".index("C")] == 1 and x[1].sum() == 1
    # with every position informative it is the plain k-mer block
    seqs = ["ACGTTGCAAC", "GGGTACCA", "acgtu"]
    np.testing.assert_allclose(gapped_kmer_features(seqs, 3, 3), kmer_features(seqs, [3]), atol=1e-7)
    # blocks: C(4, 2) masks of 4^4 patterns for length 6, 4 informative; both strands symmetric
    y = gapped_kmer_features(seqs, 6, 4, both_strands=True)
    assert y.shape == (3, 6 * 256)
    rc = ["".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(s)) for s in seqs[:2]]
    np.testing.assert_allclose(y[:2], gapped_kmer_features(rc, 6, 4, both_strands=True), atol=1e-7)
    with pytest.raises(ValueError):
        gapped_kmer_features(seqs, 4, 5)
    # a baseline's features: gapped in place of the k-mer blocks, per end with a window
    from gulm.baseline import baseline_features
    ends = baseline_features(seqs[:2], gapped=(3, 2), window=5)
    np.testing.assert_allclose(ends[:, :16], gapped_kmer_features([s[:5] for s in seqs[:2]], 3, 2))
    np.testing.assert_allclose(ends[:, 16:], gapped_kmer_features([s[-5:] for s in seqs[:2]], 3, 2))
    np.testing.assert_allclose(baseline_features(seqs, [1, 2]), kmer_features(seqs, [1, 2]))
