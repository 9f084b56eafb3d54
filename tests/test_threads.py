"""gulm.threads: the default thread count does not oversubscribe, explicit requests are capped
at the CPUs this process may use, and the choice is printed once."""
import pytest
import torch

from gulm import threads as T


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    T._announced.clear()
    yield
    torch.set_num_threads(before)
    T._announced.clear()


@pytest.mark.parametrize("cpus, load, busy, expected", [
    (2, 0.0, 0.0, 2), (2, 0.3, 0.3, 2), (2, 1.0, 1.0, 1), (2, 1.2, 1.0, 1), (2, 6.0, 2.0, 1),
    (8, 2.0, 2.0, 6), (8, 0.4, 0.0, 8), (1, 0.0, 0.0, 1),
    # The load average still counts a command that just ended (or this process): the CPUs
    # sampled now bound it.
    (2, 1.5, 0.0, 2),
    # A competitor that started seconds ago has not reached the load average yet.
    (2, 0.1, 1.0, 2),
])
def test_default_leaves_busy_cores_out(cpus, load, busy, expected):
    assert T.default_threads(cpus=cpus, machine_cpus=cpus, load=load, busy=busy) == expected


def test_default_never_exceeds_the_affinity_mask():
    # A process pinned to 2 of 16 CPUs on an idle machine: 2 threads, not 16.
    assert T.default_threads(cpus=2, machine_cpus=16, load=0.0, busy=0.0) == 2
    # The same machine with 15 busy cores (~1.9 of them on this mask): one thread.
    assert T.default_threads(cpus=2, machine_cpus=16, load=15.0, busy=1.9) == 1


def test_busy_sample_sees_another_process():
    import subprocess
    import sys
    import time
    import os
    mask = sorted(os.sched_getaffinity(0))
    before = T.busy_cpus_now(0.2)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(hog.pid, {mask[0]})
        time.sleep(0.3)
        during = T.busy_cpus_now(0.3)
    finally:
        hog.kill()
        hog.wait()
    assert during is not None and during >= 0.6, (before, during)


def test_resolve_sets_torch_and_reports_once(capsys):
    n = T.resolve_threads(None, cpus=2, load=1.1, busy=1.0)
    assert n == 1 and torch.get_num_threads() == 1
    err = capsys.readouterr().err
    assert "gulm: using 1 CPU thread" in err and "1-minute load 1.10, 1.0 busy now" in err
    T.resolve_threads(None, cpus=2, load=1.1, busy=1.0)
    assert capsys.readouterr().err == ""  # printed once


def test_explicit_request_is_capped_and_said(capsys):
    assert T.resolve_threads(5, cpus=2) == 2
    assert torch.get_num_threads() == 2
    assert "requested 5; this process may run on 2 CPUs" in capsys.readouterr().err
    assert T.resolve_threads(1, cpus=2) == 1
    assert capsys.readouterr().err == ""  # as requested: nothing to say
    T.resolve_threads(1, cpus=2, verbose=True)
    assert "gulm: using 1 CPU thread" in capsys.readouterr().err


def test_zero_means_automatic_and_negative_is_refused():
    assert T.resolve_threads(0, cpus=2, load=0.0, busy=0.0) == 2
    with pytest.raises(ValueError, match="threads must be >= 0"):
        T.resolve_threads(-1)


def test_live_default_is_within_the_affinity_mask():
    n = T.resolve_threads()
    assert 1 <= n <= T.available_cpus()
