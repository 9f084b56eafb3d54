"""The experiment harness behind ``run.py``: configs -> data -> baselines -> LMs -> classifiers -> JSON.

Configs live in ``configs/``:

- ``defaults.yaml``: tokenizer, model size and options shared by every phase (so naive and
  pretrained rows have the same architecture);
- ``lm/<name>.yaml``: one shared language model each (``pretrain:`` = ``gulm pretrain`` options),
  pretrained once into ``<out>/lm/<name>`` and reused by every task and row that names it;
- ``<task>/<row>.yaml``: one table row: which datasets and splits, which LM (a name, ``null`` for
  the naive row, or ``task`` for an LM pretrained on the split's own train+valid sequences), and
  the ``finetune:`` / ``classifier:`` options (``gulm finetune`` / ``gulm train-classifier``);
  ``finetune_split: NAME`` fine-tunes on another view of the same split (task 5's 5'-truncated
  transcripts) while the classifier reads the row's own, so rows on two views share one LM;
- profiles (``--profile NAME`` = ``NAME.yaml``): overrides of the same code path, e.g.
  ``smoke.yaml`` (seconds, tiny data and models: tests) and ``quick.yaml`` (minutes: one fold,
  real data, a short LM) - their checkpoints go to ``lm_NAME``/``runs_NAME`` and their results
  to ``*.NAME.json``, never mixed with full runs.

Strings may use ``{data}`` (the data root) and ``{dataset:NAME}`` (a built dataset's folder).
Everything goes through the public API: ``gulm.config.build_config`` and
``gulm.train.phases.{pretrain_lm, finetune_lm, train_classifier}``. Every phase's resolved config
is also written as YAML next to its checkpoint, so any step can be re-run with the ``gulm`` CLI.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import baseline as bl
from . import datasets as dsets
from .common import machine_info, summarize_folds, write_json
from .settings import (CONFIG_DIR, ablation_study, config_hash, deep_merge, expand, lm_config, load_config, shipped_lm,
                       profile_settings, profile_suffix, row_config, row_names, seed_tag, variant_config)

__all__ = ["Runner", "TASKS"]
TASKS = tuple(dsets.TASK_DATASETS)


def _write_yaml(path: Path, values: dict) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))


def _dataclass_values(obj) -> dict:
    """A phase config as plain YAML-able values (nested dataclasses flattened like the CLI)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = {g.name: getattr(v, g.name) for g in dataclasses.fields(v)}
        else:
            out[f.name] = v
    return out


def _log_stats(folder: Path) -> dict:
    """Mean training tokens/s and epoch count from a phase's log.csv."""
    path = folder / "log.csv"
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.open()))
    tps = [float(r["train_tokens_per_s"]) for r in rows if r.get("train_tokens_per_s")]
    secs = [float(r["seconds"]) for r in rows if r.get("seconds")]
    return {"epochs": len(rows), "train_tokens_per_s": float(np.mean(tps)) if tps else None,
            "epoch_seconds": secs}


def _resumed_seconds(folder: Path) -> float:
    """Seconds of the epochs a phase's resume.pt holds: the ones a resumed run will not redo (log.csv
    may already list one more, when a kill fell between its write and the state's)."""
    from gulm.runtime.checkpoint import read_resume_state

    history = json.loads(read_resume_state(folder)["history"])
    return float(sum(row.get("seconds") or 0.0 for row in history))


def _model_size(folder: Path) -> dict:
    from safetensors import safe_open

    path = folder / "model.safetensors"
    n = 0
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            n += int(np.prod(fh.get_slice(key).get_shape()))
    cfg = json.loads((folder / "config.json").read_text())
    m = cfg["model"]
    return {"parameters": n, "file_bytes": path.stat().st_size, "emb_size": m["emb_size"],
            "hidden_size": m["hidden_size"], "n_layers": m["n_layers"], "vocab_size": m["vocab_size"],
            "k": cfg["tokenizer"]["k"], "stride": cfg["tokenizer"]["stride"]}


