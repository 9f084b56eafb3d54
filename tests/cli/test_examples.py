"""Every command example of README.md and of each ``gulm <command> --help`` runs.

The examples are read from the documentation itself (README's ``bash`` blocks, the epilog of each
command's parser, README's Python block), so the documentation cannot drift from the code. A
fixture writes every file the examples name (a small synthetic genome whose record is
``NC_000913.3``, so the region examples work) into one folder, where the examples run in their
order: later examples use the checkpoints earlier ones wrote (``runs/lm``, ``runs/clf``).

The example text runs as written; to keep CI fast, options that only make a run small are
appended (:data:`FAST`: tiny models, one epoch, a capped corpus; ``--quick`` for the demo), and
the last occurrence of an option wins, as on any command line. ``gulm`` lines run in-process
through :func:`gulm.cli.main` (the code the ``gulm`` executable runs); ``torchrun`` lines run as
real processes, with ``gulm`` on PATH for ``--no-python gulm``.
"""
import dataclasses
import gzip
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import types

import pytest

import gulm

pytest.importorskip("gulm._C", reason="compiled extension not built")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))
README = os.path.join(ROOT, "README.md")

SIZES = ["--emb-size", "16", "--hidden-size", "32", "--n-layers", "2"]
#: options appended to each command's examples; they only make the runs small
FAST = {
    "pretrain": SIZES + ["--epochs", "1", "--max-tokens", "4000", "--bs", "8", "--bptt", "20"],
    "finetune": ["--epochs", "1", "--bs", "4", "--bptt", "20"],
    "train-classifier": SIZES + ["--bs", "8"],
    "demo": ["--quick"],
}
#: the same for README's Python block
FAST_API = {
    "PretrainConfig": dict(emb_size=16, hidden_size=32, n_layers=2, epochs=1, max_tokens=4000, bs=8, bptt=20),
    "FinetuneConfig": dict(epochs=1, bs=4, bptt=20),
    "ClassifierConfig": dict(emb_size=16, hidden_size=32, n_layers=2, bs=8),
}


