"""Config fields that carry their own help: one definition gives the default, the one-line help,
the closed set of choices and the command-line spelling of an option.

    @dataclass
    class ScanConfig:
        stride: int = opt(50, "bp between window starts")
        strand: str = opt("both", "strands to scan", choices=("+", "-", "both"))

:mod:`gulm.config` turns every field into a ``--option`` (appending "default: X" to the help),
and :func:`option_name` spells an option the way the user gave it: ``--label-col`` on the
command line, ``label_col=`` in the Python API.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable

__all__ = ["opt", "unset_like", "config_from", "check_choices", "option_name", "set_command_line",
           "DeviceChoices"]

_MISSING = dataclasses.MISSING
_STATE = {"command_line": False}


def opt(default: Any = _MISSING, help: str = "", *, factory=None, choices: Iterable | None = None,
        flag: str | None = None, deprecated: Iterable[str] = (), metavar: str | None = None,
        positional: str | None = None):
    """A dataclass field with a one-line ``help``.

    ``factory`` builds mutable defaults; ``choices`` is the closed set of values; ``flag`` the
    command-line name when it differs from the field name (``"fasta-class"``); ``deprecated``
    older flag names that still work with a note on stderr; ``positional`` makes it a positional
    argument with that ``nargs`` (``"?"`` or ``"*"``).
    """
    if not help:
        raise ValueError("every config field needs a one-line help")
    if choices is not None and not isinstance(choices, tuple):
        choices = tuple(choices)
    metadata = {"help": help, "choices": choices,
                "flag": flag, "deprecated": tuple(deprecated), "metavar": metavar,
                "positional": positional}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def unset_like(cls, name: str, unset_means: str):
    """A field that defaults to None ("not given") and otherwise means ``cls.name``: the help is
    ``cls``'s, completed by what None means (for example "the LM's, else 5")."""
    f = {g.name: g for g in dataclasses.fields(cls)}[name]
    meta = dict(f.metadata)
    meta["help"] = f"{meta['help']} (default: {unset_means})"
    return dataclasses.field(default=None, metadata=meta)


def config_from(cls, given=None, overrides: dict | None = None, *, value_field: str | None = None):
    """The config an API call asks for: ``given`` (a ``cls``, or None for the defaults, or the
    value of ``value_field``) with ``overrides`` applied; its choices are checked."""
    overrides = dict(overrides or {})
    if isinstance(given, cls):
        cfg = dataclasses.replace(given, **overrides)
    elif given is None:
        cfg = cls(**overrides)
    elif value_field is not None:
        cfg = cls(**{value_field: given, **overrides})
    else:
        raise TypeError(f"expected a {cls.__name__}, got {type(given).__name__}")
    cfg = _listify(cfg)
    check_choices(cfg)
    return cfg


def _listify(cfg):
    """``cfg`` with each list-typed field given one path or string (``ensemble="runs/clf"``)
    holding it as a one-item list, not as its letters; nested configs too."""
    changes = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            fixed = _listify(value)
            if fixed is not value:
                changes[f.name] = fixed
        elif isinstance(value, (str, bytes, os.PathLike)) and str(f.type).startswith(("list", "List")):
            changes[f.name] = [value]
    return dataclasses.replace(cfg, **changes) if changes else cfg


def check_choices(cfg) -> None:
    """Raise ValueError naming the option for any field of ``cfg`` (nested configs included)
    whose value is not one of the field's choices: the API's check of what argparse checks on
    the command line."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_choices(value)
            continue
        choices = f.metadata.get("choices")
        if choices is not None and value is not None and value not in choices:  # None: unset
            shown = ", ".join(str(c) for c in choices)
            raise ValueError(f"{option_name(f.name, type(cfg))} must be one of {shown}, got {value!r}")


class DeviceChoices(tuple):
    """The devices gulm runs on: ``cpu``, ``cuda`` and ``cuda:N`` (argparse ``choices``)."""

    def __new__(cls):
        return super().__new__(cls, ("cpu", "cuda", "cuda:N"))

    def __contains__(self, value) -> bool:
        v = str(value)
        return v in ("cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())


def set_command_line(active: bool = True) -> None:
    """Called by the CLI: from now on messages name command-line flags."""
    _STATE["command_line"] = bool(active)


def option_name(name: str, cls=None) -> str:
    """How the user spells option ``name``: ``--label-col`` on the command line, ``label_col=``
    in the API. With ``cls``, a field's own flag (``--fasta-class``) is used."""
    if not _STATE["command_line"]:
        return f"{name}="
    flag = None
    if cls is not None:
        for f in dataclasses.fields(cls):
            if f.name == name:
                flag = f.metadata.get("flag")
    return "--" + (flag or name.replace("_", "-"))
