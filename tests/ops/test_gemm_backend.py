"""The CPU GEMM backends of the fused LSTM (csrc/torch/gemm_cpu.h): each forced backend gives
the reference's results, the automatic choice keeps the faster backend per shape, and timing
never moves torch's global random stream. (gulm's own AVX-512 kernel is also tested alone in
csrc/tests/test_sgemm.cpp.)"""
import os

import pytest
import torch

from gulm import _ext
from gulm.ops.lstm import gemm_backend_report, wd_lstm, wd_lstm_ref

pytestmark = pytest.mark.skipif(not _ext.HAS_EXTENSION, reason="gulm._C not built")

# Large enough that each step is cut into chunks of hidden units when threaded (single-threaded
# slice GEMMs, packed per chunk), small enough to be quick.
T, B, I, H = 4, 32, 40, 200
# gulm's own packed fp32 kernel runs on AVX-512 CPUs (capped by GULM_CPU_ISA).
AVX512 = _ext.HAS_EXTENSION and _ext._C.cpu_isa() == "avx512"


def _problem(dtype, seed=0, t=T):
    g = torch.Generator().manual_seed(seed)
    s = H ** -0.5
    shapes = ((t, B, I), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (B, H), (B, H))
    tensors = [((torch.rand(sh, generator=g) * 2 - 1) * (1.0 if k in (0, 5, 6) else s))
               for k, sh in enumerate(shapes)]
    mask = (torch.rand(4 * H, H, generator=g) > 0.25).float() / 0.75
    leaves = [t.to(dtype).requires_grad_() for t in tensors[:6]]
    return leaves, tensors[6], mask.to(dtype)


def _run(fn, leaves, c0, mask):
    y, hT, cT = fn(*leaves, c0, mask=mask)
    loss = (y.float() ** 2).sum() + hT.float().sum() + cT.float().sum()
    return [y, hT, cT, *torch.autograd.grad(loss, leaves)]