# ---- the examples, as the documentation states them ---------------------------------------------
def _command_lines(text: str) -> list[list[str]]:
    """argv of each ``gulm`` or ``torchrun`` line of shell text (continuations joined, comments cut)."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[0] in ("gulm", "torchrun"):
            out.append(argv)
    return out


def _readme_blocks(lang: str) -> list[str]:
    with open(README) as fh:
        return re.findall(rf"```{lang}\n(.*?)```", fh.read(), flags=re.S)


def _help_epilogs() -> dict[str, str]:
    import argparse

    from gulm.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: p.epilog for name, p in sub.choices.items()}


def _examples() -> list[tuple[str, list[str]]]:
    seen, out = set(), []
    sources = [("README", block) for block in _readme_blocks("bash")]
    sources += [(f"{name} --help", epilog) for name, epilog in _help_epilogs().items()]
    for where, text in sources:
        for argv in _command_lines(text):
            if tuple(argv) not in seen:
                seen.add(tuple(argv))
                out.append((where, argv))
    return out


EXAMPLES = _examples()


def test_the_examples_cover_every_command_and_the_readme():
    from gulm.cli import COMMANDS

    run = {_gulm_part(argv)[0] for _, argv in EXAMPLES}
    assert run == set(COMMANDS)
    assert sum(where == "README" for where, _ in EXAMPLES) >= 10
    assert all(_help_epilogs()[name].count("gulm ") >= 1 for name in COMMANDS)


# ---- the files the examples name ------------------------------------------------------------------
LAC = "TTTACACTTTATGCTTCCGGCTCGTATGTTGTGTGGAATTGTGAGCGGATAACAATTTCACACAGGA"


def _fasta(path, records):
    with open(path, "w") as fh:
        fh.writelines(f">{name}\n{seq}\n" for name, seq in records)


def write_example_files(d):
    """Every file the examples name, small: ~45 kb genomes, 40 training labels."""
    from gulm.data import read_labeled_csv
    from gulm.demo.synthetic import synthetic_genome, write_demo_data

    src = write_demo_data(d / "_source", length=45_000, seed=2, n_train=40, genome_kwargs={"name": "NC_000913.3"})
    for name in ("genome.fna.gz", "ecoli.fna.gz"):
        shutil.copy(src["genome"], d / name)
    with gzip.open(src["genome"], "rb") as fh:
        (d / "genome.fa").write_bytes(fh.read())
    for i, name in enumerate(("other.fna.gz", "a.fna.gz", "b.fna.gz")):
        synthetic_genome(15_000, seed=10 + i, name=f"genome{i}").write_fasta(d / name)
    shutil.copy(src["annotation"], d / "genes.gff3")
    shutil.copy(src["promoters"], d / "promoters.csv")
    ds = read_labeled_csv(src["promoters"])
    pos = [(i, s) for i, s, y in zip(ds.ids, ds.sequences, ds.labels) if y == "promoter"]
    neg = [(i, s) for i, s, y in zip(ds.ids, ds.sequences, ds.labels) if y != "promoter"]
    _fasta(d / "pos.fa", pos)
    _fasta(d / "neg.fa", neg)
    _fasta(d / "promoters.fa", [(f"p{i + 1}", s) for i, (_, s) in enumerate(pos[:3])])
    _fasta(d / "promoter.fa", [("p1", pos[0][1])])
    _fasta(d / "queries.fa", [("lac", LAC), *pos[:2], *neg[:2]])
    with open(d / "sites.bed", "w") as fh:  # the labelled intervals of the CSV, as a BED
        for i, y in zip(ds.ids, ds.labels):
            chrom, start, end, strand = re.search(r"([^|]+):(\d+)-(\d+)\(([+-])\)$", i).groups()
            fh.write(f"{chrom}\t{start}\t{end}\t{y}\t0\t{strand}\n")
    (d / "test_loci.bed").write_text("NC_000913.3\t1000\t3000\nNC_000913.3\t20000\t21000\n")
    (d / "lm.yaml").write_text("fasta: [genome.fna.gz]\nk: 5\nstride: 2\nepochs: 2\nout: runs/lm\n")
    (d / "clf.yaml").write_text("csv: promoters.csv\nlm: runs/lm\nout: runs/clf_yaml\n")
    write_variant_example_files(d, pos)


def write_variant_example_files(d, promoters):
    """The files of the variant-effect and embed examples: calls.vcf and calls.vcf.gz on genome.fa
    (sorted; an SNV, a multi-allelic record, a deletion, an insertion), seqs.fa and set.csv."""
    genome = "".join((d / "genome.fa").read_text().splitlines()[1:])
    rows = []
    for pos, kind in ((1_000, "snv"), (5_000, "multi"), (9_000, "del"), (12_000, "ins")):
        ref = genome[pos - 1]
        alts = [b for b in "ACGT" if b != ref]
        if kind == "del":
            ref, alts = genome[pos - 1:pos + 2], [ref]
        elif kind == "ins":
            alts = [ref + "TA"]
        elif kind == "snv":
            alts = alts[:1]
        rows.append(f"NC_000913.3\t{pos}\t{kind}\t{ref}\t{','.join(alts)}\t50\tPASS\t.\n")
    (d / "calls.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=NC_000913.3,length=45000>\n"
                                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(rows))
    try:  # bgzip, as VCFs come; without pysam (the vcf extra) the variant-effect examples cannot run anyway
        import pysam

        pysam.tabix_compress(str(d / "calls.vcf"), str(d / "calls.vcf.gz"), force=True)
    except ImportError:
        with gzip.open(d / "calls.vcf.gz", "wt") as fh:
            fh.write((d / "calls.vcf").read_text())
    _fasta(d / "seqs.fa", [(f"s{i}", s) for i, (_, s) in enumerate(promoters[:5])])
    (d / "set.csv").write_text("id,seq\n" + "".join(f"s{i},{s}\n" for i, (_, s) in enumerate(promoters[:5])))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("examples")
    write_example_files(d)
    bin_dir = d / "_bin"  # `gulm` on PATH for torchrun --no-python: this interpreter's gulm
    bin_dir.mkdir()
    shim = bin_dir / "gulm"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m gulm \"$@\"\n")
    shim.chmod(0o755)
    return d


# ---- running them ----------------------------------------------------------------------------------
def _gulm_part(argv):
    """(command, its arguments) of a gulm or torchrun line."""
    if argv[0] == "gulm":
        return argv[1], argv[2:]
    i = argv.index("gulm")
    return argv[i + 1], argv[i + 2:]


def _fast(command, argv=()):
    from gulm.cli import COMMANDS

    fields = {f.name for f in dataclasses.fields(COMMANDS[command].config)}
    extra = list(FAST.get(command, []))
    if "--lm" in argv and extra[:len(SIZES)] == SIZES:  # the sizes come from the LM
        extra = extra[len(SIZES):]
    extra += ["--progress", "false"] if "progress" in fields else []
    return extra + (["--threads", "1"] if "threads" in fields else [])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_torchrun(argv, workdir):
    env = dict(os.environ)
    env["PATH"] = str(workdir / "_bin") + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["PET_MASTER_PORT"] = str(_free_port())  # torchrun's --master-port, from the environment
    env["OMP_NUM_THREADS"] = "1"
    env.pop("GULM_DEBUG", None)
    command, _ = _gulm_part(argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", *argv[1:], *_fast(command, argv)]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env, timeout=600)
    return res.returncode, res.stdout, res.stderr


def _run_gulm(argv, workdir, capsys, monkeypatch):
    from gulm.cli import main
    from gulm.configs.fields import set_command_line

    command, _ = _gulm_part(argv)
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("GULM_DEBUG", raising=False)
    capsys.readouterr()
    try:
        code = main(argv[1:] + _fast(command, argv))
    except SystemExit as exit_:  # argparse refusing an option the example uses
        code = exit_.code
    finally:
        set_command_line(False)
    out = capsys.readouterr()
    return code, out.out, out.err


def _outputs(argv):
    """The paths an example says it writes (``--out``, ``--json``, ``--figure``)."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--json", "--figure")]


