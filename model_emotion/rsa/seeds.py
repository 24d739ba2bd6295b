"""Are the prompt seeds exchangeable? Per-seed normalisation, split-half reliability and seed influence.

The searchlight averages each neuron's |a_i - a_j| over seeds, so a seed whose activations spread
more across emotions carries more of every neuron RDM. Three diagnostics:

- ``normalize_seeds``: per-seed normalisation before the RDMs are averaged: ``none`` (the paper's and
  the default), ``zscore`` (each neuron of each seed standardised over the emotions) or ``scale`` (each
  seed divided by its mean pair distance over all neurons, so every seed carries the same mass).
- ``seed_reliability``: for the odd/even split of the seeds and ``splits`` random half splits, per
  attribute: the Spearman correlation of the neuron statistics between the halves, the Jaccard index
  of their significant sets, and the overlap of their top-500 and top-4000 neurons; each beside the
  same figure when one half's emotion labels are shuffled (the chance level of agreement).
- ``seed_influence``: per seed, its share of the distance mass, and per attribute the significant
  count without it (leave one seed out) and with it alone.

Every searchlight here uses the run's test and settings (``settings``: keyword arguments of
``rsa.searchlight``), so "significant" means what it means in the run.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from model_emotion.errors import ToolkitError
from model_emotion.rsa.searchlight import neuron_rdms, searchlight

logger = logging.getLogger(__name__)

NORMALIZATIONS = ("none", "zscore", "scale")
TOP_K = (500, 4000)
MIN_SEEDS = 4  # two halves of at least two seeds each


def normalize_seeds(activations: np.ndarray, how: str) -> np.ndarray:
    """activations [emotions, seeds, neurons] normalised per seed (see the module docstring)."""
    if how not in NORMALIZATIONS:
        raise ToolkitError(f"{{--seed_normalization}} {how!r} unknown; choose one of {', '.join(NORMALIZATIONS)}")
    acts = np.asarray(activations, dtype=np.float64)
    if how == "none":
        return acts
    if how == "zscore":
        sd = acts.std(axis=0, keepdims=True)  # [1, seeds, neurons]
        return np.where(sd > 0, (acts - acts.mean(axis=0, keepdims=True)) / np.where(sd > 0, sd, 1.0), 0.0)
    mass = distance_mass(acts)
    return acts / np.where(mass > 0, mass, 1.0)[None, :, None]


def distance_mass(activations: np.ndarray) -> np.ndarray:
    """Per seed, the mean |a_i - a_j| over all emotion pairs and neurons. [seeds]"""
    return np.array([neuron_rdms(activations[:, [s], :]).mean() for s in range(activations.shape[1])])


def half_splits(n_seeds: int, splits: int, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The odd/even split of the seeds (by position) and ``splits`` random half splits."""
    if n_seeds < MIN_SEEDS:
        raise ToolkitError(f"seed diagnostics need at least {MIN_SEEDS} seeds (two per half), got {n_seeds}")
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) or splits < 1:
        raise ToolkitError(f"{{--splits}} must be a positive integer, got {splits!r}")
    positions = np.arange(n_seeds)
    out = [("odd_even", positions[0::2], positions[1::2])]
    rng = np.random.default_rng(seed)
    for r in range(splits):
        order = rng.permutation(n_seeds)
        half = n_seeds // 2
        out.append((f"random{r + 1}", np.sort(order[:half]), np.sort(order[half:])))
    return out


def _agreement(a, b, sig_a, sig_b) -> dict:
    """Spearman of two neuron statistics, Jaccard of two significant sets, top-k overlaps."""
    ok = np.isfinite(a) & np.isfinite(b)
    rho = stats.spearmanr(a[ok], b[ok]).statistic if ok.sum() > 2 else np.nan
    union = (sig_a | sig_b).sum()
    out = {"spearman": float(rho), "jaccard": float((sig_a & sig_b).sum() / union) if union else np.nan}
    for k in TOP_K:
        k_eff = min(k, ok.sum())
        top_a = set(np.argsort(-np.where(ok, a, -np.inf), kind="stable")[:k_eff])
        top_b = set(np.argsort(-np.where(ok, b, -np.inf), kind="stable")[:k_eff])
        out[f"top{k}_overlap"] = len(top_a & top_b) / k_eff if k_eff else np.nan
    return out


def seed_reliability(
    activations: np.ndarray,
    attribute_rdms: np.ndarray,
    names: list[str],
    alpha: float,
    splits: int = 5,
    seed: int = 0,
    **settings,
) -> pd.DataFrame:
    """Per split and attribute: agreement between the two halves' searchlights, and the same with one
    half's emotion labels shuffled (``*_chance``). Rows ``split = mean`` average the splits."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for name, first, second in half_splits(activations.shape[1], splits, seed):
        run_a = searchlight(activations[:, first], attribute_rdms, names, alpha=alpha, **settings)
        run_b = searchlight(activations[:, second], attribute_rdms, names, alpha=alpha, **settings)
        shuffled = activations[rng.permutation(activations.shape[0])][:, second]
        run_s = searchlight(shuffled, attribute_rdms, names, alpha=alpha, **settings)
        sig = [r.significant(alpha) for r in (run_a, run_b, run_s)]
        for i, attribute in enumerate(names):
            real = _agreement(run_a.tau[:, i], run_b.tau[:, i], sig[0][:, i], sig[1][:, i])
            chance = _agreement(run_a.tau[:, i], run_s.tau[:, i], sig[0][:, i], sig[2][:, i])
            row = {
                "split": name,
                "attribute": attribute,
                "seeds_a": " ".join(map(str, first)),
                "seeds_b": " ".join(map(str, second)),
            }
            for key in real:
                row[key], row[f"{key}_chance"] = real[key], chance[key]
            rows.append(row)
        logger.info("seed reliability: split %s done", name)
    table = pd.DataFrame(rows)
    metrics = [c for c in table.columns if c not in ("split", "attribute", "seeds_a", "seeds_b")]
    mean = table.groupby("attribute", sort=False)[metrics].mean().reset_index()
    mean.insert(0, "split", "mean")
    return pd.concat([table, mean], ignore_index=True)


def seed_influence(
    activations: np.ndarray, seeds: list[int], attribute_rdms: np.ndarray, names: list[str], alpha: float, **settings
) -> pd.DataFrame:
    """Per seed and attribute: the seed's share of the distance mass, and the significant count of the
    run without the seed and with it alone, beside the count with all seeds."""
    if activations.shape[1] < 2:
        raise ToolkitError(f"seed influence needs at least 2 seeds, got {activations.shape[1]}")
    mass = distance_mass(activations)
    share = mass / mass.sum()
    everyone = searchlight(activations, attribute_rdms, names, alpha=alpha, **settings).significant(alpha).sum(axis=0)
    rows = []
    for s, label in enumerate(seeds):
        others = [i for i in range(activations.shape[1]) if i != s]
        without = (
            searchlight(activations[:, others], attribute_rdms, names, alpha=alpha, **settings)
            .significant(alpha)
            .sum(axis=0)
        )
        alone = (
            searchlight(activations[:, [s]], attribute_rdms, names, alpha=alpha, **settings)
            .significant(alpha)
            .sum(axis=0)
        )
        for i, attribute in enumerate(names):
            rows.append(
                {
                    "seed": label,
                    "attribute": attribute,
                    "distance_share": float(share[s]),
                    "significant_all": int(everyone[i]),
                    "significant_without": int(without[i]),
                    "significant_alone": int(alone[i]),
                }
            )
        logger.info("seed influence: seed %s (share %.3f) done", label, share[s])
    return pd.DataFrame(rows)
