"""Fixtures for the op tests (tests/conftest.py is shared; these stay local to tests/ops)."""
import numpy as np
import pytest
import torch

# Bytes the tokenizer must treat as bases (upper/lower case, U) and as non-bases.
BASES = "ACGTacgtUu"
NON_BASES = "NnRYKMSWBDHVrykmswbdhv-.* \t\r\nX0"


def random_sequence(rng: np.random.Generator, length: int, bad_rate: float = 0.02) -> bytes:
    """ACGT in mixed case with U, plus a fraction of other bytes, as ASCII bytes."""
    alphabet = np.frombuffer(BASES.encode(), dtype=np.uint8)
    seq = alphabet[rng.integers(0, len(alphabet), length)]
    if bad_rate > 0 and length:
        bad = rng.random(length) < bad_rate
        others = np.frombuffer(NON_BASES.encode() + b"\x80\xff\x00", dtype=np.uint8)
        seq[bad] = others[rng.integers(0, len(others), int(bad.sum()))]
    return seq.tobytes()


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture
def make_seq(rng):
    def make(length: int, bad_rate: float = 0.02) -> bytes:
        return random_sequence(rng, length, bad_rate)

    return make


@pytest.fixture
def threads():
    """Run a test body with a given intra-op thread count, restoring it afterwards."""
    before = torch.get_num_threads()

    def set_threads(n: int) -> None:
        torch.set_num_threads(n)

    yield set_threads
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cuda_kernels_unchecked(request, monkeypatch):
    """CUDA tests judge the kernels themselves: gulm.ops.cuda_check must not quietly replace a
    wrong kernel by its fallback there (GULM_CUDA_KERNELS=on runs the kernels unchecked)."""
    if request.node.get_closest_marker("cuda"):
        monkeypatch.setenv("GULM_CUDA_KERNELS", "on")
