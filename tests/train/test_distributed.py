"""DDP on CPU: two gloo processes under torchrun train the same model as one process."""
import os
import subprocess
import sys

import pytest
import torch

import gulm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _pretrain_cmd(demo_files, out):
    return ["-m", "gulm", "pretrain", "--fasta", str(demo_files["genome"]), "--out", str(out),
            "--emb-size", "16", "--hidden-size", "32", "--n-layers", "2", "--bs", "8", "--bptt", "20",
            "--epochs", "1", "--drop-mult", "0", "--max-tokens", "6000", "--progress", "false",
            "--both-strands", "false"]


@pytest.mark.slow
def test_ddp_gloo_two_processes_match_one(demo_files, tmp_path):
    from safetensors.torch import load_file

    single = subprocess.run([sys.executable] + _pretrain_cmd(demo_files, tmp_path / "one"),
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
        + _pretrain_cmd(demo_files, tmp_path / "two"),
        env=_env(), capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_file(tmp_path / "one" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    moved = 0.0
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-4, msg=k)
        moved = max(moved, float((a[k]).abs().max()))
    assert moved > 0
    # only rank 0 wrote the checkpoint and the log
    assert (tmp_path / "two" / "log.csv").read_text().count("\n") == 2
