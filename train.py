"""Step 1: soft-prompt tuning of a frozen model on one GoEmotions emotion (a balanced binary task).

The original command line of this stage. A thin shim: the command is
`model_emotion.commands.train`, also installed as `model-emotion train`.
"""

import sys

from model_emotion.commands import cli
from model_emotion.commands.train import main, parse_args  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.run(main))
