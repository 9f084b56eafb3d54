"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``metrics.json``.

Nothing in a checkpoint is ever unpickled: weights are safetensors, everything else JSON.
(Optimizer/RNG state for ``--resume`` lives beside it in ``resume.pt``, loaded with
``torch.load(weights_only=True)``.) Folders are written to a temporary sibling and renamed
into place, so an interrupted save never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import torch
from torch import nn

import gulm
from gulm.metrics import write_metrics

__all__ = ["save_checkpoint", "read_config", "load_checkpoint", "load_encoder_from_lm",
           "TokenizerMismatchError", "CheckpointError"]

WEIGHTS, CONFIG, METRICS = "model.safetensors", "config.json", "metrics.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or of the wrong kind."""


class TokenizerMismatchError(CheckpointError):
    """An LM checkpoint's tokenizer differs from the one the classifier data needs."""


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
                    extra: dict | None = None) -> str:
    """Atomically write a checkpoint folder; returns its path."""
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
        old = None
        if os.path.exists(folder):
            # keep files that are not part of the checkpoint (logs, resume state)
            for name in os.listdir(folder):
                if name not in (WEIGHTS, CONFIG, METRICS):
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


def read_config(folder) -> dict:
    folder = os.fspath(folder)
    path = os.path.join(folder, CONFIG)
    if not os.path.isdir(folder):
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    if not os.path.exists(path) or not os.path.exists(os.path.join(folder, WEIGHTS)):
        raise CheckpointError(f"{folder}: not a gulm checkpoint (needs {CONFIG} and {WEIGHTS})")
    with open(path) as fh:
        return json.load(fh)


def _load_state(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(os.path.join(os.fspath(folder), WEIGHTS))


def load_checkpoint(folder, device="cpu"):
    """(model in eval mode, tokenizer, config) of a checkpoint folder."""
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import classifier, language_model

    cfg = read_config(folder)
    kind = cfg.get("kind")
    if kind == "lm":
        model = language_model(cfg["model"])
    elif kind == "classifier":
        model = classifier(cfg["model"])
    else:
        raise CheckpointError(f"{folder}: unknown checkpoint kind {kind!r}")
    state = _load_state(folder)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = set(missing) - set(cfg.get("tied_keys", []))
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not match the config (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})")
    model.to(device).eval()
    return model, KmerTokenizer.from_dict(cfg["tokenizer"]), cfg


def load_encoder_from_lm(model: nn.Module, folder, tokenizer) -> dict:
    """Copy the ``encoder.*`` weights of an LM checkpoint into ``model`` (a classifier).

    Refuses, with :class:`TokenizerMismatchError`, an LM whose tokenizer (k, stride,
    vocabulary) differs from ``tokenizer``. Returns the LM's config.
    """
    from gulm.data.tokenizer import KmerTokenizer

    cfg = read_config(folder)
    if cfg.get("kind") != "lm":
        raise CheckpointError(f"{folder}: expected a language-model checkpoint, found kind {cfg.get('kind')!r}")
    lm_tok = KmerTokenizer.from_dict(cfg["tokenizer"])
    if lm_tok != tokenizer:
        raise TokenizerMismatchError(
            f"{folder}: the language model was trained with tokenizer {lm_tok!r}, but "
            f"this run uses {tokenizer!r}; use the same k, stride and vocabulary")
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
