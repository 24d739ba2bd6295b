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

from model_emotion.commands import cli
from model_emotion.stages.activations import ActivationsConfig, run_activations
from model_emotion.util.settings import add_settings, from_args

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(parser, ActivationsConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = from_args(ActivationsConfig, args)
    cli.setup_logging()
    return run_activations(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
