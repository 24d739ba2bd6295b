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
import time
from pathlib import Path

from model_emotion import cli
from model_emotion.errors import ToolkitError

logger = logging.getLogger(__name__)

SUFFIXES = {"tau": "_tau", "p": "_p_value", "q": "_q_value"}

# The settings that change the tables: a finished run made with other values is recomputed.
RESULT_SETTINGS = (
    "mode",
    "method",
    "fdr",
    "alternative",
    "alpha",
    "attribute_names",
    "groups",
    "test",
    "permutations",
    "perm_seed",
    "correction",
    "tail",
    "seed_normalization",
    "seed_diagnostics",
    "splits",
    "diagnostic_permutations",
)


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


def output_paths(rank_csv: Path) -> dict[str, Path]:
    stem = rank_csv.with_suffix("")
    paths = {"rank": rank_csv}
    paths.update({key: Path(f"{stem}{suffix}.csv") for key, suffix in SUFFIXES.items()})
    paths["summary"] = Path(f"{stem}_summary.csv")
    from model_emotion.permutation import TABLE_SUFFIXES

    paths.update(
        {key: Path(f"{stem}{suffix}.{'npz' if key == 'null' else 'csv'}") for key, suffix in TABLE_SUFFIXES.items()}
    )
    paths["seed_reliability"] = Path(f"{stem}_seed_reliability.csv")
    paths["seed_influence"] = Path(f"{stem}_seed_influence.csv")
    return paths


def resolve_test(args: argparse.Namespace) -> str:
    """--test, else the protocol's: the paper's parametric test under --protocol paper."""
    return args.test or ("parametric" if args.protocol == "paper" else "permutation")


def main(argv=None) -> int:
    from model_emotion.io import job_lock

    args = parse_args(argv)
    with job_lock(args.output):  # one run per output: a second one stops at once
        return _main(args)


