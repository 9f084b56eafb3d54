"""The gulm command line, run as a user would (subprocesses)."""
import functools
import json
import os
import subprocess
import sys

import pytest

import gulm

pytest.importorskip("gulm._C", reason="compiled extension not built")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))
TINY = ["--emb-size", "16", "--hidden-size", "32", "--n-layers", "2", "--bs", "8", "--bptt", "20",
        "--progress", "false"]


def gulm_cli(*args, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("GULM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gulm", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from gulm.demo.synthetic import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("cli_data"), length=30_000, seed=2, n_train=40)


@pytest.fixture
def one_line_error(error_lines):
    return functools.partial(_one_line_error, error_lines)


def _one_line_error(error_lines, res, *needles):
    assert res.returncode == 2, res.stderr
    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_help_lists_commands_and_examples():
    res = gulm_cli("--help")
    assert res.returncode == 0
    for cmd in ("pretrain", "finetune", "train-classifier", "evaluate", "predict", "demo"):
        assert cmd in res.stdout
    res = gulm_cli("pretrain", "--help")
    assert res.returncode == 0 and "examples:" in res.stdout and "--exclude-bed" in res.stdout


def test_missing_fasta_is_one_clear_line(tmp_path, one_line_error):
    res = gulm_cli("pretrain", "--fasta", tmp_path / "nope.fa", "--out", tmp_path / "lm", *TINY)
    one_line_error(res, "gulm pretrain: error:", "nope.fa")
    res = gulm_cli("pretrain", "--fasta", tmp_path / "nope.fa", "--out", tmp_path / "lm", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_empty_fasta_and_bad_config(tmp_path, one_line_error):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    one_line_error(gulm_cli("pretrain", "--fasta", empty, "--out", tmp_path / "lm", *TINY), "empty.fa")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nno_such_option: 3\n")
    one_line_error(gulm_cli("pretrain", "--config", bad, "--fasta", empty), "no_such_option")


def test_k_too_large_for_memory(files, tmp_path, one_line_error):
    line = one_line_error(gulm_cli("pretrain", "--fasta", files["genome"], "--k", "14", "--out",
                                    tmp_path / "lm", "--emb-size", "400"), "k=14")
    assert "GB" in line


def test_missing_label_column_names_it(files, tmp_path, one_line_error):
    line = one_line_error(gulm_cli("train-classifier", "--csv", files["promoters"], "--label-col",
                                    "klass", "--out", tmp_path / "c", *TINY), "klass")
    assert "label" in line  # the available columns are listed
    assert "--label-col" in line and "label_col=" not in line  # the flag, as the user spells it


def test_class_fasta_files_then_predict_to_standard_output(files, tmp_path):
    from gulm.data import read_labeled_csv

    ds = read_labeled_csv(files["promoters"])
    for label in ("promoter", "non_promoter"):
        (tmp_path / f"{label}.fa").write_text("".join(f">{i}\n{s}\n" for i, (s, y) in
                                                      enumerate(zip(ds.sequences, ds.labels)) if y == label))
    res = gulm_cli("train-classifier", "--fasta-class", f"promoter={tmp_path / 'promoter.fa'}",
                   "--fasta-class", f"other={tmp_path / 'non_promoter.fa'}", "--k", "3", "--stride", "1",
                   "--stages", "1:1e-2:0", "--threads", "1", "--out", tmp_path / "clf", *TINY)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "clf" / "config.json").read_text())["classes"] == ["other", "promoter"]
    res = gulm_cli("predict", tmp_path / "clf", "ACGT" * 20, "TTGACA" * 15, "--threads", "1")
    assert res.returncode == 0, res.stderr
    rows = [r.split("\t") for r in res.stdout.strip().splitlines()]
    assert rows[0] == ["id", "p_other", "p_promoter", "prediction", "valid_fraction"]
    assert [r[0] for r in rows[1:]] == ["seq1", "seq2"] and [r[4] for r in rows[1:]] == ["1.0000", "1.0000"]
    assert all(abs(float(r[1]) + float(r[2]) - 1) < 1e-5 for r in rows[1:])


def test_pretrain_yaml_with_override_then_classify_evaluate_predict(files, tmp_path, one_line_error):
    cfg = tmp_path / "lm.yaml"
    cfg.write_text(f"fasta: [{files['genome']}]\nepochs: 3\nk: 5\nstride: 2\nmax_tokens: 3000\n")
    res = gulm_cli("pretrain", "--config", cfg, "--epochs", "1", "--out", tmp_path / "lm", *TINY)
    assert res.returncode == 0, res.stderr
    saved = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert saved["training"]["epochs"] == 1  # command line beats YAML
    assert saved["training"]["max_tokens"] == 3000  # YAML beats defaults

    res = gulm_cli("train-classifier", "--lm", tmp_path / "lm", "--csv", files["promoters"],
                   "--out", tmp_path / "clf", "--stages", "1:1e-2:1,1:5e-3:0", *TINY)
    assert res.returncode == 0, res.stderr
    assert "accuracy" in res.stdout

    res = gulm_cli("evaluate", tmp_path / "clf", "--csv", files["promoters"], "--split", "valid",
                   "--json", tmp_path / "m.json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "m.json").read_text())["n"] > 0

    fasta = tmp_path / "q.fa"
    fasta.write_text(">a\n" + "ACGT" * 40 + "\n>b\n" + "TTGACA" * 30 + "\n")
    res = gulm_cli("predict", tmp_path / "clf", "--fasta", fasta, "--out", tmp_path / "p.tsv")
    assert res.returncode == 0, res.stderr
    rows = (tmp_path / "p.tsv").read_text().strip().splitlines()
    assert rows[0].split("\t") == ["id", "p_non_promoter", "p_promoter", "prediction", "valid_fraction"]
    assert [r.split("\t")[0] for r in rows[1:]] == ["a", "b"]
    res = gulm_cli("predict", tmp_path / "lm", "ACGT" * 10)
    one_line_error(res, "not a classifier")


def test_warnings_print_as_one_line(capsys):
    import warnings

    from gulm.data.errors import DataWarning, one_line_warnings

    previous = one_line_warnings("gulm scan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(DataWarning("record chr2:\n  30% N"))
            warnings.warn("plain\nnote", RuntimeWarning)
    finally:
        warnings.showwarning = previous
    err = capsys.readouterr().err.splitlines()
    assert err == ["gulm scan: warning: record chr2: 30% N", "gulm scan: warning: RuntimeWarning: plain note"]
