"""Recipe presets: the winning fine-tuning and classifier recipes, shipped as YAML files.

A preset fixes what a new user should not have to choose: how long to fine-tune the language
model, the classifier's gradual-unfreezing schedule, ``drop_mult``, the head, which epoch to keep,
and (from scratch) the tokenization and sizes. ``seed.yaml`` is Genomic-ULMFiT's own recipe and
the base layer of every other preset; ``auto`` (the default of ``gulm finetune`` and
``gulm train-classifier``) picks one from the training data with :func:`choose`:

- more than 10 classes (taxa): ``many-classes`` (a head wider than the classes);
- median length over 300 bases (enhancers, amplicons, transcripts): ``long``;
- otherwise (promoters, reads, amplicons): ``short``;
- unstranded data (``--stranded false``: reads, enhancers) also trains on both orientations and
  averages the two at prediction.

A preset only fills the options left unset: an option given on the command line, in a YAML
config or as an argument always wins. The chosen preset and the reason are printed and stored in
the checkpoint's config.json.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["Preset", "names", "load", "choose", "resolve", "apply", "describe", "PRESET_DIR",
           "MANY_CLASSES", "LONG_BASES"]

PRESET_DIR = Path(__file__).resolve().parent
BASE = "seed"
MANY_CLASSES = 10
LONG_BASES = 300
PHASES = ("finetune", "classifier", "scratch")


@dataclass
class Preset:
    """A named recipe: option values per phase (``finetune``, ``classifier``, and ``scratch``
    for a classifier without a language model), and why it was chosen."""

    name: str
    description: str
    values: dict = field(default_factory=dict)
    reason: str = ""

    def options(self, phase: str) -> dict:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        return copy.deepcopy(self.values.get(phase) or {})


def names() -> list[str]:
    """The shipped presets (``auto`` chooses among those other than ``seed``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read(name: str) -> dict:
    import yaml

    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r}; choose auto or one of: {', '.join(names())}")
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def load(name: str) -> Preset:
    """A preset, merged over the seed's recipe."""
    base, own = _read(BASE), (_read(name) if name != BASE else {})
    values = {ph: {**(base.get(ph) or {}), **(own.get(ph) or {})} for ph in PHASES}
    text = own.get("description") or base.get("description", "")
    return Preset(name=name, description=" ".join(str(text).split()), values=values)


def choose(lengths: Sequence[int], n_classes: int, stranded: bool = True) -> Preset:
    """The preset ``auto`` picks for a training set with these sequence ``lengths`` (bases),
    ``n_classes`` classes and orientation."""
    lengths = np.asarray(list(lengths))
    if lengths.size == 0:
        raise ValueError("cannot choose a preset: the training split is empty")
    median = float(np.median(lengths))
    if n_classes > MANY_CLASSES:
        name = "many-classes"
    elif median > LONG_BASES:
        name = "long"
    else:
        name = "short"
    p = load(name)
    p.reason = f"auto: {n_classes} classes, median length {median:.0f} bases"
    return p


def resolve(preset: str, lengths: Sequence[int], n_classes: int, stranded: bool = True) -> Preset:
    """``auto`` -> :func:`choose`; any other name -> that preset. Unstranded data also gets
    reverse-complement augmentation and averaging."""
    p = choose(lengths, n_classes, stranded) if preset == "auto" else load(preset)
    if not p.reason:
        p.reason = f"asked for {preset}"
    _fit_budget(p, int(np.sum(lengths)))
    if not stranded:
        p.values["classifier"].update(rc_augment=True, rc_average=True)
        p.reason += "; unstranded: reverse complements in training and prediction"
    return p


def _fit_budget(p: Preset, bases: int) -> None:
    """Shorten the longest stages on large training sets: a preset's ``budget_bases`` caps the
    bases its classifier (and, with both strands counted, its LM fine-tuning) reads in all, so a
    recipe tuned on a few thousand sequences does not run for hours on a hundred thousand. The
    all-layer stage keeps at least 2 epochs, fine-tuning at least 1."""
    budget = float(p.values["classifier"].get("budget_bases") or 0)
    if not budget or bases <= 0:
        return
    clf = p.values["classifier"]
    stages = [list(st) for st in clf["stages"]]
    over = sum(int(st[0]) for st in stages) - int(budget // bases)
    if over > 0:
        last = stages[-1]
        last[0] = max(2, int(last[0]) - over)
        clf["stages"] = stages
        p.reason += f"; {bases / 1e6:.1f} Mbp of training sequence: all-layer epochs cut to {last[0]}"
    ft = p.values["finetune"]
    strands = 2 if ft.get("both_strands", True) else 1
    cap = max(1, int(budget // (bases * strands)))
    if int(ft.get("epochs", 0)) > cap:
        ft["epochs"] = cap
        p.reason += f", fine-tuning epochs cut to {cap}"


def apply(cfg, preset: Preset, phase: str):
    """``cfg`` with every field that is unset (None) and that ``preset`` gives for ``phase``
    filled in; fields set by the user are kept."""
    known = {f.name for f in dataclasses.fields(cfg)}
    fill = {k: v for k, v in preset.options(phase).items() if k in known and getattr(cfg, k) is None}
    if "stages" in fill:
        fill["stages"] = [list(s) for s in fill["stages"]]
    return dataclasses.replace(cfg, **fill)


def describe() -> str:
    """One line per preset, for ``--help`` and ``gulm models --presets``."""
    lines = [f"auto: picks one of {', '.join(n for n in names() if n != BASE)} from the training data"]
    lines += [f"{n}: {load(n).description}" for n in names()]
    return "\n".join(lines)
