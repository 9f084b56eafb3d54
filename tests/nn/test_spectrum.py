"""The k-mer spectrum read from token ids (the wide branch of a classifier head)."""
import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

from gulm.baseline import kmer_features  # noqa: E402
from gulm.data.tokenizer import KmerTokenizer  # noqa: E402
from gulm.nn.spectrum import KmerSpectrum  # noqa: E402

KS = [1, 2, 3, 4, 5, 6]


def _seqs(n=25, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), int(rng.integers(9, 97)))) for _ in range(n)]


@pytest.mark.parametrize("k,stride", [(3, 1), (5, 2), (4, 4), (1, 1), (6, 3)])
def test_spectrum_equals_the_baseline_features_of_the_bases_the_tokens_cover(k, stride):
    seqs = _seqs()
    tok = KmerTokenizer(k, stride)
    ids, lengths = tok.encode_batch(seqs)
    got = KmerSpectrum(k, stride, KS)(ids, lengths).numpy()
    covered = [s[:(int(n) - 1) * stride + k] for s, n in zip(seqs, lengths)]
    np.testing.assert_allclose(got, kmer_features(covered, KS), atol=1e-6)


def test_unknown_bases_and_padding():
    seqs = _seqs(6, seed=1)
    seqs[2] = seqs[2][:7] + "N" + seqs[2][8:]
    tok = KmerTokenizer(3, 1)
    ids, lengths = tok.encode_batch(seqs)
    spec = KmerSpectrum(3, 1, KS)
    got = spec(ids, lengths).numpy()
    np.testing.assert_allclose(got, kmer_features(seqs, KS), atol=1e-6)  # windows touching N skipped
    for i, s in enumerate(seqs):  # right padding never changes a row
        one = spec(*tok.encode_batch([s])).numpy()
        np.testing.assert_allclose(one[0], got[i], atol=1e-6)
    with pytest.raises(ValueError, match="stride <= k"):
        KmerSpectrum(3, 4, KS)


@pytest.mark.parametrize("k,stride", [(3, 1), (5, 2)])
def test_a_window_counts_the_first_and_the_last_bases_as_two_blocks(k, stride):
    seqs = _seqs(30, seed=4)
    if stride == 1:  # an unknown base near the 3' end (at stride > 1 its tokens hide neighbours too)
        seqs[3] = seqs[3][:-5] + "N" + seqs[3][-4:]
    seqs[4] = seqs[4][:8]  # shorter than the window: both blocks are its whole spectrum
    tok = KmerTokenizer(k, stride)
    ids, lengths = tok.encode_batch(seqs)
    spec = KmerSpectrum(k, stride, [1, 2, 3], window=20)
    got = spec(ids, lengths).numpy()
    assert got.shape == (30, spec.size) and spec.size == 2 * (4 + 16 + 64)
    covered = [s[:(int(n) - 1) * stride + k] for s, n in zip(seqs, lengths)]
    want = np.concatenate([kmer_features([s[:20] for s in covered], [1, 2, 3]),
                           kmer_features([s[-20:] for s in covered], [1, 2, 3])], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got[0, :84], got[0, 84:])  # the two ends of a long sequence differ
    for i in (0, 3, 4):  # right padding never changes a row
        np.testing.assert_allclose(spec(*tok.encode_batch([seqs[i]])).numpy()[0], got[i], atol=1e-6)
    with pytest.raises(ValueError, match="window"):
        KmerSpectrum(3, 1, [1, 2, 3], window=2)


def test_a_wide_classifier_trains_saves_and_predicts(tmp_path):
    import gulm
    from gulm.configs import DataConfig
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=30_000, seed=5, n_train=30)
    out = tmp_path / "wide"
    m = train_classifier(data=DataConfig(csv=str(files["promoters"])), out=str(out), k=3, stride=1,
                         emb_size=16, hidden_size=32, n_layers=1, stages=[[1, 1e-2, 1], [1, 5e-3, 0]],
                         kmer_features=[1, 2, 3, 4], bs=8, progress=False)
    assert m["n"] > 0
    model, tok, cfg = gulm.load(out)
    assert list(cfg["model"]["kmer_features"]) == [1, 2, 3, 4] and model.wide is not None
    probs, classes = gulm.predict(str(out), ["ACGTTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGC" * 3])
    assert probs.shape == (1, 2) and np.isclose(probs.sum(), 1.0)
    # the wide branch trains with the head (gradual unfreezing's last group)
    assert any(p is model.wide["linear"][2].weight for p in model.layer_groups()[-1])
    with pytest.raises(ValueError, match="stride <= k"):
        train_classifier(data=DataConfig(csv=str(files["promoters"])), out=str(tmp_path / "bad"), k=3, stride=4,
                         emb_size=16, hidden_size=32, n_layers=1, stages=[[1, 1e-2, 0]], kmer_features=[2],
                         progress=False)


