"""Tests of benchmarks/reproduce: homology filter, read simulator, split protocol, baseline and
configs on synthetic inputs (always run), plus a smoke run of every task on the real data
(builder -> baseline -> gulm training -> metrics; skipped unless GULM_DATA is set)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from reproduce import baseline, homology, reads  # noqa: E402
from reproduce import datasets as dsets  # noqa: E402

RNG = np.random.default_rng(1234)


def _random_seq(n: int, rng=RNG) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def _mutate(seq: str, n: int, rng=RNG) -> str:
    s = list(seq)
    for i in rng.choice(len(s), n, replace=False):
        s[i] = "ACGT"[("ACGT".index(s[i]) + 1) % 4]
    return "".join(s)


# ---- homology ------------------------------------------------------------------------------
def test_canonical_kmers_are_strand_symmetric_and_skip_non_acgt():
    s = _random_seq(200)
    assert np.array_equal(homology.canonical_kmers(s, 15), homology.canonical_kmers(reads.reverse_complement(s), 15))
    with_n = s[:100] + "N" + s[101:]
    expected = set(homology.canonical_kmers(s[:100], 15).tolist()) | set(homology.canonical_kmers(s[101:], 15).tolist())
    assert set(homology.canonical_kmers(with_n, 15).tolist()) == expected
    assert homology.canonical_kmers("ACGT", 15).size == 0


def _family_set(n_families=60, members=3, rng=None):
    """Families of near-duplicates (a few substitutions, reverse complement, shifted overlap)
    plus singletons; returns sequences, labels and family ids."""
    rng = rng or np.random.default_rng(7)
    seqs, labels, fam = [], [], []
    for f in range(n_families):
        base = _random_seq(150, rng)
        variants = [base, _mutate(base, 4, rng), reads.reverse_complement(_mutate(base, 2, rng)),
                    base[40:] + _random_seq(40, rng)][:members]
        for v in variants:
            seqs.append(v)
            labels.append("a" if f % 2 else "b")
            fam.append(f)
    for i in range(400):
        seqs.append(_random_seq(150, rng))
        labels.append("a" if i % 2 else "b")
        fam.append(1000 + i)
    return seqs, labels, np.array(fam)


def test_kmer_graph_links_near_duplicates_on_both_strands():
    seqs, _, fam = _family_set()
    g = homology.kmer_graph(seqs, 15)
    linked = {(int(a), int(b)) for a, b in g.edges}
    for f in range(60):
        idx = np.flatnonzero(fam == f)
        comps = g.components()[idx]
        assert len(set(comps.tolist())) == 1, f"family {f} not connected"
        assert (int(idx[0]), int(idx[2])) in linked  # the reverse-complement copy
    # random 150-mers almost never share a 15-mer
    singles = np.flatnonzero(fam >= 1000)
    assert (g.degrees()[singles] == 0).mean() > 0.95


@pytest.mark.parametrize("mode", ["isolated", "mis"])
def test_homology_split_never_splits_near_duplicates_in_isolated_mode(mode):
    seqs, labels, fam = _family_set()
    g = homology.kmer_graph(seqs, 15)
    sizes = {"test": {"a": 40, "b": 40}, "valid": {"a": 30, "b": 30}}
    split, report = homology.homology_split(labels, g, sizes, mode=mode, seed=3)
    split = np.array(split)
    assert (split == "test").sum() == 80 and (split == "valid").sum() == 60
    for name, per in sizes.items():
        for lab, n in per.items():
            assert ((split == name) & (np.array(labels) == lab)).sum() == n
    crossing = [(a, b) for a, b in g.edges if (split[a] == "train") != (split[b] == "train")
                or (split[a] != split[b])]
    if mode == "isolated":
        assert not crossing and report["test_with_homolog_outside"] == 0
        for f in range(60):  # whole families stay in train
            assert set(split[fam == f]) == {"train"}
    else:  # a maximal independent set: no edge inside held-out splits, but train homologs allowed
        held = np.flatnonzero(split != "train")
        assert not any(a in held and b in held for a, b in g.edges)
        assert report["test_with_homolog_outside"] == sum(
            1 for i in np.flatnonzero(split == "test") if any((a == i or b == i) for a, b in g.edges))


def test_greedy_mis_is_independent_and_maximal():
    seqs, _, _ = _family_set(30)
    g = homology.kmer_graph(seqs, 15)
    mis = set(homology.greedy_mis(g, seed=1).tolist())
    nbrs = g.neighbours()
    assert not any(a in mis and b in mis for a, b in g.edges)
    assert all(v in mis or any(u in mis for u in nbrs[v]) for v in range(g.n))


def test_kmer_hit_regions_find_planted_copies():
    rng = np.random.default_rng(5)
    query = _random_seq(150, rng)
    genome = _random_seq(5000, rng) + reads.reverse_complement(_mutate(query, 3, rng)) + _random_seq(5000, rng)
    regions = homology.kmer_hit_regions([("chr", genome)], [query], 21, pad=10)
    assert regions and all(c == "chr" for c, _, _ in regions)
    assert min(s for _, s, _ in regions) <= 5000 and max(e for _, _, e in regions) >= 5150 - 21
    assert sum(e - s for _, s, e in regions) < 400


# ---- read simulator -----------------------------------------------------------------------
def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _template(rng):
    # forward primer with an IUPAC-compatible base, reverse site with one mismatch
    fwd = reads.FORWARD_PRIMER
    rev_site = reads.reverse_complement(reads.REVERSE_PRIMER.replace("M", "A").replace("R", "G"))
    rev_site = rev_site[:5] + ("A" if rev_site[5] != "A" else "C") + rev_site[6:]
    insert = _random_seq(450, rng)
    return _random_seq(300, rng) + fwd + insert + rev_site + _random_seq(300, rng), insert


def test_primer_matching_is_iupac_aware_and_amplicon_is_between_primers():
    rng = np.random.default_rng(11)
    template, insert = _template(rng)
    assert reads.find_primer("AAAACCC", "MMMM", 0) == (0, 0)  # M = A or C
    assert reads.find_primer("GGGG", "MMMM", 2) is None
    start, end = reads.find_amplicon(template)
    assert template[start:end] == insert
    s2, e2 = reads.find_amplicon(template, keep_primers=True)
    assert template[s2:e2].startswith(reads.FORWARD_PRIMER) and e2 - s2 == len(insert) + 17 + 18
    assert reads.find_amplicon(template, max_mismatches=0) is None  # the reverse site has a mismatch
    rs, st = reads.amplicon_reads(template, 30, np.random.default_rng(0), errors=reads.ErrorModel(0, 0, 0))
    assert all(insert.startswith(r) for r in rs) and all(len(r) >= 0.8 * len(insert) for r in rs)
    assert st["amplicon"] == (start, end)


def test_read_simulator_is_deterministic():
    rng_t = np.random.default_rng(3)
    template, _ = _template(rng_t)
    a = reads.shotgun_reads(template, 20, np.random.default_rng(42))[0]
    b = reads.shotgun_reads(template, 20, np.random.default_rng(42))[0]
    c = reads.shotgun_reads(template, 20, np.random.default_rng(43))[0]
    assert a == b and a != c
    assert reads.amplicon_reads(template, 5, np.random.default_rng(1))[0] == reads.amplicon_reads(
        template, 5, np.random.default_rng(1))[0]


def test_read_error_rate_matches_the_model():
    rng = np.random.default_rng(9)
    template = _random_seq(1500, rng)
    model = reads.ErrorModel(substitution=0.008, insertion=0.001, deletion=0.001)
    rs, st = reads.shotgun_reads(template, 400, np.random.default_rng(2), errors=model, min_len=150, max_len=250)
    realised = (st["substitution"] + st["insertion"] + st["deletion"]) / st["template_bases"]
    assert realised == pytest.approx(model.total, rel=0.15)
    assert 0.35 < st["minus_strand"] / 400 < 0.65
    assert all(140 <= len(r) <= 260 for r in rs)
    # independent check: edit distance of error-free vs erroneous copies of the same fragments
    exact, _ = reads.shotgun_reads(template, 40, np.random.default_rng(5), errors=reads.ErrorModel(0, 0, 0))
    err_rng = np.random.default_rng(6)
    noisy = [reads.apply_errors(x, model, err_rng)[0] for x in exact]
    assert all(r in template or reads.reverse_complement(r) in template for r in exact)
    dist = sum(_edit_distance(x, y) for x, y in zip(exact, noisy))
    bases = sum(len(x) for x in exact)
    assert 0.004 < dist / bases < 0.016


# ---- split protocol and dedupe --------------------------------------------------------------
def test_folds_are_disjoint_stratified_and_valid_is_carved_from_train(tmp_path):
    from gulm.data import read_labeled_csv

    seqs = [_random_seq(60) for _ in range(230)]
    labels = ["pos"] * 70 + ["neg"] * 160
    data, _ = dsets._dedupe(seqs, labels, [f"s{i}" for i in range(230)])
    splits = dsets._folds(data, tmp_path, 5, 0.1, seed=0)
    tests = []
    for sp in splits:
        ds = read_labeled_csv(tmp_path / sp["csv"])
        assert ds.sequences == data.sequences  # every fold file holds every item once
        s, lab = np.array(ds.split), np.array(ds.labels)
        assert set(s) == {"train", "valid", "test"}
        tests.append(set(np.flatnonzero(s == "test")))
        for c, n in (("pos", 70), ("neg", 160)):
            assert abs(((s == "test") & (lab == c)).sum() - n / 5) <= 1
            assert abs(((s == "valid") & (lab == c)).sum() - 0.1 * n * 4 / 5) <= 1
    assert set().union(*tests) == set(range(230))
    assert sum(len(t) for t in tests) == 230  # disjoint test folds
    (tmp_path / "again").mkdir()
    again = dsets._folds(data, tmp_path / "again", 5, 0.1, seed=0)
    assert [sp["counts"] for sp in again] == [sp["counts"] for sp in splits]


def test_dedupe_drops_copies_and_conflicts():
    data, rep = dsets._dedupe(["AAA", "CCC", "AAA", "GGG", "GGG"], ["x", "x", "x", "x", "y"], list("abcde"))
    assert data.sequences == ["AAA", "CCC"] and rep["dropped_duplicates"] == 1 and rep["dropped_in_both_classes"] == 2


# ---- baseline ----------------------------------------------------------------------------
def test_kmer_features_are_normalised_counts():
    x = baseline.kmer_features(["ACGTNAC", "AAAA"], ks=(1, 2))
    assert x.shape == (2, 4 + 16)
    assert np.allclose(x[:, :4].sum(1), 1) and np.allclose(x[:, 4:].sum(1), 1)
    assert np.allclose(x[0, :4], [2 / 6, 2 / 6, 1 / 6, 1 / 6])  # A C G T A C (N skipped)
    assert x[1, 4 + 0] == 1.0  # AA only
    sym = baseline.kmer_features(["AAAC"], ks=(1,), both_strands=True)
    assert np.allclose(sym[0], [3 / 8, 1 / 8, 1 / 8, 3 / 8])


def test_baseline_learns_a_planted_motif(tmp_path):
    from gulm.data import LabeledSequences, write_labeled_csv

    rng = np.random.default_rng(0)
    seqs, labels = [], []
    for i in range(300):
        s = _random_seq(80, rng)
        if i % 2:
            s = s[:30] + "TATAAT" * 3 + s[48:]
        seqs.append(s)
        labels.append("pos" if i % 2 else "neg")
    split = (["train"] * 200) + (["valid"] * 50) + (["test"] * 50)
    write_labeled_csv(tmp_path / "t.csv", LabeledSequences(seqs, labels, [str(i) for i in range(300)], split))
    res = baseline.run_baseline(str(tmp_path / "t.csv"), ks=(1, 2, 3), Cs=(0.1, 1.0))
    assert res["metrics"]["accuracy"] > 0.95 and res["metrics"]["classes"] == ["neg", "pos"]
    res_len = baseline.run_baseline(str(tmp_path / "t.csv"), features="length")
    assert res_len["n_features"] == 1
    both = baseline.run_baseline(str(tmp_path / "t.csv"), features="kmer_both", ks=(1, 2, 3), Cs=(0.1, 1.0))
    assert both["row"] == "kmer_both_logreg" and both["both_strands"] and both["n_features"] == 84
    assert both["metrics"]["accuracy"] > 0.9  # TATAAT's reverse complement ATTATA counts as the motif
    gapped = baseline.run_baseline(str(tmp_path / "t.csv"), features="kmer_gapped", gapped=(6, 4), Cs=(0.1, 1.0))
    assert gapped["row"] == "kmer_gapped_logreg" and gapped["gapped"] == [6, 4] and gapped["n_features"] == 6 * 256
    assert gapped["metrics"]["accuracy"] > 0.9
    with pytest.raises(ValueError, match="kmer_gapped"):
        baseline.run_baseline(str(tmp_path / "t.csv"), features="gc")


def _placed_motif_set(n: int, length: int, places: tuple[int, int], seed: int) -> tuple[list[str], list[str]]:
    """``n`` random sequences that all carry TATAAT twice: at ``places[0]`` in the odd ones ("pos"),
    at ``places[1]`` in the even ones ("neg"); only the motif's place tells the classes apart."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        s, at = _random_seq(length, rng), places[0] if i % 2 else places[1]
        seqs.append(s[:at] + "TATAAT" * 2 + s[at + 12:])
        labels.append("pos" if i % 2 else "neg")
    return seqs, labels


