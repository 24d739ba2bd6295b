"""Step 5: accuracy of learned prompts with masked FFN neurons (flags -> ``EvalConfig`` -> ``run_eval``,
in ``model_emotion.stages.evaluate``).

Loads the model and the prompt once, evaluates the unmasked prompt, then every mask of the PKL by
scaling the neurons through a hook. Results are saved after every mask, so an interrupted run
resumes where it stopped.

Example (the original README's flags):
    python eval_mask_neuron.py --sentiment anger --random_seed 1 \
        --maskPath masks/RSA_14property_top_500_6000.pkl \
        --resultPath eval_mask_neuron_result/RSA_14property_top_500_6000
"""

from __future__ import annotations

import argparse
import logging
import sys

from model_emotion.commands import cli
from model_emotion.stages.evaluate import EvalConfig, run_eval
from model_emotion.util import names
from model_emotion.util.settings import add_settings, from_args

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_job_flags(parser, default_emotion="anger", default_seed=1)
    add_settings(parser, EvalConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = from_args(EvalConfig, args, jobs=tuple(names.parse_jobs(args.jobs, args.sentiment, args.random_seed)))
    cli.setup_logging()
    return run_eval(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
