"""The toolkit's exceptions: one base that the command-line scripts print as a single line.

A message names a setting as ``{--name}``: a Python caller reads ``name`` (the keyword argument),
the command line reads ``--name`` (its flag), so the library never assumes how it was called.

Each subclass also derives from the built-in that a Python caller would expect to catch
(``ValueError`` for a bad value, ``ImportError`` for a missing optional package), so
``except ValueError`` works around the API as it does elsewhere. Messages may also name a stage as
``{stage:rsa}``, spelled as its script or its ``model-emotion`` subcommand (``stage_name``).
"""

import re
import sys

_SETTING = re.compile(r"\{--([A-Za-z_][A-Za-z0-9_]*)\}")
# A stage named as {stage:rsa}: the repository script for its users ("rsa_searchlight.py"), the
# subcommand for users of the installed command ("model-emotion rsa").
_STAGE = re.compile(r"\{stage:([a-z]+)\}")
STAGE_SCRIPTS = {
    "train": "train.py",
    "activations": "get_active_neuron.py",
    "rsa": "rsa_searchlight.py",
    "masks": "gen_mask.py",
    "eval": "eval_mask_neuron.py",
    "report": "report.py",
}


def stage_name(stage: str) -> str:
    """How this process's user runs ``stage``: ``model-emotion rsa`` under the installed command
    (which sets the program name), else the repository script."""
    if sys.argv and sys.argv[0].startswith("model-emotion"):
        return f"model-emotion {stage}"
    return STAGE_SCRIPTS[stage]


def _stages(text: str) -> str:
    return _STAGE.sub(lambda m: stage_name(m.group(1)) if m.group(1) in STAGE_SCRIPTS else m.group(0), text)


class ToolkitError(Exception):
    """Bad input or state that the user can fix.

    The message names the offending value or file and what would be valid; scripts print it as
    one line on stderr (``for_cli``) and exit 2, without a traceback.
    """

    def __init__(self, message: object = ""):
        self.raw = " ".join(str(message).split())  # always one line, whatever text it quotes
        super().__init__(_SETTING.sub(r"\1", _STAGE.sub(lambda m: STAGE_SCRIPTS.get(m.group(1), m.group(0)), self.raw)))

    def for_cli(self) -> str:
        """The message with settings spelled as command-line flags and stages as the user runs them."""
        return _stages(_SETTING.sub(r"--\1", self.raw))


class ConfigError(ToolkitError, ValueError):
    """A setting or argument value that cannot work (unknown choice, out of range, wrong model)."""


class MissingDependencyError(ToolkitError, ImportError):
    """An optional package that this input needs is not installed."""


def one_line(exc: BaseException) -> str:
    """One line for the command line: a ToolkitError's settings spelled as flags (``--name``)."""
    if isinstance(exc, ToolkitError):
        return exc.for_cli()
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