def test_positional_baseline_learns_where_a_motif_sits(tmp_path):
    from gulm.data import LabeledSequences, write_labeled_csv

    seqs, labels = _placed_motif_set(300, 80, (10, 50), seed=1)
    split = (["train"] * 200) + (["valid"] * 50) + (["test"] * 50)
    write_labeled_csv(tmp_path / "t.csv", LabeledSequences(seqs, labels, [str(i) for i in range(300)], split))
    bag = baseline.run_baseline(str(tmp_path / "t.csv"), ks=(1, 2, 3), Cs=(0.1, 1.0))
    placed = baseline.run_baseline(str(tmp_path / "t.csv"), features="kmer_positional", ks=(1, 2, 3),
                                   positional=(3, 4), Cs=(0.1, 1.0))
    assert placed["row"] == "kmer_positional_logreg" and placed["positional"] == [3, 4, 80]
    assert placed["n_features"] == 84 + 20 * 64  # the 78 3-mers of 80 bases start in 20 bins of 4
    assert placed["metrics"]["accuracy"] > 0.95 and bag["metrics"]["accuracy"] < 0.8


def test_probe_scores_lm_features_on_valid_and_never_reads_test(tmp_path):
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    import torch

    from gulm.data import LabeledSequences, write_labeled_csv
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import AWDConfig, language_model
    from gulm.runtime.checkpoint import save_checkpoint
    from reproduce import probe

    rng = np.random.default_rng(0)
    seqs = [_random_seq(60, rng) for _ in range(420)]
    labels = ["pos" if i % 2 else "neg" for i in range(420)]
    seqs = [s[:20] + "TATAAT" * 3 + s[38:] if i % 2 else s for i, s in enumerate(seqs)]
    split = ["train"] * 300 + ["valid"] * 100 + ["test"] * 20
    labels[-20:] = ["unseen"] * 20  # a class only in test: it would show in the classes if test were read
    (tmp_path / "data" / "toy").mkdir(parents=True)
    write_labeled_csv(tmp_path / "data" / "toy" / "fold0.csv",
                      LabeledSequences(seqs, labels, [str(i) for i in range(420)], split))
    torch.manual_seed(0)
    tok = KmerTokenizer(3, 1)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=8, hidden_size=16, n_layers=2)
    save_checkpoint(tmp_path / "lm", language_model(cfg).eval(), kind="lm", model_config=cfg.to_dict(), tokenizer=tok)
    probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--lm", str(tmp_path / "lm"),
                "--out", str(tmp_path), "--results", str(tmp_path / "results"), "--threads", "1"])
    res = json.loads((tmp_path / "results" / "taskX" / "probes" / "toy__fold0.json").read_text())
    assert res["classes"] == ["neg", "pos"] and (res["n_train"], res["n_valid"]) == (300, 100)
    assert res["rows"]["kmer_logreg"]["valid"]["accuracy"] > 0.9  # the planted motif
    lm = res["rows"][str(tmp_path / "lm")]
    assert lm["n_features"] == 3 * 8 and 0.0 <= lm["valid"]["accuracy"] <= 1.0  # [last, max, mean] of the top layer
    assert "probe.py taskX --dataset toy --splits fold0" in res["rerun"]
    # a second probe of the same split adds its row and keeps the first LM's
    probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--lm", f"again={tmp_path / 'lm'}",
                "--note", "the same LM under a label", "--out", str(tmp_path),
                "--results", str(tmp_path / "results"), "--threads", "1"])
    res2 = json.loads((tmp_path / "results" / "taskX" / "probes" / "toy__fold0.json").read_text())
    assert set(res2["rows"]) == {"kmer_logreg", str(tmp_path / "lm"), "again"}
    assert res2["rows"][str(tmp_path / "lm")] == lm
    assert res2["rows"]["again"]["lm"] == "the same LM under a label"
    assert res2["rows"]["again"]["valid"] == lm["valid"]
    assert f"--lm again={tmp_path / 'lm'} " in res2["rows"]["again"]["rerun"]
    # --bins N: the row's features also hold the means of N parts, and its rerun line says so
    probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--lm", f"parts={tmp_path / 'lm'}", "--bins", "4",
                "--out", str(tmp_path), "--results", str(tmp_path / "results"), "--threads", "1"])
    parts = json.loads((tmp_path / "results" / "taskX" / "probes" / "toy__fold0.json").read_text())["rows"]["parts"]
    assert parts["n_features"] == 7 * 8 and parts["bins"] == 4 and "--bins 4" in parts["rerun"]
    with pytest.raises(SystemExit):
        probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--kmer-variants", "--bins", "4"])
    # a row of an older JSON without its own rerun line keeps the command that made the file
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({**res2, "rerun": "probe.py OLD", "rows": {"old_lm": {"valid": {}}}}))
    merged = probe.merged_rows(legacy, {**res2, "rows": {"new_lm": {"valid": {}}}})
    assert merged["rows"]["old_lm"]["rerun"] == "probe.py OLD" and set(merged["rows"]) == {"old_lm", "new_lm"}
    # a probe JSON of another split layout is never merged into
    with pytest.raises(SystemExit, match="another split layout"):
        probe.merged_rows(tmp_path / "results" / "taskX" / "probes" / "toy__fold0.json",
                          {**res2, "n_train": 299, "rows": {}})
    with pytest.raises(SystemExit, match="no LM"):
        probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--lm", "nowhere", "--out", str(tmp_path)])


