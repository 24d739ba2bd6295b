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
from pathlib import Path

from model_emotion import cli

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sentiment",
        "--emotion",
        type=str,
        default="anger",
        help="emotion of the prompt (default %(default)s, the original eval_mask_neuron.py's)",
    )
    parser.add_argument(
        "--random_seed",
        "--seed",
        type=cli.seed_int,
        default=1,
        help="seed of the prompt (and of its balanced eval set)",
    )
    cli.add_jobs_arg(parser)
    parser.add_argument(
        "--maskPath",
        "--mask_path",
        type=Path,
        default=Path("masks/RSA_14property_top_500_6000.pkl"),
        help="masks PKL from gen_mask.py (default %(default)s)",
    )
    parser.add_argument(
        "--resultPath",
        "--result_path",
        "--output",
        type=Path,
        default=Path("eval_mask_neuron_result/RSA_14property_top_500_6000"),
        help="folder of {sentiment}-{seed}.json results (default %(default)s)",
    )
    cli.add_model_args(parser)
    cli.add_data_args(parser)
    cli.add_checkpoint_args(parser)
    cli.add_device_args(parser)
    parser.add_argument(
        "--split", type=str, default="dev", choices=["dev", "test"], help="evaluation split (default dev)"
    )
    parser.add_argument(
        "--max_eval_samples", type=cli.positive_int, default=None, help="cap on evaluation examples, balanced"
    )
    parser.add_argument(
        "--eval_batch_size", type=cli.positive_int, default=64, help="evaluation batch size (default %(default)s)"
    )
    parser.add_argument(
        "--masks_per_forward",
        type=cli.positive_int_or_auto,
        default="auto",
        help="masks stacked along the batch of one forward, or auto (default): 1 off CUDA (one mask "
        "per forward, its silenced neurons removed), on CUDA as many as fit the device's free "
        "memory and pay off (masked_eval.auto_masks_per_forward)",
    )
    parser.add_argument(
        "--state", type=str, default="best", choices=["best", "final"], help="which prompt of the checkpoint"
    )
    cli.add_protocol_args(parser, evaluation=True)
    parser.add_argument("--overwrite", action="store_true", help="re-evaluate even if the result exists")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.stages.evaluate import EvalConfig, run_eval

    config = EvalConfig(
        mask_path=args.maskPath,
        result_path=args.resultPath,
        jobs=tuple(cli.parse_jobs(args.jobs, args.sentiment, args.random_seed)),
        model=args.model,
        dtype=args.dtype,
        data_dir=args.data_dir,
        checkpoint_dir=args.checkpoint_dir,
        device=args.device,
        split=args.split,
        max_eval_samples=args.max_eval_samples,
        eval_batch_size=args.eval_batch_size,
        masks_per_forward=args.masks_per_forward,
        state=args.state,
        protocol=args.protocol,
        negative_sampling=args.negative_sampling,
        accuracy_mean=args.accuracy_mean,
        overwrite=args.overwrite,
    )
    cli.setup_logging()
    return run_eval(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
