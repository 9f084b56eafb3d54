"""gulm embed: pooled encoder features streamed to .npy / parquet, from FASTA, CSV or BED."""
import subprocess
import sys

import numpy as np
import pytest

from gulm.data.errors import DataError, FastaError
from gulm.data.fasta import reverse_complement
from gulm.embed import embed, ids_path, pool_features
from gulm.infer import Encoder

from .conftest import random_seq


def write_fasta(path, records):
    with open(path, "w") as fh:
        for name, s in records:
            fh.write(f">{name}\n{s}\n")
    return str(path)


@pytest.fixture
def seqs():
    rng = np.random.default_rng(5)
    return [(f"s{i}", random_seq(int(rng.integers(20, 70)), 10 + i)) for i in range(7)]


def test_fasta_to_npy_in_chunks_matches_the_encoder(tmp_path, tiny_clf, seqs):
    fa = write_fasta(tmp_path / "s.fa", seqs)
    out = str(tmp_path / "e.npy")
    res = embed(checkpoint=tiny_clf, fasta=fa, out=out, chunk_size=3, batch_size=2, progress=False)
    assert res["n"] == 7 and res["dim"] == 24 and res["files"] == {"embeddings": out, "ids": ids_path(out)}
    got = np.load(out, mmap_mode="r")
    want = Encoder.load(tiny_clf).features([s for _, s in seqs])
    assert got.shape == (7, 24) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert open(ids_path(out)).read().split() == [n for n, _ in seqs]
    # one pooling, another layer
    embed(checkpoint=tiny_clf, fasta=fa, out=str(tmp_path / "m.npy"), pool="mean", layer=0, progress=False)
    inner = Encoder.load(tiny_clf).features([s for _, s in seqs], layer=0)
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), inner[:, 32:], rtol=1e-5, atol=1e-6)
    assert pool_features(want, "last").shape == (7, 8)
    np.testing.assert_array_equal(pool_features(want, "max"), want[:, 8:16])
    # --bins 2: the parts' means follow the chosen pooling
    res = embed(checkpoint=tiny_clf, fasta=fa, out=str(tmp_path / "p.npy"), pool="max", bins=2, progress=False)
    parts = Encoder.load(tiny_clf).features([s for _, s in seqs], bins=2)
    assert res["dim"] == 24 and res["bins"] == 2
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), np.concatenate([parts[:, 8:16], parts[:, 24:]], axis=1),
                               rtol=1e-5, atol=1e-6)


def test_csv_bed_parquet_and_lm_checkpoints(tmp_path, tiny_clf, tiny_lm, seqs, genome):
    csv_path = tmp_path / "s.tsv"
    csv_path.write_text("name\tseq\tother\n" + "".join(f"{n}\t{s.lower()}\tx\n" for n, s in seqs))
    embed(checkpoint=tiny_lm, csv=str(csv_path), sequence_col="seq", out=str(tmp_path / "c.npy"), progress=False)
    want = Encoder.load(tiny_lm).features([s for _, s in seqs])
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), want, rtol=1e-5, atol=1e-6)
    assert open(tmp_path / "c.ids.txt").read().split() == [n for n, _ in seqs]

    fa, g = genome
    bed = tmp_path / "s.bed"
    bed.write_text("1\t10\t60\ta\t0\t+\n1\t100\t150\tb\t0\t-\n2\t0\t40\n")
    embed(checkpoint=tiny_clf, bed=str(bed), genome=fa, out=str(tmp_path / "b.npy"), progress=False)
    windows = [g["1"][10:60], reverse_complement(g["1"][100:150]), g["2"][0:40]]
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), Encoder.load(tiny_clf).features(windows),
                               rtol=1e-5, atol=1e-6)
    assert open(tmp_path / "b.ids.txt").read().split() == ["1:10-60(+)", "1:100-150(-)", "2:0-40(.)"]

    pq = pytest.importorskip("pyarrow.parquet")
    fa_path = write_fasta(tmp_path / "s.fa", seqs)
    embed(checkpoint=tiny_clf, fasta=fa_path, out=str(tmp_path / "e.parquet"), chunk_size=4, progress=False)
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column("id").to_pylist() == [n for n, _ in seqs]
    np.testing.assert_allclose(np.array(table.column("embedding").to_pylist(), dtype=np.float32),
                               Encoder.load(tiny_clf).features([s for _, s in seqs]), rtol=1e-5, atol=1e-6)


