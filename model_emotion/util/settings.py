"""Settings declared once: a dataclass field carries its default, help text, choices, range and flags.

A stage's config is a frozen dataclass of ``setting(...)`` fields deriving from ``Settings``. From that
one declaration come the validation (``Settings.__post_init__``: every field checked against its kind,
choices and range, then the class's own cross-setting ``rules``), the argparse parser
(``add_settings``), the flag reference in ``docs/flags.md`` (rendered from the parsers) and the API's
defaults (the API builds the same config). A value validated here is not validated again below::

    @dataclass(frozen=True)
    class RSAConfig(Settings):
        permutations: int = setting(1000, "permutations of the emotion labels", kind="count")

Kinds: ``int``, ``count`` (1..MAX_COUNT), ``seed`` (0..MAX_SEED), ``float``, ``probability`` (0, 1),
``str``, ``path``, ``bool``, ``jobs`` (not a flag), each optionally a list (``nargs="+"``).
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import MISSING, asdict, field, fields
from pathlib import Path
from typing import Any

from model_emotion.defaults import MAX_COUNT
from model_emotion.errors import ConfigError, ToolkitError
from model_emotion.util.names import MAX_SEED

KINDS = ("int", "count", "seed", "float", "probability", "str", "path", "bool", "jobs")
_BOUNDS = {"count": (1, MAX_COUNT), "seed": (0, MAX_SEED), "int": (None, MAX_COUNT)}


def setting(
    default: Any,
    help: str,
    *,
    kind: str | None = None,
    choices: tuple | None = None,
    low: float | None = None,
    high: float | None = None,
    flags: tuple[str, ...] = (),
    env: str | None = None,
    nargs: str | None = None,
    also: tuple = (),
    hidden: bool = False,
    cli: bool = True,
):
    """A dataclass field declaring one setting (``flags``: the command-line spellings, first the one
    shown; ``also``: extra literal values besides the kind, e.g. ``"auto"``; ``env``: the environment
    variable that gives the command line's default)."""
    kind = kind or _kind_of(default)
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}")
    meta = dict(
        help=help, kind=kind, choices=choices, low=low, high=high, flags=tuple(flags), env=env, nargs=nargs,
        also=tuple(also), hidden=hidden, cli=cli,
    )  # fmt: skip
    if isinstance(default, list):
        default = tuple(default)
    return field(default=default, metadata=meta)


def _kind_of(default: Any) -> str:
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("path", Path), ("str", str)):
        if isinstance(default, types):
            return kind
    raise ValueError(f"give the kind of a setting whose default is {default!r}")


def declared(cls) -> list:
    """The declared settings of a config class, in order."""
    return [f for f in fields(cls) if "kind" in f.metadata]


def _bounds(meta: dict) -> tuple[float | None, float | None]:
    low, high = _BOUNDS.get(meta["kind"], (None, None))
    return (meta["low"] if meta["low"] is not None else low, meta["high"] if meta["high"] is not None else high)


def _check_one(name: str, value: Any, meta: dict) -> Any:
    """``value`` in its normal form (Path, tuple), or a ConfigError naming the setting and what is valid."""
    kind = meta["kind"]
    if value in meta["also"]:
        return value
    if meta["choices"] is not None:
        if value not in meta["choices"]:
            shown = ", ".join(str(c) for c in meta["choices"] if c is not None)
            raise ConfigError(f"{{--{name}}} {value!r} unknown; choose one of {shown}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{{--{name}}} {value!r} must be True or False")
        return value
    if kind in ("str", "jobs"):
        if kind == "str" and not isinstance(value, str):
            raise ConfigError(f"{{--{name}}} {value!r} must be a text")
        return value
    if kind == "path":
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise ConfigError(f"{{--{name}}} {value!r} must be a path")
        return Path(value)
    return _check_number(name, value, meta)


def _check_number(name: str, value: Any, meta: dict) -> Any:
    kind = meta["kind"]
    low, high = _bounds(meta)
    integer = kind in ("int", "count", "seed")
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{{--{name}}} {value!r} must be an integer" + _range_text(low, high, kind))
    if not integer and (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)):
        raise ConfigError(f"{{--{name}}} {value!r} must be a finite number" + _range_text(low, high, kind))
    if kind == "probability" and not 0 < value < 1:
        raise ConfigError(f"{{--{name}}} {value!r} must be between 0 and 1 (exclusive)")
    if low is not None and value < low:
        raise ConfigError(f"{{--{name}}} {value!r} must be at least {_number(low)}")
    if high is not None and value > high:
        raise ConfigError(f"{{--{name}}} {value!r} must be at most {_number(high)}")
    return value


