"""Bad input and faults a new user hits, as one table: (command line, the file it is given, the exit
code, the words the user must see). Errors are one line on stderr with exit code 2 and no
traceback; results that would have been silently wrong are a warning line (exit code 0).

The commands run in-process through ``gulm.cli.main`` (the same code path as the ``gulm``
executable, without a Python start-up per case)."""
import argparse
import gzip
import json
import os
import shutil

import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

TINY = ["--emb-size", "16", "--hidden-size", "32", "--n-layers", "2", "--bs", "8", "--bptt", "20",
        "--progress", "false", "--threads", "1"]
SEQ = "TTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGCGGATAACAATTTCACACAGGAAACAGCT"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny classifier and language model, and the demo files they were trained on."""
    from gulm.configs import ClassifierConfig, DataConfig, PretrainConfig
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier
    from gulm.train.phases import pretrain_lm

    root = tmp_path_factory.mktemp("bad_input")
    files = write_demo_data(root / "data", length=30_000, seed=2, n_train=40)
    sizes = dict(emb_size=16, hidden_size=32, n_layers=2, bs=8, bptt=20, progress=False, threads=1)
    torch.set_num_threads(1)
    for seed, out in ((0, "clf"), (1, "clf_s1")):  # clf_s1: a second seed, for --ensemble
        train_classifier(ClassifierConfig(data=DataConfig(csv=str(files["promoters"])), k=3, stride=1, seed=seed,
                                          stages=[[1, 1e-2, 0]], out=str(root / out), **sizes))
    pretrain_lm(PretrainConfig(fasta=[str(files["genome"])], k=3, stride=1, epochs=1, max_tokens=2000,
                               out=str(root / "lm"), **sizes))
    return {"root": root, "clf": root / "clf", "clf_s1": root / "clf_s1", "lm": root / "lm", **files}


def run(argv, cwd, capsys, monkeypatch):
    """``gulm <argv>`` in-process from ``cwd``: (exit code, stdout, stderr)."""
    from gulm.cli import main
    from gulm.configs.fields import set_command_line

    monkeypatch.chdir(cwd)
    monkeypatch.delenv("GULM_DEBUG", raising=False)
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    finally:
        set_command_line(False)
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- the bad files: each setup writes into the case's folder and returns the command line -------------
def _copy_clf(world, d):
    return shutil.copytree(world["clf"], d / "clf")


def plain_text_named_gz(world, d):
    (d / "queries.fa.gz").write_text(f">q1\n{SEQ}\n")
    return ["predict", world["clf"], "--fasta", "queries.fa.gz"]


def plain_text_named_gz_genome(world, d):
    (d / "genome.fna.gz").write_text(f">chr\n{SEQ * 40}\n")
    return ["pretrain", "--fasta", "genome.fna.gz", "--out", "lm", *TINY]


def truncated_weights(world, d):
    clf = _copy_clf(world, d)
    data = (clf / "model.safetensors").read_bytes()
    (clf / "model.safetensors").write_bytes(data[: len(data) // 3])
    return ["predict", clf, SEQ]


def empty_weights(world, d):
    clf = _copy_clf(world, d)
    (clf / "model.safetensors").write_bytes(b"")
    return ["evaluate", clf, "--csv", world["promoters"]]


def garbage_config(world, d):
    clf = _copy_clf(world, d)
    (clf / "config.json").write_text("{\"kind\": \"classifier\", oops")
    return ["predict", clf, SEQ]


def null_config(world, d):
    clf = _copy_clf(world, d)
    (clf / "config.json").write_text("null\n")
    return ["predict", clf, SEQ]


def sizes_differ_from_config(world, d):
    clf = _copy_clf(world, d)
    cfg = json.loads((clf / "config.json").read_text())
    cfg["model"]["emb_size"] = 24
    (clf / "config.json").write_text(json.dumps(cfg))
    return ["predict", clf, SEQ]


def pickled_resume_state(world, d):
    (d / "run").mkdir()
    torch.save({"epoch": 1, "payload": argparse.Namespace(cmd="echo owned")}, d / "run" / "resume.pt")
    return ["train-classifier", "--csv", world["promoters"], "--k", "3", "--stride", "1", "--out", "run",
            "--resume", "true", *TINY]


def truncated_resume_state(world, d):
    (d / "run").mkdir()
    torch.save({"epoch": 1, "x": torch.zeros(1000)}, d / "run" / "resume.pt")
    data = (d / "run" / "resume.pt").read_bytes()
    (d / "run" / "resume.pt").write_bytes(data[:200])
    return ["train-classifier", "--csv", world["promoters"], "--k", "3", "--stride", "1", "--out", "run",
            "--resume", "true", *TINY]


def negative_head_bins(world, d):
    return ["train-classifier", "--csv", world["promoters"], "--k", "3", "--stride", "1", "--out", "run",
            "--head-bins", "-2", *TINY]


def resume_required_but_absent(world, d):
    return ["train-classifier", "--csv", world["promoters"], "--k", "3", "--stride", "1", "--out", "run",
            "--resume", "require", *TINY]


def _csv(d, rows, name="data.csv"):
    (d / name).write_text("sequence,label\n" + "".join(f"{s},{y}\n" for s, y in rows))
    return name


def single_class_csv(world, d):
    name = _csv(d, [(SEQ, "promoter")] * 30)
    return ["train-classifier", "--csv", name, "--k", "3", "--stride", "1", *TINY]


def four_records(world, d):
    name = _csv(d, [(SEQ, "promoter"), (SEQ[::-1], "promoter"), (SEQ[5:], "other"), (SEQ[:-5], "other")])
    return ["train-classifier", "--csv", name, "--k", "3", "--stride", "1", *TINY]


def class_with_one_example(world, d):
    name = _csv(d, [(SEQ, "a")] * 30 + [(SEQ, "b")] * 30 + [(SEQ, "rare")])
    return ["train-classifier", "--csv", name, "--k", "3", "--stride", "1", *TINY]


def one_class_test_split(world, d):
    (d / "data.csv").write_text("sequence,label,set\n" + "".join(
        f"{SEQ},{y},{s}\n" for y, s in [("a", "train"), ("b", "train")] * 10 + [("a", "valid"), ("b", "valid"),
                                                                                 ("a", "test"), ("a", "test")]))
    return ["train-classifier", "--csv", "data.csv", "--k", "3", "--stride", "1", *TINY]


def missing_label_column(world, d):
    return ["train-classifier", "--csv", world["promoters"], "--label-col", "klass", *TINY]


def ks_longer_than_sequence(world, d):
    return ["interpret", world["clf"], "--sequence", SEQ[:20], "--ks", "50", "--out", "i"]


def multi_record_fasta_to_interpret(world, d):
    (d / "three.fa").write_text(f">a\n{SEQ}\n>b\n{SEQ}\n>c\n{SEQ}\n")
    return ["interpret", world["clf"], "--fasta", "three.fa", "--out", "i"]


def interrupted_save_leftover(world, d):
    shutil.copytree(world["clf"], d / "clf.old")  # killed between the two renames of a save
    return ["predict", d / "clf", SEQ]


def evaluate_one_class(world, d):
    name = _csv(d, [(SEQ, "promoter")] * 6)
    return ["evaluate", world["clf"], "--csv", name, "--split", "all", "--progress", "false"]


def n_only_and_iupac_records(world, d):
    (d / "q.fa").write_text(f">good\n{SEQ}\n>ns\n{'N' * 80}\n>iupac\n{'RYKMSW' * 12}\n")
    return ["predict", world["clf"], "--fasta", "q.fa", "--out", "p.tsv"]


def protein_fasta(world, d):
    (d / "q.fa").write_text(f">good\n{SEQ}\n>prot sp|P69905\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTK\n")
    return ["predict", world["clf"], "--fasta", "q.fa"]


def protein_genome(world, d):
    # the '*' is base 72 + 31 of chr2
    (d / "genome.fa").write_text(f">chr1\n{SEQ}\n{SEQ}\n>chr2\n{SEQ}\n{SEQ[:30]}*{SEQ[:20]}\n")
    return ["pretrain", "--fasta", "genome.fa", "--out", "lm", *TINY]


def longer_last_line_genome(world, d):
    """pyfaidx does not flag a record whose last line is longer than its others; its index then
    runs past the file's end. gulm reads a normalised copy instead (it used to refuse the file)."""
    (d / "genome.fa").write_text(f">chr1\n{SEQ}\n{SEQ * 30}\n")
    return ["pretrain", "--fasta", "genome.fa", "--k", "3", "--stride", "1", "--max-tokens", "1500",
            "--epochs", "1", "--out", "lm", *TINY]