def test_strand_fold_is_shared_by_both_strands_and_spread_over_folds():
    from gulm.ops.kmer import revcomp

    seqs = _seqs(200, seed=3)
    tok = KmerTokenizer(3, 1)
    spec = KmerSpectrum(3, 1, [1, 2])
    rcs = [revcomp(torch.frombuffer(bytearray(s.encode()), dtype=torch.uint8)).numpy().tobytes().decode() for s in seqs]
    fold = spec.strand_fold(*tok.encode_batch(seqs), 5)
    assert torch.equal(fold, spec.strand_fold(*tok.encode_batch(rcs), 5))
    assert fold.min() >= 0 and fold.max() < 5 and torch.bincount(fold, minlength=5).min() >= 20


def test_a_fixed_wide_branch_is_the_cross_fitted_kmer_logreg_and_stays_fixed(tmp_path):
    import gulm
    from gulm.baseline import fit_kmer_logreg
    from gulm.configs import DataConfig
    from gulm.data.sources import load_labeled, select_split
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=30_000, seed=5, n_train=38)
    out = tmp_path / "fixed"
    ks = [1, 2, 3]
    opts = dict(data=DataConfig(csv=str(files["promoters"])), k=3, stride=1, emb_size=16, hidden_size=32,
                n_layers=1, stages=[[1, 1e-2, 1], [1, 5e-3, 0]], kmer_features=ks, bs=8, progress=False)
    m = train_classifier(out=str(out), kmer_logreg=True, **opts)
    assert m["n"] > 0 and m["wide_logreg"]["folds"] == 5
    model, tok, cfg = gulm.load(out)
    assert cfg["model"]["wide_fixed"] is True
    assert not list(model.wide.parameters())  # buffers only: no layer group trains it
    ds = load_labeled(DataConfig(csv=str(files["promoters"])))
    classes = sorted(set(select_split(ds, "train")[1]))
    spec = KmerSpectrum(3, 1, ks)
    data = {}
    for split in ("train", "valid", "test"):
        seqs, labels = select_split(ds, split)
        ids, lengths = tok.encode_batch(seqs)
        data[split] = (ids, lengths, spec(ids, lengths).numpy(), np.array([classes.index(y) for y in labels]))
    full = fit_kmer_logreg(data["train"][2], data["train"][3], data["valid"][2], data["valid"][3], classes, ks=ks)
    assert full.C == m["wide_logreg"]["C"]
    ids, lengths, x, _ = data["test"]
    with torch.no_grad():  # prediction (eval mode): the regression fitted on the whole training split
        wide = model.wide_logits(ids, lengths).numpy()
    np.testing.assert_allclose(wide[:, 1] - wide[:, 0], full.decision(x)[:, 0], rtol=1e-4, atol=1e-4)
    # training mode: each training sequence is scored by the fit that never saw its fold
    ids, lengths, x, y = data["train"]
    fold = spec.strand_fold(ids, lengths, 5).numpy()
    j = int(np.bincount(fold).argmax())
    held = fit_kmer_logreg(x[fold != j], y[fold != j], None, None, classes, ks=ks, Cs=[full.C])
    model.train()
    with torch.no_grad():
        wide = model.wide_logits(ids[fold == j], lengths[fold == j]).numpy()
    np.testing.assert_allclose(wide[:, 1] - wide[:, 0], held.decision(x[fold == j])[:, 0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(held.decision(x[fold == j]), full.decision(x[fold == j]), atol=1e-3)
    model.eval()
    # under bf16 autocast the fixed branch still computes in float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.wide_logits(ids, lengths).dtype == torch.float32
    # without cross-fitting (folds 0) training reads the full fit too
    m0 = train_classifier(out=str(tmp_path / "insample"), kmer_logreg=True, kmer_logreg_folds=0, **opts)
    assert m0["wide_logreg"]["folds"] == 0
    model0 = gulm.load(tmp_path / "insample")[0].train()
    with torch.no_grad():
        wide = model0.wide_logits(ids, lengths).numpy()
    np.testing.assert_allclose(wide[:, 1] - wide[:, 0], full.decision(x)[:, 0], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        train_classifier(out=str(tmp_path / "bad"), kmer_logreg=True, kmer_logreg_folds=1, **opts)
    with pytest.raises(ValueError, match="fixes the wide branch: it needs"):
        train_classifier(out=str(tmp_path / "bad"), kmer_logreg=True, **{**opts, "kmer_features": []})


def test_a_learned_gain_scales_the_fixed_branch(tmp_path):
    import gulm
    from gulm.configs import DataConfig
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=30_000, seed=5, n_train=38)
    opts = dict(data=DataConfig(csv=str(files["promoters"])), k=3, stride=1, emb_size=16, hidden_size=32,
                n_layers=1, stages=[[2, 1e-2, 1]], kmer_features=[1, 2, 3], bs=8, progress=False)
    with pytest.raises(ValueError, match="turn that on too"):
        train_classifier(out=str(tmp_path / "bad"), kmer_logreg_gain=True, **opts)
    m = train_classifier(out=str(tmp_path / "gain"), kmer_logreg=True, kmer_logreg_gain=True, **opts)
    gain = m["wide_logreg"]["gain"]
    assert abs(gain - 1.0) > 1e-3  # it trained (it starts at exactly 1)
    model, tok, cfg = gulm.load(tmp_path / "gain")
    assert cfg["model"]["wide_gain"] is True
    assert any(p is model.wide_log_gain for p in model.layer_groups()[-1])  # trains with the head
    ids, lengths = tok.encode_batch(["ACGTTGCA" * 20, "TTTTACGATA" * 15])
    unscaled = model.wide["linear"](model.wide["spectrum"](ids, lengths))
    with torch.no_grad():
        np.testing.assert_allclose(model.wide_logits(ids, lengths).numpy(), (unscaled * gain).numpy(), rtol=1e-3)


def test_a_windowed_fixed_branch_saves_reloads_and_is_the_two_block_regression(tmp_path):
    import gulm
    from gulm.baseline import fit_kmer_logreg
    from gulm.configs import DataConfig
    from gulm.data.sources import load_labeled, select_split
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=30_000, seed=5, n_train=38)
    opts = dict(data=DataConfig(csv=str(files["promoters"])), k=3, stride=1, emb_size=16, hidden_size=32,
                n_layers=1, stages=[[1, 1e-2, 0]], kmer_features=[1, 2], bs=8, progress=False)
    m = train_classifier(out=str(tmp_path / "ends"), kmer_logreg=True, kmer_window=12, **opts)
    model, tok, cfg = gulm.load(tmp_path / "ends")
    assert cfg["model"]["wide_window"] == 12 and model.wide["spectrum"].size == 2 * (4 + 16)
    ds = load_labeled(DataConfig(csv=str(files["promoters"])))
    classes = sorted(set(select_split(ds, "train")[1]))

    def ends(split):
        seqs, labels = select_split(ds, split)
        x = np.concatenate([kmer_features([s[:12] for s in seqs], [1, 2]),
                            kmer_features([s[-12:] for s in seqs], [1, 2])], axis=1)
        return seqs, x, np.array([classes.index(y) for y in labels])

    _, xt, yt = ends("train")
    _, xv, yv = ends("valid")
    full = fit_kmer_logreg(xt, yt, xv, yv, classes, ks=[1, 2])
    assert full.C == m["wide_logreg"]["C"]
    seqs, x, _ = ends("test")
    with torch.no_grad():
        wide = model.wide_logits(*tok.encode_batch(seqs)).numpy()
    np.testing.assert_allclose(wide[:, 1] - wide[:, 0], full.decision(x)[:, 0], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="at least the longest k-mer"):
        train_classifier(out=str(tmp_path / "bad"), kmer_window=1, **opts)
    with pytest.raises(ValueError, match="it needs"):
        train_classifier(out=str(tmp_path / "bad"), kmer_window=12, **{**opts, "kmer_features": []})


@pytest.mark.parametrize("k,stride", [(3, 1), (5, 2)])
def test_gapped_blocks_equal_the_baselines_gapped_features(k, stride):
    from gulm.baseline import gapped_kmer_features
    from gulm.nn.spectrum import gapped_masks

    seqs = _seqs(20, seed=7)
    seqs[1] = seqs[1][:6]  # shorter than the gapped window: an empty block
    if stride == 1:
        seqs[2] = seqs[2][:10] + "N" + seqs[2][11:]  # skipped where informative, counted as a wildcard
    tok = KmerTokenizer(k, stride)
    ids, lengths = tok.encode_batch(seqs)
    covered = [s[:(int(n) - 1) * stride + k] for s, n in zip(seqs, lengths)]
    spec = KmerSpectrum(k, stride, [1, 2], gapped=(7, 4))
    assert spec.size == 4 + 16 + len(gapped_masks(7, 4)) * 256 == 4 + 16 + 10 * 256
    got = spec(ids, lengths).numpy()
    np.testing.assert_allclose(got[:, :20], kmer_features(covered, [1, 2]), atol=1e-6)
    np.testing.assert_allclose(got[:, 20:], gapped_kmer_features(covered, 7, 4), atol=1e-6)
    assert not got[1, 20:].any()
    alone = KmerSpectrum(k, stride, [], gapped=(7, 4))  # the gapped blocks alone
    np.testing.assert_allclose(alone(ids, lengths).numpy(), got[:, 20:], atol=1e-6)
    with pytest.raises(ValueError):
        KmerSpectrum(k, stride, [], gapped=(4, 5))
    with pytest.raises(ValueError, match="window"):
        KmerSpectrum(k, stride, [1, 2], window=6, gapped=(7, 4))


def test_a_fixed_gapped_branch_is_the_gapped_logreg(tmp_path):
    import gulm
    from gulm.baseline import fit_kmer_logreg, gapped_kmer_features
    from gulm.configs import DataConfig
    from gulm.data.sources import load_labeled, select_split
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=30_000, seed=5, n_train=38)
    opts = dict(data=DataConfig(csv=str(files["promoters"])), k=3, stride=1, emb_size=16, hidden_size=32,
                n_layers=1, stages=[[1, 1e-2, 0]], bs=8, progress=False, rc_augment=False, rc_average=False)
    m = train_classifier(out=str(tmp_path / "gapped"), kmer_logreg=True, kmer_gapped=[6, 3], **opts)
    model, tok, cfg = gulm.load(tmp_path / "gapped")
    assert list(cfg["model"]["wide_gapped"]) == [6, 3] and not cfg["model"]["kmer_features"]
    ds = load_labeled(DataConfig(csv=str(files["promoters"])))
    classes = sorted(set(select_split(ds, "train")[1]))

    def split(name):
        seqs, labels = select_split(ds, name)
        return seqs, gapped_kmer_features(seqs, 6, 3), np.array([classes.index(y) for y in labels])

    (_, xt, yt), (_, xv, yv), (seqs, x, _) = split("train"), split("valid"), split("test")
    full = fit_kmer_logreg(xt, yt, xv, yv, classes, gapped=(6, 3))
    assert full.C == m["wide_logreg"]["C"]
    with torch.no_grad():
        wide = model.wide_logits(*tok.encode_batch(seqs)).numpy()
    np.testing.assert_allclose(wide[:, 1] - wide[:, 0], full.decision(x)[:, 0], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="kmer-gapped|kmer_gapped"):
        train_classifier(out=str(tmp_path / "bad"), kmer_logreg=True, kmer_gapped=[3, 6], **opts)


