"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``metrics.json``, and the
``resume.pt`` beside them.

Nothing in a checkpoint is ever unpickled: weights are safetensors, everything else JSON; the
optimizer and RNG state of ``resume.pt`` is loaded with ``torch.load(weights_only=True)``, and
a ``resume.pt`` holding anything else is refused, naming the file.
The checkpoint itself (weights, config, metrics) and ``resume.pt`` are written here and nowhere
else (the training log beside them is :mod:`gulm.train.log`'s).

A save never leaves the folder without a loadable checkpoint, whenever it is killed:

1. the new files are written to a sibling ``.ckpt-<name>-XXXX`` folder;
2. the other files of the old folder (``resume.pt``, logs) are hard-linked (or copied) into it,
   never moved, so the old folder stays whole;
3. ``<name>`` is renamed to ``<name>.old``, then the new folder to ``<name>``, then ``<name>.old``
   is removed.

:func:`recover_checkpoint`, run by every training run before it writes into a folder (and by
every save), finishes or undoes an interrupted save: ``<name>.old`` without ``<name>`` is
renamed back (the last good checkpoint), ``<name>.old`` beside a complete ``<name>`` is removed,
and half-written ``.ckpt-<name>-*`` folders and ``*.tmp`` files are removed. Readers never
change anything: they name the leftover instead. Folders and files honour the umask.

Every path or name of a checkpoint that a user gives goes through :func:`resolve_checkpoint`.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile

import torch
from torch import nn

import gulm
from gulm.configs.fields import option_name
from gulm.data.cache import current_umask
from gulm.metrics import write_metrics

__all__ = ["resolve_checkpoint", "save_checkpoint", "read_config", "load_checkpoint",
           "load_encoder_from_lm", "check_tokenizer", "save_resume_state", "read_resume_state",
           "recover_checkpoint", "resume_path", "TokenizerMismatchError", "CheckpointError", "KINDS",
           "read_calibration"]

WEIGHTS, CONFIG, METRICS, RESUME = "model.safetensors", "config.json", "metrics.json", "resume.pt"
CALIBRATION = "calibration.json"  # a classifier's validation scores (see save_checkpoint)
KINDS = {"lm": "language-model", "classifier": "classifier"}
OLD = ".old"  # suffix of the previous folder during the swap


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, damaged or of the wrong kind."""


class TokenizerMismatchError(CheckpointError):
    """An LM checkpoint's tokenizer differs from the one the classifier data needs."""


def fault_point(step: str) -> None:
    """Called after each step of a save (a no-op): tests replace it to kill a save there."""


def resolve_checkpoint(path_or_name) -> str:
    """The folder of a checkpoint given by path, or by the name of a model shipped with gulm
    (``gulm models``; its files' sha256 is checked on first use). Raises
    :class:`CheckpointError` naming it unless it holds a gulm checkpoint."""
    from gulm import pretrained

    if path_or_name is None or str(path_or_name) == "":
        raise CheckpointError("no checkpoint given")
    folder = os.fspath(path_or_name)
    if pretrained.is_name(folder):
        try:
            folder = str(pretrained.path(folder))
        except pretrained.PretrainedError as err:
            raise CheckpointError(str(err)) from None
    if not os.path.isdir(folder):
        old = os.path.normpath(folder) + OLD
        if os.path.isdir(old):
            raise CheckpointError(
                f"{folder}: no such checkpoint folder, but {old} holds the last good checkpoint of an "
                f"interrupted save; the next training run into {folder} restores it (or rename it back)")
        shipped = pretrained.names()
        hint = f" or shipped model name (shipped: {', '.join(shipped)})" if shipped else ""
        raise CheckpointError(f"{folder}: no such checkpoint folder{hint}")
    if not os.path.exists(os.path.join(folder, CONFIG)) or not os.path.exists(os.path.join(folder, WEIGHTS)):
        raise CheckpointError(f"{folder}: not a gulm checkpoint (needs {CONFIG} and {WEIGHTS})")
    return folder


def _tmp_prefix(folder: str) -> str:
    return f".ckpt-{os.path.basename(folder)}-"


def recover_checkpoint(folder) -> list[str]:
    """Finish or undo an interrupted save into ``folder`` (see the module doc); returns one line
    per action taken (empty when there was nothing to do). Never removes the only good copy."""
    folder = os.path.abspath(os.fspath(folder))
    parent, old, done = os.path.dirname(folder), folder + OLD, []
    if os.path.isdir(old):
        if not os.path.isdir(folder):
            os.replace(old, folder)
            done.append(f"{folder}: restored the last good checkpoint from {old} (a save was interrupted)")
        elif _complete(folder):
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"{folder}: removed {old}, left by an interrupted save")
    # mkdtemp's 8 random characters after the prefix: never another folder's (".ckpt-x-2-...")
    ours = re.compile(re.escape(_tmp_prefix(folder)) + r"[a-z0-9_]{8}")
    for name in os.listdir(parent) if os.path.isdir(parent) else []:
        if ours.fullmatch(name):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            done.append(f"{folder}: removed {os.path.join(parent, name)}, a half-written save")
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.endswith(".tmp"):
                os.unlink(os.path.join(folder, name))
                done.append(f"{folder}: removed {name}, a half-written file")
    return done


def _complete(folder: str) -> bool:
    return all(os.path.exists(os.path.join(folder, n)) for n in (WEIGHTS, CONFIG, METRICS))