def fasta_path_as_a_sequence(world, d):
    (d / "queries.fa").write_text(f">q1\n{SEQ}\n")
    return ["predict", world["clf"], "queries.fa"]


def missing_fasta_as_a_sequence(world, d):
    return ["predict", world["clf"], "data/queries.fa"]


def csv_with_a_foreign_symbol(world, d):
    name = _csv(d, [(SEQ, "a"), (SEQ, "b")] * 10 + [(SEQ[:40] + "J" + SEQ[41:], "a")])
    return ["train-classifier", "--csv", name, "--out", "clf", "--k", "3", "--stride", "1", *TINY]


def duplicate_record_names(world, d):
    (d / "q.fa").write_text(f">x\n{SEQ}\n>x\n{SEQ[3:]}\n>y\n{SEQ}\n")
    return ["predict", world["clf"], "--fasta", "q.fa", "--out", "p.tsv"]


def scan_duplicate_record_names(world, d):
    import random

    rng = random.Random(0)
    recs = "".join(f">chr\n{''.join(rng.choice('ACGT') for _ in range(600))}\n" for _ in range(2))
    (d / "dup.fa").write_text(recs)
    return ["scan", world["clf"], "dup.fa", "--out", "s", "--progress", "false", "--windows-tsv", "false"]


def ensemble_of_other_classes(world, d):
    clf = _copy_clf(world, d)
    cfg = json.loads((clf / "config.json").read_text())
    cfg["classes"] = ["x", "y"]
    (clf / "config.json").write_text(json.dumps(cfg))
    return ["predict", world["clf"], SEQ, "--ensemble", clf]