@pytest.mark.parametrize("k,stride", [(3, 1), (5, 2)])
def test_positional_blocks_equal_the_baselines_positional_features(k, stride):
    from gulm.baseline import positional_kmer_features

    seqs = _seqs(20, seed=9)
    seqs[1] = seqs[1][:6]  # shorter than one bin of the span: the later bins stay empty
    if stride == 1:
        seqs[2] = seqs[2][:5] + "N" + seqs[2][6:]  # the three 3-mers over it are skipped
    tok = KmerTokenizer(k, stride)
    ids, lengths = tok.encode_batch(seqs)
    covered = [s[:(int(n) - 1) * stride + k] for s, n in zip(seqs, lengths)]
    spec = KmerSpectrum(k, stride, [1, 2], positional=(3, 4, 30))
    assert spec.size == 4 + 16 + 7 * 64  # the 28 3-mers of 30 bases start in 7 bins of 4
    got = spec(ids, lengths).numpy()
    np.testing.assert_allclose(got[:, :20], kmer_features(covered, [1, 2]), atol=1e-6)
    want = positional_kmer_features(covered, 3, 4, 30)
    np.testing.assert_array_equal(got[:, 20:], want)
    assert got[1, 20:].sum() == len(covered[1]) - 2 and not got[1, 20 + 2 * 64:].any()
    # by hand: bin j holds the 3-mers starting at bases 4j..4j+3 (among the first 30)
    s = covered[0]
    for j in range(7):
        starts = [p for p in range(4 * j, min(4 * j + 4, 28)) if p + 3 <= len(s)]
        assert want[0, j * 64:(j + 1) * 64].sum() == len(starts)
    if stride == 1:
        assert want[2].sum() == min(28, len(covered[2]) - 2) - 3
    alone = KmerSpectrum(k, stride, [], positional=(3, 4, 30))
    np.testing.assert_array_equal(alone(ids, lengths).numpy(), got[:, 20:])
    for bad in [(3, 0, 30), (9, 1, 30), (3, 4, 2), (3, 4)]:
        with pytest.raises(ValueError, match="positional"):
            KmerSpectrum(k, stride, [1], positional=bad)
    with pytest.raises(ValueError, match="window"):
        KmerSpectrum(k, stride, [1, 2], window=6, positional=(3, 4, 30))