def _new_dir(parent: str, prefix: str) -> str:
    """A new folder in ``parent``, with the permissions the umask gives (mkdtemp's are 0700)."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a file (or a folder's files) into place, or copy them where links fail."""
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, copy_function=link, symlinks=True)
    else:
        link(src, dst)


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
    """Write a checkpoint folder so that a kill at any moment leaves a loadable one (the new or
    the previous; see the module doc); returns its path. Other files in the folder (logs,
    ``resume.pt``) are kept. ``calibration`` (JSON-able: a classifier's validation labels and
    scores, for calibrated scan thresholds) goes to ``calibration.json``."""
    from safetensors.torch import save_file

    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    recover_checkpoint(folder)
    tmp = _new_dir(parent, _tmp_prefix(folder))
    swapped = False
    try:
        tied = _tied_keys(model)
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()
                 if k not in tied}
        save_file(state, os.path.join(tmp, WEIGHTS))
        os.chmod(os.path.join(tmp, WEIGHTS), 0o666 & ~current_umask())  # safetensors writes 0600
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
        fault_point("written")
        if not os.path.exists(folder):
            os.replace(tmp, folder)
            swapped = True
            fault_point("renamed")
            return folder
        for name in os.listdir(folder):  # keep files that are not part of the checkpoint
            if name not in (WEIGHTS, CONFIG, METRICS, CALIBRATION) and not name.endswith(".tmp"):
                _link_or_copy(os.path.join(folder, name), os.path.join(tmp, name))
        fault_point("linked")
        old = folder + OLD
        os.replace(folder, old)
        fault_point("old-moved")
        os.replace(tmp, folder)
        swapped = True
        fault_point("renamed")
        shutil.rmtree(old, ignore_errors=True)
        fault_point("old-removed")
    except Exception:
        if not swapped:
            shutil.rmtree(tmp, ignore_errors=True)
            recover_checkpoint(folder)  # the previous folder back in place, if it was moved
        raise
    return folder


def read_config(folder, kind: str | None = None) -> dict:
    """The ``config.json`` of a checkpoint; with ``kind``, refuses a checkpoint of another kind.
    A damaged file is a :class:`CheckpointError` naming it."""
    folder = resolve_checkpoint(folder)
    path = os.path.join(folder, CONFIG)
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                              "the checkpoint's config is damaged") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a text file; the checkpoint's config is damaged") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a JSON object of settings, found {json.dumps(cfg)[:40]}; "
                              "the checkpoint's config is damaged")
    missing = [k for k in ("kind", "model", "tokenizer") if not isinstance(cfg.get(k), (str, dict))]
    if missing:
        raise CheckpointError(f"{path}: no {', '.join(repr(k) for k in missing)} entry; the checkpoint's config "
                              "is damaged or not gulm's")
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

    path = os.path.join(os.fspath(folder), WEIGHTS)
    try:
        return load_file(path)
    except Exception as err:  # safetensors' own error type, OSError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        empty = " (an empty file)" if os.path.getsize(path) == 0 else ""
        raise CheckpointError(f"{path}: cannot read the weights{empty}: {reason}; the file is truncated or "
                              "not a safetensors file") from None


def _shape_mismatches(model: nn.Module, state: dict, folder) -> None:
    """Refuse weights whose shapes differ from the model the config builds, naming them."""
    own = model.state_dict()
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
           if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if bad:
        shown = "; ".join(f"{k}: file {list(a)}, config {list(b)}" for k, a, b in bad[:4])
        more = f"; and {len(bad) - 4} more" if len(bad) > 4 else ""
        raise CheckpointError(f"{folder}: {len(bad)} tensor(s) of {WEIGHTS} differ in shape from the model "
                              f"{CONFIG} describes ({shown}{more})")


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
    try:
        model = build(cfg["model"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{os.path.join(folder, CONFIG)}: cannot build the model it describes ({err})") from None
    state = _load_state(folder)
    _shape_mismatches(model, state, folder)
    missing, unexpected = model.load_state_dict(state, strict=False)
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
        shown = "; ".join(f"{k}: LM {list(state[k].shape)}, classifier "
                          f"{list(own[k].shape) if k in own else 'none'}" for k in bad[:3])
        raise CheckpointError(
            f"{folder}: {len(bad)} encoder tensor(s) differ from this model's ({shown}; LM sizes "
            f"{cfg['model'].get('emb_size')}/{cfg['model'].get('hidden_size')}/{cfg['model'].get('n_layers')} "
            "layers); build the classifier with the LM's sizes")
    model.load_state_dict(state, strict=False)
    return cfg


def resume_path(out_dir) -> str:
    """Where the resume state of a run writing into ``out_dir`` is kept."""
    return os.path.join(os.fspath(out_dir), RESUME)


def save_resume_state(out_dir, state: dict) -> None:
    """Write ``resume.pt`` (tensors, numbers and strings only: loadable with weights_only), to a
    temporary name first, so a kill leaves the previous one."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = resume_path(out_dir)
    torch.save(state, path + ".tmp")
    fault_point("resume-written")
    os.replace(path + ".tmp", path)


def read_resume_state(out_dir, required: bool = True) -> dict | None:
    """The state saved by :func:`save_resume_state`; None when absent and not ``required``.
    A ``resume.pt`` that holds anything but tensors and plain values is refused for safety, and a
    damaged one is named; both are :class:`CheckpointError`."""
    path = resume_path(out_dir)
    if not os.path.exists(path):
        if not required:
            return None
        raise FileNotFoundError(f"no resume state in {out_dir} (expected {path})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused for safety: it holds Python objects other than tensors, numbers and strings, "
            "which could run code when loaded, so gulm did not load it (it never wrote such a file); "
            "remove it to train from the start") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: cannot read the resume state ({reason}); the file is truncated or "
                              "damaged: remove it to train from the start") from None