def ensemble_member_missing(world, d):
    return ["predict", world["clf"], SEQ, "--ensemble", "no_such_clf"]


def resume_true_without_state(world, d):
    return ["pretrain", "--fasta", world["genome"], "--k", "3", "--stride", "1", "--max-tokens", "1500",
            "--epochs", "1", "--out", "lm", "--resume", "true", *TINY]


CASES = [
    # (setup, exit code, words on stderr)
    (plain_text_named_gz, 2, ["queries.fa.gz", "not gzip-compressed", "plain text"]),
    (plain_text_named_gz_genome, 2, ["genome.fna.gz", "not gzip-compressed"]),
    (truncated_weights, 2, ["model.safetensors", "cannot read the weights", "truncated"]),
    (empty_weights, 2, ["model.safetensors", "an empty file"]),
    (garbage_config, 2, ["config.json", "not valid JSON", "line 1"]),
    (null_config, 2, ["config.json", "expected a JSON object", "null"]),
    (sizes_differ_from_config, 2, ["differ in shape", "encoder.encoder.weight: file [66, 16], config [66, 24]"]),
    (pickled_resume_state, 2, ["run/resume.pt", "refused for safety"]),
    (truncated_resume_state, 2, ["run/resume.pt", "truncated or damaged"]),
    (negative_head_bins, 2, ["--head-bins must be 0 (no binned pooling)", "got -2"]),
    (resume_required_but_absent, 2, ["no resume state in run", "--resume require"]),
    (single_class_csv, 2, ["data.csv", "label column 'label'", "--label-col", "one class only", "'promoter'"]),
    (four_records, 2, ["too few for the random split", "--valid-frac 0.1", "0 valid", "0 test"]),
    (class_with_one_example, 2, ["class 'rare' has 1 sequence", "1 train, 0 valid, 0 test"]),
    (one_class_test_split, 2, ["the test split holds one class only ('a'", "undefined"]),
    (missing_label_column, 2, ["no label column 'klass'", "--label-col"]),
    (ks_longer_than_sequence, 2, ["--ks 50", "(20 bp)"]),
    (multi_record_fasta_to_interpret, 2, ["three.fa holds 3 records", "--record"]),
    (interrupted_save_leftover, 2, ["clf.old", "interrupted save"]),
    (ensemble_of_other_classes, 2, ["classes ['x', 'y'] differ from", "same classes"]),
    (ensemble_member_missing, 2, ["no_such_clf: no such checkpoint folder"]),
    (protein_fasta, 2, ["q.fa: line 4 (record 'prot'), position 3", "'L' is not a nucleotide symbol",
                        "is this a protein sequence?"]),
    (protein_genome, 2, ["genome.fa: record 'chr2', position 103", "'*' is not a nucleotide symbol"]),
    (fasta_path_as_a_sequence, 2, ["'queries.fa' is a file, not a sequence", "--fasta queries.fa"]),
    (missing_fasta_as_a_sequence, 2, ["'data/queries.fa': no such file, and not a sequence", "--fasta"]),
    (csv_with_a_foreign_symbol, 2, ["data.csv:22: column 'sequence', position 41", "'J' is not a nucleotide symbol"]),
    (evaluate_one_class, 0, ["warning:", "one class only ('promoter', 6 sequences)", "MCC", "ROC-AUC"]),
    (n_only_and_iupac_records, 0, ["warning:", "2 of 3 sequences are mostly unknown", "'ns'", "valid_fraction"]),
    (duplicate_record_names, 0, ["warning:", "q.fa: 1 duplicate record name", "'x_2'"]),
    (scan_duplicate_record_names, 0, ["warning:", "dup.fa: 1 duplicate record name", "kept as 'chr_2'"]),
    (longer_last_line_genome, 0, ["warning:", "genome.fa: line lengths vary within a record", "normalised copy"]),
    (resume_true_without_state, 0, ["no resume state in lm, starting fresh"]),
]


