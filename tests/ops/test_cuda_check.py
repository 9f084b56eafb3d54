"""The CUDA safety net (gulm.ops.cuda_check), tested on the CPU: a gate fed a deliberately
wrong fake kernel must fall back to the verified path with one warning, cache its verdict, and
obey GULM_CUDA_KERNELS; the LSTM check must pass the real kernel and fail a wrong one, and the
verified LSTM path must give the op's results."""
import warnings

import pytest
import torch

from gulm import _ext
from gulm.ops import cuda_check
from gulm.ops import kmer as K
from gulm.ops.kmer_checks import GATES
from gulm.ops.lstm import dropconnect_mask, kernel_check, verified_lstm, wd_lstm

pytestmark = pytest.mark.skipif(not _ext.HAS_EXTENSION, reason="gulm._C not built")
CPU = torch.device("cpu")
SEQ = torch.frombuffer(bytearray(b"ACGTNacgtuRYACGTTGCA" * 5), dtype=torch.uint8)


def encode_check(kernel):
    """A first-use check of a k-mer encoder against the reference, as gulm.ops.kmer builds."""
    def check(device):
        return cuda_check.compare_outputs([kernel(SEQ.to(device), 5, 2)], [K.kmer_encode_ref(SEQ, 5, 2)],
                                          atol=0, rtol=0)
    return check


def good_kernel(seq, k, stride):
    return torch.ops.gulm.kmer_encode(seq, k, stride, torch.int64)


def wrong_kernel(seq, k, stride):  # off by one in every id
    return good_kernel(seq, k, stride) + 1


def raising_kernel(seq, k, stride):
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


@pytest.fixture
def check_mode(monkeypatch):
    monkeypatch.delenv("GULM_CUDA_KERNELS", raising=False)
    return monkeypatch


