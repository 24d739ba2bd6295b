"""Step 3: per-neuron RSA searchlight against human emotion-attribute RDMs.

The original command line of this stage. A thin shim: the command is
`model_emotion.commands.rsa`, also installed as `model-emotion rsa`.
"""

import sys

from model_emotion.commands import cli
from model_emotion.commands.rsa import main, parse_args  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.run(main))