def test_probe_kmer_variants_read_both_strands_on_valid_only(tmp_path):
    from gulm.data import LabeledSequences, write_labeled_csv
    from reproduce import probe

    rng = np.random.default_rng(1)
    comp = str.maketrans("ACGT", "TGCA")
    seqs = [_random_seq(80, rng) for _ in range(360)]
    # the positives carry a motif on either strand: orientation carries no meaning
    motif = "GGGCGCAAT"
    seqs = [(s[:30] + (motif if i % 4 == 1 else motif.translate(comp)[::-1]) + s[39:]) if i % 2 else s
            for i, s in enumerate(seqs)]
    labels = ["pos" if i % 2 else "neg" for i in range(360)]
    split = ["train"] * 240 + ["valid"] * 100 + ["test"] * 20
    labels[-20:] = ["unseen"] * 20
    (tmp_path / "data" / "toy").mkdir(parents=True)
    write_labeled_csv(tmp_path / "data" / "toy" / "fold0.csv",
                      LabeledSequences(seqs, labels, [str(i) for i in range(360)], split))
    with pytest.raises(SystemExit):  # an LM and the k-mer variants at once
        probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--lm", "x", "--kmer-variants"])
    probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--kmer-variants",
                "--out", str(tmp_path), "--results", str(tmp_path / "results")])
    res = json.loads((tmp_path / "results" / "taskX" / "probes" / "toy__fold0__kmer.json").read_text())
    assert res["classes"] == ["neg", "pos"] and (res["n_train"], res["n_valid"]) == (240, 100)
    assert set(res["rows"]) == {"kmer_logreg", "kmer_logreg_both_strands", "kmer_logreg_rc_rows"}
    for row in res["rows"].values():
        assert row["n_features"] == 5460 and row["valid"]["accuracy"] > 0.8  # chance is 0.5
    assert res["rerun"].endswith("--kmer-variants --out OUT --results RESULTS")
    # the reverse strand's spectrum the variants derive is that of the reverse complements
    from gulm.baseline import kmer_features
    given, both = kmer_features(seqs[:50]), kmer_features(seqs[:50], both_strands=True)
    np.testing.assert_allclose(2 * both - given, kmer_features([t.translate(comp)[::-1] for t in seqs[:50]]),
                               atol=1e-6)
    # --gapped adds the gapped spectrum's two rows; the rows already there are kept
    with pytest.raises(SystemExit):  # --gapped needs --kmer-variants and L,K
        probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--lm", "x", "--gapped", "6,4"])
    probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--kmer-variants", "--gapped", "6,4",
                "--out", str(tmp_path), "--results", str(tmp_path / "results")])
    res = json.loads((tmp_path / "results" / "taskX" / "probes" / "toy__fold0__kmer.json").read_text())
    assert {"kmer_gapped_6_4_both_strands", "kmer_gapped_6_4_rc_rows", "kmer_logreg_rc_rows"} <= set(res["rows"])
    for name in ("kmer_gapped_6_4_both_strands", "kmer_gapped_6_4_rc_rows"):
        row = res["rows"][name]
        assert row["n_features"] == 6 * 256 and row["valid"]["accuracy"] > 0.8
    assert res["rerun"].endswith("--kmer-variants --gapped 6,4 --out OUT --results RESULTS")
    # --positional adds the spectrum with per-bin counts, one row per K,B
    with pytest.raises(SystemExit):
        probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--kmer-variants", "--positional", "3"])
    probe.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--kmer-variants", "--positional", "3,8",
                "--out", str(tmp_path), "--results", str(tmp_path / "results")])
    res = json.loads((tmp_path / "results" / "taskX" / "probes" / "toy__fold0__kmer.json").read_text())
    row = res["rows"]["kmer_positional_3_8"]
    assert row["n_features"] == 5460 + 10 * 64 and row["valid"]["accuracy"] > 0.8  # 78 3-mers in 10 bins of 8
    assert res["rerun"].endswith("--kmer-variants --positional 3,8 --out OUT --results RESULTS")


