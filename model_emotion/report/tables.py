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


BOOTSTRAP_DRAWS = 2000
DETECT_ALPHA, DETECT_POWER = 0.05, 0.8


def min_detectable_drop(values: np.ndarray) -> float:
    """The smallest mean drop beyond random that a one-sided paired test at 5% detects with 80% power,
    given the spread of the per-prompt drops and their number: (z_0.95 + z_0.8) * sd / sqrt(n)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan")
    z = stats.norm.isf(DETECT_ALPHA) + stats.norm.ppf(DETECT_POWER)
    return float(z * values.std(ddof=1) / np.sqrt(values.size))


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over prompts (NaN for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan"), float("nan")
    means = values[np.random.default_rng(seed).integers(0, values.size, (BOOTSTRAP_DRAWS, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def hierarchical_bootstrap(
    differences: list[np.ndarray], confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Two-stage percentile bootstrap of a mean paired difference over prompts and examples.

    ``differences``: per prompt, the per-example paired differences (e.g. random-mask correctness minus
    top-k-mask correctness on the same examples). Each draw resamples the prompts with replacement and,
    for every drawn prompt, its examples with replacement, then averages the prompt means. Returns the
    interval and the bootstrap standard error; NaNs without data. With one prompt it is the bootstrap
    over that prompt's examples alone."""
    groups = [np.asarray(d, dtype=float) for d in differences if len(d)]
    if not groups:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # stage 2 first: BOOTSTRAP_DRAWS example resamples of each prompt's mean [prompts, draws]
    pool = np.stack([g[rng.integers(0, g.size, (BOOTSTRAP_DRAWS, g.size))].mean(axis=1) for g in groups])
    # stage 1: resample prompts; each drawn occurrence takes an independent example resample from the pool
    picks = rng.integers(0, len(groups), (BOOTSTRAP_DRAWS, len(groups)))
    columns = rng.integers(0, BOOTSTRAP_DRAWS, (BOOTSTRAP_DRAWS, len(groups)))
    means = pool[picks, columns].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)), float(means.std(ddof=1))


def paired_differences(rows: pd.DataFrame, baseline: str) -> list[np.ndarray] | None:
    """Per prompt, the per-example differences baseline minus top-k correctness for one attribute and k
    (``baseline``: "random" or "permuted", averaged over its draws; "unmasked"). None when any needed
    result lacks per-example correctness (files written before it was stored)."""
    if "correct" not in rows:
        return None
    out = []
    for _, prompt in rows.groupby(["emotion", "seed"]):
        top = prompt[prompt["kind"] == "top"]["correct"].tolist()
        if baseline == "unmasked":
            base = prompt["correct_unmasked"].iloc[:1].tolist()
        else:
            base = prompt[prompt["kind"] == baseline]["correct"].tolist()
        if not top or not base:
            continue
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in top + base):
            return None
        if len({len(v) for v in top + base}) != 1:
            return None
        out.append(np.mean(np.stack(base).astype(float), axis=0) - np.mean(np.stack(top).astype(float), axis=0))
    return out


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


def summary_table(res, k: int | None) -> tuple[pd.DataFrame, int | None]:
    """Per attribute: significant and selective neurons, top-k and random drops, their difference and a
    paired t-test over (emotion, seed). Returns the table and the k used."""
    rows: dict[str, dict] = {}
    if res.summary is not None:
        totals = res.summary[res.summary["layer"].astype(str) == "all"]
        for _, row in totals.iterrows():
            rows.setdefault(row["attribute"], {})["n_significant"] = int(row["n_significant"])
            rows[row["attribute"]]["n_selective"] = int(row["n_selective"])
    if res.masking is not None:
        effects = masking_effects(res.masking)
        ks = sorted(effects["k"].unique())
        k = k if k in ks else ks[len(ks) // 2]
        at_k = effects[effects["k"] == k].dropna(subset=["top", "random"])
        rows_at_k = res.masking[res.masking["k"] == k]
        for attribute, group in at_k.groupby("attribute"):
            long = rows_at_k[rows_at_k["attribute"] == attribute]
            entry = rows.setdefault(attribute, {})
            entry["k"] = int(k)
            entry["top_drop"] = float((group["unmasked"] - group["top"]).mean())
            entry["random_drop"] = float((group["unmasked"] - group["random"]).mean())
            entry["drop_beyond_random"] = float(group["beyond_random"].mean())
            entry["n_pairs"] = int(len(group))
            if len(group) > 1 and group["beyond_random"].std() > 0:
                test = stats.ttest_rel(group["random"], group["top"], alternative="greater")
                entry["t"] = float(test.statistic)
                entry["p_paired"] = float(test.pvalue)
            else:
                entry["t"], entry["p_paired"] = float("nan"), float("nan")
            random_diffs = paired_differences(long, "random")
            if random_diffs:  # intervals over prompts and examples
                entry["ci_over"] = "prompts+examples"
                entry["top_ci_low"], entry["top_ci_high"], _ = hierarchical_bootstrap(
                    paired_differences(long, "unmasked") or []
                )
                entry["drop_ci_low"], entry["drop_ci_high"], se = hierarchical_bootstrap(random_diffs)
                z = stats.norm.isf(DETECT_ALPHA) + stats.norm.ppf(DETECT_POWER)
                entry["min_detectable_drop"] = float(z * se)
            else:  # results without per-example correctness: over prompts only
                entry["ci_over"] = "prompts"
                entry["top_ci_low"], entry["top_ci_high"] = bootstrap_ci((group["unmasked"] - group["top"]).to_numpy())
                entry["drop_ci_low"], entry["drop_ci_high"] = bootstrap_ci(group["beyond_random"].to_numpy())
                entry["min_detectable_drop"] = min_detectable_drop(group["beyond_random"].to_numpy())
            if "beyond_permuted" in group and group["beyond_permuted"].notna().any():
                beyond = group["beyond_permuted"].dropna()
                entry["drop_beyond_permuted"] = float(beyond.mean())
                permuted_diffs = paired_differences(long, "permuted") if random_diffs else None
                if permuted_diffs:
                    entry["permuted_ci_low"], entry["permuted_ci_high"], _ = hierarchical_bootstrap(permuted_diffs)
                else:
                    entry["permuted_ci_low"], entry["permuted_ci_high"] = bootstrap_ci(beyond.to_numpy())
                entry["p_permuted"] = (
                    float(stats.ttest_1samp(beyond, 0.0, alternative="greater").pvalue)
                    if len(beyond) > 1 and beyond.std() > 0
                    else float("nan")
                )
    else:
        k = None
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
