import os

import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """A small synthetic genome and promoter set, written like a user's files."""
    from gulm.demo.synthetic import write_demo_data

    out = tmp_path_factory.mktemp("demo_data")
    return write_demo_data(out, length=40_000, seed=1, n_train=40)


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic GEMMs for exact comparisons
    yield
    torch.set_num_threads(n)
