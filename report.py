"""Step 6: the report: the paper's figures and a summary table, from a results folder or from the
paper's released data.

    python report.py --results_dir runs/demo --output_dir runs/demo/report
    python report.py --paper_dir ../shared/data/paper_roberta --output_dir report_paper

Figures (PNG; add ``--formats png pdf`` for PDF): prompt accuracy per emotion; neuron selectivity
(tau heat map of significant neurons over layers x units, and counts per layer); accuracy after
masking vs k (top-k vs random, 95% CIs); the emotion x attribute drop beyond random at one k; a
neuron's RDM beside an attribute's RDM. Tables: ``summary.csv`` / ``summary.md`` and, with both
``--results_dir`` and ``--paper_dir``, ``comparison_*.csv`` / ``comparison.md`` side by side.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_emotion import cli
from model_emotion.errors import ToolkitError

logger = logging.getLogger("report")


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", type=Path, default=None, help="folder holding the outputs of steps 1-5")
    parser.add_argument("--paper_dir", type=Path, default=None,
                        help="the paper's released RoBERTa results (e.g. ../shared/data/paper_roberta)")
    parser.add_argument("--output_dir", type=Path, default=Path("report"), help="where figures and tables go (default %(default)s)")
    parser.add_argument("--rank_csv", type=Path, default=None, help="rank table to use (default: the first found)")
    parser.add_argument("--attributes", type=str, default=cli.env_default("ME_ATTRIBUTES", None),
                        help="human ratings folder, for the RDM figure and the paper's RSA (default: env ME_ATTRIBUTES, "
                             "beside --paper_dir, or the cached download)")
    parser.add_argument("--k", type=int, default=None, help="k of the drop matrix and the summary (default: the middle k)")
    parser.add_argument("--attribute", type=str, default="valence", help="attribute of the RDM figure (default %(default)s)")
    parser.add_argument("--neuron", type=int, default=None, help="neuron of the RDM figure (default: best ranked for --attribute)")
    parser.add_argument("--fdr", type=str, default="paper", choices=["bh", "paper"],
                        help="FDR of the RSA recomputed in --paper_dir mode (default: the paper's own)")
    parser.add_argument("--alpha", type=float, default=0.01, help="q threshold of significance (default %(default)s)")
    parser.add_argument("--formats", type=str, nargs="+", default=["png"], choices=["png", "pdf", "svg"],
                        help="figure formats (default png)")
    return parser.parse_args(argv)


def draw(res, out: Path, args, label: str, reference=None) -> list[Path]:
    """Every figure the results allow; logs what cannot be drawn and why."""
    import numpy as np

    from model_emotion import plots
    from model_emotion.attributes import build_rdms, load_ratings
    from model_emotion.download import resolve_attributes
    from model_emotion.rsa import neuron_rdms

    formats = tuple(args.formats)
    written: list[Path] = []
    if res.accuracy is not None:
        written += plots.accuracy_bars(res.accuracy, out / f"{label}accuracy_per_emotion", formats, reference)
    if res.tau is not None and res.q is not None and res.num_layers:
        written += plots.selectivity_heatmap(res.tau, res.q, res.num_layers, res.alpha, out / f"{label}selectivity_tau", formats)
    if res.summary is not None:
        written += plots.selectivity_counts(res.summary, out / f"{label}selectivity_by_layer", formats)
    total = res.tau.shape[0] if res.tau is not None else (res.activations.activations.shape[2] if res.activations else None)
    if res.masking is not None:
        written += plots.masking_curves(res.masking, out / f"{label}masking_accuracy_vs_k", formats, total)
        ks = sorted(res.masking["k"].unique())
        k = args.k if args.k in ks else ks[len(ks) // 2]
        written += plots.drop_matrix(res.masking, k, out / f"{label}drop_beyond_random_k{k}", formats)
    if res.activations is not None:
        try:
            ratings = load_ratings(resolve_attributes(args.attributes or res.ratings_dir))
        except ToolkitError as exc:
            logger.warning("no RDM figure: %s", exc)
        else:
            rdms = build_rdms(ratings, res.activations.emotions)
            if args.attribute not in rdms.names:
                raise ToolkitError(f"--attribute {args.attribute!r} unknown; choose one of {', '.join(rdms.names)}")
            a = rdms.names.index(args.attribute)
            neuron = args.neuron
            tau = None
            if neuron is None and res.rank is not None and args.attribute in res.rank.columns:
                neuron = int(np.nanargmin(res.rank[args.attribute].to_numpy()))
            neuron = 0 if neuron is None else neuron
            n_total = res.activations.activations.shape[2]
            if not 0 <= neuron < n_total:
                raise ToolkitError(f"--neuron {neuron} outside 0..{n_total - 1}")
            if res.tau is not None and args.attribute in res.tau.columns:
                tau = float(res.tau[args.attribute].iloc[neuron])
            keep = [res.activations.emotions.index(e) for e in rdms.emotions]
            rdm = neuron_rdms(res.activations.activations[keep][:, :, [neuron]])[0]
            written += plots.rdm_pair(rdm, rdms.rdms[a], rdms.emotions, neuron, args.attribute, tau,
                                      out / f"{label}rdm_neuron{neuron}_{args.attribute}", formats)
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    from model_emotion.io import save_run_args, write_csv, write_text
    from model_emotion.results import comparison_tables, load_paper_results, load_results, summary_table, to_markdown

    cli.setup_logging()
    if args.results_dir is None and args.paper_dir is None:
        raise ToolkitError("give --results_dir (outputs of steps 1-5) and/or --paper_dir (the paper's released data)")
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    paper = load_paper_results(args.paper_dir, args.attributes, args.fdr, args.alpha) if args.paper_dir else None
    ours = load_results(args.results_dir, args.rank_csv, alpha=args.alpha) if args.results_dir else None
    written = []
    markdown = []
    for label, res in (("", ours), ("paper_", paper)):
        if res is None:
            continue
        prefix = label if ours is not None else ""  # file names get a prefix only when both are drawn
        if label == "" or ours is None:
            missing = res.missing()
            if missing:
                logger.warning("%s: missing %s; drawing what is there", args.results_dir or args.paper_dir, "; ".join(missing))
        reference = paper.accuracy if (label == "" and paper is not None) else None
        written += draw(res, out, args, prefix, reference)
        table, k = summary_table(res, args.k)
        if not table.empty:
            write_csv(out / f"{prefix}summary.csv", table)
            title = "Paper (RoBERTa-base, released data)" if label else "This run"
            markdown.append(f"## {title}: summary per attribute" + (f" (k = {k})" if k else "") + "\n\n" + to_markdown(table))
    if ours is not None and paper is not None:
        ours_total = ours.tau.shape[0] if ours.tau is not None else 0
        paper_total = paper.tau.shape[0] if paper.tau is not None else 0
        for name, table in comparison_tables(ours, paper, ours_total or 1, paper_total or 1).items():
            write_csv(out / f"comparison_{name}.csv", table)
            markdown.append(f"## Comparison with the paper: {name}\n\n" + to_markdown(table))
    if markdown:
        write_text(out / "summary.md", "\n".join(markdown))
    save_run_args(out, args, "report")
    for path in written:
        logger.info("wrote %s", path)
    logger.info("report in %s: %d figures, summary.md", out, len(written))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
