"""The report's tables from loaded results (``results.Results``): masking effects, the per-attribute
summary with its paired test, the comparison with the paper, and Markdown output."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats


def masking_effects(masking: pd.DataFrame) -> pd.DataFrame:
    """Per (emotion, seed, attribute, k): top-k accuracy, mean random accuracy over draws, unmasked, and
    (when the masks have them) the mean accuracy of the permuted-ranking baselines."""
    keys = ["emotion", "seed", "attribute", "k"]
    top = masking[masking["kind"] == "top"].groupby(keys)["accuracy"].mean()
    rand = masking[masking["kind"] == "random"].groupby(keys)["accuracy"].mean()
    base = masking.groupby(["emotion", "seed"])["unmasked"].first()
    columns = {"top": top, "random": rand}
    if (masking["kind"] == "permuted").any():
        columns["permuted"] = masking[masking["kind"] == "permuted"].groupby(keys)["accuracy"].mean()
    table = pd.DataFrame(columns).reset_index()
    table["unmasked"] = [base.get((e, s), np.nan) for e, s in zip(table["emotion"], table["seed"])]
    table["beyond_random"] = table["random"] - table["top"]  # accuracy lost beyond what random masking costs
    if "permuted" in table:
        # beyond the top k of rankings made with shuffled labels: structured-RDM neurons of no attribute
        table["beyond_permuted"] = table["permuted"] - table["top"]
    return table


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the t confidence interval (NaN half-width for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean()), float(half)


def clustered_mean_ci(values: pd.Series, confidence: float = 0.95) -> tuple[float, float]:
    """The t interval of the mean of per-prompt values (indexed by (emotion, seed)) with the
    emotion-clustered standard error (seeds of an emotion share its examples): df = emotions - 1."""
    from model_emotion.report.causal import cluster_variance

    values = values.dropna()
    emotions = values.index.get_level_values(0).to_numpy()
    x = values.to_numpy(float)
    if x.size < 2:
        return float("nan"), float("nan")
    v, g = cluster_variance(x - x.mean(), emotions)
    if not np.isfinite(v) or v <= 0:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, g - 1) * np.sqrt(v)
    return float(x.mean() - half), float(x.mean() + half)


ABLATION_ORDER = ("zero", "mean", "resample", "scale")


def ablation_kinds(masking: pd.DataFrame) -> list[str]:
    """The ablation kinds of a masked evaluation, zero first (results before 0.5 are zero ablation)."""
    if "ablation" not in masking:
        return ["zero"]
    found = set(masking["ablation"].fillna("zero"))
    return [kind for kind in ABLATION_ORDER if kind in found]


def _of_ablation(masking: pd.DataFrame, kind: str) -> pd.DataFrame:
    if "ablation" not in masking:
        return masking
    return masking[masking["ablation"].fillna("zero") == kind]


def _selection_of(rows: pd.DataFrame) -> str:
    """How the evaluated prompts relate to the ones that ranked the masks: held_out, circular, mixed."""
    if "selection" not in rows:
        return "unrecorded"
    kinds = sorted(set(rows["selection"].dropna()))
    return kinds[0] if len(kinds) == 1 else "mixed: " + "+".join(kinds)


def _baseline_columns(masking: pd.DataFrame, k: int, kind: str, pool: bool) -> pd.DataFrame:
    """Per attribute: the drop beyond ``kind`` (random or permuted) masks at k with the two-way
    (emotion x draw) interval, its one-sided p, the rank p among the draws and Holm across attributes."""
    from model_emotion.report.causal import causal_table

    rows = masking.copy()
    if kind == "permuted":
        rows = rows[rows["kind"] != "random"].replace({"kind": {"permuted": "random"}})
    table = causal_table(rows, k, pool=pool and kind == "random")
    prefix = {"random": "drop", "permuted": "permuted"}[kind]
    names = {
        "drop": f"drop_beyond_{kind}",
        "se": f"{prefix}_se",
        "df": f"{prefix}_df",
        "ci_low": f"{prefix}_ci_low",
        "ci_high": f"{prefix}_ci_high",
        "p": f"p_{kind}",
        "p_holm": f"p_{kind}_holm",
        "rank_p": f"rank_p_{kind}",
        "n_draws": f"n_{kind}_draws",
        "draw_skew": f"{kind}_draw_skew",
    }
    if kind == "random":
        names.update(min_detectable="min_detectable_drop", n_emotions="n_emotions", n_prompts="n_pairs")
    return table[["attribute", *names]].rename(columns=names).set_index("attribute")


def summary_table(res, k: int | None) -> tuple[pd.DataFrame, int | None]:
    """Per attribute: significant and selective neurons; at one k (``k``, pre-declared; default the
    middle of the run's k values) the top-k drop and the drop beyond random and beyond permuted-ranking
    masks with intervals over emotions, seeds and mask draws (``causal``), their one-sided p, Holm
    across the attributes, and the selection the prompts had. Returns the table and the k used."""
    rows: dict[str, dict] = {}
    if res.summary is not None:
        totals = res.summary[res.summary["layer"].astype(str) == "all"]
        for _, row in totals.iterrows():
            rows.setdefault(row["attribute"], {})["n_significant"] = int(row["n_significant"])
            rows[row["attribute"]]["n_selective"] = int(row["n_selective"])
    if res.masking is None:
        return pd.DataFrame([{"attribute": a, **v} for a, v in rows.items()]), None
    kinds = ablation_kinds(res.masking)
    masking = _of_ablation(res.masking, kinds[0])  # zero ablation (the paper's) leads when it was run
    effects = masking_effects(masking)
    ks = sorted(effects["k"].unique())
    k = k if k in ks else ks[len(ks) // 2]
    at_k = effects[effects["k"] == k].dropna(subset=["top", "random"])
    random = _baseline_columns(masking, k, "random", res.pool_random)
    permuted = _baseline_columns(masking, k, "permuted", False) if "permuted" in at_k else None
    others = {
        kind: _baseline_columns(_of_ablation(res.masking, kind), k, "random", res.pool_random) for kind in kinds[1:]
    }
    for attribute, group in at_k.groupby("attribute"):
        entry = rows.setdefault(attribute, {})
        entry["k"] = int(k)
        entry["ablation"] = kinds[0]
        top = (group["unmasked"] - group["top"]).set_axis(pd.MultiIndex.from_frame(group[["emotion", "seed"]]))
        entry["top_drop"] = float(top.mean())
        entry["top_ci_low"], entry["top_ci_high"] = clustered_mean_ci(top)
        entry["random_drop"] = float((group["unmasked"] - group["random"]).mean())
        entry.update(random.loc[attribute].to_dict() if attribute in random.index else {})
        if permuted is not None and attribute in permuted.index and group["permuted"].notna().any():
            entry.update(permuted.loc[attribute].to_dict())
        entry["ci_over"] = "emotions+draws" if res.pool_random is False else "emotions+pooled draws"
        entry["selection"] = _selection_of(masking[masking["attribute"] == attribute])
        for kind, table in others.items():  # the same test under each other ablation kind run
            if attribute in table.index:
                for column in ("drop_beyond_random", "drop_ci_low", "drop_ci_high", "p_random_holm"):
                    entry[f"{column}_{kind}"] = table.loc[attribute, column]
    table = pd.DataFrame([{"attribute": a, **v} for a, v in rows.items()])
    return table, k


MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|&])")


def md_escape(text: object) -> str:
    """Text as literal Markdown: backslash before every character that could make markup, HTML or a
    table cell boundary (``html_report`` reads the escapes back)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


# Accuracy drops: fractions in the CSV files (as computed), points of accuracy wherever a person reads
# them (summary.md, report.html, the figures), the column named with its unit.
DROP_COLUMNS = frozenset(
    {
        "top_drop",
        "top_ci_low",
        "top_ci_high",
        "random_drop",
        "drop_beyond_random",
        "drop_ci_low",
        "drop_ci_high",
        "drop_beyond_permuted",
        "permuted_ci_low",
        "permuted_ci_high",
        "min_detectable_drop",
    }
)
POINTS = " (pts)"


def to_markdown(table: pd.DataFrame) -> str:
    """A plain GitHub-style Markdown table (no optional dependency); every cell escaped (``md_escape``);
    drops (``DROP_COLUMNS``) in points of accuracy, their header saying so."""

    def fmt(value, points=False):
        if isinstance(value, float):
            if np.isnan(value):
                return ""
            if points:
                return f"{100 * value:.2f}"
            if value.is_integer():  # counts read back as floats
                return str(int(value))
            return f"{value:.3g}" if abs(value) < 1e-3 else f"{value:.4f}"
        return md_escape(value)

    points = [c in DROP_COLUMNS for c in table.columns]
    header = "| " + " | ".join(md_escape(c) + (POINTS if p else "") for c, p in zip(table.columns, points)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(fmt(v, p) for v, p in zip(row, points)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def comparison_tables(ours, paper, ours_total: int, paper_total: int) -> dict[str, pd.DataFrame]:
    """Side-by-side numbers: prompt accuracy per emotion; per attribute significant neurons (as a share
    of all neurons, since models differ in size) and the masking drop beyond random at matched k%."""
    out = {}
    if ours.accuracy is not None and paper.accuracy is not None:
        a = ours.accuracy.groupby("emotion")["accuracy"].mean().rename("ours")
        b = paper.accuracy.groupby("emotion")["accuracy"].mean().rename("paper")
        table = pd.concat([a, b], axis=1).dropna().reset_index()
        out["accuracy"] = table
    rows = {}
    for label, res, total in (("ours", ours, ours_total), ("paper", paper, paper_total)):
        if res.summary is not None:
            totals = res.summary[res.summary["layer"].astype(str) == "all"]
            for _, row in totals.iterrows():
                entry = rows.setdefault(row["attribute"], {})
                entry[f"{label}_significant_pct"] = 100 * row["n_significant"] / total
                entry[f"{label}_selective_pct"] = 100 * row["n_selective"] / total
    if ours.masking is not None and paper.masking is not None:
        ours_eff, paper_eff = masking_effects(ours.masking), masking_effects(paper.masking)
        paper_pct = {k: 100 * k / paper_total for k in paper_eff["k"].unique()}
        for k in sorted(ours_eff["k"].unique()):
            pct = 100 * k / ours_total
            near = min(paper_pct, key=lambda pk: abs(paper_pct[pk] - pct))
            for attribute, group in ours_eff[ours_eff["k"] == k].groupby("attribute"):
                entry = rows.setdefault(attribute, {})
                entry[f"ours_beyond_random_{pct:.0f}pct"] = 100 * group["beyond_random"].mean()
                ref = paper_eff[(paper_eff["k"] == near) & (paper_eff["attribute"] == attribute)]
                entry[f"paper_beyond_random_{paper_pct[near]:.1f}pct"] = 100 * ref["beyond_random"].mean()
    if rows:
        out["attributes"] = pd.DataFrame([{"attribute": a, **v} for a, v in rows.items()])
    return out
