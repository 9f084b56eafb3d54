"""A save killed at any step leaves a loadable checkpoint, and the next run recovers it.

Each kill point of :func:`gulm.runtime.checkpoint.save_checkpoint` is hit by fault injection: the
module's ``fault_point`` hook raises a BaseException there, which (like ``kill -9``) skips the
save's own clean-up of ordinary errors. One test kills a real process with ``os._exit``."""
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import torch

from gulm.data.tokenizer import KmerTokenizer
from gulm.nn import AWDConfig, classifier
from gulm.runtime import checkpoint as ckpt

TOK = KmerTokenizer(3, 1)
CFG = AWDConfig(vocab_size=TOK.vocab_size, emb_size=8, hidden_size=16, n_layers=2, n_classes=2)
KILL_POINTS = ["written", "linked", "old-moved", "renamed", "old-removed"]


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no except-clause of the save runs."""


def _model(seed):
    torch.manual_seed(seed)
    return classifier(CFG).eval()


def _save(folder, seed):
    return ckpt.save_checkpoint(folder, _model(seed), kind="classifier", model_config=CFG.to_dict(),
                                tokenizer=TOK, metrics={"seed": seed}, extra={"classes": ["a", "b"]})


def _weights_seed(folder):
    """Which save's weights ``folder`` holds (its metrics say; the weights must agree)."""
    model, _, cfg = ckpt.load_checkpoint(folder, kind="classifier")
    import json

    seed = json.loads(open(os.path.join(folder, "metrics.json")).read())["seed"]
    expected = _model(seed).state_dict()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0, msg=k)
    return seed


def _leftovers(folder):
    parent, name = os.path.split(str(folder))
    return sorted(n for n in os.listdir(parent) if n.startswith((f".ckpt-{name}-", f"{name}.old")))


def _kill_at(monkeypatch, point):
    def fault(step):
        if step == point:
            raise Killed(step)

    monkeypatch.setattr(ckpt, "fault_point", fault)


@pytest.fixture
def run_dir(tmp_path):
    """A checkpoint of save 1 with the files a training run keeps beside it."""
    folder = tmp_path / "runs" / "x"
    _save(folder, 1)
    ckpt.save_resume_state(folder, {"epoch": 3, "step": 0, "w": torch.arange(4)})
    (folder / "log.csv").write_text("stage,epoch\n0,1\n")
    (folder / "tb").mkdir()
    (folder / "tb" / "events").write_text("scalars")
    return folder


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_every_step_of_a_save_leaves_a_good_checkpoint(run_dir, monkeypatch, point):
    _kill_at(monkeypatch, point)
    with pytest.raises(Killed):
        _save(run_dir, 2)
    monkeypatch.setattr(ckpt, "fault_point", lambda step: None)
    old = str(run_dir) + ".old"
    # right after the kill: a complete checkpoint exists, in place or as x.old
    good = [f for f in (str(run_dir), old) if os.path.exists(os.path.join(f, "model.safetensors"))
            and os.path.exists(os.path.join(f, "config.json"))]
    assert good, os.listdir(run_dir.parent)
    if not run_dir.exists():  # killed between the two renames: a reader names the leftover
        with pytest.raises(ckpt.CheckpointError, match=r"x\.old holds the last good checkpoint"):
            ckpt.resolve_checkpoint(run_dir)
    # the next training run recovers it: the old or the new checkpoint, whole, with its resume state
    notes = ckpt.recover_checkpoint(run_dir)
    assert bool(notes) == (point != "old-removed")  # after the last step there is nothing to recover
    assert _leftovers(run_dir) == []
    assert _weights_seed(run_dir) == (1 if point in ("written", "linked", "old-moved") else 2)
    state = ckpt.read_resume_state(run_dir)
    assert state["epoch"] == 3 and torch.equal(state["w"], torch.arange(4))
    assert (run_dir / "log.csv").read_text().startswith("stage") and (run_dir / "tb" / "events").exists()
    # and saves again cleanly
    _save(run_dir, 3)
    assert _weights_seed(run_dir) == 3 and _leftovers(run_dir) == []
    assert ckpt.read_resume_state(run_dir)["epoch"] == 3


@pytest.mark.parametrize("point", ["written", "renamed"])
def test_a_kill_during_the_first_save(tmp_path, monkeypatch, point):
    folder = tmp_path / "fresh"
    _kill_at(monkeypatch, point)
    with pytest.raises(Killed):
        _save(folder, 1)
    monkeypatch.setattr(ckpt, "fault_point", lambda step: None)
    ckpt.recover_checkpoint(folder)
    assert _leftovers(folder) == []
    if point == "renamed":
        assert _weights_seed(folder) == 1
    else:  # nothing good existed yet: nothing is left half-written
        assert not folder.exists()
    _save(folder, 2)
    assert _weights_seed(folder) == 2