def _range_text(low, high, kind: str) -> str:
    if kind == "probability":
        return ", between 0 and 1 (exclusive)"
    if low is not None and high is not None:
        return f", in {_number(low)}..{_number(high)}"
    if low is not None:
        return f", at least {_number(low)}"
    return f", at most {_number(high)}" if high is not None else ""


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


class Settings:
    """Base of every stage config: declared fields checked on construction, then ``rules`` (the
    class's cross-setting checks); ``to_dict``/``from_dict`` for the JSON beside its outputs."""

    def __post_init__(self):
        for f in declared(type(self)):
            object.__setattr__(self, f.name, self._checked(f))
        self.rules()

    def _checked(self, f):
        value, meta = getattr(self, f.name), f.metadata
        if value is None and f.default is None:
            return None
        if meta["nargs"] == "+":
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ConfigError(f"{{--{f.name}}} {value!r} must be a list")
            value = tuple(_check_one(f.name, v, meta) for v in value)
            if not value:
                raise ConfigError(f"{{--{f.name}}} must not be empty")
            return value
        return _check_one(f.name, value, meta)

    def rules(self) -> None:
        """Cross-setting rules of a config (none by default)."""

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Any):
        what = cls.__name__
        if not isinstance(values, dict):
            raise ToolkitError(f"a {what} must be a JSON object")
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for f in declared(cls):
            if f.metadata["kind"] == "jobs" and f.name in known:
                jobs = known[f.name]
                if not isinstance(jobs, list) or not all(isinstance(j, list) and len(j) == 2 for j in jobs):
                    raise ToolkitError(f"a {what}'s {f.name} must be a list of [emotion, seed] pairs")
                known[f.name] = tuple(tuple(j) for j in jobs)
        try:
            return cls(**known)
        except TypeError as exc:
            raise ToolkitError(f"not a {what} ({exc})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _converter(meta: dict):
    """argparse's type: text -> the kind's Python value (ranges and choices are the config's to check)."""
    kind = meta["kind"]

    def convert(text: str):
        if text in meta["also"]:
            return text
        if kind in ("int", "count", "seed"):
            try:
                return int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if kind in ("float", "probability"):
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
            if not math.isfinite(value):
                raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
            return value
        return Path(text) if kind == "path" else text

    convert.__name__ = kind  # argparse names the type in its messages
    return convert


def cli_default(f) -> Any:
    """A flag's default: its environment variable when set, else the declared default."""
    env = f.metadata["env"]
    value = os.environ.get(env) if env else None
    if value in (None, ""):
        return list(f.default) if isinstance(f.default, tuple) else f.default
    return value


def add_settings(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One argument per declared setting of ``cls`` (``dest`` = the field name)."""
    for f in declared(cls):
        meta = f.metadata
        if not meta["cli"] or f.name in skip:
            continue
        flags = meta["flags"] or (f"--{f.name}",)
        help_text = argparse.SUPPRESS if meta["hidden"] else meta["help"]
        if meta["kind"] == "bool":
            parser.add_argument(*flags, dest=f.name, action="store_true", help=help_text)
            continue
        choices = None
        if meta["choices"] is not None:
            choices = [c for c in meta["choices"] if c is not None] + list(meta["also"])
        parser.add_argument(
            *flags, dest=f.name, type=_converter(meta), default=cli_default(f), nargs=meta["nargs"],
            choices=choices, help=help_text,
        )  # fmt: skip


def from_args(cls, args: argparse.Namespace, **given: Any):
    """The config ``cls`` from parsed flags (``given``: values the command computed itself)."""
    values = {f.name: getattr(args, f.name) for f in declared(cls) if f.metadata["cli"] and hasattr(args, f.name)}
    values.update(given)
    return cls(**values)


def defaults(cls) -> dict[str, Any]:
    """The declared defaults of ``cls`` (for an API signature's documentation and tests)."""
    return {f.name: f.default for f in declared(cls) if f.default is not MISSING}
