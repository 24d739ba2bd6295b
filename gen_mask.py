"""Step 4: masks of the top-k neurons per attribute, plus random baseline masks.

The original command line of this stage. A thin shim: the command is
`model_emotion.commands.masks`, also installed as `model-emotion masks`.
"""

import sys

from model_emotion.commands import cli
from model_emotion.commands.masks import main, parse_args  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.run(main))