def test_train_cv_chooses_features_on_train_rows_only(tmp_path):
    from gulm.data import LabeledSequences, write_labeled_csv
    from reproduce import train_cv

    seqs, labels = _placed_motif_set(240, 60, (8, 40), seed=2)
    split = ["train"] * 200 + ["valid"] * 20 + ["test"] * 20
    labels[200:] = ["unseen"] * 40  # a class only in valid and test: it would show if they were read
    (tmp_path / "data" / "toy").mkdir(parents=True)
    write_labeled_csv(tmp_path / "data" / "toy" / "fold0.csv",
                      LabeledSequences(seqs, labels, [str(i) for i in range(240)], split))
    with pytest.raises(SystemExit):  # a block it does not know
        train_cv.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--features", "spectrum+pos3"])
    with pytest.raises(SystemExit):  # nothing to fit
        train_cv.main(["taskX", "--dataset", "toy", "--splits", "fold0"])
    args = ["taskX", "--dataset", "toy", "--splits", "fold0", "--features", "spectrum", "--features",
            "spectrum+pos3_4", "--folds", "4", "--out", str(tmp_path), "--results", str(tmp_path / "results")]
    train_cv.main(args)
    path = tmp_path / "results" / "taskX" / "probes" / "toy__fold0__train_cv.json"
    res = json.loads(path.read_text())
    assert res["classes"] == ["neg", "pos"] and (res["n_train"], res["n_valid"], res["folds"]) == (200, 0, 4)
    bag, placed = res["rows"]["logreg:spectrum"], res["rows"]["logreg:spectrum+pos3_4"]
    assert placed["n_features"] == 5460 + 15 * 64  # the 58 3-mers of 60 bases start in 15 bins of 4
    assert placed["mcc"] > 0.9 and bag["mcc"] < 0.6 and set(placed["by_C"]) == {str(c) for c in train_cv.CS}
    assert placed["rerun"].endswith("--features spectrum --features spectrum+pos3_4 --folds 4 --out OUT --results RESULTS")
    # the reference CNN adds its row; the LR rows already there are kept
    train_cv.main(["taskX", "--dataset", "toy", "--splits", "fold0", "--cnn", "--folds", "4", "--threads", "1",
                   "--out", str(tmp_path), "--results", str(tmp_path / "results")])
    rows = json.loads(path.read_text())["rows"]
    assert {"logreg:spectrum", "logreg:spectrum+pos3_4", "cnn_scratch"} <= set(rows)
    assert rows["cnn_scratch"]["roc_auc"] > 0.9 and rows["cnn_scratch"]["rerun"].endswith("--cnn --folds 4 --out OUT --results RESULTS")
    assert train_cv.parse_features("spectrum+gap6_3") == [("spectrum",), ("gap", 6, 3)]


# ---- configs ------------------------------------------------------------------------------
def test_every_config_resolves_to_gulm_configs():
    from gulm.config import build_config
    from gulm.configs import ClassifierConfig, FinetuneConfig, PretrainConfig
    from reproduce import harness, settings

    ctx = {"data": "/data", **{f"dataset:{n}": f"/out/{n}" for n in dsets.BUILDERS}}
    for lm in sorted(p.stem for p in (settings.CONFIG_DIR / "lm").glob("*.yaml")):
        for profile in (None, "smoke", "quick"):
            values = settings.expand(settings.lm_config(lm, profile)["pretrain"], ctx)
            cfg = build_config(PretrainConfig, values, None)
            assert cfg.fasta and all(f.startswith("/data/") for f in cfg.fasta)
    def arch(values):
        return (values["emb_size"], values["hidden_size"], values["n_layers"], values["k"], values["stride"])

    for task in harness.TASKS:
        archs = {}
        for row in settings.row_names(task, include_optional=True):
            for profile in (None, "smoke", "quick"):
                cfg = settings.row_config(task, row, profile)
                clf = build_config(ClassifierConfig, {**settings.expand(cfg["classifier"], ctx), "csv": "x.csv"}, None)
                # a row states its schedule, or takes a preset's: one it names, or the harness default
                # (seed) only when it says so itself
                own = (cfg.get("recipe") or {}).get("preset")
                assert clf.stages or clf.preset != "seed" or own == "seed"
                if cfg.get("finetune") is not None:
                    build_config(FinetuneConfig, {**cfg["finetune"], "lm": "x", "csv": "x.csv"}, None)
                if cfg.get("lm") not in (None, "task"):
                    assert (settings.CONFIG_DIR / "lm" / f"{settings.lm_config_name(cfg['lm'])}.yaml").exists()
                for name in cfg.get("datasets") or []:
                    assert name in dsets.TASK_DATASETS[task]
                if profile is None:  # naive, task-LM and shared-LM rows of a task share one architecture
                    gen = "legacy" if cfg.get("legacy") else "current"  # within each generation of rows
                    if cfg.get("lm") is None:
                        archs.setdefault(gen, {})[row] = arch(cfg["classifier"])
                    elif cfg["lm"] == "task":
                        archs.setdefault(gen, {})[row] = arch(cfg["task_lm"])
                    else:
                        archs.setdefault(gen, {})[row] = arch(settings.lm_config(cfg["lm"])["pretrain"])
        for gen, rows in archs.items():
            assert len(set(rows.values())) == 1, (task, gen, rows)


def test_every_study_variant_trains_on_the_study_datasets():
    """A study that names its datasets trains its network variants there, as it fits its baseline
    variants (a base row of another set once sent a study's network to that set)."""
    from reproduce import harness, settings

    seen = 0
    for task in harness.TASKS:
        for path in sorted((settings.CONFIG_DIR / "ablations" / task).glob("*.yaml")):
            spec = settings.ablation_study(task, path.stem)
            for variant, v in spec["variants"].items():
                if (v or {}).get("baseline"):
                    continue
                cfg = settings.variant_config(task, path.stem, variant)
                if spec.get("datasets") and "datasets" not in ((v or {}).get("set") or {}):
                    assert cfg["datasets"] == spec["datasets"], (task, path.stem, variant)
                    seen += 1
    assert seen >= 3
    cfg = settings.variant_config("task6", "positional_nontata", "lm_noft_poslogreg_wide")
    assert cfg["datasets"] == ["umarov_arabidopsis_nontata"] and cfg["classifier"]["kmer_positional"] == [3, 3]


def test_base_configs_hold_only_what_differs(tmp_path):
    from reproduce import settings

    (tmp_path / "parent.yaml").write_text("description: p\nlm: a\nfinetune: {epochs: 2}\n"
                                          "classifier: {stages: [[1, 0.01, 0]], select: best}\n")
    (tmp_path / "child.yaml").write_text("base: parent\ndescription: c\nfinetune: null\n"
                                         "classifier: {select: last}\n")
    (tmp_path / "grandchild.yaml").write_text("base: child\nlm: b\n")
    got = settings.own_config(tmp_path, "grandchild")
    assert got == {"description": "c", "lm": "b", "finetune": None,
                   "classifier": {"stages": [[1, 0.01, 0]], "select": "last"}}
    (tmp_path / "loop.yaml").write_text("base: loop2\n")
    (tmp_path / "loop2.yaml").write_text("base: loop\n")
    with pytest.raises(ValueError, match="circle: loop -> loop2 -> loop"):
        settings.own_config(tmp_path, "loop")
    (tmp_path / "orphan.yaml").write_text("base: nowhere\n")
    with pytest.raises(KeyError, match="'nowhere'.*the base of 'orphan'"):
        settings.own_config(tmp_path, "orphan")
    # the shipped configs that use base: resolve to a row a run can use (no dangling chain)
    for path in settings.CONFIG_DIR.glob("*/*.yaml"):
        if path.parent.name != "ablations" and settings.load_config(path).get("base"):
            assert "base" not in settings.own_config(path.parent, path.stem)


def test_missing_data_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("GULM_DATA", raising=False)
    with pytest.raises(dsets.DataMissing):
        dsets.data_root(None)
    with pytest.raises(dsets.DataMissing):
        dsets.data_root(tmp_path / "nope")


