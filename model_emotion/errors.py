"""The toolkit's exceptions: one base that the command-line scripts print as a single line.

A message names a setting as ``{--name}``: a Python caller reads ``name`` (the keyword argument),
the command line reads ``--name`` (its flag), so the library never assumes how it was called.

Each subclass also derives from the built-in that a Python caller would expect to catch
(``ValueError`` for a bad value, ``FileNotFoundError`` for a missing file, ``ImportError`` for a
missing optional package), so ``except ValueError`` works around the API as it does elsewhere.
"""

import re

_SETTING = re.compile(r"\{--([A-Za-z_][A-Za-z0-9_]*)\}")


class ToolkitError(Exception):
    """Bad input or state that the user can fix.

    The message names the offending value or file and what would be valid; scripts print it as
    one line on stderr (``for_cli``) and exit 2, without a traceback.
    """

    def __init__(self, message: object = ""):
        self.raw = " ".join(str(message).split())  # always one line, whatever text it quotes
        super().__init__(_SETTING.sub(r"\1", self.raw))

    def for_cli(self) -> str:
        """The message with settings spelled as command-line flags."""
        return _SETTING.sub(r"--\1", self.raw)


class ConfigError(ToolkitError, ValueError):
    """A setting or argument value that cannot work (unknown choice, out of range, wrong model)."""


class MissingDependencyError(ToolkitError, ImportError):
    """An optional package that this input needs is not installed."""
