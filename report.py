"""Step 6: the report: the paper's figures and a summary table, from a results folder or from the

The original command line of this stage. A thin shim: the command is
`model_emotion.commands.report`, also installed as `model-emotion report`.
"""

import sys

from model_emotion.commands import cli
from model_emotion.commands.report import main, parse_args  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli.run(main))
