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
