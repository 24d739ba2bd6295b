"""Which significant neurons survive the permutation test? A table from a searchlight's outputs.

Per attribute: the parametric test's count (the paper's: Kendall tau-b, normal approximation, FDR at
the run's alpha) beside its null (mean and 95th percentile over emotion-label permutations) and its
count p, then the neurons whose max-T adjusted p is <= 0.05 and <= 0.01, within the attribute and
across all attributes. Reads RANK.csv's ``_null_counts``, ``_fwer_p_value`` and
``_fwer_global_p_value`` tables, written by ``rsa_searchlight.py --test permutation``.

    python benchmarks/permutation_survivors.py neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def survivors(rank_csv: Path) -> pd.DataFrame:
    stem = rank_csv.with_suffix("")
    counts = pd.read_csv(f"{stem}_null_counts.csv")
    fwer = pd.read_csv(f"{stem}_fwer_p_value.csv")
    fwer_global = pd.read_csv(f"{stem}_fwer_global_p_value.csv")
    parametric = counts[counts["test"].str.startswith("parametric")].set_index("attribute")
    rows = []
    for name in [*fwer.columns, "all"]:
        within = fwer.to_numpy() if name == "all" else fwer[[name]].to_numpy()
        across = fwer_global.to_numpy() if name == "all" else fwer_global[[name]].to_numpy()
        row = parametric.loc[name]
        rows.append(
            {
                "attribute": name,
                "parametric": int(row["observed"]),
                "null_mean": round(row["null_mean"], 1),
                "null_p95": round(row["null_p95"], 1),
                "count_p": row["count_p"],
                "maxT_0.05": int((within <= 0.05).sum()),
                "maxT_0.01": int((within <= 0.01).sum()),
                "global_0.05": int((across <= 0.05).sum()),
                "global_0.01": int((across <= 0.01).sum()),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rank_csv", type=Path, help="the searchlight's rank table")
    args = parser.parse_args()
    table = survivors(args.rank_csv)
    from model_emotion.report.tables import to_markdown

    print(to_markdown(table))
    attrs = table[table["attribute"] != "all"]
    above = attrs[attrs["count_p"] < 0.05]["attribute"].tolist()
    kept = attrs[attrs["maxT_0.05"] > 0]["attribute"].tolist()
    print(
        f"\nparametric counts above 95% of their null (count p < 0.05): {len(above)} of {len(attrs)}: {', '.join(above)}"
    )
    print(
        f"attributes with neurons surviving max-T at 0.05 (within attribute): {len(kept)} of {len(attrs)}: {', '.join(kept)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
