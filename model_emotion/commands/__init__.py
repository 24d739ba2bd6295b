"""The six stages as commands: ``model-emotion train | activations | rsa | masks | eval | report``.

Each module has ``parse_args(argv=None)`` and ``main(argv=None)``; the top-level scripts of the
repository (``train.py``, ``get_active_neuron.py``, ...) are shims over the same functions, so the
original command lines and the installed command take the same flags.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from model_emotion.errors import STAGE_SCRIPTS

# subcommand -> (module, the repository script of the original command line, what it does)
COMMANDS = {
    "train": ("train", STAGE_SCRIPTS["train"], "learn a soft prompt per emotion and seed on a frozen model"),
    "activations": (
        "activations",
        STAGE_SCRIPTS["activations"],
        "read every FFN neuron at the read slot for each prompt",
    ),
    "rsa": ("rsa", STAGE_SCRIPTS["rsa"], "correlate each neuron's RDM with the attribute RDMs (permutation test)"),
    "masks": (
        "masks",
        STAGE_SCRIPTS["masks"],
        "masks of the top-k neurons per attribute, with random and permuted baselines",
    ),
    "eval": ("eval", STAGE_SCRIPTS["eval"], "each prompt's accuracy with those neurons silenced"),
    "report": ("report", STAGE_SCRIPTS["report"], "figures, summary.md, survival.csv and report.html"),
}

USAGE = "usage: model-emotion {" + ",".join(COMMANDS) + "} [flags]   (model-emotion COMMAND --help for its flags)"


def main(argv: Sequence[str] | None = None) -> int:
    from model_emotion.commands import cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--version":
        from model_emotion import __version__

        print(f"model-emotion {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "model-emotion: the six stages of the toolkit as commands\n"
            + USAGE
            + "\n"
            + "\n".join(f"  {name:<12} {what} ({script})" for name, (_, script, what) in COMMANDS.items())
            + "\n  --version    print the toolkit's version"
        )
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"model-emotion: error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    sys.argv[0] = f"model-emotion {name}"  # the prog name in messages
    return cli.run(module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
