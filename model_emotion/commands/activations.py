"""Step 2: FFN neuron activations of every learned prompt, read at the classification slot.

The model is loaded once; each checkpoint's prompt is then run alone and all layers x d_ffn
neurons are read at the ``<mask>`` slot. The input is the protocol's: ``<mask> P_1..P_P`` with
Hugging Face's positions (toolkit), or exactly the original code's ``<mask> P_1..P_P <s>`` with
positions 0..L-1 and no token-type embedding on the prompt (``--protocol paper``).

``--control random_prompts`` writes the same files for untrained control prompts: each checkpoint's
prompt is replaced by Gaussian random vectors, each rescaled to the L2 norm of the trained prompt's
vector at the same position (one control per emotion and seed, drawn from ``--control_seed``, the
emotion and the seed), so that every later stage runs on them unchanged and ``report.py
--control_dir`` can put trained and control side by side: what the searchlight finds in prompts
that learned nothing.

Example:
    python get_active_neuron.py --activation_mode before_relu --checkpoint_dir checkpoint
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
        "--activation_mode",
        type=str,
        default="before_relu",
        choices=["before_relu", "after_relu", "pre_activation"],
        help="before_relu: value after the activation function (the paper's name); after_relu: "
        "that value > 0 as 0/1; pre_activation: the value before the activation function",
    )
    cli.add_model_args(parser)
    cli.add_checkpoint_args(parser)
    cli.add_device_args(parser)
    parser.add_argument(
        "--output_dir", "--output", type=Path, default=None, help="output folder (default active_neuron_{mode}_csv)"
    )
    parser.add_argument(
        "--sentiments", type=str, nargs="+", default=None, help="emotions to read (default: every checkpoint found)"
    )
    parser.add_argument(
        "--seeds", type=cli.seed_int, nargs="+", default=None, help="seeds to read (default: every checkpoint found)"
    )
    parser.add_argument(
        "--state", type=str, default="best", choices=["best", "final"], help="which prompt of the checkpoint"
    )
    parser.add_argument(
        "--control",
        type=str,
        default="none",
        choices=["none", "random_prompts"],
        help="random_prompts: untrained control prompts (random vectors with the trained prompt's "
        "norm per position) instead of the trained ones",
    )
    parser.add_argument(
        "--control_seed", type=cli.seed_int, default=0, help="seed of the control prompts (default %(default)s)"
    )
    cli.add_protocol_args(parser)
    parser.add_argument("--overwrite", action="store_true", help="recompute CSVs that exist")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.stages.activations import ActivationsConfig, run_activations

    config = ActivationsConfig(
        activation_mode=args.activation_mode,
        model=args.model,
        dtype=args.dtype,
        checkpoint_dir=args.checkpoint_dir,
        device=args.device,
        output_dir=args.output_dir,
        sentiments=args.sentiments,
        seeds=args.seeds,
        state=args.state,
        control=args.control,
        control_seed=args.control_seed,
        protocol=args.protocol,
        overwrite=args.overwrite,
    )
    cli.setup_logging()
    return run_activations(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