@pytest.mark.parametrize("backend", ["mkl", "onednn", "avx512", "auto"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_backend_matches_reference(monkeypatch, threads, backend, n_threads, dtype):
    if backend == "onednn" and not _ext._C.gemm_onednn_available():
        pytest.skip("this torch has no mkldnn ops")
    if backend == "avx512" and not AVX512:
        pytest.skip("no AVX-512 on this CPU")
    monkeypatch.setenv("GULM_GEMM", backend)
    threads(n_threads)
    leaves, c0, mask = _problem(dtype)
    got = _run(wd_lstm, leaves, c0, mask)
    want = _run(wd_lstm_ref, leaves, c0, mask)
    tol = 2e-5 if dtype == torch.float32 else 4e-2
    for k, (a, b) in enumerate(zip(got, want)):
        scale = b.float().abs().max().clamp(min=1.0)
        torch.testing.assert_close(a.float() / scale, b.float() / scale, atol=tol, rtol=0,
                                   msg=lambda m, k=k: f"output {k} ({backend}, {n_threads} threads): {m}")


def test_backends_agree_with_each_other(monkeypatch, threads):
    threads(2)
    leaves, c0, mask = _problem(torch.float32)
    results = {}
    for backend in ("mkl", "onednn") + (("avx512",) if AVX512 else ()):
        monkeypatch.setenv("GULM_GEMM", backend)
        results[backend] = _run(wd_lstm, leaves, c0, mask)
    for backend, got in results.items():
        for a, b in zip(got, results["mkl"]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m: f"{backend}: {m}")


def test_auto_keeps_the_faster_backend_per_shape(monkeypatch, threads):
    monkeypatch.setenv("GULM_GEMM", "auto")
    threads(2)
    _ext._C.clear_gemm_choices()
    leaves, c0, mask = _problem(torch.float32)
    _run(wd_lstm, leaves, c0, mask)
    report = gemm_backend_report()
    assert report["request"] == "auto"
    choices = report["choices"]
    # Timed: the packed per-chunk recurrent GEMMs (forward and backward) and the big GEMMs.
    assert any(c["packed"] and c["single_thread"] for c in choices)
    assert any(not c["packed"] for c in choices)
    for c in choices:
        assert c["mkl_us"] > 0
        if not report["onednn_available"]:
            assert c["onednn_us"] < 0
        # gulm's kernel is timed for every fp32 GEMM wherever AVX-512 is there
        assert (c["avx512_us"] >= 0) == (AVX512 and c["dtype"] == "Float"), c
        # MKL unless another backend is 10% faster; then the fastest of those; one-off GEMMs
        # go to gulm's kernel wherever it is faster than the kept one (no margin)
        others = {b: c[f"{b}_us"] for b in ("onednn", "avx512") if 0 <= c[f"{b}_us"] < 0.90 * c["mkl_us"]}
        kept = min(others, key=others.get) if others else "mkl"
        if not c["packed"] and not c["single_thread"] and 0 <= c["avx512_us"] < c[f"{kept}_us"]:
            kept = "avx512"
        assert c["backend"] == kept, c
    # A second call reuses the choices: nothing new is timed.
    _run(wd_lstm, leaves, c0, mask)
    assert len(gemm_backend_report()["choices"]) == len(choices)


def test_auto_times_each_size_class_once(monkeypatch, threads):
    """A new sequence length within the same power of two (AWD-LSTM's variable BPTT) reuses the
    choices of the one-off GEMMs, whose m or k is B * T: nothing new is timed mid-training."""
    monkeypatch.setenv("GULM_GEMM", "auto")
    threads(2)
    _ext._C.clear_gemm_choices()
    _run(wd_lstm, *_problem(torch.float32, t=40))  # B * T = 1280
    first = gemm_backend_report()["choices"]
    assert any(not c["packed"] for c in first)
    for t in (36, 44, 48):  # B * T = 1152, 1408, 1536: the same power of two, 2048
        _run(wd_lstm, *_problem(torch.float32, t=t))
    assert gemm_backend_report()["choices"] == first


def test_forced_backends_time_nothing(monkeypatch):
    _ext._C.clear_gemm_choices()
    leaves, c0, mask = _problem(torch.float32)
    for backend in ("mkl", "onednn", "avx512"):
        monkeypatch.setenv("GULM_GEMM", backend)
        _run(wd_lstm, leaves, c0, mask)
        assert gemm_backend_report()["request"] == backend
    assert gemm_backend_report()["choices"] == []


def test_timing_does_not_move_the_global_random_stream(monkeypatch):
    monkeypatch.setenv("GULM_GEMM", "auto")
    leaves, c0, mask = _problem(torch.float32)
    draws = []
    for clear in (True, False):  # first with timing, then with the choices cached
        if clear:
            _ext._C.clear_gemm_choices()
        torch.manual_seed(123)
        _run(wd_lstm, leaves, c0, mask)
        draws.append(torch.rand(4))
    torch.testing.assert_close(draws[0], draws[1], atol=0, rtol=0)


def test_bad_request_names_the_variable(monkeypatch):
    monkeypatch.setenv("GULM_GEMM", "blas")
    leaves, c0, mask = _problem(torch.float32)
    with pytest.raises(RuntimeError, match="GULM_GEMM must be auto, mkl, onednn or avx512, got 'blas'"):
        wd_lstm(*leaves, c0, mask=mask)


def test_reused_scratch_memory_gives_identical_results(monkeypatch):
    """The CPU binding keeps the kernels' scratch buffers between calls (per thread, by size):
    a call after calls of other sizes, reusing a buffer full of their data, gives bit-identical
    outputs and gradients."""
    monkeypatch.setenv("GULM_GEMM", "mkl")  # one backend: identical rounding between calls
    leaves, c0, mask = _problem(torch.float32)
    first = _run(wd_lstm, leaves, c0, mask)
    for h in (H // 2, H * 2):  # other sizes: other buffers taken and given back
        g = torch.Generator().manual_seed(1)
        other = [torch.randn(s, generator=g).requires_grad_() for s in
                 ((T, B, I), (4 * h, I), (4 * h, h), (4 * h,), (4 * h,), (B, h))]
        _run(wd_lstm, other, torch.zeros(B, h), None)
    again = _run(wd_lstm, leaves, c0, mask)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    # the kept memory can be given back, and the op allocates again afterwards
    from gulm.ops.lstm import release_scratch

    kept = _ext._C.lstm_scratch_bytes()
    assert kept > 0
    assert release_scratch() == kept and _ext._C.lstm_scratch_bytes() == 0
    for a, b in zip(first, _run(wd_lstm, leaves, c0, mask)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("value,kept", [(None, True), ("0", False), ("1", False), ("lots", None)])
def test_scratch_limit_comes_from_the_environment(value, kept):
    """GULM_LSTM_SCRATCH_MB bounds what each thread keeps (here a call's workspaces of about 2 MiB):
    unset 1 GiB, 0 nothing, 1 MiB too little for them; a bad value is named before any work."""
    import subprocess
    import sys

    code = ("import torch; from gulm import _ext; from gulm.ops.lstm import wd_lstm\n"
            "x = torch.randn(20, 64, 32); w = torch.randn(1024, 32); u = torch.randn(1024, 256)\n"
            "b = torch.zeros(1024); h = torch.zeros(64, 256)\n"
            "wd_lstm(x, w, u, b, b, h, h)\n"
            "print(_ext._C.lstm_scratch_bytes())\n")
    env = {k: v for k, v in os.environ.items() if k != "GULM_LSTM_SCRATCH_MB"}
    if value is not None:
        env["GULM_LSTM_SCRATCH_MB"] = value
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if kept is None:
        assert out.returncode != 0 and "GULM_LSTM_SCRATCH_MB must be a whole number of MiB" in out.stderr
    else:
        assert out.returncode == 0, out.stderr
        assert (int(out.stdout.split()[-1]) > 0) == kept


def test_training_gives_the_scratch_memory_back(tmp_path):
    """The kept scratch memory is freed when a training phase ends, after its final scoring too."""
    from gulm.configs import ClassifierConfig, DataConfig
    from gulm.train.classifier import train_classifier

    rng = torch.Generator().manual_seed(0)
    lines = ["id,sequence,label,set"]
    for i in range(48):
        seq = "".join("ACGT"[j] for j in torch.randint(0, 4, (60,), generator=rng).tolist())
        lines.append(f"s{i},{seq},{'ab'[(i // 4) % 2]},{['train', 'train', 'valid', 'test'][i % 4]}")
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    leaves, c0, mask = _problem(torch.float32)
    _run(wd_lstm, leaves, c0, mask)
    assert _ext._C.lstm_scratch_bytes() > 0
    train_classifier(ClassifierConfig(data=DataConfig(csv=str(tmp_path / "d.csv"), split_col="set"), k=3,
                                      stride=1, emb_size=16, hidden_size=32, n_layers=2, bs=8, progress=False,
                                      threads=1, stages=[[1, 1e-2, 0]], out=str(tmp_path / "run")))
    assert _ext._C.lstm_scratch_bytes() == 0
