"""Step 5: accuracy of one learned prompt with masked FFN neurons.

The original command line of this stage. A thin shim: the command is
`model_emotion.commands.eval`, also installed as `model-emotion eval`.
"""

import sys

from model_emotion.commands import cli
from model_emotion.commands.eval import main, parse_args  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.run(main))
