"""Recipe presets: the winning fine-tuning and classifier recipes, shipped as YAML files.

A preset fixes what a new user should not have to choose: the tokenization, the pretrained LM,
how long to fine-tune it, the classifier's gradual-unfreezing schedule, ``drop_mult``, the head,
and reverse-complement handling. ``auto`` picks one from the data::

    choose(lengths, n_classes, stranded)  ->  Preset

- ``stranded`` (the default for promoters and transcripts): the orientation of a sequence carries
  meaning, so no reverse-complement augmentation;
- unstranded (reads, enhancers, other regulatory regions): train on both orientations and
  average the two at prediction (``rc_augment``, ``rc_average``);
- many classes (more than 10): a wider head and a longer schedule;
- long sequences (median over 600 bases): fewer, shorter epochs per token.

Every value a preset sets is only a default: an option given explicitly (on the command line, in
a YAML config or as an argument) wins.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["Preset", "names", "load", "choose", "describe", "PRESET_DIR"]

PRESET_DIR = Path(__file__).resolve().parent
MANY_CLASSES = 10
LONG_BASES = 600


@dataclass
class Preset:
    """A named recipe: ``finetune`` and ``classifier`` option values, and why it was chosen."""

    name: str
    description: str
    finetune: dict = field(default_factory=dict)
    classifier: dict = field(default_factory=dict)
    lm: str | None = None
    reason: str = ""

    def options(self, phase: str) -> dict:
        """The option values of ``phase`` ('finetune' or 'classifier')."""
        if phase not in ("finetune", "classifier"):
            raise ValueError(f"phase must be 'finetune' or 'classifier', got {phase!r}")
        return dict(getattr(self, phase))


def names() -> list[str]:
    """The shipped presets (``auto`` chooses among them)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load(name: str) -> Preset:
    import yaml

    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r}; choose auto, none or one of: {', '.join(names())}")
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    return Preset(name=name, description=" ".join(str(data.get("description", "")).split()),
                  finetune=dict(data.get("finetune") or {}), classifier=dict(data.get("classifier") or {}),
                  lm=data.get("lm"))


def choose(lengths: Sequence[int], n_classes: int, stranded: bool = True) -> Preset:
    """The preset ``auto`` picks for a training set with these sequence ``lengths`` (bases),
    ``n_classes`` classes and orientation (``stranded``)."""
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("choose a preset: the training set is empty")
    median = float(np.median(lengths))
    if n_classes > MANY_CLASSES:
        name = "many-classes"
    elif median > LONG_BASES:
        name = "long"
    else:
        name = "short"
    p = load(name)
    why = (f"{n_classes} classes, median length {median:.0f} bases"
           + (", stranded" if stranded else ", unstranded: reverse-complement augmentation and averaging"))
    if not stranded:
        p.classifier.update(rc_augment=True, rc_average=True)
        p.finetune.update(both_strands=True)
    p.reason = why
    return p


def describe() -> str:
    """One line per preset, for ``--help``."""
    lines = [f"auto: picks one of {', '.join(names())} from the training data (length, classes, --stranded)"]
    for n in names():
        lines.append(f"{n}: {load(n).description}")
    return "\n".join(lines)