@pytest.mark.parametrize("where, argv", EXAMPLES, ids=[f"{w}: {' '.join(a)[:70]}" for w, a in EXAMPLES])
def test_example_runs(workdir, capsys, monkeypatch, where, argv):
    if argv[0] == "torchrun":
        code, out, err = _run_torchrun(argv, workdir)
    else:
        code, out, err = _run_gulm(argv, workdir, capsys, monkeypatch)
    assert code == 0, f"{where}: {' '.join(argv)}\n{err[-3000:]}"
    assert "Traceback" not in err
    # a documented example raises no data warning (the hardware note on emulated bf16 is not one)
    warned = [line for line in err.splitlines() if ": warning:" in line and "no native bfloat16" not in line]
    assert not warned, err
    for path in _outputs(argv):
        assert any(p.startswith(os.path.basename(path)) for p in os.listdir(workdir / os.path.dirname(path))), path
    if argv[:2] == ["gulm", "demo"]:  # the demo draws its table's three rows
        from gulm.configs import DemoConfig

        out = next(iter(_outputs(argv)), DemoConfig().out)
        assert (workdir / out / "evaluation.png").stat().st_size > 10_000


def test_readme_python_block_runs(workdir, monkeypatch):
    """README's Python block, executed as written, with FAST_API merged into its configs."""
    (block,) = [b for b in _readme_blocks("python") if "import gulm" in b]
    real = gulm

    class FastGulm(types.ModuleType):
        def __getattr__(self, name):
            value = getattr(real, name)
            if name in FAST_API:
                return lambda *a, **kw: value(*a, **{**kw, **FAST_API[name], "progress": False, "threads": 1})
            return value

    monkeypatch.chdir(workdir)
    monkeypatch.setitem(sys.modules, "gulm", FastGulm("gulm"))
    scope = {}
    exec(compile(block, "README.md (python block)", "exec"), scope)
    assert scope["probs"].shape == (1, 2) and scope["classes"] == ["non_promoter", "promoter"]
    assert 0 <= scope["metrics"]["accuracy"] <= 1 and scope["config"]["kind"] == "classifier"