def test_runner_selects_folds_and_named_splits(tmp_path):
    from reproduce.harness import Runner

    manifest = {"settings": {"name": "toy"},
                "splits": [{"name": n} for n in ("fold0", "fold1", "fold2", "random", "heldout")]}

    def names(runner, wanted=None):
        return [sp["name"] for sp in runner._splits(manifest, wanted)]

    assert names(Runner(tmp_path, tmp_path / "a", log=lambda s: None)) == ["fold0", "fold1", "fold2", "random", "heldout"]
    assert names(Runner(tmp_path, tmp_path / "b", folds=[0, 2], log=lambda s: None)) == ["fold0", "fold2", "random", "heldout"]
    only = Runner(tmp_path, tmp_path / "c", splits=["random", "fold1"], log=lambda s: None)
    assert names(only) == ["fold1", "random"]
    assert names(only, ["random", "heldout"]) == ["random"]  # intersected with the row's own splits
    with pytest.raises(KeyError, match="no split"):
        names(only, ["nope"])


def test_models_summary_covers_every_row_result_on_disk(tmp_path):
    """Runs of some rows or folds add to the task's summary instead of replacing it."""
    from reproduce.harness import Runner

    def result(row, split, acc, task="task6"):
        metrics = {"n": 10, "accuracy": acc, "precision": acc, "recall": acc, "f1": acc, "mcc": acc,
                   "specificity": acc, "roc_auc": acc}
        return {"task": task, "dataset": "toy", "split": split, "row": row, "complete": True, "metrics": metrics,
                "timing": {"task_seconds": 2.0}, "wall_seconds": 2.0, "model": {"emb_size": 8}}

    res = tmp_path / "results"
    files = {"fold0/naive.json": result("naive", "fold0", 0.5), "fold1/naive.json": result("naive", "fold1", 0.7),
             "fold0/lm.json": result("lm", "fold0", 0.9), "fold0/naive.smoke.json": result("naive", "fold0", 0.0),
             "fold0/baseline_kmer_logreg.json": {"task": "task6", "complete": True}}
    for rel, body in files.items():
        (res / "task6" / "toy" / rel).parent.mkdir(parents=True, exist_ok=True)
        (res / "task6" / "toy" / rel).write_text(json.dumps(body))
    models = Runner(tmp_path, tmp_path / "out", results=str(res), log=lambda s: None).summarize("task6")
    assert sorted(models["toy"]) == ["lm", "naive"]
    naive = models["toy"]["naive"]
    assert sorted(naive["splits"]) == ["fold0", "fold1"]  # both folds, not the smoke profile's file
    assert naive["cv"]["accuracy"]["mean"] == pytest.approx(0.6)
    assert naive["task_seconds"] == 4.0
    on_disk = json.loads((res / "task6" / "models_summary.json").read_text())
    assert on_disk["rows"]["toy"]["lm"]["splits"]["fold0"]["accuracy"] == 0.9


# ---- smoke runs on the real data (GULM_DATA) ------------------------------------------------
DATA = os.environ.get("GULM_DATA")
needs_data = pytest.mark.skipif(not DATA or not Path(DATA).is_dir(), reason="GULM_DATA is not set (real data sets)")


@pytest.fixture(scope="module")
def smoke_runner(tmp_path_factory):
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    import torch

    from reproduce.harness import Runner

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("repro_smoke")
    old_cache = os.environ.get("GULM_CACHE")
    os.environ["GULM_CACHE"] = str(out / "cache")  # decompressed genomes stay in the test's tmp folder
    yield Runner(DATA, out, profile="smoke", log=lambda s: None)
    torch.set_num_threads(threads)
    if old_cache is None:
        os.environ.pop("GULM_CACHE", None)
    else:
        os.environ["GULM_CACHE"] = old_cache


@needs_data
@pytest.mark.data
@pytest.mark.parametrize("task", ["task1", "task2", "task3", "task4", "task5", "task6"])
def test_smoke_task(smoke_runner, task):
    res = smoke_runner.run(task)
    assert res["baseline"], "no baseline result"
    for name, rows in res["baseline"].items():
        for entry in rows.values():
            for m in entry["splits"].values():
                assert 0.0 <= m["accuracy"] <= 1.0
    assert res["models"], "no model result"
    for name, rows in res["models"].items():
        for row, entry in rows.items():
            for split, m in entry["splits"].items():
                assert m["n"] > 0 and 0.0 <= m["accuracy"] <= 1.0, (name, row, split)
            assert entry["model"]["parameters"] > 0
    files = list((smoke_runner.results / task).rglob("*.json"))
    for f in files:
        assert "sequence" not in json.loads(f.read_text()), f  # results hold numbers, never data


@needs_data
@pytest.mark.data
def test_forward_backward_pair_of_an_ablation_study(smoke_runner):
    """The task-2 study 'bidirectional': a forward and a backward (--backward) classifier on the
    valid-only split, and their mean written by ensemble.py --study as a variant of the study."""
    from reproduce import ensemble

    fwd = smoke_runner.run_variant("task2", "bidirectional", "fwd")
    bwd = smoke_runner.run_variant("task2", "bidirectional", "bwd")
    assert bwd[0]["configs"]["classifier"]["backward"] and not fwd[0]["configs"]["classifier"]["backward"]
    assert fwd[0]["study"] == "bidirectional" and fwd[0]["csv"].endswith(os.path.join("valid_only", "fold0.csv"))
    ensemble.main(["task2", "--study", "bidirectional", "--members", "fwd,bwd", "--name", "fwd_bwd",
                   "--results", str(smoke_runner.results), "--profile", "smoke"])
    [pair] = (smoke_runner.results / "task2" / "ablations" / "bidirectional").rglob("fwd_bwd.smoke.json")
    res = json.loads(pair.read_text())
    assert res["study"] == "bidirectional" and [m["row"] for m in res["members"]] == ["fwd", "bwd"]
    for member, own in zip(res["members"], (fwd[0], bwd[0])):  # each member scored as its own run scored it
        assert member["test_accuracy"] == pytest.approx(own["metrics"]["accuracy"])
    summary = smoke_runner.summarize_ablation("task2", "bidirectional")
    assert {"fwd", "bwd", "fwd_bwd"} <= set(summary["variants"])
    assert summary["variants"]["fwd_bwd"]["levers"] == "mean class probabilities of rows fwd,bwd"


def test_an_ensemble_counts_a_shared_fine_tuned_lm_once():
    """Two classifiers on one fine-tuned LM cost one fine-tuning and two classifiers; members on
    their own LMs, or with none, cost what each took."""
    from reproduce.ensemble import training_seconds

    def member(lm, ft, clf):
        return {"configs": {"classifier": {"lm": lm}},
                "timing": {"finetune_seconds": ft, "classifier_seconds": clf, "task_seconds": ft + clf}}

    shared = [member("/ft/a", 400.0, 1000.0), member("/ft/a", 400.0, 1100.0)]
    assert training_seconds(shared) == 2500.0
    assert training_seconds([member("/ft/a", 400.0, 1000.0), member("/ft/b", 300.0, 900.0)]) == 2600.0
    assert training_seconds([member(None, 0.0, 500.0), member(None, 0.0, 600.0)]) == 1100.0


