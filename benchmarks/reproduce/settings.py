"""Experiment configs of the reproduction harness: loading, merging and expanding them.

``configs/defaults.yaml`` (tokenizer, model size, shared options) is merged under every shared LM
(``configs/lm/<name>.yaml``) and every table row (``configs/<task>/<row>.yaml``); a profile
(``configs/<profile>.yaml``: smoke, quick) is merged over both. A row or LM config may start from
another of its folder (``base: NAME``) and hold only what differs; :func:`own_config` resolves it,
so a variant is one key, not a copy of its parent. Ablation studies
(``configs/ablations/<task>.yaml``) name a base row and, per variant, overrides of it.
Strings may use ``{data}`` and ``{dataset:NAME}``, expanded by :func:`expand` at run time.
Nothing here trains or reads data: :mod:`.harness` runs what these functions describe.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path

__all__ = ["CONFIG_DIR", "lm_config_name", "load_config", "own_config", "deep_merge", "row_names", "lm_config", "row_config",
           "profile_settings", "profile_suffix", "seed_tag", "expand", "config_hash", "ablation_study", "variant_config"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def load_config(path: str | os.PathLike) -> dict:
    from gulm.config import load_yaml

    return load_yaml(path)


def own_config(folder: str | os.PathLike, name: str) -> dict:
    """``<folder>/<name>.yaml`` with its ``base:`` chain resolved: the base config of the same folder
    (itself resolved the same way), with this file's keys deep-merged over it. A key set to ``null``
    stays null (``finetune: null`` turns fine-tuning off); ``base`` itself is dropped."""
    folder = Path(folder)
    chain: dict[str, dict] = {}  # name -> its own keys, child first
    while True:
        path = folder / f"{name}.yaml"
        if not path.exists():
            via = f" (the base of {list(chain)[-1]!r})" if chain else ""
            raise KeyError(f"no config {name!r} in {folder}{via}")
        if name in chain:
            raise ValueError(f"{folder}: 'base' goes round in a circle: {' -> '.join([*chain, name])}")
        cfg = chain[name] = load_config(path)
        if not cfg.get("base"):
            break
        name = str(cfg["base"])
    out: dict = {}
    for cfg in reversed(list(chain.values())):
        out = deep_merge(out, {k: v for k, v in cfg.items() if k != "base"})
    return out


def load_defaults() -> dict:
    """configs/defaults.yaml, with ``dtype: auto`` resolved to this machine's fastest precision
    (bf16 where the CPU has native bf16, fp32 on AVX2-only CPUs, where bf16 is emulated)."""
    from gulm.runtime.device import fastest_dtype

    defaults = load_config(CONFIG_DIR / "defaults.yaml")
    common = defaults.get("common", {})
    if common.get("dtype") == "auto":
        common["dtype"] = fastest_dtype(common.get("device", "cpu"))
    return defaults


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def row_names(task: str, include_optional: bool = False) -> list[str]:
    folder = CONFIG_DIR / task
    if not folder.is_dir():
        raise KeyError(f"no configs for {task!r} (expected {folder})")
    names = []
    for path in sorted(folder.glob("*.yaml")):
        cfg = own_config(folder, path.stem)
        if include_optional or not (cfg.get("optional", False) or cfg.get("legacy", False)):
            names.append(path.stem)
    return names


def profile_settings(profile: str | None) -> dict:
    if not profile:
        return {}
    path = CONFIG_DIR / f"{profile}.yaml"
    if not path.exists() or profile in ("defaults", "baseline"):
        raise KeyError(f"unknown profile {profile!r} (expected {path})")
    return load_config(path)


def profile_suffix(profile: str | None) -> str:
    """What a profile's result files carry before ``.json`` (``naive.smoke.json``); none without one."""
    return f".{profile}" if profile else ""


def seed_tag(row: str, seed: int | None) -> str:
    """The result and run name of ``row`` trained with another seed; seed 0 (or none) is the row itself."""
    return f"{row}__seed{seed}" if seed else row


def shipped_lm(lm: str) -> Path | None:
    """The folder of ``shipped:NAME`` (a model shipped inside the package, as users get it);
    None for any other ``lm``."""
    if not lm.startswith("shipped:"):
        return None
    from gulm import pretrained

    return Path(pretrained.path(lm.split(":", 1)[1]))


def lm_config_name(lm: str) -> str:
    """The harness LM config of a row's ``lm``: ``shipped:bacteria-3m1s`` was trained by
    ``configs/lm/bacteria_3m1s.yaml``."""
    return lm.split(":", 1)[1].replace("-", "_") if lm.startswith("shipped:") else lm


