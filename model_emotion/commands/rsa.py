"""Step 3: per-neuron RSA searchlight against human emotion-attribute RDMs.

Example (the paper's data):
    python rsa_searchlight.py --activations ../shared/data/paper_roberta/activations.npz \
        --attributes ../shared/data/emotion_attributes --mode 14Properties \
        --output neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv

Writes the rank table (1 = best) and, beside it, the ``_tau``, ``_p_value`` and ``_q_value``
tables (the parametric test) and a ``_summary`` table of significant and selective neurons per
attribute and layer. The default test is the emotion-label permutation test (``--test permutation``,
1000 permutations, max-T family-wise error within each attribute), which adds ``_perm_p_value``,
``_fwer_p_value``, ``_fwer_global_p_value``, ``_null_counts`` (every count beside its null) and
``_null.npz``; ``--test parametric`` (or ``--protocol paper``) is the paper's test alone.
"""

from __future__ import annotations

import argparse
import logging
import sys

from model_emotion.commands import cli
from model_emotion.stages.rsa import RSAConfig, run_rsa
from model_emotion.util.settings import add_settings, from_args

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(parser, RSAConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    config = from_args(RSAConfig, parse_args(argv))
    cli.setup_logging()
    return run_rsa(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
