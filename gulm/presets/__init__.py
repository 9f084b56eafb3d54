"""Recipe presets: the winning fine-tuning and classifier recipes, shipped as YAML files.

A preset fixes what a new user should not have to choose: how long to fine-tune the language
model, the classifier's gradual-unfreezing schedule, ``drop_mult``, the head, which epoch to keep,
and (from scratch) the tokenization and sizes. ``seed.yaml`` is Genomic-ULMFiT's own recipe and
the base layer of every other preset; ``auto`` (the default of ``gulm finetune`` and
``gulm train-classifier``) picks one from the training data with :func:`choose`:

- more than 10 classes (taxa, reads or amplicons of many genera): ``many-classes-wide``, a head
  wider than the classes (``many-classes``) plus a k-mer frequency branch trained with the network;
- median length over 300 bases (enhancers, transcripts): ``long-wide``, the ``long`` schedule plus
  the k-mer LR as a fixed branch;
- either of the two with fewer than :data:`WIDE_MIN` training sequences (too few to fit a k-mer
  model beside the network): the pure ``many-classes`` or ``long``;
- stranded training sequences all of one length (windows cut around a site, such as promoters
  around a TSS; at least 50 of them): ``aligned``, the ``short`` recipe plus a fixed k-mer LR
  branch that also counts 3-mers by their place in the window;
- otherwise (promoters, reads, amplicons): ``short``;
- unstranded data (``--stranded false``: reads, enhancers) also trains on both orientations and
  averages the two at prediction.

``long``, ``many-classes`` and ``short`` are the pure networks; the ``-wide`` presets and
``aligned`` add the branch that won on the valid splits of every set of their kind
(REPRODUCTION.md, rules (gg)-(ll), (oo), (pp)). A preset only fills the options left unset: an option given on the command line, in a YAML
config or as an argument always wins. The wide-branch options (``kmer_*``) are filled as one
group, and only when none of them is given. A preset file may name another as its ``base``
(``aligned`` extends ``short``); every chain ends on ``seed``. The chosen preset and the reason
are printed and stored in the checkpoint's config.json.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["Preset", "names", "load", "choose", "resolve", "apply", "describe", "PRESET_DIR",
           "MANY_CLASSES", "LONG_BASES", "ALIGNED_MIN", "WIDE_MIN", "WIDE_FIELDS", "AUTO_CHOICES",
           "aligned_windows", "wide_given", "clear_wide"]

PRESET_DIR = Path(__file__).resolve().parent
BASE = "seed"
MANY_CLASSES = 10
LONG_BASES = 300
# fewer training sequences than this: too few to fit a k-mer model beside the network, so auto picks
# no preset with a k-mer branch (aligned, long-wide, many-classes-wide)
WIDE_MIN = 50
ALIGNED_MIN = WIDE_MIN  # the same floor, under the name aligned_windows has used
# the wide branch's options: a preset fills them together, only when the user gave none of them
WIDE_FIELDS = ("kmer_features", "kmer_gapped", "kmer_positional", "kmer_window", "kmer_logreg")
PHASES = ("finetune", "classifier", "scratch")
# what choose() can return; tests/test_presets.py walks choose() over its thresholds to check
AUTO_CHOICES = ("aligned", "short", "long-wide", "long", "many-classes-wide", "many-classes")


@dataclass
class Preset:
    """A named recipe: option values per phase (``finetune``, ``classifier``, and ``scratch``
    for a classifier without a language model), and why it was chosen."""

    name: str
    description: str
    values: dict = field(default_factory=dict)
    reason: str = ""

    def has_branch(self) -> bool:
        """Whether the preset fills a k-mer branch (any of :data:`WIDE_FIELDS`) of the classifier."""
        return any(self.values.get("classifier", {}).get(k) for k in WIDE_FIELDS)

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


def _chain(name: str) -> list[dict]:
    """The preset files from ``seed`` to ``name``, following each file's ``base`` (default seed)."""
    chain, seen = [], []
    while True:
        if name in seen:
            raise ValueError(f"preset {seen[0]!r}: its bases loop ({' -> '.join([*seen, name])})")
        seen.append(name)
        own = _read(name)
        chain.insert(0, own)
        if name == BASE:
            return chain
        name = own.get("base") or BASE


