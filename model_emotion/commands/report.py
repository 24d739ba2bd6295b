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

from model_emotion.commands import cli
from model_emotion.stages.report import ReportConfig, run_report
from model_emotion.util.settings import add_settings, from_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(parser, ReportConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = from_args(ReportConfig, args)
    cli.setup_logging()
    return run_report(config)


if __name__ == "__main__":
    sys.exit(cli.run(main))
