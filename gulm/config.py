"""Configs on the command line: YAML files and ``--options`` generated from the config
dataclasses of :mod:`gulm.configs` (defaults < YAML < command line).

Every field becomes one option with its help line, ``choices`` where the field has them, and
"default: X" appended. Nested dataclasses (``data: DataConfig``) are flattened, so YAML keys
may be flat (``csv:``) or nested (``data: {csv: ...}``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from typing import Any

__all__ = ["load_yaml", "add_dataclass_args", "build_config", "parse_stages"]


def load_yaml(path: str | os.PathLike | None) -> dict:
    """A YAML mapping (empty without a path); errors name the file."""
    if not path:
        return {}
    import yaml

    if not os.path.exists(path):
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path) as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: invalid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options at the top level")
    return data


def parse_stages(text: str | list) -> list[list]:
    """'1:2e-2:1,1:1e-2:2,2:1e-3:0' -> [[1, 0.02, 1], [1, 0.01, 2], [2, 0.001, 0]]
    (epochs:lr:groups; groups 0 = all)."""
    if isinstance(text, list):
        return [list(s) for s in text]
    out = []
    for part in text.split(","):
        bits = part.strip().split(":")
        if len(bits) not in (2, 3):
            raise ValueError(f"bad stage {part!r}: expected epochs:lr[:groups]")
        out.append([int(bits[0]), float(bits[1]), int(bits[2]) if len(bits) == 3 else 0])
    return out


def _kv(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    k, v = text.split("=", 1)
    return k, v


def _bool(text: str) -> bool:
    t = str(text).lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _bool_or_word(text: str):
    """A boolean, or another word of the option's choices (``--resume require``)."""
    try:
        return _bool(text)
    except argparse.ArgumentTypeError:
        return str(text).lower()


class _Deprecated(argparse.Action):
    """An old spelling of an option: works, with a one-line note on stderr."""

    def __init__(self, option_strings, dest, new_flag="", **kw):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"gulm: {option_string} {self.metavar} is deprecated here; use {self.new_flag} {self.metavar}",
              file=sys.stderr)
        items = getattr(namespace, self.dest, None) or []
        setattr(namespace, self.dest, items + [values])


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(value) -> str:
    if value in ("", None) or value == [] or value == {}:
        return "none"
    if isinstance(value, list) and value and isinstance(value[0], (list, tuple)):
        return ",".join(":".join(f"{x:g}" if isinstance(x, float) else str(x) for x in s) for s in value)
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _help(f: dataclasses.Field) -> str:
    """The field's help with "(default: X)" appended, unless the help states its default itself."""
    text = f.metadata.get("help", "")
    if "default:" not in text and not f.metadata.get("positional"):
        text = f"{text} (default: {_shown(_default(f))})"
    return text.replace("%", "%%")


def _base_type(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args else tp
    return base if base in (int, float, str, bool) else str


def add_dataclass_args(parser: argparse.ArgumentParser, cls, skip=(), _seen=None) -> None:
    """One ``--option`` (or positional argument) per dataclass field; nested dataclasses are
    flattened. Defaults stay None, so that YAML values are overridden only by options given."""
    hints = typing.get_type_hints(cls)
    seen = set() if _seen is None else _seen
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            add_dataclass_args(parser, tp, skip=skip, _seen=seen)
            continue
        if f.name in seen:
            raise TypeError(f"{cls.__name__}.{f.name}: two options of one command share this name")
        seen.add(f.name)
        meta = f.metadata
        kw: dict[str, Any] = {"default": None, "help": _help(f)}
        if meta.get("choices") is not None:
            kw["choices"] = meta["choices"]
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        origin, elem = typing.get_origin(tp), _base_type(tp)
        if meta.get("positional"):
            kw.pop("default")
            nargs = meta["positional"]
            parser.add_argument(f.name, nargs=nargs, default=None,
                                type=_base_type(typing.get_args(tp)[0]) if origin is list else elem,
                                **{k: v for k, v in kw.items() if k != "metavar"})
            continue
        flag = "--" + (meta.get("flag") or f.name.replace("_", "-"))
        if elem is bool:
            words = any(isinstance(c, str) for c in (meta.get("choices") or ()))
            parser.add_argument(flag, dest=f.name, type=_bool_or_word if words else _bool, nargs="?", const=True,
                                metavar=kw.pop("metavar", "BOOL"), **kw)
        elif origin is dict or tp is dict:
            kw.setdefault("metavar", "KEY=VALUE")
            parser.add_argument(flag, dest=f.name, type=_kv, action="append", **kw)
            for old in meta.get("deprecated", ()):
                parser.add_argument("--" + old, dest=f.name, type=_kv, action=_Deprecated, new_flag=flag,
                                    metavar=kw["metavar"], default=None, help=argparse.SUPPRESS)
        elif f.name == "stages":
            parser.add_argument(flag, dest=f.name, type=parse_stages, metavar="E:LR:G,...", **kw)
        elif origin is list or tp is list:
            args = typing.get_args(tp)
            item = args[0] if args and args[0] in (int, float, str) else str
            kw.setdefault("metavar", "X")
            parser.add_argument(flag, dest=f.name, nargs="+", type=item, **kw)
        else:
            parser.add_argument(flag, dest=f.name, type=elem, **kw)


def _yaml_aliases(cls) -> dict[str, str]:
    """YAML keys spelled like a field's own flag (``fasta_class:``) -> the field name."""
    return {f.metadata["flag"].replace("-", "_"): f.name for f in dataclasses.fields(cls)
            if f.metadata.get("flag")}


def build_config(cls, yaml_values: dict, args: argparse.Namespace | None):
    """Instantiate ``cls`` from defaults, then YAML values, then given command-line options."""
    hints = typing.get_type_hints(cls)
    yaml_values = dict(yaml_values or {})
    for alias, name in _yaml_aliases(cls).items():
        if alias in yaml_values:
            yaml_values[name] = yaml_values.pop(alias)
    values: dict[str, Any] = {}
    unknown = set(yaml_values) - {f.name for f in dataclasses.fields(cls)}
    nested = {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}
    # flat YAML keys may also belong to a nested config (e.g. csv: under the top level)
    for name, sub in nested.items():
        sub_names = {f.name for f in dataclasses.fields(sub)} | set(_yaml_aliases(sub))
        flat = {k: yaml_values[k] for k in list(unknown) if k in sub_names}
        unknown -= set(flat)
        sub_yaml = dict(yaml_values.get(name) or {})
        sub_yaml.update(flat)
        values[name] = build_config(sub, sub_yaml, args)
    if unknown:
        raise ValueError(f"unknown option(s) in the config file: {sorted(unknown)}")
    for f in dataclasses.fields(cls):
        if f.name in nested:
            continue
        v = yaml_values.get(f.name, None)
        cli = getattr(args, f.name, None) if args is not None else None
        if cli is not None and not (f.metadata.get("positional") == "*" and cli == []):
            v = cli
        if v is None:
            continue
        tp = hints[f.name]
        if typing.get_origin(tp) is dict or tp is dict:
            v = dict(v) if not isinstance(v, dict) else v
        elif f.name == "stages":
            v = parse_stages(v)
        elif typing.get_origin(tp) is list and isinstance(v, str):
            v = [v]
        values[f.name] = v
    return cls(**values)
