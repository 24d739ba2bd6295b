"""Write docs/flags.md: every stage's flags as a table, generated from the parsers themselves.

    python scripts/flag_tables.py          # rewrite docs/flags.md
    python scripts/flag_tables.py --check  # exit 1 when docs/flags.md differs from the parsers

The tests run the check, so the tables cannot drift from the code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_emotion.commands import COMMANDS  # noqa: E402


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _parser(module):
    """The argparse parser a stage's ``parse_args`` builds (captured, nothing parsed)."""
    captured = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        module.parse_args([])
    except SystemExit:
        pass
    finally:
        argparse.ArgumentParser.parse_args = original
    return captured["parser"]


def table(name: str) -> str:
    module_name, script, what = COMMANDS[name]
    parser = _parser(importlib.import_module(f"model_emotion.commands.{module_name}"))
    rows = ["| flag | also | default | choices | what it does |", "|---|---|---|---|---|"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or not action.option_strings or "--help" in action.option_strings:
            continue
        first, *others = action.option_strings
        default = "" if action.default in (None, argparse.SUPPRESS) else action.default
        if isinstance(default, Path):
            default = str(default)
        if isinstance(default, list):
            default = " ".join(map(str, default))
        choices = " ".join(map(str, action.choices)) if action.choices else ""
        help_text = (action.help or "").replace("%(default)s", str(default))
        rows.append(
            f"| `{first}` | {' '.join(f'`{o}`' for o in others)} | {_cell(default)} | {_cell(choices)} | {_cell(help_text)} |"
        )
    return f"## `{script}` (`model-emotion {name}`): {what}\n\n" + "\n".join(rows) + "\n"


def render() -> str:
    """The page, with defaults as a fresh shell sees them (the ME_* variables flags read are cleared meanwhile)."""
    saved = {n: v for n, v in os.environ.items() if n.startswith("ME_") and n not in ("ME_SHARED_DATA", "ME_OFFLINE")}
    for name in saved:
        del os.environ[name]
    try:
        return _render()
    finally:
        os.environ.update(saved)


def _render() -> str:
    head = (
        "# Flags of every stage\n\n"
        "Generated from the parsers by `python scripts/flag_tables.py` (the tests fail when it is out of date).\n"
        "Each script and its `model-emotion` subcommand take the same flags; `also` lists the other spellings\n"
        "(the original code's camelCase flags and the snake_case aliases).\n\n"
    )
    return head + "\n".join(table(name) for name in COMMANDS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that docs/flags.md is up to date")
    args = parser.parse_args()
    path = ROOT / "docs" / "flags.md"
    text = render()
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: run python scripts/flag_tables.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