def test_wrong_kernel_falls_back_with_one_warning(check_mode):
    gate = cuda_check.KernelGate("fake::encode", encode_check(wrong_kernel), "the CPU kernel")
    with pytest.warns(RuntimeWarning, match=r"fake::encode did not match its reference on cpu .*differs.*the CPU kernel"):
        out = gate.run(CPU, wrong_kernel, good_kernel, SEQ, 5, 2)
    torch.testing.assert_close(out, K.kmer_encode_ref(SEQ, 5, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the verdict is cached: no second check, no second warning
        out = gate.run(CPU, wrong_kernel, good_kernel, SEQ, 5, 2)
    torch.testing.assert_close(out, K.kmer_encode_ref(SEQ, 5, 2))
    assert gate.checks_run == 1


def test_raising_kernel_falls_back(check_mode):
    gate = cuda_check.KernelGate("fake::raise", encode_check(raising_kernel), "the CPU kernel")
    with pytest.warns(RuntimeWarning, match="raised RuntimeError: CUDA error: an illegal memory access"):
        assert not gate.use_kernel(CPU)


def test_good_kernel_is_used_without_warning(check_mode):
    gate = cuda_check.KernelGate("fake::good", encode_check(good_kernel), "the CPU kernel")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = gate.run(CPU, good_kernel, wrong_kernel, SEQ, 5, 2)
    torch.testing.assert_close(out, K.kmer_encode_ref(SEQ, 5, 2))


def test_verdicts_are_per_device_and_build_and_can_be_cleared(check_mode, monkeypatch):
    gate = cuda_check.KernelGate("fake::good2", encode_check(good_kernel), "the CPU kernel")
    assert gate.use_kernel(CPU) and gate.use_kernel(CPU)
    assert gate.checks_run == 1
    monkeypatch.setattr(cuda_check, "build_id", lambda: "a rebuilt extension")
    assert gate.use_kernel(CPU)
    assert gate.checks_run == 2
    cuda_check.clear_verdicts([gate])
    assert gate.use_kernel(CPU)
    assert gate.checks_run == 3


@pytest.mark.parametrize("value, expected", [("on", True), ("off", False), ("ON", True)])
def test_modes_skip_the_check(monkeypatch, value, expected):
    monkeypatch.setenv("GULM_CUDA_KERNELS", value)
    gate = cuda_check.KernelGate("fake::mode", encode_check(wrong_kernel), "the CPU kernel")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # off is the user's choice: no warning either
        assert gate.use_kernel(CPU) is expected
    assert gate.checks_run == 0


def test_bad_mode_is_refused(monkeypatch):
    monkeypatch.setenv("GULM_CUDA_KERNELS", "maybe")
    gate = cuda_check.KernelGate("fake::bad", encode_check(good_kernel), "the CPU kernel")
    with pytest.raises(ValueError, match="GULM_CUDA_KERNELS must be one of check, on, off"):
        gate.use_kernel(CPU)


def test_build_id_names_the_extension():
    assert _ext._C.__file__ in cuda_check.build_id()
    assert torch.__version__ in cuda_check.build_id()


# ---- the LSTM -------------------------------------------------------------------------------


def real_lstm(*args):
    return torch.ops.gulm.wd_lstm(*args)


def lstm_wrong_forward(*args):
    y, hT, cT, gates, cell = real_lstm(*args)
    return y * 1.01, hT, cT, gates, cell


class _HalfGrad(torch.autograd.Function):
    """Identity forward; halves the gradient."""

    @staticmethod
    def forward(ctx, t):
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return g * 0.5


def lstm_wrong_backward(x, w_ih, w_hh, *rest):
    # Right outputs, but the w_hh gradient off by a factor (as a kernel that forgot the mask).
    return real_lstm(x, w_ih, _HalfGrad.apply(w_hh), *rest)


def test_lstm_check_passes_the_real_kernel():
    assert kernel_check(real_lstm, dtypes=(torch.float32, torch.bfloat16))(CPU) is None


@pytest.mark.parametrize("kernel, words", [(lstm_wrong_forward, "float32: output 0 differs"),
                                           (lstm_wrong_backward, "float32: output 5 differs")])
def test_lstm_check_catches_a_wrong_kernel(kernel, words):
    problem = kernel_check(kernel, dtypes=(torch.float32,))(CPU)
    assert problem is not None and words in problem


def test_lstm_gate_with_a_wrong_kernel_takes_the_verified_path(check_mode):
    gate = cuda_check.KernelGate("fake::lstm", kernel_check(lstm_wrong_forward, dtypes=(torch.float32,)),
                                 "the reference")
    g = torch.Generator().manual_seed(3)
    T, B, I, H = 6, 4, 5, 8
    args = [torch.randn(s, generator=g) * 0.5 for s in ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (B, H), (B, H))]
    mask = dropconnect_mask(args[2], 0.4, torch.Generator().manual_seed(1))
    with pytest.warns(RuntimeWarning, match="fake::lstm"):
        y, hT, cT = gate.run(CPU, lambda *a, save: lstm_wrong_forward(*a, save)[:3], verified_lstm,
                             *args, mask, save=False)
    want = wd_lstm(*args, mask=mask)
    for a, b in zip((y, hT, cT), want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("with_mask", [False, True])
def test_verified_lstm_matches_the_op(with_mask):
    g = torch.Generator().manual_seed(5)
    T, B, I, H = 7, 3, 4, 6
    leaves = [(torch.randn(s, generator=g) * 0.5).requires_grad_()
              for s in ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (B, H), (B, H))]
    mask = dropconnect_mask(leaves[2], 0.3, torch.Generator().manual_seed(2)) if with_mask else None
    want = wd_lstm(*leaves, mask=mask)
    # Inference: one torch.lstm call with the dropped weight.
    with torch.no_grad():
        got = verified_lstm(*leaves, mask, save=False)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # Training: the reference, differentiable.
    got = verified_lstm(*leaves, mask, save=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    ga = torch.autograd.grad(sum(o.sum() for o in got), leaves)
    gb = torch.autograd.grad(sum(o.sum() for o in want), leaves)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_every_cuda_kmer_op_has_a_check_that_passes_the_cpu_kernel():
    # The checks the real gates run, pointed at the CPU kernels (which the rest of the suite
    # verifies): a check that fails a correct kernel would turn every GPU run to the fallback.
    for name, gate in GATES.items():
        assert gate._check(CPU) is None, name


@pytest.mark.cuda
@pytest.mark.skipif(not (_ext.HAS_CUDA_KERNELS and torch.cuda.is_available()),
                    reason="needs a GPU and the CUDA build of gulm._C")
def test_real_kernels_pass_their_checks_on_the_device():
    # What a user's first call runs; a failure here means users get the fallback (and a warning).
    device = torch.device("cuda")
    for name, gate in GATES.items():
        assert gate._check(device) is None, name
    assert kernel_check(real_lstm)(device) is None
