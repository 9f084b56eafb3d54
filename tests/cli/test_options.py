"""Options generated from the config dataclasses: help on every option, choices on closed sets,
flag spellings (old and new), YAML keys, every --help example parses, --threads everywhere."""
import argparse
import dataclasses
import shlex
import textwrap

import pytest

from gulm import configs
from gulm.cli import COMMANDS, build_parser
from gulm.config import build_config, load_yaml
from gulm.configs.fields import check_choices, option_name, set_command_line


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action.choices


def _parse(argv):
    parser, _ = _subparsers()
    args = parser.parse_args(argv)
    cmd = COMMANDS[args.command]
    return build_config(cmd.config, load_yaml(args.config), args)


def test_every_option_of_every_command_has_a_help_line():
    _, subs = _subparsers()
    assert set(subs) == set(COMMANDS)
    for name, sub in subs.items():
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:  # deprecated spellings
                continue
            words = (action.help or "").split("(default")[0].strip()
            assert len(words) > 8, (name, action.dest, action.help)
            if action.option_strings and action.dest not in ("help", "config", "debug"):
                assert "default:" in action.help, (name, action.dest)


def test_closed_sets_are_choices():
    _, subs = _subparsers()

    def choices(cmd, dest):
        return next(a.choices for a in subs[cmd]._actions if a.dest == dest)

    no_model = ("baseline", "models")  # scikit-learn on the CPU; a listing
    for cmd in COMMANDS:
        if cmd not in no_model:
            assert "cuda:1" in choices(cmd, "device") and "gpu" not in choices(cmd, "device")
    for cmd in ("evaluate", "predict", "scan", "interpret"):
        assert tuple(choices(cmd, "dtype")) == ("fp32", "bf16", "fp16")
    for cmd in ("pretrain", "finetune", "train-classifier", "demo"):
        assert tuple(choices(cmd, "dtype")) == ("fp32", "bf16")
    assert tuple(choices("scan", "strand")) == ("+", "-", "both")
    assert tuple(choices("scan", "track_mode")) == ("center", "window")
    assert tuple(choices("evaluate", "split")) == ("train", "valid", "test", "all")
    assert tuple(choices("train-classifier", "select")) == ("last", "best")
    parser, _ = _subparsers()
    with pytest.raises(SystemExit):
        parser.parse_args(["scan", "ckpt", "g.fa", "--dtype", "fp64"])
    # the API checks the same choices
    with pytest.raises(ValueError, match="strand= must be one of"):
        check_choices(configs.ScanConfig(strand="x"))
    with pytest.raises(ValueError, match="dtype= must be one of fp32, bf16"):
        check_choices(configs.PretrainConfig(dtype="fp16"))


def test_every_command_has_threads(monkeypatch):
    import gulm.threads

    for name, cmd in COMMANDS.items():
        if name != "models":  # lists the shipped models; runs nothing
            assert "threads" in {f.name for f in dataclasses.fields(cmd.config)}, name
    seen = []
    monkeypatch.setattr(gulm.threads, "resolve_threads", lambda n=None: seen.append(n) or 1)
    from gulm.runtime.device import setup

    setup("cpu", 3)
    setup("cpu", 0)
    assert seen == [3, None]


def test_class_files_have_their_own_flag_and_the_old_spelling_still_works(capsys):
    cfg = _parse(["train-classifier", "--fasta-class", "pos=p.fa", "--fasta-class", "neg=n.fa"])
    assert cfg.data.fasta == {"pos": "p.fa", "neg": "n.fa"}
    assert capsys.readouterr().err == ""
    cfg = _parse(["finetune", "--lm", "runs/lm", "--fasta", "pos=p.fa"])
    assert cfg.data.fasta == {"pos": "p.fa"}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deprecated" in err[0] and "--fasta-class" in err[0]
    assert _parse(["pretrain", "--fasta", "a.fa", "b.fa"]).fasta == ["a.fa", "b.fa"]
    assert _parse(["predict", "ckpt", "--fasta", "q.fa"]).fasta == "q.fa"


def test_flat_and_nested_yaml_keys_and_flags(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("csv: d.csv\nlabel_col: y\nk: 3\nemb_size: 64\nfasta_class: {}\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("data: {csv: d.csv, label_col: y}\nk: 3\nemb_size: 64\n")
    a = _parse(["train-classifier", "--config", str(flat)])
    b = _parse(["train-classifier", "--config", str(nested)])
    assert a == b and a.data.csv == "d.csv" and a.k == 3 and a.emb_size == 64 and a.stride is None
    c = _parse(["train-classifier", "--config", str(flat), "--k", "5", "--stride", "2", "--emb-size", "16"])
    assert (c.k, c.stride, c.emb_size) == (5, 2, 16)
    p = _parse(["pretrain", "--k", "4"])
    assert (p.k, p.stride, p.emb_size, p.hidden_size, p.n_layers) == (
        4, configs.TokenizerConfig.stride, configs.ModelSize.emb_size, configs.ModelSize.hidden_size,
        configs.ModelSize.n_layers)
    s = _parse(["scan", "ckpt", "g.fa", "--progress", "false", "--windows-tsv"])
    assert (s.checkpoint, s.fasta, s.progress, s.windows_tsv) == ("ckpt", "g.fa", False, True)
    assert _parse(["demo", "--quick"]).quick is True
    assert _parse(["predict", "ckpt", "ACGT", "TTGA"]).sequences == ["ACGT", "TTGA"]


def test_every_help_example_parses():
    parser, _ = _subparsers()
    for name, cmd in COMMANDS.items():
        text = textwrap.dedent(cmd.examples).replace("\\\n", " ")
        for line in text.splitlines():
            argv = shlex.split(line, comments=True)
            argv = argv[argv.index("gulm") + 1:]
            args = parser.parse_args(argv)
            assert args.command == name
            build_config(cmd.config, {}, args)


def test_option_names_follow_the_interface():
    assert option_name("label_col") == "label_col="
    assert option_name("fasta", configs.DataConfig) == "fasta="
    set_command_line(True)
    try:
        assert option_name("label_col") == "--label-col"
        assert option_name("fasta", configs.DataConfig) == "--fasta-class"
    finally:
        set_command_line(False)


def test_scan_help_explains_regions_and_track_modes():
    _, subs = _subparsers()
    text = subs["scan"].format_help()
    flat = " ".join(text.split())
    assert "1-based inclusive" in flat and "0-based half-open" in flat and "BED files" in flat
    for mode in configs.TRACK_MODES:
        assert f"{mode}: " in flat
