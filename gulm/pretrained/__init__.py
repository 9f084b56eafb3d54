"""Pretrained genome language models shipped inside the package, loaded offline by name.

Each model is a checkpoint folder under ``gulm/pretrained/models/<name>/`` (fp16
``model.safetensors`` + ``config.json``) with a model card ``card.json``; ``registry.json`` holds
the sha256 of every weights file, checked the first time a model is used in a process::

    import gulm
    gulm.pretrained.names()               # ['bacteria-3m1s', 'eukaryotes-3m1s']
    gulm.pretrained.card("bacteria-3m1s")  # corpus, tokenization, size, valid loss, ...
    model, tokenizer, config = gulm.load("bacteria-3m1s")

Every ``lm=`` argument and ``--lm`` option accepts a name wherever it accepts a path.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["names", "card", "path", "is_name", "resolve", "table", "PretrainedError", "MODELS_DIR",
           "sha256_file"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
REGISTRY = Path(__file__).resolve().parent / "registry.json"
_verified: set[str] = set()


class PretrainedError(ValueError):
    """An unknown model name, or a shipped file that does not match its checksum."""


def _registry() -> dict:
    if not REGISTRY.exists():
        return {}
    with open(REGISTRY) as fh:
        return json.load(fh)


def names() -> list[str]:
    """The names of the shipped models."""
    return sorted(_registry())


def is_name(text: str | os.PathLike) -> bool:
    """True when ``text`` names a shipped model (and is not an existing path)."""
    text = os.fspath(text)
    return text in _registry() and not os.path.exists(text)


def sha256_file(file: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def path(name: str) -> Path:
    """The checkpoint folder of a shipped model, after checking its files' sha256."""
    reg = _registry()
    if name not in reg:
        have = ", ".join(sorted(reg)) or "none"
        raise PretrainedError(f"{name!r} is not a shipped gulm model (have: {have}; see `gulm models`)")
    folder = MODELS_DIR / name
    if name not in _verified:
        for fname, want in reg[name]["sha256"].items():
            file = folder / fname
            if not file.exists():
                raise PretrainedError(f"pretrained model {name!r}: {file} is missing; reinstall gulm")
            got = sha256_file(file)
            if got != want:
                raise PretrainedError(
                    f"pretrained model {name!r}: {file} does not match its checksum (sha256 {got[:12]}... "
                    f"!= {want[:12]}...): the file is damaged or was changed; reinstall gulm")
        _verified.add(name)
    return folder


def resolve(path_or_name: str | os.PathLike) -> str:
    """A checkpoint folder: an existing path as given, or the folder of a shipped model."""
    text = os.fspath(path_or_name)
    if is_name(text):
        return str(path(text))
    return text


def card(name: str) -> dict:
    """The model card of a shipped model (corpus, tokenization, size, valid loss, ...)."""
    folder = path(name)
    with open(folder / "card.json") as fh:
        return json.load(fh)


def table() -> list[dict]:
    """One row per shipped model: name, tokenization, size, valid loss and accuracy, corpus."""
    rows = []
    for name in names():
        c = card(name)
        rows.append({
            "name": name,
            "tokens": f"k={c['tokenizer']['k']} stride={c['tokenizer']['stride']}",
            "size": "{emb_size}/{hidden_size}/{n_layers}".format(**c["model"]),
            "params": c["model"].get("parameters"),
            "valid_loss": c["valid"]["loss"],
            "valid_accuracy": c["valid"]["accuracy"],
            "corpus": c["corpus"]["summary"],
        })
    return rows
