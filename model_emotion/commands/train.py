"""Step 1: soft-prompt tuning of a frozen model on one GoEmotions emotion (a balanced binary task).

Example (the original README's flags work as written):
    python train.py --sentiment anger --random_seed 1 --epochs 50 --train_batch_size 8 --eval_batch_size 32
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_emotion import cli
from model_emotion.defaults import DEFAULT_ANSWER_CUE, DEFAULT_TEMPLATE, TRAIN

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sentiment",
        "--emotion",
        type=str,
        default="admiration",
        help="emotion to learn (one of the 27 GoEmotions labels; default %(default)s, the original train.py's)",
    )
    parser.add_argument(
        "--random_seed",
        "--seed",
        type=cli.seed_int,
        default=1,
        help="seed of the negatives, the prompt init and the batch order",
    )
    cli.add_jobs_arg(parser)
    cli.add_model_args(parser)
    cli.add_data_args(parser)
    cli.add_checkpoint_args(parser)
    cli.add_device_args(parser)
    parser.add_argument(
        "--log_dir", type=Path, default=Path("log"), help="folder of {sentiment}-{seed}.log (default %(default)s)"
    )
    parser.add_argument(
        "--epochs",
        type=cli.positive_int,
        default=cli.env_default("ME_EPOCHS", str(TRAIN.epochs)),
        help="training epochs (default %(default)s)",
    )
    parser.add_argument(
        "--train_batch_size",
        type=cli.positive_int,
        default=TRAIN.train_batch_size,
        help="training batch size (default %(default)s)",
    )
    parser.add_argument(
        "--eval_batch_size",
        type=cli.positive_int,
        default=TRAIN.eval_batch_size,
        help="evaluation batch size (default %(default)s)",
    )
    parser.add_argument(
        "--prompt_len",
        type=cli.positive_int,
        default=TRAIN.prompt_len,
        help="number of soft-prompt vectors P (default %(default)s)",
    )
    parser.add_argument(
        "--lr", type=cli.positive_float, default=TRAIN.lr, help="AdamW learning rate (default %(default)s)"
    )
    parser.add_argument(
        "--weight_decay",
        type=cli.nonneg_float,
        default=None,
        help="AdamW weight decay (default 1e-5; 0.01 under --protocol paper, the original's value)",
    )
    parser.add_argument(
        "--max_length",
        type=cli.positive_int,
        default=TRAIN.max_length,
        help="max text tokens, special tokens included (default %(default)s)",
    )
    parser.add_argument(
        "--max_train_samples",
        type=cli.positive_int,
        default=None,
        help="cap on training examples, balanced (default: all)",
    )
    parser.add_argument(
        "--max_eval_samples",
        type=cli.positive_int,
        default=None,
        help="cap on dev and test examples, balanced (default: all)",
    )
    parser.add_argument(
        "--head",
        type=str,
        default="auto",
        choices=["auto", "mlm", "linear", "lm"],
        help="MLM verbalizer (encoders), LM-head verbalizer (lm, decoders) or linear head; auto = "
        "mlm when an encoder has a trained MLM head, lm for decoders, linear otherwise",
    )
    parser.add_argument(
        "--verbalizer",
        type=str,
        nargs="+",
        default=None,
        help="label words of the negative and positive class (default negative positive; "
        "no yes for decoders, where each must be a single token)",
    )
    parser.add_argument(
        "--prompt_mode",
        type=str,
        default="soft",
        choices=["soft", "instruction"],
        help="soft: train a soft prompt (default); instruction (decoders): no training, a "
        "natural-language question per emotion (--template) read at the answer slot",
    )
    parser.add_argument(
        "--template",
        type=str,
        default=DEFAULT_TEMPLATE,
        help="instruction question with {emotion} (default %(default)r)",
    )
    parser.add_argument(
        "--answer_cue",
        type=str,
        default=DEFAULT_ANSWER_CUE,
        help="decoders: fixed text after the text, whose last token is the read slot "
        "(default %(default)r; write a newline as a real newline)",
    )
    parser.add_argument(
        "--prompt_init",
        type=str,
        default=None,
        choices=["vocab", "mask", "normal"],
        help="init the prompt from random vocabulary embeddings (default), <mask> x P (what the "
        "original code asks for), or N(0, initializer_range^2) (what it got: its pinned "
        "transformers 4.28.1 re-initialises the prompt on from_pretrained; default under "
        "--protocol paper)",
    )
    cli.add_protocol_args(parser, training=True)
    parser.add_argument(
        "--multi_prompt",
        action="store_true",
        help="train all --jobs together in one batched model (one backbone forward per step; "
        "the same prompts as one after another, up to float rounding; toolkit protocol)",
    )
    parser.add_argument("--overwrite", action="store_true", help="retrain even if the checkpoint exists")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.stages.train import TrainConfig, run_train

    config = TrainConfig(
        jobs=tuple(cli.parse_jobs(args.jobs, args.sentiment, args.random_seed)),
        model=args.model,
        dtype=args.dtype,
        data_dir=args.data_dir,
        checkpoint_dir=args.checkpoint_dir,
        device=args.device,
        log_dir=args.log_dir,
        epochs=args.epochs,
        train_batch_size=args.train_batch_size,
        eval_batch_size=args.eval_batch_size,
        prompt_len=args.prompt_len,
        lr=args.lr,
        weight_decay=args.weight_decay,
        max_length=args.max_length,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        head=args.head,
        verbalizer=args.verbalizer,
        prompt_mode=args.prompt_mode,
        template=args.template,
        answer_cue=args.answer_cue,
        prompt_init=args.prompt_init,
        protocol=args.protocol,
        negative_sampling=args.negative_sampling,
        multi_prompt=args.multi_prompt,
        overwrite=args.overwrite,
    )
    cli.setup_logging()
    return run_train(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
