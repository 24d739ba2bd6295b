"""Which significant neurons survive the permutation test? A table from a searchlight's outputs.

Per attribute: the parametric test's count (the paper's: Kendall tau-b, normal approximation, FDR at
the run's alpha) beside its null (mean and 95th percentile over emotion-label permutations) and its
count p, then the neurons whose max-T adjusted p is <= 0.05 and <= 0.01 for each of the four max-T
variants: raw or studentized, within the attribute or across all attributes (``_maxt_survivors.csv``;
older runs without it: ``_fwer_p_value`` and ``_fwer_global_p_value``), and, where the run has a
``_seed_reliability.csv`` (or ``--reliability`` names one), the split-half agreement of the neuron
statistics, its relabelling null mean and its p after Holm across the attributes.

    python benchmarks/permutation_survivors.py neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

VARIANTS = ("raw_within", "raw_across", "studentized_within", "studentized_across")


def survivors(rank_csv: Path, reliability: Path | None = None) -> pd.DataFrame:
    stem = rank_csv.with_suffix("")
    counts = pd.read_csv(f"{stem}_null_counts.csv")
    parametric = counts[counts["test"].str.startswith("parametric")].set_index("attribute")
    table = Path(f"{stem}_maxt_survivors.csv")
    if table.exists():
        maxt = pd.read_csv(table).set_index("attribute")
    else:  # an older run: the run's two adjusted p tables (raw max-T)
        fwer, across = pd.read_csv(f"{stem}_fwer_p_value.csv"), pd.read_csv(f"{stem}_fwer_global_p_value.csv")
        maxt = pd.DataFrame(
            {
                f"raw_{kind}_{level:g}": (t <= level).sum()
                for kind, t in (("within", fwer), ("across", across))
                for level in (0.05, 0.01)
            }
        )
    maxt.loc["all"] = maxt.sum()
    out = pd.DataFrame(
        {
            "parametric": parametric["observed"].astype(int),
            "null_mean": parametric["null_mean"].round(1),
            "null_p95": parametric["null_p95"].round(1),
            "count_p": parametric["count_p"],
        }
    ).join(maxt, how="left")
    reliability = reliability or Path(f"{stem}_seed_reliability.csv")
    if reliability.exists():
        rel = pd.read_csv(reliability)
        mean = rel[rel["split"] == "mean"].set_index("attribute")
        cols = {"spearman": "split_half_rho", "spearman_chance": "rho_null_mean", "spearman_p_holm": "rho_p_holm"}
        out = out.join(mean[[c for c in cols if c in mean]].rename(columns=cols).round(3), how="left")
    return out.reset_index().rename(columns={"index": "attribute"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rank_csv", type=Path, help="the searchlight's rank table")
    parser.add_argument("--reliability", type=Path, default=None, help="a _seed_reliability.csv (default: beside it)")
    args = parser.parse_args()
    table = survivors(args.rank_csv, args.reliability)
    from model_emotion.report.tables import to_markdown

    print(to_markdown(table))
    attrs = table[table["attribute"] != "all"]
    above = attrs[attrs["count_p"] < 0.05]["attribute"].tolist()
    kept = attrs[attrs["raw_within_0.05"] > 0]["attribute"].tolist()
    print(
        f"\nparametric counts above 95% of their null (count p < 0.05): {len(above)} of {len(attrs)}: {', '.join(above)}"
    )
    print(
        f"attributes with neurons surviving max-T at 0.05 (within attribute): {len(kept)} of {len(attrs)}: {', '.join(kept)}"
    )
    if "studentized_across_0.05" in attrs:
        across = attrs[attrs["studentized_across_0.05"] > 0]["attribute"].tolist()
        print(f"with studentized max-T across all attributes at 0.05: {len(across)}: {', '.join(across)}")
    if "rho_p_holm" in attrs:
        reliable = attrs[attrs["rho_p_holm"] < 0.05]["attribute"].tolist()
        print(f"reliable across seed halves (relabelling p, Holm < 0.05): {len(reliable)}: {', '.join(reliable)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
