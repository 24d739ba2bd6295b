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
from pathlib import Path

from model_emotion import cli

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000]  # MaskConfig's, as a list for --help


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--CSV_Path",
        "--csv_path",
        type=Path,
        default=Path("neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv"),
        help="rank table from rsa_searchlight.py (default %(default)s)",
    )
    parser.add_argument(
        "--mode",
        type=str,
        default=None,
        choices=["14Properties", "3Spaces"],
        help="the RSA mode of the rank table (14 attributes or 3 spaces); when given, checked against the mode "
        "the table was made with (its _meta.json); the masks cover the table's columns either way",
    )
    parser.add_argument(
        "--attribute_names",
        type=str,
        nargs="+",
        default=None,
        help="rank-table columns to mask (default: all of them)",
    )
    # Before 0.4 this list was --attributes, which names the ratings folder in rsa_searchlight.py and report.py.
    parser.add_argument(
        "--attributes", dest="attributes_old", type=str, nargs="+", default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--mask_method",
        type=str,
        default="BINARY_MASK",
        choices=["BINARY_MASK", "FLOAT_MASK", "1", "2"],
        help="BINARY_MASK: masked neurons set to 0; FLOAT_MASK: scaled by uniform [0, 1) values",
    )
    parser.add_argument(
        "--PKL_File",
        "--pkl_file",
        "--output",
        type=Path,
        default=Path("masks/RSA_14property_top_500_6000.pkl"),
        help="output masks PKL (default %(default)s)",
    )
    parser.add_argument(
        "--thresholds",
        type=cli.positive_int,
        nargs="+",
        default=DEFAULT_THRESHOLDS,
        help="numbers k of neurons to mask (default %(default)s)",
    )
    parser.add_argument(
        "--percent",
        type=cli.percent,
        nargs="+",
        default=None,
        help="k as percentages of all neurons instead of --thresholds (e.g. 4 8 16)",
    )
    parser.add_argument(
        "--num_random",
        type=cli.nonneg_int,
        default=3,
        help="random baseline draws per (attribute, k) (default %(default)s)",
    )
    parser.add_argument(
        "--num_permuted",
        type=cli.nonneg_int,
        default=None,
        help="permuted-ranking baselines per (attribute, k): top k of the rankings the permutation test "
        "computed with shuffled emotion labels (from the rank table's _null.npz; default 3 when "
        "it exists, else 0)",
    )
    parser.add_argument(
        "--random_method",
        type=str,
        default="layer_matched",
        choices=["global", "layer_matched"],
        help="layer_matched (default): same count per layer as the top-k mask; global: uniform over all",
    )
    parser.add_argument("--seed", type=cli.seed_int, default=0, help="seed of the random masks (default %(default)s)")
    parser.add_argument(
        "--num_layers",
        type=cli.positive_int,
        default=None,
        help="layers of the model (default: from the rank table's _summary.csv beside it, else "
        "from --model's config, else 12 when the table has roberta-base's 36864 rows)",
    )
    cli.add_model_args(parser, dtype=False)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PKL")
    argv = cli.expand_bracket_lists(sys.argv[1:] if argv is None else argv, ["--thresholds", "--percent"])
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.stages.masks import MaskConfig, run_masks

    config = MaskConfig(
        csv_path=args.CSV_Path,
        pkl_file=args.PKL_File,
        mode=args.mode,
        attribute_names=args.attribute_names,
        mask_method=args.mask_method,
        thresholds=args.thresholds,
        percent=args.percent,
        num_random=args.num_random,
        num_permuted=args.num_permuted,
        random_method=args.random_method,
        seed=args.seed,
        num_layers=args.num_layers,
        model=args.model,
        overwrite=args.overwrite,
        attributes_old=args.attributes_old,
    )
    cli.setup_logging()
    return run_masks(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
