"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``metrics.json``, and the
``resume.pt`` beside them.

Nothing in a checkpoint is ever unpickled: weights are safetensors, everything else JSON; the
optimizer and RNG state of ``resume.pt`` is loaded with ``torch.load(weights_only=True)``.
The checkpoint itself (weights, config, metrics) and ``resume.pt`` are written here and nowhere
else (the training log beside them is :mod:`gulm.train.log`'s): folders go to a temporary
sibling and are renamed into place, files to a temporary name, so an interrupted save never
leaves a half-written checkpoint.

Every path or name of a checkpoint that a user gives goes through :func:`resolve_checkpoint`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import torch
from torch import nn

import gulm
from gulm.configs.fields import option_name
from gulm.metrics import write_metrics

__all__ = ["resolve_checkpoint", "save_checkpoint", "read_config", "load_checkpoint",
           "load_encoder_from_lm", "check_tokenizer", "save_resume_state", "read_resume_state",
           "TokenizerMismatchError", "CheckpointError", "KINDS", "read_calibration"]

WEIGHTS, CONFIG, METRICS, RESUME = "model.safetensors", "config.json", "metrics.json", "resume.pt"
CALIBRATION = "calibration.json"  # a classifier's validation scores (see save_checkpoint)
KINDS = {"lm": "language-model", "classifier": "classifier"}


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or of the wrong kind."""


class TokenizerMismatchError(CheckpointError):
    """An LM checkpoint's tokenizer differs from the one the classifier data needs."""


def resolve_checkpoint(path_or_name) -> str:
    """The folder of a checkpoint given by path (later also by the name of a shipped model).
    Raises :class:`CheckpointError` naming it unless it holds a gulm checkpoint."""
    if path_or_name is None or str(path_or_name) == "":
        raise CheckpointError("no checkpoint given")
    folder = os.fspath(path_or_name)
    if not os.path.isdir(folder):
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    if not os.path.exists(os.path.join(folder, CONFIG)) or not os.path.exists(os.path.join(folder, WEIGHTS)):
        raise CheckpointError(f"{folder}: not a gulm checkpoint (needs {CONFIG} and {WEIGHTS})")
    return folder


def _tied_keys(model: nn.Module) -> set[str]:
    """State-dict keys whose tensor is shared with an earlier key (tied weights)."""
    seen, tied = {}, set()
    for k, v in model.state_dict(keep_vars=True).items():
        ptr = (v.data_ptr(), v.shape, v.stride()) if v.numel() else None
        if ptr is not None and ptr in seen:
            tied.add(k)
        elif ptr is not None:
            seen[ptr] = k
    return tied


def save_checkpoint(folder, model: nn.Module, *, kind: str, model_config: dict, tokenizer,
                    training: dict | None = None, metrics: dict | None = None,
                    extra: dict | None = None, calibration: dict | None = None) -> str:
    """Atomically write a checkpoint folder; returns its path. ``calibration`` (JSON-able: a
    classifier's validation labels and scores, for calibrated scan thresholds) goes to
    ``calibration.json``."""
    from safetensors.torch import save_file

    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".ckpt-", dir=parent)
    try:
        tied = _tied_keys(model)
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()
                 if k not in tied}
        save_file(state, os.path.join(tmp, WEIGHTS))
        config = {
            "gulm_version": gulm.__version__,
            "kind": kind,
            "model": model_config,
            "tokenizer": tokenizer.to_dict(),
            "tied_keys": sorted(tied),
            "training": training or {},
        }
        config.update(extra or {})
        with open(os.path.join(tmp, CONFIG), "w") as fh:
            json.dump(config, fh, indent=2, default=str)
            fh.write("\n")
        write_metrics(os.path.join(tmp, METRICS), metrics or {})
        if calibration is not None:
            with open(os.path.join(tmp, CALIBRATION), "w") as fh:
                json.dump(calibration, fh, separators=(",", ":"))
        old = None
        if os.path.exists(folder):
            # keep files that are not part of the checkpoint (logs, resume state)
            for name in os.listdir(folder):
                if name not in (WEIGHTS, CONFIG, METRICS, CALIBRATION):
                    os.replace(os.path.join(folder, name), os.path.join(tmp, name))
            old = folder + ".old"
            if os.path.exists(old):
                shutil.rmtree(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_config(folder, kind: str | None = None) -> dict:
    """The ``config.json`` of a checkpoint; with ``kind``, refuses a checkpoint of another kind."""
    folder = resolve_checkpoint(folder)
    with open(os.path.join(folder, CONFIG)) as fh:
        cfg = json.load(fh)
    if kind is not None and cfg.get("kind") != kind:
        raise CheckpointError(f"{folder}: not a {KINDS[kind]} checkpoint (found kind {cfg.get('kind')!r})")
    return cfg


def read_calibration(folder) -> dict | None:
    """The ``calibration.json`` of a checkpoint (see :func:`save_checkpoint`), None if it has none."""
    path = os.path.join(resolve_checkpoint(folder), CALIBRATION)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def _load_state(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(os.path.join(os.fspath(folder), WEIGHTS))


def load_checkpoint(folder, device="cpu", kind: str | None = None):
    """(model in eval mode, tokenizer, config) of a checkpoint folder; with ``kind``
    ("lm" or "classifier"), refuses a checkpoint of another kind."""
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import classifier, language_model

    folder = resolve_checkpoint(folder)
    cfg = read_config(folder, kind)
    build = {"lm": language_model, "classifier": classifier}.get(cfg.get("kind"))
    if build is None:
        raise CheckpointError(f"{folder}: unknown checkpoint kind {cfg.get('kind')!r}")
    model = build(cfg["model"])
    missing, unexpected = model.load_state_dict(_load_state(folder), strict=False)
    missing = set(missing) - set(cfg.get("tied_keys", []))
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not match the config (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})")
    model.to(device).eval()
    return model, KmerTokenizer.from_dict(cfg["tokenizer"]), cfg


def check_tokenizer(folder, lm_tokenizer, tokenizer) -> None:
    """Refuse (:class:`TokenizerMismatchError`) a language model whose tokenizer differs from
    the one this run uses: the k-mer ids would mean other things."""
    if lm_tokenizer != tokenizer:
        raise TokenizerMismatchError(
            f"{folder}: the language model was trained with tokenizer {lm_tokenizer!r}, but this run "
            f"uses {tokenizer!r}; use the same k, stride and vocabulary (or leave {option_name('k')} "
            f"and {option_name('stride')} unset to take the LM's)")


def load_encoder_from_lm(model: nn.Module, folder, tokenizer, lm_config: dict | None = None) -> dict:
    """Copy the ``encoder.*`` weights of an LM checkpoint into ``model`` (a classifier).

    Refuses, with :class:`TokenizerMismatchError`, an LM whose tokenizer (k, stride,
    vocabulary) differs from ``tokenizer``. ``lm_config`` is the LM's config when the caller
    has read it already. Returns the LM's config.
    """
    from gulm.data.tokenizer import KmerTokenizer

    folder = resolve_checkpoint(folder)
    cfg = lm_config if lm_config is not None else read_config(folder, "lm")
    check_tokenizer(folder, KmerTokenizer.from_dict(cfg["tokenizer"]), tokenizer)
    state = {k: v for k, v in _load_state(folder).items() if k.startswith("encoder.")}
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise CheckpointError(
            f"{folder}: encoder shapes differ from this model's for {bad[:3]} "
            f"(LM: {cfg['model'].get('emb_size')}/{cfg['model'].get('hidden_size')}/"
            f"{cfg['model'].get('n_layers')} layers); build the classifier with the LM's sizes")
    model.load_state_dict(state, strict=False)
    return cfg


def save_resume_state(out_dir, state: dict) -> None:
    """Write ``resume.pt`` (tensors, numbers and strings only: loadable with weights_only)."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, RESUME)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def read_resume_state(out_dir, required: bool = True) -> dict | None:
    """The state saved by :func:`save_resume_state`; None when absent and not ``required``."""
    path = os.path.join(os.fspath(out_dir), RESUME)
    if not os.path.exists(path):
        if not required:
            return None
        raise FileNotFoundError(f"no resumable state in {out_dir} (expected {path})")
    return torch.load(path, map_location="cpu", weights_only=True)
