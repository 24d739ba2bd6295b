"""``python -m model_emotion ...`` works as the installed ``model-emotion`` command."""

import sys

from model_emotion.commands import main

if __name__ == "__main__":
    sys.argv[0] = "model-emotion"
    sys.exit(main())
