"""The one exception type that the command-line scripts print as a single line."""


class ToolkitError(Exception):
    """Bad input or state that the user can fix.

    The message names the offending value or file and what would be valid; scripts print it as
    one line on stderr and exit non-zero, without a traceback.
    """

    def __init__(self, message: object = ""):
        super().__init__(" ".join(str(message).split()))  # always one line, whatever text it quotes
