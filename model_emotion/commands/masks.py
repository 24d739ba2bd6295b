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
from model_emotion.errors import ToolkitError

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000]


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


# roberta-base, the original code's only model: 12 layers x 3072 FFN neurons.
DEFAULT_MODEL_LAYERS, DEFAULT_MODEL_D_FFN = 12, 3072


def layers_from_summary(rank_csv: Path) -> int | None:
    summary = Path(f"{rank_csv.with_suffix('')}_summary.csv")
    if not summary.exists():
        return None
    from model_emotion.results import read_summary

    layers = read_summary(summary)["layer"].astype(str)
    return int(layers[layers != "all"].astype(int).max()) + 1


def layers_from_model(model: str, rows: int) -> int | None:
    """The layer count in ``model``'s config (a local folder, or a hub id already cached or reachable)."""
    import transformers
    from transformers import AutoConfig

    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        config = AutoConfig.from_pretrained(model)
    except Exception:  # noqa: BLE001 - offline or unknown: fall back to the row count
        return None
    finally:
        transformers.logging.set_verbosity(previous)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    width = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
    if not layers:
        return None
    if width and layers * width != rows:
        raise ToolkitError(
            f"the rank table has {rows} neurons, but --model {model} has {layers} x {width}; "
            f"pass the model the table was made from, or --num_layers"
        )
    return int(layers)


def infer_layers(rank_csv: Path, rows: int, model: str) -> int:
    """Layers of the ranked model: the summary beside the table, the model's config, or roberta-base's shape."""
    for found in (layers_from_summary(rank_csv), layers_from_model(model, rows)):
        if found:
            return found
    if model == cli.DEFAULT_MODEL and rows == DEFAULT_MODEL_LAYERS * DEFAULT_MODEL_D_FFN:
        logger.info("%s: %d rows = roberta-base's 12 x 3072 neurons (config not readable offline)", rank_csv, rows)
        return DEFAULT_MODEL_LAYERS
    raise ToolkitError(
        f"cannot tell the model's layer count for {rank_csv} ({rows} neurons): no _summary.csv beside "
        f"it and --model {model}'s config is not readable; pass --num_layers or --model"
    )


def main(argv=None) -> int:
    from model_emotion.io import job_lock

    args = parse_args(argv)
    with job_lock(args.PKL_File):  # one run per output: a second one stops at once
        return _main(args)


def _main(args) -> int:
    from model_emotion.io import file_digest, read_json, read_meta, save_run_args, write_meta
    from model_emotion.masks import generate_masks, save_masks
    from model_emotion.results import read_rank_table

    cli.setup_logging()
    if not args.CSV_Path.is_file():
        raise ToolkitError(f"rank table not found: {args.CSV_Path} (run {{stage:rsa}} first)")
    rank_sha = file_digest(args.CSV_Path)
    args_path = args.PKL_File.parent / f"{args.PKL_File.stem}_args.json"
    if args.PKL_File.exists() and not args.overwrite:
        recorded = read_json(args_path, dict).get("rank_sha256") if args_path.exists() else None
        if recorded in (None, rank_sha):
            logger.info("%s exists; skipping (pass --overwrite to regenerate)", args.PKL_File)
            return 0
        logger.info("%s was made from another version of %s; regenerating", args.PKL_File, args.CSV_Path)
    cli.check_output_dir(args.PKL_File.parent, "--PKL_File's folder")
    ranks = read_rank_table(args.CSV_Path)
    if args.attributes_old:
        logger.warning("--attributes (a list of columns) is now --attribute_names in gen_mask.py")
    attributes = args.attribute_names or args.attributes_old or list(ranks.columns)
    rank_meta = read_meta(args.CSV_Path)
    # A rank table holds exactly the columns of its RSA mode (attributes or spaces): --mode selects
    # nothing, but a mode that contradicts the one the table was made with is a mistake worth stopping.
    if args.mode is not None and rank_meta.get("mode") not in (None, args.mode):
        raise ToolkitError(
            f"--mode {args.mode} but {args.CSV_Path} was made with --mode {rank_meta['mode']} (its _meta.json)"
        )
    if rank_meta.get("num_neurons") not in (None, len(ranks)):
        raise ToolkitError(
            f"{args.CSV_Path} has {len(ranks)} neurons but its _meta.json says {rank_meta['num_neurons']}; "
            f"rerun {{stage:rsa}} or remove the meta file"
        )
    from_summary = layers_from_summary(args.CSV_Path)
    if rank_meta.get("num_layers") and from_summary and rank_meta["num_layers"] != from_summary:
        raise ToolkitError(
            f"{args.CSV_Path}: its _meta.json says {rank_meta['num_layers']} layers, its _summary.csv {from_summary}; "
            f"rerun {{stage:rsa}}"
        )
    num_layers = args.num_layers or rank_meta.get("num_layers") or infer_layers(args.CSV_Path, len(ranks), args.model)
    if args.percent:
        thresholds = [max(1, round(len(ranks) * p / 100)) for p in args.percent]
    else:
        thresholds = args.thresholds
    too_big = [k for k in thresholds if k > len(ranks)]
    if too_big:
        raise ToolkitError(f"thresholds {too_big} exceed the {len(ranks)} neurons of {args.CSV_Path}")
    from model_emotion.masks import load_permuted_ranks
    from model_emotion.permutation import TABLE_SUFFIXES

    null_npz = args.CSV_Path.with_name(f"{args.CSV_Path.stem}{TABLE_SUFFIXES['null']}.npz")
    if args.num_permuted is None:
        args.num_permuted = 3 if null_npz.is_file() else 0
    elif args.num_permuted and not null_npz.is_file():
        raise ToolkitError(f"--num_permuted {args.num_permuted} needs {null_npz} ({{stage:rsa}} --test permutation)")
    permuted = load_permuted_ranks(null_npz, ranks, args.num_permuted) if args.num_permuted else None
    masks = generate_masks(
        ranks,
        attributes,
        thresholds,
        num_layers,
        args.mask_method,
        args.num_random,
        args.random_method,
        args.seed,
        permuted,
    )
    save_masks(args.PKL_File, masks)
    save_run_args(args.PKL_File.parent, args, args.PKL_File.stem, rank_sha256=rank_sha)
    write_meta(
        args.PKL_File,
        num_layers=num_layers,
        d_ffn=len(ranks) // num_layers,
        num_neurons=len(ranks),
        model=rank_meta.get("model"),
        model_type=rank_meta.get("model_type"),
        protocol=rank_meta.get("protocol"),
        thresholds=list(thresholds),
        mask_method=args.mask_method,
        random_method=args.random_method,
        num_random=args.num_random,
        num_permuted=args.num_permuted,
        seed=args.seed,
        attributes=list(attributes),
        rank_sha256=rank_sha,
    )
    logger.info(
        "wrote %d masks (%d attributes x k in %s, %d random draws and %d permuted rankings each, %s) to %s",
        len(masks),
        len(attributes),
        thresholds,
        args.num_random,
        args.num_permuted,
        args.random_method,
        args.PKL_File,
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
