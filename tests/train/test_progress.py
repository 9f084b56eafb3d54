"""Progress bars count what runs: each training bar ends at its total, a resumed epoch's bar
starts at the step it resumes from; the line after each epoch is printed with or without bars."""
import pytest

from gulm.configs import ClassifierConfig, DataConfig
from gulm.train import learner as learner_mod
from gulm.train.classifier import train_classifier

TINY = dict(emb_size=16, hidden_size=32, n_layers=2, bs=8, bptt=20, k=3, stride=1)


class FakeBar:
    """Stands for tqdm: records totals and counts."""

    bars = []

    def __init__(self, iterable=None, total=None, initial=0, desc="", **kw):
        self.iterable, self.total, self.initial, self.n, self.desc = iterable, total, initial, initial, desc
        FakeBar.bars.append(self)

    def __iter__(self):
        for x in self.iterable:
            self.n += 1
            yield x

    def update(self, k=1):
        self.n += k

    def set_postfix(self, *a, **kw):
        pass

    def close(self):
        pass

    @staticmethod
    def write(text):
        print(text)


def _train_bars():
    return [b for b in FakeBar.bars if " epoch " in b.desc]


def test_bars_end_at_their_totals_and_a_resumed_epoch_starts_at_its_step(demo_files, tmp_path, monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    base = dict(data=DataConfig(csv=str(demo_files["promoters"])), stages=[[2, 1e-2, 0]], checkpoint_every=1e-9,
                progress=True, out=str(tmp_path / "run"), **TINY)

    class Killed(Exception):
        pass

    real = learner_mod.Learner.save_resume_state

    def save_then_die(self, stage, epoch, step=0, partial=None):
        real(self, stage, epoch, step, partial)
        if epoch == 1 and step == 3:
            raise Killed()

    monkeypatch.setattr(learner_mod.Learner, "save_resume_state", save_then_die)
    FakeBar.bars = []
    with pytest.raises(Killed):
        train_classifier(ClassifierConfig(**base))
    first = _train_bars()
    assert first[0].n == first[0].total and first[0].total > 3  # a whole epoch: every batch counted
    monkeypatch.setattr(learner_mod.Learner, "save_resume_state", real)
    FakeBar.bars = []
    train_classifier(ClassifierConfig(**base, resume=True))
    (resumed,) = _train_bars()
    assert resumed.initial == 3 and resumed.n == resumed.total == first[0].total


def test_one_line_per_epoch_without_bars(demo_files, tmp_path, capsys):
    train_classifier(ClassifierConfig(data=DataConfig(csv=str(demo_files["promoters"])), stages=[[1, 1e-2, 1], [2, 5e-3, 0]],
                                      progress=False, out=str(tmp_path / "run"), **TINY))
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("classifier stage")]
    assert [l.split(":")[0] for l in lines] == ["classifier stage 0 epoch 1/1", "classifier stage 1 epoch 1/2",
                                                "classifier stage 1 epoch 2/2"]
    for line in lines:
        assert "train_loss=" in line and "valid_loss=" in line and "valid_mcc=" in line and line.endswith(" s)")


def test_lm_line_has_perplexity_and_validation_is_capped_in_proportion(demo_files, tmp_path, capsys):
    import numpy as np

    from gulm.configs import PretrainConfig
    from gulm.train.phases import capped_streams, pretrain_lm

    train, valid = np.arange(100_000), np.arange(11_000)
    t, v = capped_streams(train, valid, 10_000, 70)
    assert t.size == 10_000 and v.size == 1_100
    assert capped_streams(train, valid, 0, 70) == (train, valid)
    assert capped_streams(train, valid, 100, 70)[1].size == 8 * 70  # enough windows to validate
    pretrain_lm(PretrainConfig(fasta=[str(demo_files["genome"])], epochs=1, max_tokens=3000, progress=False,
                               out=str(tmp_path / "lm"), **TINY))
    (line,) = [l for l in capsys.readouterr().out.splitlines() if l.startswith("pretrain stage")]
    assert "valid_perplexity=" in line and "valid_loss=" in line