def load(name: str) -> Preset:
    """A preset, merged over its base (``base:`` in its file, else the seed's recipe)."""
    chain = _chain(name)
    values = {ph: {k: v for layer in chain for k, v in (layer.get(ph) or {}).items()} for ph in PHASES}
    text = chain[-1].get("description") or chain[0].get("description", "")
    return Preset(name=name, description=" ".join(str(text).split()), values=values)


def aligned_windows(lengths: Sequence[int], stranded: bool) -> bool:
    """Whether training sequences of these ``lengths`` look like windows cut around a site: read on
    their given strand, at least :data:`ALIGNED_MIN` of them, all of one length."""
    lengths = np.asarray(list(lengths))
    return bool(stranded and lengths.size >= ALIGNED_MIN and lengths.min() == lengths.max())


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
    elif aligned_windows(lengths, stranded):
        name = "aligned"
    else:
        name = "short"
    few = False
    if name in ("many-classes", "long"):  # each has a -wide twin with the k-mer branch
        few = lengths.size < WIDE_MIN
        name += "" if few else "-wide"
    p = load(name)
    p.reason = f"auto: {n_classes} classes, median length {median:.0f} bases"
    if name == "aligned":
        p.reason += f", all {lengths.size:,} training sequences {int(median)} bases on their given strand"
    if few:
        p.reason += f"; {lengths.size} training sequences, under {WIDE_MIN}: no k-mer branch"
    return p


def resolve(preset: str, lengths: Sequence[int], n_classes: int, stranded: bool = True) -> Preset:
    """``auto`` -> :func:`choose`; any other name -> that preset. Unstranded data also gets
    reverse-complement augmentation and averaging."""
    p = choose(lengths, n_classes, stranded) if preset == "auto" else load(preset)
    if not p.reason:
        p.reason = f"asked for {preset}"
    if not stranded and p.values["classifier"].get("kmer_positional"):
        raise ValueError(f"preset {p.name} counts k-mers by their place on the given strand: it needs "
                         "--stranded data (or another preset)")
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


def wide_given(cfg) -> bool:
    """Whether ``cfg`` sets any wide-branch option (then a preset leaves all of them alone)."""
    return any(getattr(cfg, k, None) for k in WIDE_FIELDS)


def clear_wide(cfg):
    """``cfg`` with every wide-branch option back at its default (no branch)."""
    defaults = {}
    for f in dataclasses.fields(cfg):
        if f.name in WIDE_FIELDS:
            defaults[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return dataclasses.replace(cfg, **defaults)


def apply(cfg, preset: Preset, phase: str):
    """``cfg`` with every field that is unset (None) and that ``preset`` gives for ``phase``
    filled in; fields set by the user are kept."""
    known = {f.name for f in dataclasses.fields(cfg)}
    options = preset.options(phase)
    fill = {k: v for k, v in options.items() if k in known and getattr(cfg, k) is None}
    if not wide_given(cfg):
        fill.update({k: v for k, v in options.items() if k in WIDE_FIELDS and k in known})
    if "stages" in fill:
        fill["stages"] = [list(s) for s in fill["stages"]]
    return dataclasses.replace(cfg, **fill)


def describe() -> str:
    """One line per preset, for ``--help`` and ``gulm models --presets``."""
    lines = [f"auto: picks one of {', '.join(AUTO_CHOICES)} from the training data (long and many-classes "
             f"only for fewer than {WIDE_MIN} training sequences)"]
    lines += [f"{n}: {load(n).description}" for n in names()]
    return "\n".join(lines)
