"""Perturbation and mutagenesis find what a model looks at."""
import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("gulm._C", reason="compiled extension not built")

from gulm.data.tokenizer import KmerTokenizer
from gulm.infer import Classifier
from gulm.interpretation import mutagenesis, perturbation, score_sequences


class OnePosition(nn.Module):
    """P(class 1) is high iff the token at position j equals `want`."""

    def __init__(self, j, want):
        super().__init__()
        self.j, self.want = j, want

    def forward(self, ids, lengths):
        hit = (ids[:, self.j] == self.want).float()
        return torch.stack([torch.zeros_like(hit), 6 * hit - 3], dim=1), None, None


def test_perturbation_and_mutagenesis_find_the_position():
    tok = KmerTokenizer(1, 1)
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 40))
    j = 17
    clf = Classifier(OnePosition(j, int(tok.encode(seq[j])[0])), tok, classes=["other", "hit"])
    ref = score_sequences(clf, np.frombuffer(seq.encode(), np.uint8)[None], 1)[0]
    assert ref > 0.9
    pert = perturbation(clf, seq, [1, 5], target=1, seed=3)
    p1 = pert[1]
    assert p1.shape == (40,)
    others = np.delete(p1, j)
    np.testing.assert_allclose(others, ref)  # nothing else matters
    # k=5: only stretches covering j can change the output
    p5 = pert[5]
    far = [i for i in range(36) if not i <= j < i + 5]
    np.testing.assert_allclose(p5[far], ref)
    assert p5[[i for i in range(36) if i <= j < i + 5]].min() < 0.1
    base, delta = mutagenesis(clf, seq, target=1)
    assert base == pytest.approx(ref)
    assert delta.shape == (4, 40)
    cols = np.flatnonzero(np.abs(delta).sum(0) > 1e-9)
    assert cols.tolist() == [j]
    assert (delta[:, j] < -0.8).sum() == 3 and delta["ACGT".index(seq[j]), j] == 0


def test_interpret_writes_tsv_and_png(tmp_path):
    from gulm.interpretation import interpret
    from gulm.nn import AWDConfig, classifier
    from gulm.runtime.checkpoint import save_checkpoint

    tok = KmerTokenizer(3, 1)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=8, hidden_size=16, n_layers=2)
    save_checkpoint(tmp_path / "clf", classifier(cfg).eval(), kind="classifier", model_config=cfg.to_dict(),
                    tokenizer=tok, extra={"classes": ["a", "b"], "window": 50})
    seq = "".join(np.random.default_rng(1).choice(list("ACGT"), 50))
    res = interpret(checkpoint=str(tmp_path / "clf"), sequence=seq, ks=[1, 3], out=str(tmp_path / "i"), mark=25)
    for key in ("perturbation_tsv", "perturbation_png", "mutagenesis_tsv", "mutagenesis_png"):
        path = res["files"][key]
        data = open(path, "rb").read()
        assert len(data) > 100
        if path.endswith(".png"):
            assert data[:4] == b"\x89PNG"
    rows = open(res["files"]["perturbation_tsv"]).read().splitlines()
    assert len(rows) == 1 + 50 + 48
    with pytest.raises(ValueError, match="non-ACGT"):
        interpret(checkpoint=str(tmp_path / "clf"), sequence="ACGTNACGT", out=str(tmp_path / "j"))
