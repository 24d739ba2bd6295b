"""Step 6: the report: the paper's figures and a summary table, from a results folder or from the
paper's released data.

    python report.py --results_dir runs/demo --output_dir runs/demo/report
    python report.py --paper_dir ../shared/data/paper_roberta --output_dir report_paper

Figures (PNG; add ``--formats png pdf`` for PDF): prompt accuracy per emotion; neuron selectivity
(tau heat map of significant neurons over layers x units, and counts per layer); accuracy after
masking vs k (top-k vs random, 95% CIs); the emotion x attribute drop beyond random at one k; a
neuron's RDM beside an attribute's RDM. Tables: ``summary.csv`` / ``summary.md`` and, with both
``--results_dir`` and ``--paper_dir``, ``comparison_*.csv`` / ``comparison.md`` side by side.
``report.html``: everything on one self-contained page (figures embedded, tables, configuration).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_emotion import cli


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", type=Path, default=None, help="folder holding the outputs of steps 1-5")
    parser.add_argument(
        "--paper_dir",
        type=Path,
        default=None,
        help="the paper's released RoBERTa results (e.g. ../shared/data/paper_roberta)",
    )
    parser.add_argument(
        "--control_dir",
        type=Path,
        default=None,
        help="results folder of a control run (get_active_neuron.py --control random_prompts, then "
        "rsa_searchlight.py): its counts, nulls and survivors beside this run's",
    )
    parser.add_argument(
        "--output_dir",
        "--output",
        type=Path,
        default=Path("report"),
        help="where figures and tables go (default %(default)s)",
    )
    parser.add_argument("--rank_csv", type=Path, default=None, help="rank table to use (default: the first found)")
    parser.add_argument(
        "--attributes",
        type=str,
        default=cli.env_default("ME_ATTRIBUTES", None),
        help="human ratings folder, for the RDM figure and the paper's RSA (default: env ME_ATTRIBUTES, "
        "beside --paper_dir, or the cached download)",
    )
    parser.add_argument(
        "--k", type=cli.positive_int, default=None, help="k of the drop matrix and the summary (default: the middle k)"
    )
    parser.add_argument(
        "--attribute", type=str, default="valence", help="attribute of the RDM figure (default %(default)s)"
    )
    parser.add_argument(
        "--neuron",
        type=cli.nonneg_int,
        default=None,
        help="neuron of the RDM figure (default: best ranked for --attribute)",
    )
    parser.add_argument(
        "--fdr",
        type=str,
        default="paper",
        choices=["bh", "paper"],
        help="FDR of the RSA recomputed in --paper_dir mode (default: the paper's own)",
    )
    parser.add_argument(
        "--alpha", type=cli.probability, default=0.01, help="q threshold of significance (default %(default)s)"
    )
    parser.add_argument(
        "--formats",
        type=str,
        nargs="+",
        default=["png"],
        choices=["png", "pdf", "svg"],
        help="figure formats (default png)",
    )
    parser.add_argument(
        "--human_dir",
        type=Path,
        default=cli.env_default("ME_HUMAN_DIR", None),
        help="the paper's human data (similarity_judgments.csv, ..._by_participant.csv, "
        "rater_agreement.csv; e.g. ../shared/data/human_judgments): attribute importance, "
        "importance vs masking drop, rater agreement vs accuracy, model-level RSA",
    )
    parser.add_argument(
        "--n_boot",
        type=cli.bounded_int(100_000, "the draws x 351 emotion pairs are held in memory; 100,000 draws take 280 MB"),
        default=1000,
        help="bootstrap draws over participants for the importance CIs (default %(default)s)",
    )
    parser.add_argument("--seed", type=cli.seed_int, default=0, help="seed of the bootstrap (default %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.stages.report import ReportConfig, run_report

    config = ReportConfig(**{name: getattr(args, name) for name in ReportConfig.__dataclass_fields__})
    cli.setup_logging()
    return run_report(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
