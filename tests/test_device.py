"""gulm.runtime.device: bf16 is chosen (and allowed silently) only where the CPU computes it natively."""
import warnings

import pytest
import torch

from gulm.runtime import device as D


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Point the /proc/cpuinfo reader at a fake file with the given flags."""
    real_open = open

    def fake(flags):
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")

        def opener(name, *a, **k):
            return real_open(path if name == "/proc/cpuinfo" else name, *a, **k)

        monkeypatch.setattr("builtins.open", opener)
        monkeypatch.setattr(D, "_warned_bf16", False)
        D.cpu_has_native_bf16.cache_clear()  # the answer is cached per process

    yield fake
    D.cpu_has_native_bf16.cache_clear()  # later tests read the real CPU again


def test_avx2_only_cpu_is_not_native_bf16(cpuinfo):
    cpuinfo("fpu sse2 avx avx2 fma")
    assert not D.cpu_has_native_bf16()
    assert D.fastest_dtype("cpu") == "fp32"


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_native_bf16_flags(cpuinfo, flag):
    cpuinfo(f"fpu avx2 avx512f {flag}")
    assert D.cpu_has_native_bf16()
    assert D.fastest_dtype("cpu") == "bf16"


def test_bf16_on_emulating_cpu_warns_once(cpuinfo):
    cpuinfo("fpu avx2 fma")
    with pytest.warns(UserWarning, match="no native bfloat16"):
        ctx = D.precision("bf16", "cpu")
    assert isinstance(ctx, torch.autocast)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.precision("bf16", "cpu")  # the second time is silent


def test_fp32_never_warns(cpuinfo):
    cpuinfo("fpu avx2 fma")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.precision("fp32", "cpu")
