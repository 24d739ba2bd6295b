"""What survives: one table that puts each attribute's headline findings beside their controls.

Per attribute (``survival_table``):
- ``significant``, ``null_mean``, ``null_p95``, ``count_p``: the parametric test's count of significant
  neurons (the paper's number) beside what the same test gives with the emotion labels permuted;
- ``fwer_survivors``: neurons whose max-T family-wise adjusted p is <= alpha (the permutation test, the
  run's correction); ``fwer_across_survivors``: the same with the family-wise error controlled across
  all attributes (studentized max-T unless the run said ``--studentize none``);
- ``split_half_spearman``, ``split_half_chance``, ``split_half_p_holm``: agreement of the neuron
  statistics between halves of the seeds (mean over splits), its mean under relabellings of the
  attribute's emotions for both halves, and the relabelling p after Holm across the attributes
  (``rsa_searchlight.py --seed_diagnostics``);
- ``confounded_by``: the nuisance RDMs (``rsa_searchlight.py --nuisance``) that the attribute's RDM
  follows (Mantel, two-sided, Holm across attribute x nuisance pairs < 0.05): its survivors may be the
  nuisance's (the attribute's unique contribution is not tested);
- ``k``, ``selection``: the pre-declared k of the causal step, and whether the evaluated prompts
  ranked the masks (``circular``) or not (``held_out``: masks from other seeds' rank tables);
- ``drop_beyond_random``, ``drop_ci_low``, ``drop_ci_high``, ``p_random_holm``, ``rank_p_random``,
  ``n_random_draws``: the masked accuracy lost beyond random masks with its 95% interval over emotions,
  seeds and random draws (``causal``: two-way clustered, t quantiles), its one-sided p after Holm across
  the attributes, and the exact rank p of the top mask among the draws (prompts held fixed);
  ``drop_beyond_permuted``, ``p_permuted_holm``: the same against permuted-ranking masks;
  ``min_detectable_drop``: the smallest drop beyond random a one-sided 5% test detects with 80% power
  at this run's variance;
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
    "fwer_across_survivors",
    "split_half_spearman",
    "split_half_chance",
    "split_half_p_holm",
    "confounded_by",
    "k",
    "selection",
    "drop_beyond_random",
    "drop_ci_low",
    "drop_ci_high",
    "p_random_holm",
    "rank_p_random",
    "n_random_draws",
    "random_draw_skew",
    "drop_beyond_permuted",
    "p_permuted_holm",
    "verdict",
    "min_detectable_drop",
]
CAUSAL_KEYS = [c for c in COLUMNS[COLUMNS.index("k") : COLUMNS.index("verdict")]] + ["min_detectable_drop"]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _causal_verdict(row: dict) -> str:
    drop, p = row.get("drop_beyond_random"), row.get("p_random_holm")
    if _missing(drop):
        return "causal effect not measured"
    if _missing(p):
        return (
            f"causal effect not testable ({int(row.get('n_random_draws') or 0)} random draw(s): the spread of "
            "random masks cannot be estimated)"
        )
    circular = " (circular selection)" if row.get("selection") != "held_out" else ""
    text = (
        f"masking costs more than random masks{circular} (Holm p = {p:.2g})"
        if p < 0.05
        else f"masking does not cost reliably more than random masks{circular} (Holm p = {p:.2g})"
    )
    kind = row.get("ablation") if isinstance(row.get("ablation"), str) else "zero"
    text = text.replace("masking costs", f"{kind}-ablating the top neurons costs", 1).replace(
        "masking does not", f"{kind}-ablating the top neurons does not", 1
    )
    others = sorted({key[len("p_random_holm_") :] for key in row if key.startswith("p_random_holm_")})
    for other in others:
        p_other = row[f"p_random_holm_{other}"]
        if not _missing(p_other):
            text += (
                f"; under {other} ablation "
                + ("it holds" if p_other < 0.05 else "it does not hold")
                + f" (Holm p = {p_other:.2g})"
            )
    permuted = row.get("p_permuted_holm")
    if not _missing(permuted):
        text += " and " + (
            "more than permuted-ranking masks" if permuted < 0.05 else "not reliably more than permuted-ranking masks"
        )
    return text


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
    real, p = row.get("split_half_spearman"), row.get("split_half_p_holm")
    if not _missing(real):
        if _missing(p):
            parts.append("seed-half agreement not tested against its relabelling null (an older table)")
        elif p < 0.05:
            parts.append(f"reliable across seed halves (relabelling p, Holm = {p:.2g})")
        else:
            parts.append(f"not more reliable across seed halves than relabelled attributes (Holm p = {p:.2g})")
    confounded = row.get("confounded_by")
    if isinstance(confounded, str) and confounded not in ("", "none"):
        parts.append(f"its RDM follows the nuisance RDM(s) {confounded} (Mantel, Holm p < 0.05)")
    parts.append(_causal_verdict(row))
    return "; ".join(parts)


def survival_table(
    null_counts: pd.DataFrame | None,
    fwer: pd.DataFrame | None,
    reliability: pd.DataFrame | None,
    summary: pd.DataFrame | None,
    alpha: float,
    fwer_across: pd.DataFrame | None = None,
    confounds: pd.DataFrame | None = None,
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
        if fwer_across is not None and name in fwer_across:
            row["fwer_across_survivors"] = int((fwer_across[name].to_numpy() <= alpha).sum())
        if reliability is not None:
            mean = reliability[(reliability["split"] == "mean") & (reliability["attribute"] == name)]
            if len(mean):
                row["split_half_spearman"] = float(mean.iloc[0]["spearman"])
                row["split_half_chance"] = float(mean.iloc[0]["spearman_chance"])
                row["split_half_p_holm"] = float(mean.iloc[0].get("spearman_p_holm", np.nan))
        if confounds is not None:
            mine = confounds[(confounds["attribute"] == name) & (confounds["perm_p_holm"] < 0.05)]
            row["confounded_by"] = "; ".join(mine["nuisance"]) or "none"
        if summary is not None and "drop_beyond_random" in summary:
            s = summary[summary["attribute"] == name]
            if len(s):
                keys = CAUSAL_KEYS + ["ablation"] + ablation_columns(summary)
                row.update({key: s.iloc[0][key] for key in keys if key in s})
        columns = _columns(summary)
        row = {key: row.get(key, np.nan) for key in columns if key != "verdict"}
        row["verdict"] = _verdict(row, alpha)
        row = {key: row[key] for key in columns}
        rows.append(row)
    return pd.DataFrame(rows, columns=_columns(summary))


def ablation_columns(summary: pd.DataFrame | None) -> list[str]:
    """The causal columns of the other ablation kinds run (``drop_beyond_random_mean``, ...)."""
    if summary is None:
        return []
    stems = ("drop_beyond_random_", "drop_ci_low_", "drop_ci_high_", "p_random_holm_")
    return [c for c in summary.columns if c.startswith(stems) and not c.endswith(("_holm", "_skew"))]


def _columns(summary) -> list[str]:
    at = COLUMNS.index("verdict")
    return (
        COLUMNS[:at]
        + ["ablation"] * (summary is not None and "ablation" in summary)
        + ablation_columns(summary)
        + COLUMNS[at:]
    )


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
    if table["fwer_across_survivors"].notna().any():
        kept = table[table["fwer_across_survivors"] > 0]["attribute"].tolist()
        out.append(
            f"With family-wise error controlled across all {n} attributes (max-T, studentized unless the run "
            f"said otherwise) at {alpha:g}, neurons survive for {len(kept)}"
            + (f": {', '.join(kept)}." if kept else ".")
        )
    if table["split_half_p_holm"].notna().any():
        reliable = table[table["split_half_p_holm"] < 0.05]["attribute"].tolist()
        out.append(
            "The neuron statistics agree between halves of the seeds more than they do for the same attribute "
            "with its emotions relabelled (relabelling test, Holm across attributes at 0.05) for "
            f"{len(reliable)} of {n} attributes" + (f": {', '.join(reliable)}." if reliable else ".")
        )
    if table["confounded_by"].notna().any():
        hit = table[~table["confounded_by"].isin(["none"]) & table["confounded_by"].notna()]
        out.append(
            f"{len(hit)} of {n} attributes have RDMs that follow a nuisance RDM (Mantel, two-sided, Holm at 0.05)"
            + (
                ": " + "; ".join(f"{r.attribute} ({r.confounded_by})" for r in hit.itertuples()) + "."
                if len(hit)
                else "."
            )
            + " Their survivors cannot be told from the nuisance's by this test (no partialled test is run)."
        )
    every = searchlight_survivors(table)
    if every is not None:
        names, checks = every
        out.append(
            f"Surviving every check of the searchlight that this run made ({checks}): {len(names)} of {n} attributes"
            + (f": {', '.join(names)}." if names else ".")
        )
    if "min_detectable_drop" in table and table["min_detectable_drop"].notna().any():
        mdd = 100 * table["min_detectable_drop"].median()
        out.insert(
            0,
            f"With this run's spread over emotions, seeds and random draws, the smallest drop beyond random that "
            f"the one-sided 5% test detects with 80% power (before the correction across attributes) is about "
            f"{mdd:.1f} accuracy points (median over attributes)"
            + ("; smaller effects, such as the paper's few points, can be missed." if mdd > 2 else "."),
        )
    out.append(_causal_sentence(table))
    return out


def searchlight_survivors(table: pd.DataFrame) -> tuple[list[str], str] | None:
    """The attributes that pass every searchlight check the run made (max-T within and across attributes,
    seed reliability, no nuisance confound), and those checks in words; None without max-T results."""
    if table["fwer_survivors"].isna().all():
        return None
    keep = table["fwer_survivors"].fillna(0) > 0
    checks = ["max-T survivors within the attribute"]
    if table["fwer_across_survivors"].notna().any():
        keep &= table["fwer_across_survivors"].fillna(0) > 0
        checks.append("across all attributes")
    if table["split_half_p_holm"].notna().any():
        keep &= table["split_half_p_holm"] < 0.05
        checks.append("reliable across seed halves (Holm)")
    if table["confounded_by"].notna().any():
        keep &= table["confounded_by"].isin(["none"])
        checks.append("no nuisance confound")
    return table[keep]["attribute"].tolist(), ", ".join(checks)


def _causal_sentence(table: pd.DataFrame) -> str:
    n = len(table)
    tested = table["p_random_holm"].notna()
    if not tested.any():
        if table["drop_beyond_random"].notna().any():
            return (
                "The causal step cannot be tested on this run: with one random draw per attribute and k the "
                "spread of random masks is unknown (gen_mask.py --num_random 20 is the default)."
            )
        return "The causal step (masked evaluation) is not part of this run."
    causal = table[tested & (table["p_random_holm"] < 0.05)]["attribute"].tolist()
    k = table.loc[tested, "k"].iloc[0]
    draws = int(table.loc[tested, "n_random_draws"].median())
    selection = set(table.loc[tested, "selection"].astype(str))
    held = (
        "masks selected on other seeds than those evaluated"
        if selection == {"held_out"}
        else "circular selection: the masks were ranked on the prompts evaluated"
    )
    skewed = table[tested & (table["n_random_draws"] < 40) & (table["random_draw_skew"].abs() > 1)]
    warning = (
        f" Caution: the random draws of {len(skewed)} attribute(s) are skewed (|skewness| > 1) and fewer than "
        f"40; in simulations with such draws the test's one-sided error was 0.07-0.08, not 0.05, so borderline "
        f"p values are too small."
        if len(skewed)
        else ""
    )
    return (
        f"Masking the top k = {int(k)} neurons costs more accuracy than random masks for {len(causal)} of "
        f"{int(tested.sum())} attributes" + (f" ({', '.join(causal)})" if causal else "") + " at family-wise 5% "
        f"(one-sided t on the drop beyond random with standard errors clustered by emotion and by random draw, "
        f"{draws} draws, Holm across the {int(tested.sum())} attributes; {held})."
        + ("" if int(tested.sum()) == n else f" {n - int(tested.sum())} attribute(s) were not tested.")
        + _rank_sentence(table[tested])
        + _ablation_sentence(table, tested, causal)
        + warning
    )


def _ablation_sentence(table: pd.DataFrame, tested, causal: list[str]) -> str:
    """Which attributes' effect survives each other ablation kind run, and all of them (each kind
    tested at family-wise 5% with Holm; requiring all is an intersection-union test, no further correction)."""
    kinds = [c[len("p_random_holm_") :] for c in table.columns if c.startswith("p_random_holm_")]
    if not kinds:
        return ""
    lead = table["ablation"].dropna().iloc[0] if "ablation" in table and table["ablation"].notna().any() else "zero"
    parts, every = [], set(causal)
    for kind in kinds:
        held = table[tested & (table[f"p_random_holm_{kind}"] < 0.05)]["attribute"].tolist()
        every &= set(held)
        parts.append(f"under {kind} ablation for {len(held)}" + (f" ({', '.join(held)})" if held else ""))
    survivors = [a for a in table["attribute"] if a in every]
    return (
        f" The same test holds {'; '.join(parts)}; under every ablation kind run ({lead}, {', '.join(kinds)}) for "
        f"{len(survivors)} attribute(s)" + (f": {', '.join(survivors)}." if survivors else ".")
    )


def _rank_sentence(table: pd.DataFrame) -> str:
    """How the top masks rank among the random draws one by one (the exact test, prompts held fixed)."""
    ranked = table.dropna(subset=["rank_p_random"])
    if ranked.empty:
        return ""
    draws = ranked["n_random_draws"].to_numpy()
    above = np.round(draws - (ranked["rank_p_random"].to_numpy() * (draws + 1) - 1)).astype(int)
    best = int(np.argmax(above / draws))
    return (
        f" Ranked among its random draws one by one (exact rank p, prompts held fixed), the best top mask "
        f"({ranked['attribute'].iloc[best]}) has lower accuracy than {above[best]} of {int(draws[best])} draws "
        f"(rank p = {ranked['rank_p_random'].iloc[best]:.2g}; with D draws no rank p is below 1/(D + 1))."
    )