@needs_data
@pytest.mark.data
def test_an_ensemble_member_on_another_view_of_the_split_reads_its_own_view(smoke_runner):
    """Task 5's split_ends1000 holds the records of split_first1000 in the same order: a member
    trained there is found in its own folder and scored on its own sequences; a view whose records
    differ is refused."""
    from reproduce import ensemble

    [naive] = smoke_runner.run_row("task5", "naive")  # split_first1000 (cached when test_smoke_task ran it)
    first = Path(naive["csv"])
    ends_csv = first.with_name("split_ends1000.csv")
    assert ends_csv.exists() and ends_csv.read_text() != first.read_text()  # the views differ in sequence
    folder = smoke_runner.results / "task5" / naive["dataset"]
    other = folder / "split_ends1000" / "naive_on_ends.smoke.json"  # the same classifier, read on the other view
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text(json.dumps({**naive, "row": "naive_on_ends", "csv": str(ends_csv), "split": "split_ends1000",
                                 "description": "the naive row read on both ends"}))
    base = ["task5", "--results", str(smoke_runner.results), "--profile", "smoke"]
    ensemble.main(base + ["--members", "naive,naive_on_ends", "--name", "views_ens2"])
    res = json.loads((folder / "split_first1000" / "views_ens2.smoke.json").read_text())
    assert [m["file"] for m in res["members"]] == ["naive.smoke.json", "naive_on_ends.smoke.json"]
    assert res["members"][0]["test_accuracy"] == pytest.approx(naive["metrics"]["accuracy"])
    assert res["metrics"]["n"] == naive["metrics"]["n"]
    # mixed rows: each row's own description, named, not only the first member's
    assert res["description"] == (f"mean class probabilities of rows naive,naive_on_ends: naive: {naive['description']}; "
                                  "naive_on_ends: the naive row read on both ends")
    # a "view" whose records are in another order is not a view of the same split
    from gulm.data import read_labeled_csv, write_labeled_csv

    data = read_labeled_csv(str(ends_csv), split_col="set")
    order = list(range(len(data.sequences)))[::-1]
    data = type(data)([data.sequences[i] for i in order], [data.labels[i] for i in order],
                      [data.ids[i] for i in order], [data.split[i] for i in order])
    shuffled = ends_csv.with_name("shuffled.csv")
    write_labeled_csv(shuffled, data)
    other.write_text(json.dumps({**naive, "row": "naive_on_ends", "csv": str(shuffled)}))
    with pytest.raises(SystemExit, match="differ"):
        ensemble.main(base + ["--members", "naive,naive_on_ends", "--name", "views_ens2"])
    other.unlink()


def test_ensemble_cache_key_follows_weights_config_precision_and_sequences(tmp_path):
    """A member's kept probabilities are found again only for the same weights, config, precision,
    strand reading and sequences: a member retrained in place is scored again."""
    from reproduce.ensemble import member_key

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    key = member_key(str(tmp_path), "fp32", False, ["ACGT", "GG"])
    assert key == member_key(str(tmp_path), "fp32", False, ["ACGT", "GG"])
    others = {member_key(str(tmp_path), "bf16", False, ["ACGT", "GG"]),
              member_key(str(tmp_path), "fp32", True, ["ACGT", "GG"]),
              member_key(str(tmp_path), "fp32", False, ["ACG", "TGG"])}
    (tmp_path / "model.safetensors").write_bytes(b"weightz")
    others.add(member_key(str(tmp_path), "fp32", False, ["ACGT", "GG"]))
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text('{"a": 1}')
    others.add(member_key(str(tmp_path), "fp32", False, ["ACGT", "GG"]))
    assert len(others) == 5 and key not in others


@needs_data
@pytest.mark.data
def test_seed_ensemble_averages_the_members(smoke_runner, capsys):
    from reproduce import ensemble

    smoke_runner.run_row("task1", "naive")  # cached when test_smoke_task ran it
    smoke_runner.run_row("task1", "naive", seed=1)
    args = ["task1", "--row", "naive", "--results", str(smoke_runner.results), "--profile", "smoke"]
    ensemble.main(args + ["--seeds", "0"])  # an ensemble of one is its member, scored the same way
    [one] = (smoke_runner.results / "task1").rglob("naive_ens1.smoke.json")
    member = json.loads((one.parent / "naive.smoke.json").read_text())
    ens1 = json.loads(one.read_text())
    assert ens1["metrics"]["accuracy"] == pytest.approx(member["metrics"]["accuracy"])
    assert ens1["valid_metrics"]["n"] > 0  # the valid split is scored too, member by member
    assert ens1["valid_metrics"]["accuracy"] == pytest.approx(ens1["valid_members"][0]["accuracy"])
    kept = sorted((Path(member["configs"]["classifier"]["out"]) / "ensemble_probs").glob("*.npy"))
    assert [p.name.split("-")[0] for p in kept] == ["test", "valid"]  # the member's probabilities, kept
    capsys.readouterr()
    ensemble.main(args + ["--seeds", "0,1"])
    assert "1 of 2 members' probabilities read from their cache" in capsys.readouterr().out  # seed 1 is new
    res = json.loads((one.parent / "naive_ens2.smoke.json").read_text())
    ensemble.main(args + ["--seeds", "0,1", "--no-cache"])  # scored again from the checkpoints: the same
    assert "0 of 2 members' probabilities read" in capsys.readouterr().out
    again = json.loads((one.parent / "naive_ens2.smoke.json").read_text())
    assert again["metrics"] == res["metrics"] and again["valid_members"] == res["valid_members"]
    assert res["valid_members"][0] == ens1["valid_members"][0]  # seed 0 read from its cache: its own scores
    assert [m["seed"] for m in res["members"]] == [0, 1]
    assert len(res["valid_members"]) == 2 and res["valid_metrics"]["n"] == ens1["valid_metrics"]["n"]
    assert res["timing"]["valid_scoring_seconds"] > 0
    assert res["metrics"]["n"] == member["metrics"]["n"] and 0.0 <= res["metrics"]["accuracy"] <= 1.0
    assert res["timing"]["task_seconds"] > member["timing"]["task_seconds"]  # the cost of both trainings
    assert "naive_ens2" in smoke_runner.summarize("task1")["ecoli_promoters"]
    with pytest.raises(SystemExit, match="no result for naive__seed2"):
        ensemble.main(args + ["--seeds", "0,2"])
    # the same two classifiers named as rows (ROW@SEED): the same ensemble, under its own name
    base = ["task1", "--results", str(smoke_runner.results), "--profile", "smoke"]
    ensemble.main(base + ["--members", "naive,naive@1", "--name", "naive_pair"])
    pair = json.loads((one.parent / "naive_pair.smoke.json").read_text())
    assert pair["metrics"]["accuracy"] == pytest.approx(res["metrics"]["accuracy"])
    assert [(m["row"], m["seed"]) for m in pair["members"]] == [("naive", 0), ("naive", 1)]
    assert "--members naive,naive@1 --name naive_pair" in pair["rerun"]
    with pytest.raises(SystemExit):
        ensemble.main(base + ["--members", "naive,naive@1"])  # no --name


@needs_data
@pytest.mark.data
def test_blend_averages_a_network_with_the_kmer_logreg(smoke_runner):
    """ensemble.py --blend kmer: the k-mer LR of the task's baseline row, fitted on the member's own
    split, is one more member; the blend's test metrics are those of the mean probabilities."""
    from reproduce import baseline, ensemble
    from gulm.metrics import classification_metrics

    smoke_runner.run_row("task1", "naive")  # cached when another test ran it
    base = ["task1", "--results", str(smoke_runner.results), "--profile", "smoke", "--members", "naive"]
    with pytest.raises(SystemExit):  # a blend holds k-mer features: its name must say so
        ensemble.main(base + ["--blend", "kmer", "--name", "naive_blend"])
    ensemble.main(base + ["--blend", "kmer", "--name", "naive_blend_wide"])
    [path] = (smoke_runner.results / "task1").rglob("naive_blend_wide.smoke.json")
    res = json.loads(path.read_text())
    lr = baseline.run_baseline(res["csv"])  # the baseline row's own fit on the same CSV
    assert res["members"][-1]["test_accuracy"] == pytest.approx(lr["metrics"]["accuracy"])
    assert res["blend"]["C"] == lr["C"] and res["blend"]["weight"] == 0.5
    assert "--blend kmer" in res["rerun"] and len(res["valid_members"]) == 2
    fit = baseline.fit_baseline(res["csv"])
    te = fit["split"] == "test"
    member = json.loads((path.parent / "naive.smoke.json").read_text())
    [kept] = (Path(member["configs"]["classifier"]["out"]) / "ensemble_probs").glob("test-fp32-*.npy")
    mean = (np.load(kept) + fit["model"].probs_from_features(fit["x"][te])) / 2
    want = classification_metrics(fit["y"][te], mean, fit["classes"])
    assert res["metrics"]["accuracy"] == pytest.approx(want["accuracy"])
    assert res["metrics"]["roc_auc"] == pytest.approx(want["roc_auc"])


