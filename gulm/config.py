"""Configs for the command line: YAML files and command-line overrides onto the phase
dataclasses (defaults < YAML < command line)."""
from __future__ import annotations

import argparse
import dataclasses
import os
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


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def add_dataclass_args(parser: argparse.ArgumentParser, cls, skip=(), prefix_help: str = "") -> None:
    """One ``--option`` per dataclass field (nested dataclasses are flattened). Defaults are
    left as None so that YAML values are only overridden by options actually given."""
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            add_dataclass_args(parser, tp, skip=skip)
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_ = f"(default: {default!r})"
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp is bool:
            parser.add_argument(flag, type=_bool, metavar="BOOL", default=None, help=help_)
        elif origin is dict or tp is dict:
            parser.add_argument(flag, type=_kv, action="append", metavar="KEY=VALUE", default=None,
                                help=f"repeatable {help_}")
        elif f.name == "stages":
            parser.add_argument(flag, type=parse_stages, metavar="E:LR:G,...", default=None,
                                help=f"gradual unfreezing stages epochs:lr:groups (groups 0 = all) {help_}")
        elif origin is list or tp is list:
            elem = args[0] if args and args[0] in (int, float, str) else str
            parser.add_argument(flag, nargs="+", type=elem, default=None, metavar="X", help=help_)
        else:
            base = [a for a in args if a is not type(None)][0] if args else tp
            if base not in (int, float, str):
                base = str
            parser.add_argument(flag, type=base, default=None, help=help_)


def build_config(cls, yaml_values: dict, args: argparse.Namespace):
    """Instantiate ``cls`` from defaults, then YAML values, then given command-line options."""
    hints = _field_types(cls)
    values: dict[str, Any] = {}
    unknown = set(yaml_values) - {f.name for f in dataclasses.fields(cls)}
    nested = {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}
    # flat YAML keys may also belong to a nested config (e.g. csv: under the top level)
    for name, sub in nested.items():
        sub_names = {f.name for f in dataclasses.fields(sub)}
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
        if cli is not None:
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
