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
from pathlib import Path

from model_emotion import cli

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--activations",
        type=Path,
        default=Path("active_neuron_before_relu_csv/activations.npz"),
        help="activations.npz or a folder of {emotion}-{seed}.csv (default %(default)s)",
    )
    parser.add_argument(
        "--attributes",
        type=str,
        default=cli.env_default("ME_ATTRIBUTES", None),
        help="human ratings folder (attributes.csv [+ rdms.csv, descriptions.csv]); default: env "
        "ME_ATTRIBUTES, else the paper's ratings downloaded once into the cache",
    )
    parser.add_argument(
        "--mode",
        type=str,
        default="14Properties",
        choices=["14Properties", "3Spaces"],
        help="one RDM per attribute, or per attribute group (Euclidean over the group)",
    )
    parser.add_argument(
        "--method",
        type=str,
        default="kendall_tau_b",
        choices=["kendall_tau_b", "kendall_tau_a", "spearman"],
        help="the statistic (default %(default)s, as R's cor.test)",
    )
    parser.add_argument(
        "--fdr",
        type=str,
        default="bh",
        choices=["bh", "paper"],
        help="FDR of the parametric p (and of the permutation p with --correction fdr): bh = "
        "Benjamini-Hochberg over all tests (scipy); paper = p * N / rank(p) as in the paper's R code",
    )
    parser.add_argument(
        "--protocol",
        type=str,
        default="toolkit",
        choices=["toolkit", "paper"],
        help="paper: the paper's parametric test (the default --test under it); toolkit: the permutation test",
    )
    parser.add_argument(
        "--test",
        type=str,
        default=None,
        choices=["permutation", "parametric"],
        help="permutation: emotion-label randomisation test with family-wise error control (the "
        "default); parametric: the paper's test, which treats the emotion pairs as independent "
        "(invalid for RDMs: see the README)",
    )
    parser.add_argument(
        "--permutations",
        type=cli.positive_int,
        default=1000,
        help="permutations of the emotion labels (default %(default)s); p >= 1/(B+1)",
    )
    parser.add_argument(
        "--perm_seed", type=cli.seed_int, default=0, help="seed of the permutations (default %(default)s)"
    )
    parser.add_argument(
        "--correction",
        type=str,
        default=None,
        choices=["maxt", "maxt_global", "fdr"],
        help="permutation test: maxt = max-T family-wise error within each attribute (default), "
        "maxt_global = over all attributes, fdr = --fdr on the permutation p",
    )
    parser.add_argument(
        "--tail",
        type=str,
        default="empirical",
        choices=["empirical", "gpd", "moments"],
        help="permutation p beyond 1/(B+1): gpd = generalized Pareto fit to the max-T null's tail "
        "(FWER p), moments = Pearson III fit to each test's null (per-test p); default empirical",
    )
    parser.add_argument(
        "--alternative",
        type=str,
        default="greater",
        choices=["greater", "two-sided", "less"],
        help="alternative hypothesis of the p-values (the paper: greater)",
    )
    parser.add_argument(
        "--alpha",
        type=cli.probability,
        default=0.01,
        help="significance level: FDR q < alpha, or adjusted permutation p <= alpha (the paper: 0.01)",
    )
    parser.add_argument(
        "--seed_normalization",
        type=str,
        default="none",
        choices=["none", "zscore", "scale"],
        help="per-seed normalisation before the RDMs are averaged over seeds: none (the paper's), "
        "zscore (each neuron of each seed over the emotions), scale (each seed to equal distance mass)",
    )
    parser.add_argument(
        "--seed_diagnostics",
        action="store_true",
        help="also write _seed_reliability.csv (split-half agreement beside its label-shuffled chance "
        "level) and _seed_influence.csv (distance share, leave-one-seed-out and single-seed counts)",
    )
    parser.add_argument(
        "--splits",
        type=cli.positive_int,
        default=5,
        help="random half splits of the seeds for --seed_diagnostics, besides odd/even (default %(default)s)",
    )
    parser.add_argument(
        "--diagnostic_permutations",
        type=cli.positive_int,
        default=100,
        help="permutations of each searchlight of --seed_diagnostics under the permutation test "
        "(default %(default)s: about 40 searchlights on 2 cores)",
    )
    parser.add_argument(
        "--attribute_names",
        type=str,
        nargs="+",
        default=None,
        help="use only these attributes (or spaces in 3Spaces mode)",
    )
    parser.add_argument(
        "--groups",
        type=str,
        nargs="+",
        default=None,
        help="3Spaces groups as NAME=attr1,attr2 (default: descriptions.csv)",
    )
    parser.add_argument(
        "--num_layers",
        type=cli.positive_int,
        default=None,
        help="layers of the model, for the per-layer summary (default: from the npz)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv"),
        help="rank table CSV; the other tables go beside it (default %(default)s)",
    )
    cli.add_device_args(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing tables")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.stages.rsa import RSAConfig, run_rsa

    config = RSAConfig(
        activations=args.activations,
        attributes=args.attributes,
        mode=args.mode,
        method=args.method,
        fdr=args.fdr,
        protocol=args.protocol,
        test=args.test,
        permutations=args.permutations,
        perm_seed=args.perm_seed,
        correction=args.correction,
        tail=args.tail,
        alternative=args.alternative,
        alpha=args.alpha,
        seed_normalization=args.seed_normalization,
        seed_diagnostics=args.seed_diagnostics,
        splits=args.splits,
        diagnostic_permutations=args.diagnostic_permutations,
        attribute_names=args.attribute_names,
        groups=args.groups,
        num_layers=args.num_layers,
        output=args.output,
        device=args.device,
        overwrite=args.overwrite,
    )
    cli.setup_logging()
    return run_rsa(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