def _main(args) -> int:
    from model_emotion.activation_files import load_activations
    from model_emotion.attributes import build_rdms, load_ratings, parse_groups
    from model_emotion.download import resolve_attributes
    from model_emotion.io import file_digest, read_json, read_meta, save_run_args, write_csv, write_meta
    from model_emotion.permutation import TABLE_SUFFIXES
    from model_emotion.rsa import FDR_METHODS, METHODS, searchlight, summarize

    cli.setup_logging()
    args.test = resolve_test(args)
    if args.method not in METHODS:
        raise ToolkitError(f"--method {args.method!r} unknown; choose one of {', '.join(METHODS)}")
    if args.fdr not in FDR_METHODS:
        raise ToolkitError(f"--fdr {args.fdr!r} unknown; choose one of {', '.join(FDR_METHODS)}")
    paths = output_paths(args.output)
    source = Path(args.activations)
    source_sha = file_digest(source) if source.is_file() else None
    if paths["rank"].exists() and not args.overwrite:
        args_path = paths["rank"].parent / f"{paths['rank'].stem}_args.json"
        record = read_json(args_path, dict) if args_path.exists() else {}
        recorded = record.get("activations_sha256")
        settings = record.get("args") if isinstance(record.get("args"), dict) else {}
        changed = [name for name in RESULT_SETTINGS if name in settings and settings[name] != getattr(args, name)]
        if (recorded is None or recorded == source_sha) and not changed:
            logger.info("%s exists; skipping (pass --overwrite to recompute)", paths["rank"])
            return 0
        logger.info(
            "%s was made from other activations or settings (%s) than this run; recomputing",
            paths["rank"],
            ", ".join(changed) or "activations",
        )
    cli.check_output_dir(paths["rank"].parent, "--output's folder")  # before any work
    data = load_activations(args.activations)
    ratings = load_ratings(resolve_attributes(args.attributes))
    rdms = build_rdms(ratings, data.emotions, args.mode, args.attribute_names, parse_groups(args.groups))
    keep = [data.emotions.index(e) for e in rdms.emotions]
    source_meta = read_meta(source) if source.is_file() else {}
    num_layers = args.num_layers or data.layers
    if num_layers is None:
        raise ToolkitError(f"{args.activations} does not say how many layers the model has; pass --num_layers")

    from model_emotion.seeds import half_splits, normalize_seeds, seed_influence, seed_reliability

    if args.seed_diagnostics:
        half_splits(len(data.seeds), args.splits)  # enough seeds? (before any work)
    start = time.perf_counter()
    device = cli.resolve_device(args.device)
    acts = normalize_seeds(data.activations[keep], args.seed_normalization)
    result = searchlight(
        acts,
        rdms.rdms,
        rdms.names,
        args.method,
        args.fdr,
        args.alternative,
        device,
        test=args.test,
        permutations=args.permutations,
        perm_seed=args.perm_seed,
        alpha=args.alpha,
        correction=args.correction,
        tail=args.tail,
    )
    logger.info(
        "searchlight (%s test): %.2f s for %d neurons x %d attributes",
        args.test,
        time.perf_counter() - start,
        result.tau.shape[0],
        len(result.names),
    )
    summary = summarize(result, num_layers, args.alpha)
    write_csv(paths["tau"], result.table("tau"))
    write_csv(paths["p"], result.table("p"))
    write_csv(paths["q"], result.table("q"))
    if result.perm is not None:
        write_permutation_tables(paths, result)
    else:
        for key in TABLE_SUFFIXES:  # a parametric rerun leaves no stale permutation tables
            paths[key].unlink(missing_ok=True)
    if args.seed_diagnostics:
        settings = dict(
            method=args.method,
            fdr_method=args.fdr,
            alternative=args.alternative,
            device=device,
            test=args.test,
            permutations=args.diagnostic_permutations,
            perm_seed=args.perm_seed,
            correction=args.correction,
            tail=args.tail,
        )
        write_csv(
            paths["seed_reliability"],
            seed_reliability(acts, rdms.rdms, rdms.names, args.alpha, args.splits, args.perm_seed, **settings),
        )
        write_csv(
            paths["seed_influence"],
            seed_influence(acts, list(data.seeds), rdms.rdms, rdms.names, args.alpha, **settings),
        )
    else:
        for key in ("seed_reliability", "seed_influence"):
            paths[key].unlink(missing_ok=True)
    write_csv(paths["summary"], summary)
    write_csv(paths["rank"], result.table("rank"))  # last: its presence marks a finished run
    save_run_args(paths["rank"].parent, args, paths["rank"].stem, activations_sha256=source_sha)
    write_meta(
        paths["rank"],
        num_layers=num_layers,
        d_ffn=data.d_ffn,
        num_neurons=int(result.tau.shape[0]),
        alpha=args.alpha,
        method=args.method,
        fdr=args.fdr,
        alternative=args.alternative,
        mode=args.mode,
        attributes=list(rdms.names),
        emotions=list(rdms.emotions),
        seeds=list(data.seeds),
        model=source_meta.get("model"),
        model_type=source_meta.get("model_type"),
        protocol=source_meta.get("protocol"),
        prompt_mode=source_meta.get("prompt_mode"),
        activations_sha256=source_sha,
        test=args.test,
        correction=result.perm.correction if result.perm is not None else "fdr",
        permutations=args.permutations if result.perm is not None else None,
        perm_seed=args.perm_seed if result.perm is not None else None,
        tail=args.tail if result.perm is not None else None,
        seed_normalization=args.seed_normalization,
    )
    totals = summary[summary["layer"] == "all"]
    nulls = {}
    if result.perm is not None:
        counts = result.perm.null_counts
        nulls = {row["attribute"]: row for _, row in counts[counts["test"].str.startswith("permutation")].iterrows()}
    for _, row in totals.iterrows():
        null = nulls.get(row["attribute"])
        beside = (
            ""
            if null is None
            else f"  (null mean {null['null_mean']:.1f}, p95 {null['null_p95']:.0f}, count p {null['count_p']:.3g})"
        )
        logger.info(
            "%-18s significant %6d  selective %6d%s", row["attribute"], row["n_significant"], row["n_selective"], beside
        )
    logger.info(
        "wrote %s (+ tau, p, q, summary%s)",
        paths["rank"],
        ", permutation p, FWER p, null counts" if result.perm is not None else "",
    )
    return 0


def write_permutation_tables(paths: dict[str, Path], result) -> None:
    """The permutation test's tables beside the rank table, and its null distributions (npz)."""
    import numpy as np
    import pandas as pd

    from model_emotion.io import atomic_path, write_csv

    perm = result.perm
    for key in ("perm_p", "fwer_p", "fwer_global_p"):
        write_csv(paths[key], pd.DataFrame(getattr(perm, key), columns=result.names))
    write_csv(paths["null_counts"], perm.null_counts)
    with atomic_path(paths["null"]) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                attributes=np.array(result.names),
                null_max=perm.null_max,
                permutations=perm.permutations,
                permuted_stat=perm.permuted_stat,
                **{f"counts_{k}": v for k, v in perm.count_draws.items()},
            )


if __name__ == "__main__":
    sys.exit(cli.run(main))