def test_mcc_threshold_and_cut_move_the_call_not_the_ranking():
    from reproduce import ensemble
    from sklearn.metrics import matthews_corrcoef, roc_auc_score

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.25).astype(int)
    p = np.clip(0.15 * y + rng.normal(0.3, 0.08, 400), 0.001, 0.999)  # positives rarely reach 0.5
    cut = ensemble.mcc_threshold(y, p)
    assert cut < 0.5 and matthews_corrcoef(y, p >= cut) > matthews_corrcoef(y, p >= 0.5) + 0.1
    # ties go to the cut nearest 0.5: a perfect separation at 0.5 keeps 0.5
    assert ensemble.mcc_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.5
    moved = ensemble.cut_at(np.stack([1 - p, p], 1), cut)
    np.testing.assert_array_equal(moved.argmax(1), (p >= cut).astype(int))  # p == cut is called
    np.testing.assert_allclose(moved.sum(1), 1.0)
    assert roc_auc_score(y, moved[:, 1]) == pytest.approx(roc_auc_score(y, p))


@needs_data
@pytest.mark.data
def test_threshold_cut_is_chosen_on_valid(smoke_runner):
    """ensemble.py --threshold mcc: the cut is the valid split's best, test is scored there."""
    from reproduce import ensemble

    smoke_runner.run_row("task1", "naive")  # cached when another test ran it
    base = ["task1", "--results", str(smoke_runner.results), "--profile", "smoke", "--members", "naive"]
    ensemble.main(base + ["--name", "naive_plain"])
    ensemble.main(base + ["--name", "naive_cut", "--threshold", "mcc"])
    plain, cut = (json.loads(next((smoke_runner.results / "task1").rglob(f"{n}.smoke.json")).read_text())
                  for n in ("naive_plain", "naive_cut"))
    assert 0 < cut["metrics"]["threshold"] < 1 and "threshold" not in plain["metrics"]
    assert cut["valid_metrics"]["mcc"] >= plain["valid_metrics"]["mcc"]
    assert cut["metrics"]["roc_auc"] == pytest.approx(plain["metrics"]["roc_auc"])
    assert "--threshold mcc" in cut["rerun"] and "instead of 0.5" in cut["description"]


@needs_data
@pytest.mark.data
def test_real_task1_split_has_no_homolog_across_train_and_heldout(smoke_runner):
    from gulm.data import read_bed, read_labeled_csv

    m = smoke_runner.dataset("ecoli_promoters")
    ds = read_labeled_csv(m["splits"][0]["path"])
    g = homology.kmer_graph(ds.sequences, 15)
    split = np.array(ds.split)
    assert all(split[a] == "train" and split[b] == "train" for a, b in g.edges)
    test_bed = read_bed(m["paths"]["test_bed"])
    assert len(test_bed) == (split == "test").sum()
    leak = read_bed(m["paths"]["leak_exclude_bed"])
    for iv in test_bed:  # every held-out locus is inside the leak-safe exclusion
        assert any(x.chrom == iv.chrom and x.start <= iv.start and iv.end <= x.end for x in leak)


@needs_data
@pytest.mark.data
def test_estimate_covers_shipped_lm_and_preset_rows(smoke_runner):
    """--estimate resolves a row's preset (its stages decide the epochs) and a shipped LM's size."""
    est = {e["row"]: e for e in smoke_runner.estimate("task2", ["bacteria_lm_noft", "naive"])}
    shipped = est["bacteria_lm_noft"]
    assert shipped["architecture"][:3] == (128, 512, 3) and shipped["tokens"] > 0
    assert shipped["minutes"] is not None
    assert est["naive"]["tokens"] > 0


@needs_data
@pytest.mark.data
def test_interrupted_classifier_row_resumes(smoke_runner, monkeypatch):
    """A row whose classifier stopped part-way continues from its resume.pt on the next run (as the
    LM pretraining does), and its time counts the earlier epochs too."""
    import csv

    import torch
    import yaml

    import gulm

    real = gulm.train_classifier
    monkeypatch.setattr(gulm, "train_classifier", lambda cfg: real(cfg, stop_after=1))
    [first] = smoke_runner.run_row("task1", "naive", seed=3)
    assert not first["complete"]
    run_dir = next((smoke_runner.out / "runs_smoke" / "task1").rglob("naive__seed3"))
    assert (run_dir / "classifier.pending.json").exists() and (run_dir / "classifier" / "resume.pt").exists()
    state_path = run_dir / "classifier" / "resume.pt"
    state = torch.load(state_path, weights_only=True)
    history = json.loads(state["history"])
    history[0]["seconds"] = 10000.0  # an earlier epoch that took long: the row's time must include it
    state["history"] = json.dumps(history)
    torch.save(state, state_path)
    monkeypatch.setattr(gulm, "train_classifier", real)
    lines = []
    smoke_runner.log = lines.append
    try:
        [second] = smoke_runner.run_row("task1", "naive", seed=3)
    finally:
        smoke_runner.log = lambda s: None
    assert any("resuming the classifier" in line for line in lines), lines
    assert second["complete"] and not (run_dir / "classifier.pending.json").exists()
    rows = list(csv.DictReader((run_dir / "classifier" / "log.csv").open()))
    assert len(rows) == sum(s[0] for s in second["configs"]["classifier"]["stages"]) > 1  # each epoch once
    assert second["timing"]["classifier_seconds"] >= 10000
    assert second["resumed"] and not first["resumed"]
    assert not yaml.safe_load((run_dir / "classifier.yaml").read_text())["resume"]  # reruns start fresh


def test_report_names_seed_repeats_of_a_cv_row(tmp_path):
    """5 folds x 3 seeds of one row are labelled as such, not as a 15-fold CV."""
    from reproduce import report

    splits = {f"fold{f}" + (f"@seed{s}" if s else ""): {"mcc": 0.6 + 0.01 * f + 0.001 * s}
              for f in range(5) for s in range(3)}
    entry = {"splits": splits, "cv": {"mcc": {"mean": 0.621, "sd": 0.016, "n": 15}}, "seeds": [0, 1, 2],
             "task_seconds": 60.0,
             "model": {"emb_size": 8, "hidden_size": 16, "n_layers": 1, "k": 3, "stride": 1, "parameters": 1e3}}
    one_seed = {**entry, "splits": {f"fold{f}": {"mcc": 0.6} for f in range(5)}, "seeds": [0]}
    summary = {"rows": {"toy": {"row_a": entry, "row_b": one_seed}}, "machine": {"cpu": "x", "cores": 2}}
    (tmp_path / "taskx").mkdir()
    (tmp_path / "taskx" / "models_summary.json").write_text(json.dumps(summary))
    lines = report.rows(tmp_path, "taskx")
    assert len(lines) == 2
    assert "| toy 5-fold CV x 3 seeds |" in lines[0] and "0.621 ± 0.016" in lines[0]
    assert "| toy 5-fold CV |" in lines[1]


def test_ablation_table_gives_each_metric_one_column(tmp_path):
    """report.py --ablations: a study scored by accuracy gets one accuracy column, not two, and
    the variants are ordered by the study's metric."""
    from reproduce import report

    study = tmp_path / "taskx" / "ablations" / "toy"
    study.mkdir(parents=True)
    variants = {"a": {"valid": {"accuracy": 0.5, "roc_auc": 0.9, "mcc": 0.4}, "n_splits": 1, "minutes": 2.0, "levers": "x"},
                "b": {"valid": {"accuracy": 0.7, "roc_auc": 0.8, "mcc": 0.6}, "n_splits": 1, "minutes": 3.0, "levers": "y"}}
    (study / "summary.json").write_text(json.dumps({"study": "toy", "metric": "accuracy", "variants": variants}))
    lines = [ln for ln in report.ablation_rows(tmp_path, "taskx") if ln.startswith("|")]
    assert lines[0] == "| variant | levers | valid accuracy | valid ROC-AUC | splits | minutes |"
    assert lines[1].count("|") == lines[0].count("|")
    assert lines[2] == "| b | y | 0.7000 | 0.8000 | 1 | 3.0 |" and lines[3].startswith("| a | x | 0.5000 | 0.9000 |")


