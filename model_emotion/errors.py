"""The toolkit's exceptions: one base that the command-line scripts print as a single line.

Each subclass also derives from the built-in that a Python caller would expect to catch
(``ValueError`` for a bad value, ``FileNotFoundError`` for a missing file, ``ImportError`` for a
missing optional package), so ``except ValueError`` works around the API as it does elsewhere.
"""


class ToolkitError(Exception):
    """Bad input or state that the user can fix.

    The message names the offending value or file and what would be valid; scripts print it as
    one line on stderr and exit 2, without a traceback.
    """

    def __init__(self, message: object = ""):
        super().__init__(" ".join(str(message).split()))  # always one line, whatever text it quotes


class ConfigError(ToolkitError, ValueError):
    """A setting or argument value that cannot work (unknown choice, out of range, wrong model)."""


class MissingDependencyError(ToolkitError, ImportError):
    """An optional package that this input needs is not installed."""
