"""Step 2: FFN neuron activations of every learned prompt, read at the classification slot.

The original command line of this stage. A thin shim: the command is
`model_emotion.commands.activations`, also installed as `model-emotion activations`.
"""

import sys

from model_emotion.commands import cli
from model_emotion.commands.activations import main, parse_args  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.run(main))
