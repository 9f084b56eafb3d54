"""The figures for a paper: the evaluation figure (gulm.plots.plot_evaluation, `gulm evaluate
--figure`) and the training curves every run writes (gulm.train.curves.plot_training_curves)."""
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from gulm.metrics import classification_metrics  # noqa: E402
from gulm.plots import curve_points, plot_evaluation, reliability_points  # noqa: E402


def _binary(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, n), 0.01, 0.99)
    return y, np.stack([1 - p1, p1], 1)


def test_curve_points_agree_with_the_metrics_auc():
    from sklearn.metrics import average_precision_score

    y, p = _binary()
    c = curve_points(y, p)
    assert c["auc"] == pytest.approx(classification_metrics(y, p)["roc_auc"], abs=1e-12)
    assert c["ap"] == pytest.approx(average_precision_score(y, p[:, 1]))
    assert c["prevalence"] == pytest.approx(y.mean()) and not c["averaged"]
    assert c["fpr"][0] == 0 and c["tpr"][-1] == 1 and np.all(np.diff(c["fpr"]) >= 0)
    # three classes: micro-averaged, one decision per (sequence, class)
    rng = np.random.default_rng(1)
    y3 = rng.integers(0, 3, 300)
    p3 = rng.dirichlet(np.ones(3), 300)
    p3[np.arange(300), y3] += 1.0
    p3 /= p3.sum(1, keepdims=True)
    c3 = curve_points(y3, p3)
    assert c3["averaged"] and c3["prevalence"] == pytest.approx(1 / 3) and c3["auc"] > 0.8
    assert curve_points(np.zeros(5, int), np.full((5, 2), 0.5)) is None  # one class: no curve


def test_reliability_points_bin_the_confidence():
    y = np.array([0, 1, 1, 1, 0, 0])
    p1 = np.array([0.05, 0.05, 0.95, 0.95, 0.95, 0.55])  # bins 0, 0, 9, 9, 9, 5
    conf, observed, count = reliability_points(y, np.stack([1 - p1, p1], 1))
    np.testing.assert_allclose(conf, [0.05, 0.55, 0.95])
    np.testing.assert_allclose(observed, [0.5, 0.0, 2 / 3])
    np.testing.assert_array_equal(count, [2, 1, 3])
    # more classes: the top class's probability against the share predicted right
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    conf, observed, count = reliability_points(np.array([0, 0, 2]), p)
    np.testing.assert_allclose(conf, [0.4, 0.7, 0.8])  # bins 4, 7, 8
    np.testing.assert_allclose(observed, [1.0, 1.0, 0.0])


@pytest.mark.parametrize("n_classes", [2, 5, 40])
def test_plot_evaluation_writes_a_figure(tmp_path, n_classes):
    from matplotlib.image import imread

    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 500)
    p = rng.dirichlet(np.ones(n_classes), 500)
    p[np.arange(500), y] += 0.5
    p /= p.sum(1, keepdims=True)
    q = rng.dirichlet(np.ones(n_classes), 500)
    path = plot_evaluation({"gulm": p, "k-mer LR": q}, y, [f"c{i}" for i in range(n_classes)],
                           str(tmp_path / "eval.png"), "test split")
    img = imread(path)
    assert img.shape[0] > 800 and img.shape[1] > 900  # 10 x 9 inches at 120 dpi


def test_plot_evaluation_with_one_class_only(tmp_path):
    y = np.ones(20, dtype=int)
    p = np.tile([0.3, 0.7], (20, 1))
    plot_evaluation({"gulm": p}, y, ["a", "b"], str(tmp_path / "one.png"))
    assert (tmp_path / "one.png").stat().st_size > 10_000


