"""Names are data: attribute, emotion and mask names are checked where they enter the toolkit.

An emotion name is a plain word (letters, digits, ``_ + -``; it becomes part of file names). Any
other name is 1 to ``MAX_NAME`` characters (``MAX_MASK_NAME`` for mask names, which add
``_top{k}_random_{i}``), starts with a letter or digit, and holds only letters, digits, space and
``_ - . ( ) +``. So no name can be a spreadsheet formula (a cell starting with ``=``, ``+``, ``-`` or
``@``), a path (``/``), HTML or Markdown markup, or a file-name bomb. Outputs also escape what they
write (``csv_safe`` for CSV cells, ``tables.to_markdown`` and ``html_report`` for Markdown and HTML),
so a name that reached them some other way is still inert.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from model_emotion.errors import ConfigError, ToolkitError

MAX_NAME = 64
MAX_MASK_NAME = 128
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.()+\-]*")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_name(name: object, what: str, source: str, limit: int = MAX_NAME) -> str:
    """``name`` if it is a valid name, else a ``ToolkitError`` naming ``what`` and ``source``."""
    if not isinstance(name, str) or not name or len(name) > limit or not _NAME.fullmatch(name):
        shown = repr(name)[:60] + ("..." if len(repr(name)) > 60 else "")
        raise ToolkitError(
            f"{source}: {what} {shown} is not a valid name (1 to {limit} characters: letters, digits, space "
            f"and _ - . ( ) +, starting with a letter or digit)"
        )
    return name


def check_names(names, what: str, source: str, limit: int = MAX_NAME) -> list[str]:
    """Each name checked, and no name twice."""
    names = [check_name(n, what, source, limit) for n in names]
    seen = set()
    for n in names:
        if n in seen:
            raise ToolkitError(f"{source}: {what} {n!r} appears twice")
        seen.add(n)
    return names


_EMOTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\-]*")


def check_emotion_name(name: object, source: str = "") -> str:
    """An emotion (label) name becomes part of file names (``{emotion}-{seed}``): letters, digits,
    ``_ + -``, starting with a letter or digit, at most ``MAX_NAME`` characters."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _EMOTION.fullmatch(name):
        shown = repr(name)[:60] + ("..." if len(repr(name)) > 60 else "")
        raise ToolkitError(
            f"{source + ': ' if source else ''}emotion name {shown} is not a plain word (1 to {MAX_NAME} letters, "
            f"digits, _, +, -); it would become part of output file names"
        )
    return name


def check_emotion_names(names, source: str) -> list[str]:
    names = [check_emotion_name(n, source) for n in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ToolkitError(f"{source}: emotion {twice[0]!r} appears twice")
    return names


def check_mask_name(name: object, source: str) -> str:
    return check_name(name, "mask name", source, MAX_MASK_NAME)


def csv_safe(value):
    """A CSV cell that no spreadsheet runs as a formula (OWASP): text starting with = + - @ (or a tab
    or carriage return) gets a leading apostrophe. Numbers are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


MAX_SEED = 2**32 - 1  # numpy's and torch's seed range


def check_jobs(jobs) -> tuple[tuple[str, int], ...]:
    """(emotion, seed) prompts of a stage: emotion names checked, seeds in range, none twice."""
    out = tuple((check_emotion_name(e, "{--jobs}"), s) for e, s in (tuple(j) for j in jobs))
    if not out or any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SEED for _, s in out):
        raise ConfigError(f"{{--jobs}} {list(jobs)!r}: give (emotion, seed) pairs with seeds in 0..{MAX_SEED}")
    if len(set(out)) != len(out):
        raise ConfigError(f"{{--jobs}} lists a prompt twice: {[f'{e}-{s}' for e, s in out]}")
    return out


RUN_NAME = re.compile(r"^(?P<emotion>.+)-(?P<seed>\d+)$")


def run_name(emotion: str, seed: int) -> str:
    """The ``{emotion}-{seed}`` name of one (emotion, seed) job: file stems, ``--jobs`` entries, logs."""
    return f"{emotion}-{seed}"


def split_run_name(stem: str) -> tuple[str, int] | None:
    """``(emotion, seed)`` of a ``{emotion}-{seed}`` name (a file stem, a --jobs entry); None for another form.

    The one parser of these names: checkpoints, activation CSVs, eval results and --jobs use it.
    """
    match = RUN_NAME.match(stem)
    return (match["emotion"], int(match["seed"])) if match else None


def parse_run_name(name: str, what: str = "name") -> tuple[str, int]:
    """``{emotion}-{seed}`` (file stems, --jobs entries) -> (emotion, seed), both validated."""

    run = split_run_name(name)
    if run is None:
        raise ToolkitError(f"{what} {name!r} must look like EMOTION-SEED, e.g. anger-1")
    if run[1] > MAX_SEED:
        raise ToolkitError(f"{what} {name!r}: seed must be in 0..{MAX_SEED}")
    return check_emotion_name(run[0], what), run[1]


def parse_jobs(jobs: Sequence[str] | None, sentiment: str, seed: int) -> list[tuple[str, int]]:
    """``--jobs anger-1 joy-3 ...`` (several runs in one process, the model loaded once), or the single
    ``--sentiment`` / ``--random_seed`` pair."""
    if not jobs:
        return [(check_emotion_name(sentiment, "--sentiment"), seed)]
    out = []
    for job in jobs:
        emotion, number = parse_run_name(job, "--jobs entry")
        if (emotion, number) in out:
            raise ToolkitError(f"--jobs lists {job} twice")
        out.append((emotion, number))
    return out
