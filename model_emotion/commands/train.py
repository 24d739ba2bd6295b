"""Step 1: soft-prompt tuning of a frozen model on one GoEmotions emotion (a balanced binary task).

Example (the original README's flags work as written):
    python train.py --sentiment anger --random_seed 1 --epochs 50 --train_batch_size 8 --eval_batch_size 32
"""

from __future__ import annotations

import argparse
import logging
import sys

from model_emotion.commands import cli
from model_emotion.stages.train import TrainConfig, run_train
from model_emotion.util import names
from model_emotion.util.settings import add_settings, from_args

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_job_flags(parser, default_emotion="admiration", default_seed=1)
    add_settings(parser, TrainConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = from_args(TrainConfig, args, jobs=tuple(names.parse_jobs(args.jobs, args.sentiment, args.random_seed)))
    cli.setup_logging()
    return run_train(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
