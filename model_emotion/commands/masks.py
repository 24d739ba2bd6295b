"""Step 4: masks of the top-k neurons per attribute, plus random baseline masks.

The original README's command works as written (the shell splits the bracket list):
    python gen_mask.py --CSV_Path='./neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv' \
        --mode='14Properties' --mask_method='BINARY_MASK' --PKL_File='./masks/RSA_14property_top_500_6000.pkl' \
        --thresholds=[500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000]
"""

from __future__ import annotations

import argparse
import logging
import sys

from model_emotion.commands import cli
from model_emotion.stages.masks import MaskConfig, run_masks
from model_emotion.util.settings import add_settings, from_args

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000]  # MaskConfig's, as a list for --help


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(parser, MaskConfig)
    argv = cli.expand_bracket_lists(sys.argv[1:] if argv is None else argv, ["--thresholds", "--percent"])
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = from_args(MaskConfig, args)
    cli.setup_logging()
    return run_masks(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