def lm_config(name: str, profile: str | None = None) -> dict:
    name = lm_config_name(name)
    path = CONFIG_DIR / "lm" / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"unknown language model {name!r} (expected {path})")
    defaults = load_defaults()
    cfg = own_config(path.parent, name)
    pre = deep_merge(deep_merge(defaults.get("common", {}), {**defaults.get("tokenizer", {}),
                                                              **defaults.get("model", {})}), cfg.get("pretrain", {}))
    if profile:
        s = profile_settings(profile)
        pre = deep_merge(pre, {**s.get("common", {}), **s.get("model", {}), **s.get("pretrain", {})})
    return {**cfg, "pretrain": pre}


def row_config(task: str, row: str, profile: str | None = None) -> dict:
    path = CONFIG_DIR / task / f"{row}.yaml"
    if not path.exists():
        raise KeyError(f"unknown row {row!r} for {task} (expected {path})")
    defaults = load_defaults()
    cfg = own_config(path.parent, row)
    common = deep_merge(defaults.get("common", {}), cfg.get("common", {}))
    # finetune/classifier only: the recipe layer under the row's own options (rows pin their preset)
    recipe = deep_merge(defaults.get("recipe", {}), cfg.get("recipe", {}))
    # a row may set its own architecture (`model:`) for naive and task-LM rows; a shared LM brings its own
    arch = {**defaults.get("tokenizer", {}), **deep_merge(defaults.get("model", {}), cfg.get("model", {}))}
    clf = deep_merge(deep_merge(common, recipe), cfg.get("classifier", {}))
    if cfg.get("lm") in (None, "task"):
        clf = deep_merge(deep_merge(clf, arch), cfg.get("classifier", {}))
    # `finetune: {}` fine-tunes with the recipe's options; no key (or null): no fine-tuning
    ft = deep_merge(deep_merge(common, recipe), cfg["finetune"]) if cfg.get("finetune") is not None else None
    task_lm = None
    if cfg.get("lm") == "task":
        task_lm = deep_merge(deep_merge(common, arch), cfg.get("task_lm", {}))
    if profile:
        s = profile_settings(profile)
        tiny = {**s.get("common", {})}
        clf = deep_merge(clf, {**tiny, **s.get("classifier", {})})
        if cfg.get("lm") in (None, "task"):
            clf = deep_merge(clf, s.get("model", {}))
        if ft is not None:
            ft = deep_merge(ft, {**tiny, **s.get("finetune", {})})
        if task_lm is not None:
            task_lm = deep_merge(task_lm, {**tiny, **s.get("model", {}), **s.get("pretrain", {})})
    return {**cfg, "classifier": clf, "finetune": ft, "task_lm": task_lm}


def expand(obj, ctx: dict):
    if isinstance(obj, str):
        def sub(m):
            key = m.group(1)
            if key not in ctx:
                raise KeyError(f"unknown placeholder {{{key}}} in a config")
            return str(ctx[key])

        return re.sub(r"\{([a-z_]+(?::[a-z0-9_]+)?)\}", sub, obj)
    if isinstance(obj, list):
        return [expand(x, ctx) for x in obj]
    if isinstance(obj, dict):
        return {k: expand(v, ctx) for k, v in obj.items()}
    return obj


def config_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def ablation_study(task: str, study: str) -> dict:
    """An ablation study: ``configs/ablations/<task>/<study>.yaml`` with ``base`` (a row of the
    task), ``splits`` (where to select; test rows are always removed) and ``variants``: name ->
    ``{levers: text, note: text, set: {...}}`` where ``set`` is deep-merged over the base row."""
    path = CONFIG_DIR / "ablations" / task / f"{study}.yaml"
    if not path.exists():
        raise KeyError(f"unknown ablation study {study!r} for {task} (expected {path})")
    spec = load_config(path)
    if not isinstance(spec.get("variants"), dict) or not spec["variants"]:
        raise ValueError(f"{path}: needs a non-empty 'variants' mapping")
    return spec


def variant_config(task: str, study: str, variant: str, profile: str | None = None) -> dict:
    """The resolved row config of one variant: its base row (``base`` of the variant, else of
    the study), on the study's ``datasets`` where it names them (as its baseline variants are),
    with the variant's ``set`` merged over it."""
    spec = ablation_study(task, study)
    if variant not in spec["variants"]:
        raise KeyError(f"{task}/{study}: no variant {variant!r}; have {sorted(spec['variants'])}")
    v = spec["variants"][variant] or {}
    base = row_config(task, v.get("base", spec["base"]), profile)
    if spec.get("datasets"):
        base = {**base, "datasets": list(spec["datasets"])}
    cfg = deep_merge(base, v.get("set", {}))
    return {**cfg, "description": v.get("levers", "") or cfg.get("description", "")}
