"""The causal step's inference: is masking an attribute's top neurons costlier than masking random ones?

The data are accuracies y[e, s, m] of prompt (emotion e, seed s) under mask m: the attribute's top-k
mask T and D random draws R_1..R_D (layer-matched or global, ``masking.masks``). The estimand is the
expected drop beyond random over the population the run samples: emotions, seeds within an emotion,
and random masks,

    delta = E_{e, s, d} [ y(e, s, R_d) - y(e, s, T) ].

Its estimate is the mean of x[e, s, d] = y(e, s, R_d) - y(e, s, T) over the grid. Three things make
its uncertainty larger than a prompt-level standard error admits (``two_way_se``):

- the random draws are shared by every prompt, so a draw that happens to hit important neurons
  moves every x[., ., d] together: the draws are a cluster of their own;
- the seeds of one emotion share its positive examples and its task, so their drops are correlated:
  the emotions are clusters too (seeds are nested in them);
- example noise is already inside each y (it is an accuracy over examples): it is counted once,
  through the clusters, not resampled again.

The standard error is the two-way cluster-robust one of Cameron, Gelbach & Miller (2011, J. Bus.
Econ. Stat. 29:238): V = V_emotion + V_draw - V_emotion x draw, each term a cluster sum of squared
residual totals with the small-sample factor G / (G - 1); t quantiles with min(E, D) - 1 degrees of
freedom. Its coverage, error rate and power are measured on simulated runs in
``tests/test_causal.py`` and ``benchmarks/causal_coverage.py`` (with per-emotion effects, seeds, draw
effects, emotion x draw interactions and example noise).

Beside it, ``rank_p`` is the exact rank of the top mask among the random draws (prompts held fixed):
(1 + #{d: mean y(., ., R_d) <= mean y(., ., T)}) / (D + 1). It is exact for "the top mask is one more
draw of the random-mask distribution on these prompts", and its resolution is 1 / (D + 1).

The t interval assumes that the mean over the draws is near normal. Random masks' accuracies are
skewed to the left (a few draws hit critical neurons: the paper's 14 draws at k = 3000 have skewness
-1.4), and with few draws the t-based p is then too small: measured one-sided error 0.076 with 14 and
0.072 with 20 skewed draws, 0.052 with 40 (``benchmarks/causal_coverage.py``). Hence 40 draws by
default, ``draw_skew`` in the table, and a warning in the report when the draws are few and skewed.

``holm`` adjusts the attributes' p values (Holm 1979) so that each verdict holds with family-wise
error alpha across the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from model_emotion.rsa.fdr import holm

DETECT_ALPHA, DETECT_POWER = 0.05, 0.8


@dataclass(frozen=True)
class DropEstimate:
    """The drop beyond random of one attribute at one k (fractions of accuracy)."""

    drop: float  # mean of x over the grid
    se: float  # two-way cluster-robust standard error (NaN when not estimable)
    df: int  # degrees of freedom of its t quantiles
    ci_low: float
    ci_high: float
    p: float  # one-sided p of drop > 0 (t with df)
    rank_p: float  # exact rank p of the top mask among the random draws (prompts fixed)
    n_emotions: int
    n_prompts: int
    n_draws: int
    min_detectable: float  # (t_{0.95} + t_{0.8}) * se: the drop a one-sided 5% test detects with 80% power
    draw_skew: float  # sample skewness of the random draws' mean accuracies (NaN below 3 draws)


def cluster_variance(residual: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """sum_g (sum_{i in g} r_i)^2 / n^2 * G / (G - 1), and G."""
    codes, index = np.unique(groups, return_inverse=True)
    g = codes.size
    if g < 2:
        return float("nan"), g
    totals = np.bincount(index, weights=residual, minlength=g)
    return float((totals**2).sum() / residual.size**2 * g / (g - 1)), g


def two_way_se(x: np.ndarray, emotion: np.ndarray, draw: np.ndarray) -> tuple[float, int]:
    """The two-way (emotion, draw) cluster-robust standard error of mean(x), and its degrees of freedom.

    ``x``, ``emotion`` and ``draw`` are aligned 1-D arrays (one entry per prompt and draw). With one
    draw (or one emotion) the between-draw (between-emotion) variance cannot be estimated: NaN.
    """
    x = np.asarray(x, dtype=float)
    r = x - x.mean()
    v_e, n_e = cluster_variance(r, np.asarray(emotion))
    v_d, n_d = cluster_variance(r, np.asarray(draw))
    cells = np.char.add(np.char.add(np.asarray(emotion).astype(str), "\x00"), np.asarray(draw).astype(str))
    v_ed, _ = cluster_variance(r, cells)
    if not (np.isfinite(v_e) and np.isfinite(v_d)):
        return float("nan"), 0
    v = v_e + v_d - (v_ed if np.isfinite(v_ed) else 0.0)
    if v <= 0:  # the subtraction can go negative in small samples: keep the larger one-way variance
        v = max(v_e, v_d)
    return float(np.sqrt(v)), int(min(n_e, n_d) - 1)


def rank_p(top_mean: float, draw_means: np.ndarray) -> float:
    """(1 + #{d: random draw d's mean accuracy <= the top mask's}) / (D + 1); NaN without draws."""
    draw_means = np.asarray(draw_means, dtype=float)
    draw_means = draw_means[np.isfinite(draw_means)]
    if not np.isfinite(top_mean) or draw_means.size == 0:
        return float("nan")
    return float((1 + (draw_means <= top_mean + 1e-12).sum()) / (draw_means.size + 1))


def estimate_drop(top: pd.Series, random: pd.DataFrame, confidence: float = 0.95) -> DropEstimate:
    """The drop beyond random from ``top`` (accuracy per prompt, indexed by (emotion, seed)) and
    ``random`` (one column per random draw, same index): only prompts with the top result and at
    least one draw count."""
    random = random.reindex(top.index)
    keep = top.notna() & random.notna().any(axis=1)
    top, random = top[keep], random[keep]
    if top.empty:
        nan = float("nan")
        return DropEstimate(nan, nan, 0, nan, nan, nan, nan, 0, 0, random.shape[1], nan, nan)
    x = random.sub(top, axis=0)  # [prompts, draws]
    long = x.stack()  # drops NaN cells
    emotion = long.index.get_level_values(0).to_numpy()
    draw = long.index.get_level_values(-1).to_numpy()
    values = long.to_numpy(float)
    drop = float(values.mean())
    se, df = two_way_se(values, emotion, draw)
    if np.isfinite(se) and se > 0 and df >= 1:
        half = stats.t.ppf(0.5 + confidence / 2, df) * se
        low, high = drop - half, drop + half
        p = float(stats.t.sf(drop / se, df))
        mdd = float((stats.t.isf(DETECT_ALPHA, df) + stats.t.ppf(DETECT_POWER, df)) * se)
    else:
        low = high = p = mdd = float("nan")
    draws = random.columns[random.notna().any(axis=0)]
    draw_means = random[draws].mean(axis=0).to_numpy()
    return DropEstimate(
        drop=drop,
        se=se,
        df=df,
        ci_low=low,
        ci_high=high,
        p=p,
        rank_p=rank_p(float(top.mean()), draw_means),
        n_emotions=int(top.index.get_level_values(0).nunique()),
        n_prompts=int(len(top)),
        n_draws=int(len(draws)),
        min_detectable=mdd,
        draw_skew=float(stats.skew(draw_means)) if draw_means.size >= 3 else float("nan"),
    )


def draw_table(masking: pd.DataFrame, attribute: str, k: int, pool: bool = False) -> tuple[pd.Series, pd.DataFrame]:
    """The top mask's accuracy per prompt and the random draws' [prompts, draws] for one attribute and k.

    ``pool``: take the random draws of every attribute at this k as draws of one distribution (valid
    only where random masks do not depend on the attribute: global draws, as the paper's are); each
    pooled draw is named by its attribute and draw number.
    """
    at_k = masking[masking["k"] == k]
    top = at_k[(at_k["kind"] == "top") & (at_k["attribute"] == attribute)]
    top = top.groupby(["emotion", "seed"])["accuracy"].mean()
    rand = at_k[at_k["kind"] == "random"]
    if not pool:
        rand = rand[rand["attribute"] == attribute]
    rand = rand.assign(draw_id=rand["attribute"].astype(str) + "#" + rand["draw"].astype(int).astype(str))
    table = rand.pivot_table(index=["emotion", "seed"], columns="draw_id", values="accuracy", aggfunc="mean")
    return top, table


def causal_table(masking: pd.DataFrame, k: int, pool: bool = False, confidence: float = 0.95) -> pd.DataFrame:
    """Per attribute at one k: the drop beyond random with its two-way interval, p, rank p and the
    Holm-adjusted p across the attributes."""
    rows = []
    for attribute in sorted(masking.loc[masking["kind"] == "top", "attribute"].unique()):
        top, random = draw_table(masking, attribute, k, pool)
        est = estimate_drop(top, random, confidence)
        rows.append({"attribute": attribute, "k": int(k), **est.__dict__})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p"].to_numpy())
        table["rank_p_holm"] = holm(table["rank_p"].to_numpy())
    return table
