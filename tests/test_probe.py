"""Linear probes of language models on a labelled set's valid split (gulm.probe, `gulm probe`)."""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("gulm._C", reason="compiled extension not built")
pytest.importorskip("sklearn")

from gulm.probe import linear_probe, probe_lms  # noqa: E402


def test_linear_probe_scores_informative_features_above_noise():
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    signal = rng.normal(size=(400, 8)) + 1.5 * y[:, None]
    noise = rng.normal(size=(400, 8))
    good = linear_probe(signal[:300], y[:300], signal[300:], y[300:], ["a", "b"])
    bad = linear_probe(noise[:300], y[:300], noise[300:], y[300:], ["a", "b"])
    assert set(good) >= {"valid", "C", "n_features", "fit_seconds"} and good["n_features"] == 8
    assert good["valid"]["accuracy"] > 0.9 and good["valid"]["mcc"] > 0.8
    assert bad["valid"]["accuracy"] < 0.65 and abs(bad["valid"]["mcc"]) < 0.3


def _labelled_csv(path, n=120):
    rng = np.random.default_rng(1)
    rows = ["sequence,label,set"]
    for i in range(n):
        s = "".join(rng.choice(list("ACGT"), 70))
        if i % 2:
            s = s[:30] + "TTGACATATAAT" + s[42:]
        split = "train" if i < 80 else "valid" if i < 100 else "test"
        rows.append(f"{s},{'promoter' if i % 2 else 'other'},{split}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_probe_ranks_models_on_valid_and_never_reads_test(tmp_path, monkeypatch):
    from gulm import DataConfig, infer

    csv = _labelled_csv(tmp_path / "set.csv")
    seen = []
    features = infer.Encoder.features

    def spy(self, sequences, *a, **k):
        seen.append(len(sequences))
        return features(self, sequences, *a, **k)

    monkeypatch.setattr(infer.Encoder, "features", spy)
    out = tmp_path / "deep" / "probes.json"
    r = probe_lms(["bacteria-3m1s", "eukaryotes-3m1s"], data=DataConfig(csv=str(csv), split_col="set"), threads=1,
                  progress=False, out=str(out))
    assert seen == [100, 100]  # train + valid only, once per model: the 20 test rows are never embedded
    assert (r["n_train"], r["n_valid"], r["metric"], r["classes"]) == (80, 20, "mcc", ["other", "promoter"])
    assert set(r["rows"]) == {"k-mer LR", "bacteria-3m1s", "eukaryotes-3m1s"}
    assert r["rows"]["bacteria-3m1s"]["n_features"] == 3 * 128
    assert sorted(r["ranking"]) == ["bacteria-3m1s", "eukaryotes-3m1s"]
    scores = [r["rows"][n]["valid"]["mcc"] for n in r["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert r["rows"]["k-mer LR"]["valid"]["accuracy"] > 0.8  # the planted motif is linear in 6-mers
    assert json.loads(out.read_text()) == json.loads(json.dumps(r)) and not (tmp_path / "deep" / "probes.json.tmp").exists()


def test_features_with_bins_append_the_parts_means(tmp_path):
    from gulm import DataConfig
    from gulm.infer import Encoder

    enc = Encoder.load("bacteria-3m1s")
    seqs = ["ACGTTGCA" * 6, "TTGACA" * 5 + "TATAAT" * 3]
    plain = enc.features(seqs, bs=2)
    binned = enc.features(seqs, bs=2, bins=3)
    assert plain.shape == (2, 3 * 128) and binned.shape == (2, 6 * 128)
    np.testing.assert_allclose(binned[:, :384], plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc.features(seqs, bins=1)[:, 384:], plain[:, 256:], rtol=1e-5, atol=1e-6)  # one part: the mean
    assert not np.allclose(binned[:, 384:512], binned[:, 640:])  # the first and the last part differ
    csv = _labelled_csv(tmp_path / "set.csv")
    r = probe_lms(["bacteria-3m1s"], data=DataConfig(csv=str(csv), split_col="set"), threads=1, progress=False, bins=4)
    assert r["rows"]["bacteria-3m1s"]["n_features"] == 7 * 128


@pytest.mark.parametrize("args, message", [
    ([], "name at least one language model"),
    (["bacteria-3m1s", "--bins", "-1"], "--bins must be 0 or a number of parts"),
    (["no_such_lm"], "no_such_lm: no such checkpoint folder or shipped model name"),
    (["bacteria-3m1s", "--valid-frac", "0", "--test-frac", "0", "--split-col", "none"], "needs train and valid"),
])
def test_probe_command_refuses_bad_input_in_one_line(tmp_path, args, message, error_lines):
    csv = _labelled_csv(tmp_path / "set.csv")
    r = subprocess.run([sys.executable, "-m", "gulm", "probe", *args, "--csv", str(csv), "--threads", "1"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("gulm probe: error:")