def _toy_summaries(root: Path) -> None:
    """A task with one CV set (a 2-seed model row, a 1-seed model row, the k-mer LR) and one
    single-split set, as run.py writes them."""
    d = root / "taskx"
    d.mkdir(parents=True)
    cv = {f"fold{f}" + (f"@seed{s}" if s else ""): {"mcc": 0.70 + 0.01 * f + 0.02 * s} for f in range(5) for s in range(2)}
    models = {"rows": {"cvset": {"pretrained": {"splits": cv}, "naive": {"splits": {f"fold{f}": {"mcc": 0.5} for f in range(5)}}},
                       "one": {"pretrained": {"splits": {"split": {"accuracy": 0.9}, "other": {"accuracy": 0.1}}}}}}
    base = {"rows": {"cvset": {"kmer_logreg": {"splits": {f"fold{f}": {"mcc": 0.70} for f in range(5)}}},
                     "one": {"kmer_logreg": {"splits": {"split": {"accuracy": 0.95}}}}}}
    (d / "models_summary.json").write_text(json.dumps(models))
    (d / "baseline_summary.json").write_text(json.dumps(base))


def test_targets_table_and_figure_are_computed_from_the_results(tmp_path, monkeypatch, capsys):
    """report.py --targets: each row's mean over every fold and seed of its split, a target given
    as the LR plus a margin, met / missed / no result judged on the held row; --figure writes a PNG."""
    from reproduce import report, targets

    _toy_summaries(tmp_path)
    sets = [{"name": "cv set", "task": "taskx", "dataset": "cvset", "split": "folds", "metric": "mcc",
             "target": {"above": "kmer_logreg", "by": 0.02}, "held": "pretrained",
             "rows": {"kmer_logreg": "k-mer LR", "naive": "naive", "pretrained": "LM"}},
            {"name": "one split", "task": "taskx", "dataset": "one", "split": "split", "metric": "accuracy",
             "target": 0.92, "held": "pretrained", "rows": {"kmer_logreg": "k-mer LR", "pretrained": "LM"}},
            {"name": "not run", "task": "taskx", "dataset": "one", "split": "split", "metric": "accuracy",
             "target": 0.5, "held": "missing", "rows": {"kmer_logreg": "k-mer LR", "missing": "LM"}}]
    cv, one, absent = targets.measure(tmp_path, sets)
    lm = cv["rows"]["pretrained"]
    assert lm["n"] == 10 and lm["mean"] == pytest.approx(0.73)  # folds 0.70..0.74, seed 1 +0.02
    assert cv["target_value"] == pytest.approx(0.72) and cv["status"] == "met"
    assert cv["rows"]["kmer_logreg"]["baseline"] and not lm["baseline"]
    assert one["rows"]["pretrained"]["n"] == 1 and one["rows"]["pretrained"]["mean"] == pytest.approx(0.9)
    assert one["status"] == "missed" and absent["status"] == "no result"
    lines = targets.table([cv, one, absent])
    sd = np.std([0.70 + 0.01 * f + 0.02 * s for f in range(5) for s in range(2)], ddof=1)
    assert (f"| cv set | MCC | 0.720 (LR + 0.02) | `pretrained` | 0.730 ± {sd:.3f} (10 runs) | 0.700 ± 0.000 (5 runs) | "
            "0.500 ± 0.000 (5 runs) | **met** |") == lines[2]
    assert lines[3].endswith("| missed |") and lines[4].endswith("| no result |")
    near_one = targets.table(targets.measure(tmp_path, [dict(sets[1], target=0.995)]))[2]
    assert "| 0.9950 | `pretrained` | 0.9000 | 0.9500 |" in near_one  # one read must show near 1.0
    png = targets.figure([cv, one, absent], tmp_path / "fig" / "targets.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import yaml

    spec = tmp_path / "targets.yaml"
    spec.write_text(yaml.safe_dump({"sets": sets[:2]}))
    monkeypatch.setattr(targets, "TARGETS", spec)
    capsys.readouterr()
    assert report.main(["--results", str(tmp_path), "--targets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == lines[:2] and out[2:] == lines[2:4]


def test_lm_figure_pairs_each_lm_with_its_probe_and_seeds(tmp_path):
    from reproduce import report
    from reproduce.lm_figure import lm_points

    split = tmp_path / "taskX" / "toy" / "split"
    split.mkdir(parents=True)
    for row, lm, loss, accs in (("a_row", "lm_a", 1.31, [0.90, 0.92]), ("b_row", "shipped:lm-b", 1.29, [0.95])):
        for seed, acc in enumerate(accs):
            name = row if seed == 0 else f"{row}__seed{seed}"
            (split / f"{name}.json").write_text(json.dumps({"lm": {"name": lm, "metrics": {"loss": loss}},
                                                            "metrics": {"accuracy": acc}}))
    (tmp_path / "taskX" / "probes").mkdir()
    (tmp_path / "taskX" / "probes" / "toy__split.json").write_text(json.dumps(
        {"rows": {"lm_a": {"valid": {"accuracy": 0.8}}, "kmer_logreg": {"valid": {"accuracy": 0.7}}}}))
    pts = lm_points(tmp_path, "taskX", ["a_row", "b_row"])
    assert [(p["lm"], p["lm_loss"], p["probe"], p["test"]) for p in pts] == [
        ("lm_a", 1.31, 0.8, [0.90, 0.92]), ("shipped:lm-b", 1.29, None, [0.95])]
    assert report.main(["--results", str(tmp_path), "--lm-figure", str(tmp_path / "f.png"), "--task", "taskX",
                        "--rows", "a_row,b_row"]) == 0
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError, match="no_row"):
        lm_points(tmp_path, "taskX", ["no_row"])


def test_shipped_targets_name_rows_that_exist():
    """configs/targets.yaml: every row drawn has a config (or is an ensemble of one, or of rows
    that have configs: ``ensemble.py --members``, whose shipped result names them, or is a baseline
    row of the set's dataset in the shipped ``baseline_summary.json``), every set's
    metric is known, and a held row outside its rows is refused."""
    import re

    from reproduce import targets
    from reproduce.settings import CONFIG_DIR

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce" / "results"
    sets = targets.load_targets()
    assert {s["task"] for s in sets} == {f"task{i}" for i in range(1, 7)}
    for s in sets:
        assert s["metric"] in targets.METRIC_NAMES
        summary = results / s["task"] / "baseline_summary.json"
        baselines = json.loads(summary.read_text())["rows"].get(s["dataset"], {}) if summary.exists() else {}
        for row in s["rows"]:
            if row in baselines:  # a baseline row (kmer_logreg, kmer_both_logreg, ...) with its results
                continue
            base = re.sub(r"_ens\d+$", "", row)
            if base == row or (CONFIG_DIR / s["task"] / f"{base}.yaml").exists():
                assert (CONFIG_DIR / s["task"] / f"{base}.yaml").exists(), (s["name"], row)
                continue
            found = sorted((results / s["task"] / s["dataset"]).glob(f"*/{row}.json"))
            assert found, (s["name"], row, "neither a config nor an ensemble result")
            members = {m["row"] for m in json.loads(found[0].read_text())["members"]}
            assert len(members) > 1 and all((CONFIG_DIR / s["task"] / f"{m}.yaml").exists() for m in members), row
    with pytest.raises(ValueError, match="held row"):
        targets.load_targets_from({"sets": [dict(sets[0], held="nope")]}, "x.yaml")