@pytest.mark.parametrize("setup, code, words", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input(world, tmp_path, capsys, monkeypatch, setup, code, words, error_lines):
    argv = setup(world, tmp_path)
    got, out, err = run(argv, tmp_path, capsys, monkeypatch)
    assert got == code, err
    assert "Traceback" not in err
    lines = error_lines(err)
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith(f"gulm {argv[0]}: error: "), err
    text = " ".join(lines)
    for w in words:
        assert w in text, (w, err)
    assert "weights_only=False" not in err  # never advise unsafe loading
    assert "Warning: " not in err  # no raw Python warning (sklearn's, say) next to gulm's own line


def test_marked_predictions_and_unique_ids(world, tmp_path, capsys, monkeypatch):
    """The predictions behind the warnings: a valid_fraction column, ids made unique."""
    run(n_only_and_iupac_records(world, tmp_path), tmp_path, capsys, monkeypatch)
    rows = [r.split("\t") for r in (tmp_path / "p.tsv").read_text().splitlines()]
    assert rows[0][-1] == "valid_fraction"
    assert {r[0]: float(r[-1]) for r in rows[1:]} == {"good": 1.0, "ns": 0.0, "iupac": 0.0}
    run(duplicate_record_names(world, tmp_path), tmp_path, capsys, monkeypatch)
    assert [r.split("\t")[0] for r in (tmp_path / "p.tsv").read_text().splitlines()[1:]] == ["x", "x_2", "y"]


def test_resuming_says_where_it_continues(world, tmp_path, capsys, monkeypatch):
    """--resume true after an interrupted run names the file, stage, epoch and step; the run
    then prints one line per epoch although progress bars are off."""
    from gulm.configs import ClassifierConfig, DataConfig
    from gulm.train.classifier import train_classifier

    cfg = ClassifierConfig(data=DataConfig(csv=str(world["promoters"])), k=3, stride=1, emb_size=16,
                           hidden_size=32, n_layers=2, bs=8, progress=False, threads=1,
                           stages=[[1, 1e-2, 1], [2, 5e-3, 0]], out=str(tmp_path / "run"))
    train_classifier(cfg, stop_after=2)
    capsys.readouterr()
    code, out, err = run(["train-classifier", "--csv", world["promoters"], "--k", "3", "--stride", "1",
                          "--stages", "1:1e-2:1,2:5e-3:0", "--out", "run", "--resume", *TINY], tmp_path, capsys,
                         monkeypatch)
    assert code == 0, err
    assert f"resuming from run{os.sep}resume.pt: stage 1 epoch 2/2, at its start (2 of 3 epochs done)" in err
    epoch_lines = [line for line in out.splitlines() if line.startswith("classifier stage")]
    assert len(epoch_lines) == 1 and "stage 1 epoch 2/2:" in epoch_lines[0]
    assert "train_loss=" in epoch_lines[0] and "valid_loss=" in epoch_lines[0] and " s)" in epoch_lines[0]


def test_resuming_after_a_stage_ends_names_the_next_stage(world, tmp_path, capsys):
    """State saved after a stage's last epoch resumes at the next stage's first epoch, and says so."""
    import dataclasses

    from gulm.configs import ClassifierConfig, DataConfig
    from gulm.train.classifier import train_classifier

    cfg = ClassifierConfig(data=DataConfig(csv=str(world["promoters"])), k=3, stride=1, emb_size=16,
                           hidden_size=32, n_layers=2, bs=8, progress=False, threads=1,
                           stages=[[1, 1e-2, 1], [2, 5e-3, 0]], out=str(tmp_path / "run"))
    train_classifier(cfg, stop_after=1)
    capsys.readouterr()
    train_classifier(dataclasses.replace(cfg, resume=True), stop_after=1)
    err = capsys.readouterr().err
    assert "stage 1 epoch 1/2, at its start (1 of 3 epochs done)" in err, err


def test_gzip_named_file_still_reads_when_it_is_gzip(world, tmp_path, capsys, monkeypatch):
    """The name check refuses only a contradiction: real gzip named .gz reads as before."""
    with gzip.open(tmp_path / "q.fa.gz", "wt") as fh:
        fh.write(f">q1\n{SEQ}\n")
    code, out, err = run(["predict", world["clf"], "--fasta", "q.fa.gz"], tmp_path, capsys, monkeypatch)
    assert code == 0 and out.splitlines()[1].startswith("q1\t"), err


def test_evaluate_an_ensemble(world, tmp_path, capsys, monkeypatch):
    """--ensemble averages the members' probabilities: the same classifier twice scores as itself, and
    two seeds score as the mean of their probabilities; the JSON names the members."""
    import numpy as np

    from gulm.data import read_labeled_csv
    from gulm.infer import Classifier
    from gulm.metrics import classification_metrics

    argv = ["evaluate", world["clf"], "--csv", world["promoters"], "--split", "all", "--progress", "false"]
    code, alone, err = run(argv, tmp_path, capsys, monkeypatch)
    assert code == 0, err
    code, twice, err = run([*argv, "--ensemble", world["clf"]], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    assert "gulm, mean of 2 models, all" in twice

    def numbers(out):
        [row] = [line for line in out.splitlines() if line.startswith("gulm")]
        return row.split(")", 1)[1].split()

    assert numbers(twice) == numbers(alone)
    code, _, err = run([*argv, "--ensemble", world["clf_s1"], "--json", "m.json"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["ensemble_of"] == [str(world["clf"]), str(world["clf_s1"])]
    data = read_labeled_csv(str(world["promoters"]))
    a, b = (Classifier.load(world[k]) for k in ("clf", "clf_s1"))
    pa, pb = a.probs(data.sequences), b.probs(data.sequences)
    assert not np.allclose(pa, pb)
    y = np.array([a.classes.index(label) for label in data.labels])
    want = classification_metrics(y, (pa + pb) / 2, a.classes)
    assert got["roc_auc"] == pytest.approx(want["roc_auc"]) and got["accuracy"] == pytest.approx(want["accuracy"])