def _file_hash(path: str | os.PathLike) -> str:
    """Content hash of a split CSV: results are reused only for byte-identical data."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=CONFIG_DIR, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# LM training throughput measured on the reference machine (2 cores of an Intel Xeon, torch 2.13
# CPU, bs 64, bptt 70, nothing else running): tokens/s by (emb, hidden, layers, dtype). Used only
# for --estimate; re-measure when the LSTM kernel changes.
THROUGHPUT = {
    (128, 384, 3, "fp32"): 13_700, (128, 384, 3, "bf16"): 22_200,
    (200, 600, 3, "fp32"): 6_600, (200, 600, 3, "bf16"): 12_600,
    (256, 768, 3, "fp32"): 4_300, (256, 768, 3, "bf16"): 10_000,
    (400, 1150, 3, "fp32"): 2_000, (400, 1150, 3, "bf16"): 4_600,
    # the shipped LMs' size; classifier training of task 2 on one core of an AMD EPYC (Zen 3, AVX2)
    (128, 512, 3, "fp32"): 2_300,
    # the same size in bf16: classifier training of task 6 (mouse TATA folds 2-4, 251 bp) on one core of
    # an AMD EPYC Zen 5 (AVX-512 with native bf16), 20,600-23,600 tok/s
    (128, 512, 3, "bf16"): 21_000,
}


def _tokens(lengths, k: int, stride: int) -> int:
    lengths = np.asarray(lengths, dtype=np.int64)
    return int(np.maximum(0, (lengths - k) // stride + 1).sum())


# baseline options that belong to one kind of baseline.yaml only
KIND_OPTIONS = {"gapped": "kmer_gapped", "positional": "kmer_positional"}


# ---- runner --------------------------------------------------------------------------------

class Runner:
    """Runs the rows of a task. ``out`` holds data, LMs and checkpoints (cached by config hash);
    ``results`` the JSON results (default ``<out>/results``)."""

    def __init__(self, data: str | os.PathLike | None, out: str | os.PathLike, *, results: str | None = None,
                 profile: str | None = None, folds: list[int] | None = None, splits: list[str] | None = None,
                 force: bool = False, log: Callable[[str], None] = print):
        self.root = dsets.data_root(data)
        self.out = Path(out)
        self.results = Path(results) if results else self.out / "results"
        self.profile = profile or None
        self.settings = profile_settings(self.profile)
        self.suffix = profile_suffix(self.profile)
        self.folds = folds
        self.only_splits = set(splits) if splits else None
        self.force = force
        self.log = log
        self.manifests: dict[str, dict] = {}
        self._machine = machine_info()
        self._commit = _git_commit()

    # ---- data --------------------------------------------------------------------------
    def dataset(self, name: str) -> dict:
        if name not in self.manifests:
            params = self.settings.get("datasets", {}).get(name, {})
            self.manifests[name] = dsets.build(name, self.root, self.out / "data", force=self.force,
                                               verbose=True, **params)
        return self.manifests[name]

    def _ctx(self) -> dict:
        ctx = {"data": str(self.root)}
        for name in dsets.BUILDERS:
            folder = self.out / "data" / name
            ctx[f"dataset:{name}"] = str(folder)
        return ctx

    @staticmethod
    def _named_splits(manifest: dict, wanted: list[str]) -> list[dict]:
        """The splits ``wanted`` of a dataset's manifest, in that order (no fold or --splits filter)."""
        by_name = {sp["name"]: sp for sp in manifest["splits"]}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise KeyError(f"{manifest['settings']['name']}: no split(s) {missing}; have {sorted(by_name)}")
        return [by_name[w] for w in wanted]

    def _splits(self, manifest: dict, wanted: list[str] | None) -> list[dict]:
        splits = self._named_splits(manifest, wanted) if wanted else manifest["splits"]
        if self.folds is not None:
            folds = [sp for sp in splits if sp["name"].startswith("fold")]
            keep = {f"fold{i}" for i in self.folds}
            splits = [sp for sp in splits if not sp["name"].startswith("fold") or sp["name"] in keep] if folds else splits
        elif self.settings.get("max_splits"):
            splits = splits[: self.settings["max_splits"]]
        if self.only_splits is not None:
            splits = [sp for sp in splits if sp["name"] in self.only_splits]
        return splits

    # ---- baselines ---------------------------------------------------------------------
    def baseline(self, task: str) -> dict:
        """k-mer logistic regression on every split of every dataset of ``task`` (plus the
        length-only baseline where ``configs/baseline.yaml`` asks for it). Returns the summary."""
        spec = load_config(CONFIG_DIR / "baseline.yaml")
        smoke = self.settings.get("baseline", {})
        summary = {}
        for name in dsets.TASK_DATASETS[task]:
            manifest = self.dataset(name)
            opts = deep_merge(spec.get("default", {}), spec.get(name, {}))
            opts = deep_merge(opts, smoke)
            kinds = opts.pop("kinds", ["kmer"])
            splits = opts.pop("splits", None)
            per_row: dict[str, list] = {}
            for sp in self._splits(manifest, splits):
                for features in kinds:
                    row = "kmer_logreg" if features == "kmer" else f"{features}_logreg"
                    # `gapped` and `positional` are only their kinds' (the other kinds' cached results predate them)
                    kind_opts = {k: v for k, v in opts.items()
                                 if KIND_OPTIONS.get(k, features) == features}
                    path = self.results / task / name / sp["name"] / f"baseline_{row}{self.suffix}.json"
                    data_key = _file_hash(sp["path"])
                    if (path.exists() and not self.force and json.loads(path.read_text()).get("data_key") == data_key
                            and json.loads(path.read_text()).get("options") == kind_opts):
                        res = json.loads(path.read_text())
                    else:
                        self.log(f"[baseline] {task} {name} {sp['name']} {row} ...")
                        res = bl.run_baseline(sp["path"], features=features, **kind_opts)
                        res.update(task=task, dataset=name, split=sp["name"], data_key=data_key, options=kind_opts,
                                   csv=sp["path"], machine=self._machine, git_commit=self._commit)
                        write_json(path, res)
                    m = res["metrics"]
                    self.log(f"[baseline] {task} {name} {sp['name']} {row}: acc {m['accuracy']:.4f} "
                             f"mcc {m['mcc']:.4f} auc {m['roc_auc'] if m['roc_auc'] is not None else float('nan'):.4f} "
                             f"({res['wall_seconds']:.1f} s)")
                    per_row.setdefault(row, []).append(res)
            for row, results in per_row.items():
                summary.setdefault(name, {})[row] = self._summary_entry(results)
        write_json(self.results / task / f"baseline_summary{self.suffix}.json",
                   {"task": task, "rows": summary, "machine": self._machine, "git_commit": self._commit})
        return summary

    @staticmethod
    def _summary_entry(results: list[dict]) -> dict:
        folds = [r for r in results if r["split"].startswith("fold")]
        def key(r):
            return r["split"] if not r.get("seed") else f"{r['split']}@seed{r['seed']}"

        entry = {"splits": {key(r): {k: r["metrics"].get(k) for k in
                                     ("n", "accuracy", "precision", "recall", "f1", "mcc", "specificity", "roc_auc")}
                            for r in results},
                 "wall_seconds": round(sum(r.get("wall_seconds", 0) for r in results), 1)}
        seeds = sorted({int(r.get("seed") or 0) for r in results})
        if len(folds) > 1 or len(seeds) > 1:
            runs = folds if len(folds) > 1 else results
            entry["cv"] = summarize_folds([r["metrics"] for r in runs])
            entry["seeds"] = seeds
            entry["spread"] = ("sd over folds" if len(seeds) == 1 else
                               f"sd over {len(runs)} runs ({len(runs) // len(seeds)} folds x {len(seeds)} seeds)"
                               if len(folds) > 1 else f"sd over {len(seeds)} seeds")
            if len(seeds) > 1 and len(folds) > 1:  # the spread of the seed means, too
                by_seed = {sd: [r["metrics"] for r in runs if int(r.get("seed") or 0) == sd] for sd in seeds}
                means = [summarize_folds(ms) for ms in by_seed.values()]
                entry["sd_of_seed_means"] = {k: float(np.std([m[k]["mean"] for m in means if k in m], ddof=1))
                                             for k in means[0]}
        return entry

    # ---- language models ---------------------------------------------------------------
    def lm(self, name: str) -> Path:
        """Pretrain the shared LM ``name`` (cached by its resolved config); ``shipped:NAME`` is
        the pretrained model shipped inside the package (gulm.pretrained), used as users get it."""
        shipped = shipped_lm(name)
        if shipped is not None:
            return shipped
        from gulm.config import build_config
        from gulm import PretrainConfig, pretrain_lm

        cfg = lm_config(name, self.profile)
        for dep in cfg.get("requires", []):
            self.dataset(dep)
        values = expand(cfg["pretrain"], self._ctx())
        folder = self.out / (f"lm_{self.profile}" if self.profile else "lm") / name
        key = config_hash(values)
        done = folder / "repro_key.json"
        if (not self.force and done.exists() and json.loads(done.read_text()).get("key") == key
                and (folder / "model.safetensors").exists()):
            return folder
        # an interrupted run of the same config resumes from its resume.pt; any other config starts over
        pending = folder.parent / f"{name}.pending.json"
        resume = self._claim(pending, key, folder)
        values = {**values, "out": str(folder), "resume": resume}
        pcfg = build_config(PretrainConfig, values, None)
        _write_yaml(folder.parent / f"{name}.resolved.yaml", _dataclass_values(pcfg))
        self.log(f"[lm] {'resuming' if resume else 'pretraining'} {name} -> {folder}")
        t0 = time.perf_counter()
        metrics = pretrain_lm(pcfg)
        write_json(done, {"key": key, "config": values, "metrics": metrics,
                          "wall_seconds": time.perf_counter() - t0, "machine": self._machine})
        pending.unlink(missing_ok=True)
        return folder

    def _claim(self, pending: Path, key: str, folder: Path) -> bool:
        """Mark a phase of config ``key`` as under way in ``pending`` (removed when it completes);
        True when an interrupted run of the same key left resume state in ``folder`` to continue."""
        resume = (not self.force and pending.exists() and json.loads(pending.read_text()).get("key") == key
                  and (folder / "resume.pt").exists())
        write_json(pending, {"key": key})
        return resume

    @staticmethod
    def _lm_key(folder) -> str:
        """What identifies an LM checkpoint's weights: its own repro key, else its weights' hash."""
        done = Path(folder) / "repro_key.json"
        if done.exists():
            return json.loads(done.read_text()).get("key") or _file_hash(Path(folder) / "model.safetensors")
        return _file_hash(Path(folder) / "model.safetensors")

    def _lm_info(self, folder: Path) -> dict:
        done = json.loads((folder / "repro_key.json").read_text()) if (folder / "repro_key.json").exists() else {}
        cfg = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").exists() else None
        if (folder / "card.json").exists():  # a shipped model: its card holds the valid figures and cost
            card = json.loads((folder / "card.json").read_text())
            metrics = metrics or card.get("valid")
            done = {"wall_seconds": card.get("training", {}).get("seconds")}
        return {"path": str(folder), "metrics": metrics, "corpus": cfg.get("corpus"),
                "wall_seconds": done.get("wall_seconds"), **{f"log_{k}": v for k, v in _log_stats(folder).items()}}

    def _task_lm(self, spec: dict, split: dict, folder: Path) -> Path:
        """An LM pretrained on the split's own train (stream) and valid (validation) sequences."""
        from gulm.config import build_config
        from gulm.data import read_labeled_csv
        from gulm.data.corpus import LMCorpus
        from gulm.data.tokenizer import KmerTokenizer
        from gulm import PretrainConfig, pretrain_lm

        key = config_hash({"spec": spec, "data_key": _file_hash(split["path"])})
        done = folder / "repro_key.json"
        if not self.force and done.exists() and json.loads(done.read_text()).get("key") == key:
            return folder
        ds = read_labeled_csv(split["path"])
        values = {k: v for k, v in spec.items() if k not in ("fasta",)}
        pcfg = build_config(PretrainConfig, {**values, "out": str(folder)}, None)
        corpus = LMCorpus.from_labeled(ds, KmerTokenizer(pcfg.k, pcfg.stride), both_strands=pcfg.both_strands,
                                       source="task")
        _write_yaml(folder.parent / "task_lm.resolved.yaml", _dataclass_values(pcfg))
        t0 = time.perf_counter()
        metrics = pretrain_lm(pcfg, corpus=corpus)
        write_json(done, {"key": key, "metrics": metrics, "wall_seconds": time.perf_counter() - t0})
        return folder

    # ---- rows --------------------------------------------------------------------------
    def run_row(self, task: str, row: str, seed: int | None = None) -> list[dict]:
        """Fine-tune (if configured) and train the classifier of ``row`` on each of its splits;
        writes one result JSON per split and returns them. ``seed`` repeats the row with another
        training seed (fine-tuning and classifier; data splits unchanged) into ``<row>__seed<N>``."""
        cfg = row_config(task, row, self.profile)
        tag = row
        if seed is not None:
            over = {"classifier": {"seed": seed}}
            if cfg.get("finetune") is not None:
                over["finetune"] = {"seed": seed}
            cfg = deep_merge(cfg, over)
            tag = seed_tag(row, seed)
        return self._run_config(task, row, cfg, tag=tag, seed=seed or 0)

    def run_variant(self, task: str, study: str, variant: str) -> list[dict]:
        """One variant of an ablation study (``configs/ablations/<task>/<study>.yaml``), trained on
        the study's splits with the test rows removed (see :meth:`_valid_only`): its metrics are
        valid metrics, for selection."""
        spec = ablation_study(task, study)
        if (spec["variants"].get(variant) or {}).get("baseline"):
            return self._baseline_variant(task, study, variant, spec)
        cfg = variant_config(task, study, variant, self.profile)
        return self._run_config(task, variant, cfg, tag=variant, seed=cfg["classifier"].get("seed", 0),
                                study=study, splits=spec.get("splits"))

    def _baseline_variant(self, task: str, study: str, variant: str, spec: dict) -> list[dict]:
        """The k-mer logistic regression on a study's valid-only splits (C chosen on one half of
        the valid split, scored on the other), so each variant has the baseline beside it."""
        opts = dict((spec["variants"][variant] or {}).get("options") or {})
        out = []
        for name in spec.get("datasets") or dsets.TASK_DATASETS[task]:
            for sp in self._splits(self.dataset(name), spec.get("splits")):
                sp = self._valid_only(sp)
                path = self.results / task / "ablations" / study / name / sp["name"] / f"{variant}{self.suffix}.json"
                if path.exists() and not self.force and json.loads(path.read_text()).get("options") == opts:
                    out.append(json.loads(path.read_text()))
                    continue
                res = bl.run_baseline(sp["path"], **opts)
                res.update(task=task, dataset=name, split=sp["name"], row=variant, study=study, complete=True,
                           options=opts, timing={"task_seconds": res["wall_seconds"]}, machine=self._machine,
                           selection="C chosen on one half of the valid split, scored on the other")
                write_json(path, res)
                self.log(f"[{task}] {name} {sp['name']} {variant}: acc {res['metrics']['accuracy']:.4f} "
                         f"mcc {res['metrics']['mcc']:.4f}")
                out.append(res)
        return out

    def _valid_only(self, split: dict) -> dict:
        """The split's CSV for ablations: its test rows removed, and its valid rows cut in two
        stratified halves: one stays ``valid`` (where a variant picks its epoch), the other is
        relabelled ``test`` (where it is scored), so a best-epoch variant is not scored on the
        data that chose its epoch. Cached next to the dataset."""
        from gulm.data import read_labeled_csv, write_labeled_csv

        src = Path(split["path"])
        dest = src.parent / "valid_only" / src.name
        if not dest.exists() or dest.stat().st_mtime < src.stat().st_mtime:
            ds = read_labeled_csv(src)
            keep = [i for i, t in enumerate(ds.split) if t != "test"]
            sub = ds.subset(keep)
            rng = np.random.default_rng(12345)
            new_split = list(sub.split)
            for label in sorted(set(sub.labels)):
                idx = [i for i, (t, y) in enumerate(zip(sub.split, sub.labels)) if t == "valid" and y == label]
                for i in rng.permutation(idx)[: len(idx) // 2]:
                    new_split[int(i)] = "test"
            sub.split = new_split
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_labeled_csv(dest, sub)
        return {**split, "path": str(dest)}

    def _run_config(self, task: str, row: str, cfg: dict, *, tag: str, seed: int = 0,
                    study: str | None = None, splits: list[str] | None = None) -> list[dict]:
        from gulm.config import build_config
        from gulm import ClassifierConfig, FinetuneConfig, finetune_lm, train_classifier

        ctx = self._ctx()
        shared_lm = None
        if cfg.get("lm") not in (None, "task"):
            shared_lm = self.lm(cfg["lm"])
        results = []
        datasets = cfg.get("datasets") or dsets.TASK_DATASETS[task]
        for name in datasets:
            manifest = self.dataset(name)
            for sp in self._splits(manifest, splits or cfg.get("splits")):
                if study is not None:
                    sp = self._valid_only(sp)
                    path = self.results / task / "ablations" / study / name / sp["name"] / f"{tag}{self.suffix}.json"
                else:
                    path = self.results / task / name / sp["name"] / f"{tag}{self.suffix}.json"
                if path.exists() and not self.force:
                    old = json.loads(path.read_text())
                    if old.get("data_key") == _file_hash(sp["path"]) and old.get("config_key") == config_hash(cfg) and old.get("complete"):
                        self.log(f"[{task}] {name} {sp['name']} {tag}: cached ({path})")
                        results.append(old)
                        continue
                run_dir = (self.out / (f"runs_{self.profile}" if self.profile else "runs") / task
                           / (f"ablations/{study}" if study else "") / name / sp["name"] / tag)
                timing, lm_info, throughput = {}, None, {}
                lm_path = shared_lm
                if shared_lm is not None:
                    lm_info = {"name": cfg["lm"], **self._lm_info(shared_lm)}
                    timing["pretrain_seconds_shared"] = lm_info.get("wall_seconds")
                if cfg.get("lm") == "task":
                    lm_path = self._task_lm(expand(cfg["task_lm"], ctx), sp, run_dir / "task_lm")
                    lm_info = {"name": "task", **self._lm_info(lm_path)}
                    # its pretraining time, also when this run found it cached (a resumed or repeated row)
                    timing["task_lm_seconds"] = lm_info["wall_seconds"]
                    throughput["task_lm_tokens_per_s"] = _log_stats(lm_path).get("train_tokens_per_s")
                data_cfg = {"csv": sp["path"], "split_col": "set"}
                if cfg.get("finetune") is not None and lm_path is not None:
                    # ``finetune_split``: the LM is fine-tuned on another view of the same split (say the
                    # 5'-truncated transcripts) and shared with the rows fine-tuned on that view
                    ft_sp = self._named_splits(manifest, [cfg["finetune_split"]])[0] if cfg.get("finetune_split") else sp
                    ft_data = {"csv": ft_sp["path"], "split_col": "set"}
                    ft_values = {**expand(cfg["finetune"], ctx), "lm": str(lm_path), "data": ft_data}
                    # a fine-tuned LM is shared by every row and variant with the same LM, options and
                    # data (ablations differ mostly in the classifier); its seconds count for each
                    ft_key = config_hash({"finetune": ft_values, "lm_key": self._lm_key(lm_path),
                                          "data_key": _file_hash(ft_sp["path"])})
                    ft_dir = self.out / (f"finetuned_{self.profile}" if self.profile else "finetuned") / ft_key
                    fcfg = build_config(FinetuneConfig, {**ft_values, "out": str(ft_dir)}, None)
                    _write_yaml(run_dir / "finetune.yaml", _dataclass_values(fcfg))
                    done_ft = ft_dir / "repro_key.json"
                    if self.force or not done_ft.exists() or not (ft_dir / "model.safetensors").exists():
                        self.log(f"[{task}] {name} {sp['name']} {tag}: fine-tuning {cfg['lm']} ...")
                        t0 = time.perf_counter()
                        ft_metrics = finetune_lm(fcfg)
                        write_json(done_ft, {"key": ft_key, "metrics": ft_metrics,
                                             "seconds": time.perf_counter() - t0})
                    ft_done = json.loads(done_ft.read_text())
                    ft_metrics = ft_done["metrics"]
                    timing["finetune_seconds"] = ft_done["seconds"]
                    throughput["finetune_tokens_per_s"] = _log_stats(ft_dir).get("train_tokens_per_s")
                    lm_path = ft_dir
                    if lm_info is not None:
                        lm_info["finetune_metrics"] = ft_metrics
                clf_values = {**expand(cfg["classifier"], ctx), "data": data_cfg, "out": str(run_dir / "classifier"),
                              "lm": str(lm_path) if lm_path is not None else ""}
                if lm_path is not None:  # architecture and tokenizer come from the LM checkpoint; shown as such
                    lm_model = json.loads((Path(lm_path) / "config.json").read_text())["model"]
                    clf_values.update({key: lm_model[key] for key in ("emb_size", "hidden_size", "n_layers")})
                # an interrupted classifier of the same config, data and LM resumes from its resume.pt, as
                # the LM pretraining does; the seconds of the epochs that state holds count in its time
                clf_key = config_hash({"classifier": clf_values, "data_key": _file_hash(sp["path"]),
                                       "lm_key": self._lm_key(lm_path) if lm_path is not None else None})
                pending = run_dir / "classifier.pending.json"
                resume = self._claim(pending, clf_key, run_dir / "classifier")
                earlier = _resumed_seconds(run_dir / "classifier") if resume else 0.0
                ccfg = build_config(ClassifierConfig, {**clf_values, "resume": resume}, None)
                # the YAML reruns the row with the plain CLI: from the start
                _write_yaml(run_dir / "classifier.yaml", {**_dataclass_values(ccfg), "resume": False})
                self.log(f"[{task}] {name} {sp['name']} {row}: {'resuming' if resume else 'training'} the classifier ...")
                t0 = time.perf_counter()
                metrics = train_classifier(ccfg)
                timing["classifier_seconds"] = earlier + time.perf_counter() - t0
                if metrics.get("complete", True):  # a run stopped early stays resumable
                    pending.unlink(missing_ok=True)
                throughput["classifier_tokens_per_s"] = _log_stats(run_dir / "classifier").get("train_tokens_per_s")
                timing["task_seconds"] = sum(v for k, v in timing.items() if k != "pretrain_seconds_shared" and v)
                res = {
                    "task": task, "dataset": name, "split": sp["name"], "row": row, "seed": seed,
                    "study": study, "selection": ("epoch chosen on one half of the valid split, scored on the other; test rows "
                                  "removed") if study else None,
                    "description": cfg.get("description", ""), "protocol": cfg.get("protocol", ""),
                    "metrics": metrics, "complete": bool(metrics.get("complete", True)), "resumed": resume,
                    "timing": timing, "throughput": throughput,
                    "model": _model_size(run_dir / "classifier"), "lm": lm_info,
                    "configs": {"classifier": _dataclass_values(ccfg)},
                    "data_key": _file_hash(sp["path"]), "config_key": config_hash(cfg), "csv": sp["path"],
                    "profile": self.profile, "machine": self._machine, "git_commit": self._commit,
                }
                write_json(path, res)
                self.log(f"[{task}] {name} {sp['name']} {tag}: {metrics.get('split')} acc {metrics.get('accuracy', float('nan')):.4f} "
                         f"mcc {metrics.get('mcc', float('nan')):.4f} in {timing['task_seconds']:.0f} s "
                         f"(classifier {throughput.get('classifier_tokens_per_s') or 0:.0f} tok/s)")
                results.append(res)
        return results

    def estimate(self, task: str, rows: list[str] | None = None) -> list[dict]:
        """Training tokens and estimated minutes per row (from the split CSVs and the configs, at
        the THROUGHPUT of the row's architecture); shared LM pretraining is listed separately."""
        from gulm import presets
        from gulm.data import read_labeled_csv

        rows = rows or self.settings.get("rows", {}).get(task) or row_names(task)
        out = []
        for row in rows:
            cfg = row_config(task, row, self.profile)
            if str(cfg.get("lm")).startswith("shipped:"):  # self.lm() only locates a shipped model
                shipped = json.loads((self.lm(cfg["lm"]) / "config.json").read_text())
                lm = {**shipped["model"], **shipped["tokenizer"]}
            elif cfg.get("lm") not in (None, "task"):
                lm = lm_config(cfg["lm"], self.profile)["pretrain"]
            else:
                lm = cfg["task_lm"] if cfg.get("lm") == "task" else cfg["classifier"]
            k, stride = lm.get("k", 5), lm.get("stride", 2)
            arch = (lm["emb_size"], lm["hidden_size"], lm["n_layers"], cfg["classifier"].get("dtype", "fp32"))
            total = 0
            for name in cfg.get("datasets") or dsets.TASK_DATASETS[task]:
                for sp in self._splits(self.dataset(name), cfg.get("splits")):
                    ds = read_labeled_csv(sp["path"])
                    lens = {s: [len(q) for q, t in zip(ds.sequences, ds.split) if t == s] for s in ("train", "valid")}
                    train, valid = _tokens(lens["train"], k, stride), _tokens(lens["valid"], k, stride)
                    clf, ft = cfg["classifier"], cfg.get("finetune")
                    if clf.get("preset"):  # the stages and epochs the preset gives this split
                        p = presets.resolve(clf["preset"], lens["train"], len(set(ds.labels)),
                                            clf.get("stranded", True))
                        clf = {**p.options("classifier"), **{k_: v for k_, v in clf.items() if v is not None}}
                        if ft is not None:
                            ft = {**p.options("finetune"), **{k_: v for k_, v in ft.items() if v is not None}}
                    total += sum(int(st[0]) for st in clf["stages"]) * train
                    if ft is not None and cfg.get("lm") is not None:
                        total += ft.get("epochs", 5) * (train + valid) * (2 if ft.get("both_strands", True) else 1)
                    if cfg.get("lm") == "task":
                        t = cfg["task_lm"]
                        total += t.get("epochs", 10) * train * (2 if t.get("both_strands", True) else 1)
            tps = THROUGHPUT.get(arch)
            out.append({"task": task, "row": row, "architecture": arch, "tokens": total, "tokens_per_s": tps,
                        "minutes": round(total / tps / 60, 1) if tps else None, "lm": cfg.get("lm")})
        return out

    def estimate_lm(self, name: str) -> dict:
        """Pretraining tokens and minutes of a shared LM (builds its corpus: takes seconds to minutes)."""
        from gulm.data.corpus import LMCorpus
        from gulm.data.tokenizer import KmerTokenizer

        cfg = lm_config(name, self.profile)
        for dep in cfg.get("requires", []):
            self.dataset(dep)
        pre = expand(cfg["pretrain"], self._ctx())
        corpus = LMCorpus.from_fasta(pre["fasta"], KmerTokenizer(pre.get("k", 5), pre.get("stride", 2)),
                                     valid_frac=pre.get("valid_frac", 0.1), both_strands=pre.get("both_strands", True),
                                     exclude_bed=pre.get("exclude_bed"))
        n = int(corpus.train.size) if not pre.get("max_tokens") else min(int(corpus.train.size), pre["max_tokens"])
        total = pre.get("epochs", 10) * n
        tps = THROUGHPUT.get((pre["emb_size"], pre["hidden_size"], pre["n_layers"], pre.get("dtype", "fp32")))
        return {"lm": name, "tokens_per_epoch": n, "tokens": total, "tokens_per_s": tps,
                "minutes": round(total / tps / 60, 1) if tps else None, "excluded_bases": corpus.stats["excluded_bases"]}

    def run(self, task: str, rows: list[str] | None = None, *, baseline: bool = True, models: bool = True,
            seeds: list[int] | None = None) -> dict:
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; choose from {TASKS}")
        for name in dsets.TASK_DATASETS[task]:
            self.dataset(name)
        out = {"task": task}
        if baseline:
            out["baseline"] = self.baseline(task)
        if models:
            if rows is None:
                rows = self.settings.get("rows", {}).get(task) or row_names(task)
            for row in rows:
                for seed in seeds or [None]:
                    self.run_row(task, row, seed=None if seed == 0 else seed)
            out["models"] = self.summarize(task)
        return out

    def summarize(self, task: str) -> dict:
        """Writes ``models_summary.json`` of ``task`` from every complete row result under
        ``results/<task>`` (of this profile), so that runs of some rows, folds or splits add to
        the summary instead of replacing it. Returns its rows."""
        summary: dict[str, dict[str, list]] = {}
        for path in sorted((self.results / task).glob(f"*/*/*{self.suffix}.json")):
            if path.name.startswith("baseline_") or path.name[: -len(f"{self.suffix}.json")].count("."):
                continue  # baselines, and other profiles' results when this one has no suffix
            res = json.loads(path.read_text())
            if res.get("complete") and res.get("task") == task:
                summary.setdefault(res["dataset"], {}).setdefault(res["row"], []).append(res)
        models = {name: {row: {**self._summary_entry(rs),
                               "task_seconds": round(sum(r["timing"]["task_seconds"] for r in rs), 1),
                               "model": rs[0]["model"]} for row, rs in sorted(by_row.items())}
                  for name, by_row in sorted(summary.items())}
        write_json(self.results / task / f"models_summary{self.suffix}.json",
                   {"task": task, "rows": models, "machine": self._machine, "git_commit": self._commit})
        return models

    def summarize_ablation(self, task: str, study: str) -> dict:
        """``ablations/<study>/summary.json``: each variant's valid metrics (mean over its
        splits) and minutes, beside the study's base variant."""
        spec = ablation_study(task, study)
        rows: dict[str, list] = {}
        for path in sorted((self.results / task / "ablations" / study).glob(f"*/*/*{self.suffix}.json")):
            res = json.loads(path.read_text())
            if res.get("complete") and res.get("study") == study:
                rows.setdefault(res["row"], []).append(res)
        out = {}
        for variant, rs in rows.items():
            ms = summarize_folds([r["metrics"] for r in rs])
            out[variant] = {"valid": {k: v["mean"] for k, v in ms.items()}, "n_splits": len(rs),
                            "minutes": round(sum(r["timing"]["task_seconds"] for r in rs) / 60, 1),
                            # a variant the study file does not list (an ensemble.py --study row) says its own
                            "levers": spec["variants"].get(variant, {}).get("levers") or rs[0].get("levers", ""),
                            "note": spec["variants"].get(variant, {}).get("note", "")}
        summary = {"task": task, "study": study, "description": spec.get("description", ""),
                   "metric": spec.get("metric", "mcc"), "base": spec.get("reference"), "variants": out,
                   "machine": self._machine}
        write_json(self.results / task / "ablations" / study / f"summary{self.suffix}.json", summary)
        return summary