def test_a_fixed_positional_branch_is_the_positional_logreg(tmp_path):
    import gulm
    from gulm.baseline import baseline_features, fit_kmer_logreg
    from gulm.configs import DataConfig
    from gulm.data.sources import load_labeled, select_split
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=30_000, seed=5, n_train=38)
    opts = dict(data=DataConfig(csv=str(files["promoters"])), k=3, stride=1, emb_size=16, hidden_size=32,
                n_layers=1, stages=[[1, 1e-2, 0]], bs=8, progress=False, rc_augment=False, rc_average=False)
    m = train_classifier(out=str(tmp_path / "pos"), kmer_logreg=True, kmer_features=[1, 2], kmer_positional=[2, 10],
                         **opts)
    model, tok, cfg = gulm.load(tmp_path / "pos")
    ds = load_labeled(DataConfig(csv=str(files["promoters"])))
    longest = max(len(s) for s in select_split(ds, "train")[0])
    assert list(cfg["model"]["wide_positional"]) == [2, 10, longest]  # the span defaults to the longest
    classes = sorted(set(select_split(ds, "train")[1]))

    def split(name):
        seqs, labels = select_split(ds, name)
        return seqs, baseline_features(seqs, [1, 2], positional=(2, 10, longest)), np.array([classes.index(y) for y in labels])

    (_, xt, yt), (_, xv, yv), (seqs, x, _) = split("train"), split("valid"), split("test")
    full = fit_kmer_logreg(xt, yt, xv, yv, classes, ks=[1, 2], positional=(2, 10, longest))
    assert full.C == m["wide_logreg"]["C"]
    with torch.no_grad():
        wide = model.wide_logits(*tok.encode_batch(seqs)).numpy()
    np.testing.assert_allclose(wide[:, 1] - wide[:, 0], full.decision(x)[:, 0], rtol=1e-4, atol=1e-4)
    from gulm.data.errors import DataWarning

    with pytest.warns(DataWarning, match="shorter than the .* bases the classifier's positional"):
        gulm.predict(str(tmp_path / "pos"), [seqs[0][:longest // 2]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        gulm.predict(str(tmp_path / "pos"), ["ACGT" * (longest // 4 + 1)])  # as long as the span: no warning
    with pytest.raises(ValueError, match="kmer-positional|kmer_positional"):  # both strands: no place to count from
        train_classifier(out=str(tmp_path / "bad"), kmer_logreg=True, kmer_positional=[2, 10],
                         **{**opts, "rc_augment": True})
    with pytest.raises(ValueError, match="kmer-positional|kmer_positional"):
        train_classifier(out=str(tmp_path / "bad"), kmer_positional=[2], **opts)
