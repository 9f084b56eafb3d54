"""The figures of benchmarks/scan_ecoli.py on hand-made intervals, and its clean skip without data."""
import importlib.util
import os

import numpy as np
import pytest

import gulm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("scan_ecoli", os.path.join(ROOT, "benchmarks", "scan_ecoli.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_union_and_overlaps(bench):
    u = bench.union(np.array([[50, 60], [0, 10], [5, 20], [20, 30]]))
    assert u.tolist() == [[0, 30], [50, 60]]
    q = np.array([[30, 50], [29, 31], [59, 70], [60, 70], [-5, 1]])
    assert bench.overlaps(q, u).tolist() == [False, True, True, False, True]


def test_promoter_regions_are_strand_aware(bench):
    from gulm.data.intervals import Interval

    genes = [Interval("c", 1000, 2000, "a", None, "+"), Interval("c", 3000, 4000, "b", None, "-"),
             Interval("c", 100, 900, "edge", None, "+"), Interval("d", 5000, 6000, "other", None, "+")]
    prom = bench.promoter_regions(genes, "c", 0, 10_000)
    assert prom["+"].tolist() == [[850, 1050]] and prom["-"].tolist() == [[3950, 4150]]  # [start-150, start+50)


def test_score_calls(bench):
    prom = {"+": np.array([[100, 300]]), "-": np.array([[700, 900], [5000, 5200]])}
    calls = {"start": np.array([250, 800, 2000, 100]), "end": np.array([400, 950, 2150, 250]),
             "strand": np.array(["+", "-", "+", "-"])}
    r = bench.score_calls(calls, prom, 0, 10_000, n_shuffles=20)
    assert r["calls"] == 4 and r["calls_on_promoters"] == 0.5  # the minus call at 100 is on the wrong strand
    assert r["promoters_hit"] == pytest.approx(2 / 3)
    assert r["fraction_called"] == pytest.approx((150 + 150 + 150 + 150) / 20_000)
    assert 0 < r["shuffled_mean"] < 0.5 and r["enrichment"] == pytest.approx(0.5 / r["shuffled_mean"])
    assert 1 / 21 <= r["empirical_p"] <= 1


def test_skips_cleanly_without_data(bench, monkeypatch, capsys):
    monkeypatch.delenv("GULM_DATA", raising=False)
    assert bench.main([]) == 0
    assert "skipped" in capsys.readouterr().out
