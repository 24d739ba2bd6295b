"""What survives: one table that puts each attribute's headline findings beside their controls.

Per attribute (``survival_table``):
- ``significant``, ``null_mean``, ``null_p95``, ``count_p``: the parametric test's count of significant
  neurons (the paper's number) beside what the same test gives with the emotion labels permuted;
- ``fwer_survivors``: neurons whose max-T family-wise adjusted p is <= alpha (the permutation test);
- ``split_half_spearman``, ``split_half_chance``: agreement of the neuron statistics between halves
  of the seeds, and the same with one half's labels shuffled (``rsa_searchlight.py --seed_diagnostics``);
- ``drop_beyond_random``, ``drop_beyond_permuted``, ``drop_ci_low``, ``drop_ci_high``: the masked
  accuracy lost beyond random and beyond permuted-ranking masks, with the 95% bootstrap interval of
  the first (over prompts and examples where the results hold per-example correctness, see
  ``tables.hierarchical_bootstrap``); ``min_detectable_drop``: the smallest mean drop beyond random a one-sided
  paired test at 5% would detect with 80% power at this run's number of prompts and their spread;
- ``verdict``: which of the paper's claims hold for the attribute on this run, in words.
Columns a run did not produce stay empty, and the verdict says what was not tested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "attribute",
    "significant",
    "null_mean",
    "null_p95",
    "count_p",
    "fwer_survivors",
    "split_half_spearman",
    "split_half_chance",
    "drop_beyond_random",
    "drop_beyond_permuted",
    "drop_ci_low",
    "drop_ci_high",
    "verdict",
    "min_detectable_drop",
]


def _verdict(row: dict, alpha: float) -> str:
    parts = []
    count_p, survivors = row.get("count_p"), row.get("fwer_survivors")
    if count_p is None or np.isnan(count_p):
        parts.append("count not tested against its null")
    elif count_p < 0.05:
        parts.append("more significant neurons than label permutations give")
    else:
        parts.append(f"significant count within its permutation null (count p = {count_p:.2g})")
    if survivors is not None and not np.isnan(survivors):
        parts.append(
            f"{int(survivors)} neuron(s) survive max-T at {alpha:g}"
            if survivors
            else f"no neuron survives max-T at {alpha:g}"
        )
    real, chance = row.get("split_half_spearman"), row.get("split_half_chance")
    if real is not None and not np.isnan(real):
        parts.append(
            "reliable across seed halves"
            if real > chance + 0.05
            else "not more reliable across seed halves than chance"
        )
    low = row.get("drop_ci_low")
    if low is None or np.isnan(low):
        parts.append("causal effect not measured")
    else:
        beyond = (
            "masking costs more than random masks"
            if low > 0
            else "masking does not cost reliably more than random masks"
        )
        permuted = row.get("drop_beyond_permuted")
        if permuted is not None and not np.isnan(permuted):
            beyond += " and " + (
                "more than permuted-ranking masks" if permuted > 0 else "no more than permuted-ranking masks"
            )
        parts.append(beyond)
    return "; ".join(parts)


def survival_table(
    null_counts: pd.DataFrame | None,
    fwer: pd.DataFrame | None,
    reliability: pd.DataFrame | None,
    summary: pd.DataFrame | None,
    alpha: float,
) -> pd.DataFrame:
    """The table above from a run's tables (any may be None)."""
    found: list[str] = []
    for table in (null_counts, summary):
        if table is not None:
            found += [a for a in table["attribute"] if a != "all"]
    if fwer is not None:
        found += list(fwer.columns)
    names = list(dict.fromkeys(found))  # first-seen order, once each
    rows = []
    for name in names:
        row: dict = {"attribute": name}
        if null_counts is not None:
            par = null_counts[(null_counts["attribute"] == name) & null_counts["test"].str.startswith("parametric")]
            if len(par):
                r = par.iloc[0]
                row.update(
                    significant=int(r["observed"]),
                    null_mean=float(r["null_mean"]),
                    null_p95=float(r["null_p95"]),
                    count_p=float(r["count_p"]),
                )
        if fwer is not None and name in fwer:
            row["fwer_survivors"] = int((fwer[name].to_numpy() <= alpha).sum())
        if reliability is not None:
            mean = reliability[(reliability["split"] == "mean") & (reliability["attribute"] == name)]
            if len(mean):
                row["split_half_spearman"] = float(mean.iloc[0]["spearman"])
                row["split_half_chance"] = float(mean.iloc[0]["spearman_chance"])
        if summary is not None and "drop_beyond_random" in summary:
            s = summary[summary["attribute"] == name]
            if len(s):
                for key in (
                    "drop_beyond_random",
                    "drop_beyond_permuted",
                    "drop_ci_low",
                    "drop_ci_high",
                    "min_detectable_drop",
                ):
                    if key in s:
                        row[key] = float(s.iloc[0][key])
        row = {key: row.get(key, np.nan) for key in COLUMNS if key != "verdict"}
        row["verdict"] = _verdict(row, alpha)
        row = {key: row[key] for key in COLUMNS}
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def survival_sentences(table: pd.DataFrame, alpha: float) -> list[str]:
    """Plain sentences on which of the paper's claims hold on this run; what the run can detect first."""
    if table.empty:
        return []
    n = len(table)
    out = []
    tested = table["count_p"].notna()
    if tested.any():
        above = table[tested & (table["count_p"] < 0.05)]["attribute"].tolist()
        out.append(
            f"The paper's test finds significant neurons for {int((table['significant'] > 0).sum())} of {n} "
            f"attributes; for {len(above)} of them the count is above what 95% of emotion-label permutations give"
            + (f" ({', '.join(above)})." if above else ".")
        )
    if table["fwer_survivors"].notna().any():
        kept = table[table["fwer_survivors"] > 0]["attribute"].tolist()
        out.append(
            f"With family-wise error controlled by max-T at {alpha:g}, neurons survive for {len(kept)} of {n} "
            "attributes" + (f": {', '.join(kept)}." if kept else ".")
        )
    if table["split_half_spearman"].notna().any():
        reliable = table[table["split_half_spearman"] > table["split_half_chance"] + 0.05]["attribute"].tolist()
        out.append(
            f"The neuron statistics agree between halves of the seeds beyond chance for {len(reliable)} of {n} attributes."
        )
    if "min_detectable_drop" in table and table["min_detectable_drop"].notna().any():
        mdd = 100 * table["min_detectable_drop"].median()
        out.insert(
            0,
            f"At this evaluation size the smallest drop beyond random that a paired test detects (80% power, "
            f"one-sided 5%) is about {mdd:.1f} accuracy points (median over attributes)"
            + ("; smaller effects, such as the paper's few points, can be missed." if mdd > 2 else "."),
        )
    if table["drop_ci_low"].notna().any():
        causal = table[table["drop_ci_low"] > 0]["attribute"].tolist()
        out.append(
            f"Masking the top neurons costs reliably more accuracy than random masks (95% interval above 0) "
            f"for {len(causal)} of {n} attributes" + (f": {', '.join(causal)}." if causal else ".")
        )
    else:
        out.append("The causal step (masked evaluation) is not part of this run.")
    return out