def test_evaluate_plot_draws_the_model_and_its_baseline(tmp_path):
    """`gulm evaluate --figure` writes the figure and the JSON holds the baseline's metrics beside the
    model's, the same numbers the table prints."""
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    import subprocess
    import sys

    import gulm
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=40_000, seed=2, n_train=40)
    clf = tmp_path / "clf"
    train_classifier(data=gulm.DataConfig(csv=str(files["promoters"])), out=str(clf), k=3, stride=1, emb_size=16,
                     hidden_size=32, n_layers=1, stages=[[1, 1e-2, 0]], bs=16, progress=False, preset="short")

    def run(*a):
        return subprocess.run([sys.executable, "-m", "gulm", *map(str, a)], capture_output=True, text=True,
                              cwd=tmp_path)

    assert (clf / "curves.png").stat().st_size > 10_000  # the run's training curves
    r = run("evaluate", clf, "--csv", files["promoters"], "--figure", "alone.png", "--json", "alone.json")
    assert r.returncode == 0, r.stderr
    assert "figure: alone.png" in r.stdout and "no k-mer baseline" in r.stdout
    assert (tmp_path / "alone.png").stat().st_size > 10_000
    assert "baseline" not in json.loads((tmp_path / "alone.json").read_text())
    assert run("baseline", clf, "--ks", "1", "2", "3", "--cs", "0.1", "1").returncode == 0
    r = run("evaluate", clf, "--csv", files["promoters"], "--figure", "both.pdf", "--json", "both.json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "both.pdf").read_bytes()[:4] == b"%PDF"
    saved = json.loads((tmp_path / "both.json").read_text())
    assert saved["baseline"]["name"] == "k-mer LR" and saved["baseline"]["n"] == saved["n"]
    fitted = json.loads((clf / "baseline.json").read_text())["metrics"]["test"]  # scored when it was fitted
    for key in ("n", "accuracy", "roc_auc"):
        assert saved["baseline"][key] == pytest.approx(fitted[key]), key
    line = next(x for x in r.stdout.splitlines() if x.startswith("k-mer LR, test"))
    assert f"{saved['baseline']['accuracy']:.4f}" in line
    m = gulm.evaluate(str(clf), gulm.DataConfig(csv=str(files["promoters"])), progress=False)
    assert m["baseline"]["accuracy"] == pytest.approx(saved["baseline"]["accuracy"])
    r = run("evaluate", clf, "--csv", files["promoters"], "--figure", tmp_path / "no_such_dir" / "x.png")
    assert r.returncode == 2 and "no_such_dir" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_figure_path_problem_names_the_folder_and_the_format(tmp_path):
    from gulm.plots import figure_path_problem

    assert figure_path_problem(str(tmp_path / "a.png")) is None
    assert figure_path_problem(str(tmp_path / "a.svg")) is None
    assert "does not exist" in figure_path_problem(str(tmp_path / "nope" / "a.png"))
    assert ".png, .pdf or .svg" in figure_path_problem(str(tmp_path / "a.xyz"))
    assert "without an extension" in figure_path_problem(str(tmp_path / "a"))


def test_training_curves_mark_stages_and_the_kept_epoch(tmp_path):
    from matplotlib.image import imread

    from gulm.train.curves import kept_epoch, plot_training_curves

    rows = [{"epoch": e, "stage": s, "train_loss": 0.7 - 0.02 * i, "valid_loss": 0.68 - 0.01 * i,
             "valid_accuracy": 0.6 + 0.01 * i, "valid_mcc": 0.2 + 0.02 * i, "best": "True" if i in (0, 3) else ""}
            for i, (e, s) in enumerate([(1, 0), (2, 0), (1, 1), (1, 3), (2, 3)])]
    assert kept_epoch(rows) == 4 and kept_epoch([{"best": True}, {"best": False}]) == 1
    assert kept_epoch([{"epoch": 1}]) is None  # a run that keeps its last epoch marks none
    path = plot_training_curves(rows, str(tmp_path / "c.png"), "classifier")
    assert imread(path).shape[1] > 1000
    lm_rows = [{"epoch": 1, "stage": 0, "train_loss": 1.5, "valid_loss": float("nan")}]  # no validation
    assert plot_training_curves(lm_rows, str(tmp_path / "lm.png")) is not None
    assert plot_training_curves([], str(tmp_path / "none.png")) is None and not (tmp_path / "none.png").exists()


def test_baseline_probs_follow_the_checkpoint_classes_and_refuse_others(tmp_path):
    """The saved baseline's columns come back in the order of the classes asked for; a baseline
    fitted for other classes (a classifier trained again into the folder) is left out, with a warning."""
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    from gulm.baseline import baseline_probs, fit_kmer_logreg, kmer_features
    from gulm.data.errors import DataWarning

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(60)]
    y = np.arange(60) % 2
    seqs = [s[:10] + "TATAAT" + s[16:] if label else s for s, label in zip(seqs, y)]
    x = kmer_features(seqs, ks=[1, 2, 3])
    model = fit_kmer_logreg(x[:40], y[:40], x[40:], y[40:], ["other", "motif"], ks=[1, 2, 3], Cs=[1.0])
    model.save(tmp_path)
    name, p = baseline_probs(str(tmp_path), seqs, ["other", "motif"])
    assert name == "k-mer LR"
    np.testing.assert_allclose(p, model.probs(seqs))
    _, swapped = baseline_probs(str(tmp_path), seqs, ["motif", "other"])
    np.testing.assert_allclose(swapped, p[:, ::-1])
    with pytest.warns(DataWarning, match="fitted for the classes"):
        assert baseline_probs(str(tmp_path), seqs, ["promoter", "non_promoter"]) is None
    assert baseline_probs(str(tmp_path / "none"), seqs, ["other", "motif"]) is None