def test_the_next_save_never_deletes_the_only_good_copy(run_dir, monkeypatch):
    """The reported loss: killed between x -> x.old and tmp -> x, then the next run saved again
    and deleted x.old. A save now restores x.old first."""
    _kill_at(monkeypatch, "old-moved")
    with pytest.raises(Killed):
        _save(run_dir, 2)
    monkeypatch.setattr(ckpt, "fault_point", lambda step: None)
    assert not run_dir.exists()
    ckpt.save_resume_state(str(run_dir) + ".old", {"epoch": 3, "step": 0, "w": torch.arange(4)})  # unchanged
    _save(run_dir, 4)  # no explicit recovery: save_checkpoint recovers first
    assert _weights_seed(run_dir) == 4 and _leftovers(run_dir) == []
    assert ckpt.read_resume_state(run_dir)["epoch"] == 3  # resume.pt came along


def test_a_kill_while_writing_resume_state_keeps_the_previous_one(run_dir, monkeypatch):
    _kill_at(monkeypatch, "resume-written")
    with pytest.raises(Killed):
        ckpt.save_resume_state(run_dir, {"epoch": 9})
    monkeypatch.setattr(ckpt, "fault_point", lambda step: None)
    assert ckpt.read_resume_state(run_dir)["epoch"] == 3
    assert (run_dir / "resume.pt.tmp").exists()
    assert any("resume.pt.tmp" in n for n in ckpt.recover_checkpoint(run_dir))
    assert not (run_dir / "resume.pt.tmp").exists()


def test_an_ordinary_error_during_a_save_cleans_up_and_keeps_the_old(run_dir, monkeypatch):
    def fail(step):
        if step == "old-moved":
            raise OSError("disk full")

    monkeypatch.setattr(ckpt, "fault_point", fail)
    with pytest.raises(OSError, match="disk full"):
        _save(run_dir, 2)
    assert _leftovers(run_dir) == [] and _weights_seed(run_dir) == 1


def test_training_start_recovers_and_says_so(run_dir, monkeypatch, capsys):
    from gulm.configs import PretrainConfig
    from gulm.train.common import start_phase

    _kill_at(monkeypatch, "old-moved")
    with pytest.raises(Killed):
        _save(run_dir, 2)
    monkeypatch.setattr(ckpt, "fault_point", lambda step: None)
    n = torch.get_num_threads()
    try:
        start_phase(PretrainConfig(out=str(run_dir), threads=n))
    finally:
        torch.set_num_threads(n)
    assert "restored the last good checkpoint" in capsys.readouterr().err
    assert _weights_seed(run_dir) == 1


def test_a_real_kill_between_the_renames(run_dir):
    """os._exit in a child process: no Python clean-up at all, as with kill -9."""
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from gulm.runtime import checkpoint as ckpt
        import test_checkpoint_faults as t
        ckpt.fault_point = lambda step: os._exit(137) if step == "old-moved" else None
        t._save({str(run_dir)!r}, 2)
        """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 137, res.stderr
    assert not run_dir.exists() and os.path.isdir(str(run_dir) + ".old")
    ckpt.recover_checkpoint(run_dir)
    assert _weights_seed(run_dir) == 1 and ckpt.read_resume_state(run_dir)["epoch"] == 3


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_checkpoints_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        folder = tmp_path / "runs" / "x"
        _save(folder, 1)
        _save(folder, 2)  # the swapped-in folder too
        ckpt.save_resume_state(folder, {"epoch": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask
    for name in ("model.safetensors", "config.json", "metrics.json", "resume.pt"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o666 & ~mask, name


def test_recovery_touches_only_its_own_folder(tmp_path, monkeypatch):
    """Leftovers of x are not those of x-2 (whose temporary folder starts with x's prefix)."""
    _save(tmp_path / "x", 1)
    _kill_at(monkeypatch, "written")
    with pytest.raises(Killed):
        _save(tmp_path / "x-2", 1)
    monkeypatch.setattr(ckpt, "fault_point", lambda step: None)
    assert ckpt.recover_checkpoint(tmp_path / "x") == []
    assert len(_leftovers(tmp_path / "x-2")) == 1
    assert len(ckpt.recover_checkpoint(tmp_path / "x-2")) == 1 and _leftovers(tmp_path / "x-2") == []