def test_bad_input(tmp_path, tiny_clf, seqs, error_lines):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(FastaError, match="empty file"):
        embed(checkpoint=tiny_clf, fasta=str(empty), out=str(tmp_path / "x.npy"), progress=False)
    headers_only = tmp_path / "h.fa"
    headers_only.write_text(">a\n>b\n")
    with pytest.raises(FastaError, match="no FASTA records with sequence"), pytest.warns(UserWarning):
        embed(checkpoint=tiny_clf, fasta=str(headers_only), out=str(tmp_path / "x.npy"), progress=False)
    short = write_fasta(tmp_path / "short.fa", seqs[:2] + [("tiny", "AC")])
    with pytest.raises(DataError, match=r"record 'tiny' \(2 bp\) is shorter than k=3"):
        embed(checkpoint=tiny_clf, fasta=short, out=str(tmp_path / "s.npy"), progress=False)
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "s.npy.tmp").exists()
    fa = write_fasta(tmp_path / "ok.fa", seqs)
    with pytest.raises(ValueError, match="exactly one input"):
        embed(checkpoint=tiny_clf, fasta=fa, csv=fa, out=str(tmp_path / "x.npy"))
    with pytest.raises(ValueError, match="name a .npy or a .parquet"):
        embed(checkpoint=tiny_clf, fasta=fa, out=str(tmp_path / "x.txt"))
    with pytest.raises(ValueError, match="the model has 2 LSTM layers"):
        embed(checkpoint=tiny_clf, fasta=fa, out=str(tmp_path / "x.npy"), layer=2, progress=False)
    with pytest.raises(ValueError, match="bins.* must be 0 or a number of parts"):
        embed(checkpoint=tiny_clf, fasta=fa, out=str(tmp_path / "x.npy"), bins=-1, progress=False)
    with pytest.raises(ValueError, match="needs genome="):
        embed(checkpoint=tiny_clf, bed=fa, out=str(tmp_path / "x.npy"))
    p = subprocess.run([sys.executable, "-m", "gulm", "embed", tiny_clf, "--fasta", str(empty), "--out",
                        str(tmp_path / "c.npy")], capture_output=True, text=True)
    assert p.returncode == 2 and "empty file" in p.stderr and len(error_lines(p.stderr)) == 1, p.stderr
    p = subprocess.run([sys.executable, "-m", "gulm", "embed", tiny_clf, "--fasta", fa, "--out",
                        str(tmp_path / "c.npy"), "--progress", "false"], capture_output=True, text=True)
    assert p.returncode == 0 and "embedded 7 sequences: 24 features" in p.stdout, p.stderr


def test_embeddings_of_a_trained_classifier_carry_its_accuracy(tmp_path, demo_model):
    """Logistic regression on the classifier's pooled features (the head's input) reaches about the
    classifier's own test accuracy on the planted-box demo data."""
    from sklearn.linear_model import LogisticRegression

    ckpt, rows, metrics = demo_model
    assert metrics["accuracy"] > 0.8  # otherwise the comparison says little
    train = [r for r in rows if r[3] == "train"]
    test = [r for r in rows if r[3] == "test"]
    for part, name in ((train, "train"), (test, "test")):
        write_fasta(tmp_path / f"{name}.fa", [(r[0], r[1]) for r in part])
        embed(checkpoint=ckpt, fasta=str(tmp_path / f"{name}.fa"), out=str(tmp_path / f"{name}.npy"),
              chunk_size=128, progress=False)
    x_train, x_test = np.load(tmp_path / "train.npy"), np.load(tmp_path / "test.npy")
    y_train = [r[2] for r in train]
    y_test = [r[2] for r in test]
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    lr = LogisticRegression(C=0.1, max_iter=2000).fit((x_train - mean) / std, y_train)
    acc = lr.score((x_test - mean) / std, y_test)
    assert acc >= metrics["accuracy"] - 0.05, (acc, metrics["accuracy"])
