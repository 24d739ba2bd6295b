"""Are the prompt seeds exchangeable? Per-seed normalisation, split-half reliability and seed influence.

The searchlight averages each neuron's |a_i - a_j| over seeds, so a seed whose activations spread
more across emotions carries more of every neuron RDM. Three diagnostics:

- ``normalize_seeds``: per-seed normalisation before the RDMs are averaged: ``none`` (the paper's and
  the default), ``zscore`` (each neuron of each seed standardised over the emotions) or ``scale`` (each
  seed divided by its mean pair distance over all neurons, so every seed carries the same mass).
- ``seed_reliability``: for the odd/even split of the seeds and ``splits`` random half splits (and,
  optionally, each seed against the others), per attribute: the Spearman correlation of the neuron
  statistics between the halves and the overlap of their top-500 and top-4000 neurons, each beside its
  null: the same figure with the attribute's emotions relabelled for both halves at once, R times.
  Two halves' neuron RDMs agree whatever the attribute (they share the model), so the chance level is
  not zero agreement, nor the agreement with one half shuffled (which asks whether the halves agree
  at all): it is the agreement that any attribute with the same RDM structure, unrelated to the
  emotions' order, would get. p = (1 + #{r: null_r >= observed}) / (R + 1), Holm across attributes.
- ``seed_influence``: per seed, its share of the distance mass, and per attribute the significant
  count without it (leave one seed out) and with it alone.

The influence searchlights use the run's test and settings (``settings``: keyword arguments of
``rsa.searchlight``), so "significant" means what it means in the run; the reliability uses the run's
statistic (``method``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from model_emotion.errors import ToolkitError
from model_emotion.rsa.fdr import holm
from model_emotion.rsa.searchlight import neuron_rdms, searchlight

logger = logging.getLogger(__name__)

NORMALIZATIONS = ("none", "zscore", "scale")
TOP_K = (500, 4000)
MIN_SEEDS = 4  # two halves of at least two seeds each
RELIABILITY_LEVEL = 0.05  # the family-wise level of the reliability verdicts (Holm across attributes)


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


def reliability_null_check(relabellings, n_attributes: int, level: float = RELIABILITY_LEVEL) -> int:
    """The relabellings as an integer that can resolve Holm at ``level`` over the attributes: the smallest
    permutation p, 1/(R + 1), must reach level / attributes. One plain error line otherwise."""
    if isinstance(relabellings, bool) or not isinstance(relabellings, (int, np.integer)) or relabellings < 1:
        raise ToolkitError(f"{{--relabellings}} must be a positive integer, got {relabellings!r}")
    need = int(np.ceil(n_attributes / level)) - 1
    if relabellings < need:
        raise ToolkitError(
            f"{{--relabellings}} {relabellings} cannot resolve the reliability test: its smallest p, "
            f"1/(R+1) = {1 / (relabellings + 1):.3g}, is above {level:g} / {n_attributes} attributes "
            f"(Holm's first step); pass at least {need}"
        )
    return int(relabellings)


def leave_one_out_splits(n_seeds: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per seed: that seed alone against all the others."""
    positions = np.arange(n_seeds)
    return [(f"loo{s + 1}", positions[[s]], np.delete(positions, s)) for s in range(n_seeds)]


def _column_ranks(tau: np.ndarray) -> np.ndarray:
    """Each column's ranks over the neurons, centred and scaled to unit length (a dot product of two
    columns is Spearman's rho)."""
    r = stats.rankdata(tau, axis=0)
    r -= r.mean(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return r / np.linalg.norm(r, axis=0, keepdims=True)


def _top_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per column, the share of the k highest of a that are among the k highest of b. [columns]"""
    top_a = np.argpartition(-a, k - 1, axis=0)[:k]
    top_b = np.argpartition(-b, k - 1, axis=0)[:k]
    hit = np.zeros(a.shape, bool)
    np.put_along_axis(hit, top_b, True, axis=0)
    return np.take_along_axis(hit, top_a, axis=0).mean(axis=0)


def _agreement(x_a: np.ndarray, x_b: np.ndarray, targets: np.ndarray, stat_of) -> dict:
    """Spearman and top-k overlaps between two halves' statistics against each target (column). x_*:
    neuron RDMs [neurons, pairs]; targets [T, pairs]; the neurons whose statistic is undefined in
    either half are left out."""
    tau_a, tau_b = stat_of(x_a, targets), stat_of(x_b, targets)  # [neurons, T]
    ok = np.isfinite(tau_a).all(axis=1) & np.isfinite(tau_b).all(axis=1)
    tau_a, tau_b = tau_a[ok], tau_b[ok]
    out = {"spearman": np.einsum("nt,nt->t", _column_ranks(tau_a), _column_ranks(tau_b))}
    for k in TOP_K:
        out[f"top{k}_overlap"] = (
            _top_overlap(tau_a, tau_b, min(k, ok.sum())) if ok.any() else np.full(len(targets), np.nan)
        )
    return out


def split_agreement(
    acts, split, attribute_rdms, perms, stat_of, block: int | None = None, distance: str = "mean_abs"
) -> dict:
    """The two halves' agreement for the observed attributes and under every relabelling of the
    emotions (the same relabelling for both halves). Returns metric -> [relabellings + 1, A] with the
    observed row first."""
    from model_emotion.rsa.permutation import permuted_targets

    _, first, second = split
    x_a, x_b = neuron_rdms(acts[:, first], distance), neuron_rdms(acts[:, second], distance)
    A = attribute_rdms.shape[0]
    targets = permuted_targets(attribute_rdms, perms)  # [(R + 1) * A, pairs]
    # relabellings per block: 24 kept the paper's reliability (36,864 neurons, 14 attributes) at 2.4 GB peak
    block = block or 24
    parts: dict[str, list] = {}
    for start in range(0, len(targets), block * A):
        for key, value in _agreement(x_a, x_b, targets[start : start + block * A], stat_of).items():
            parts.setdefault(key, []).append(value)
    return {key: np.concatenate(v).reshape(-1, A) for key, v in parts.items()}


def _split_rows(name, first, second, names, metrics: dict) -> list[dict]:
    rows = []
    for i, attribute in enumerate(names):
        row = {
            "split": name,
            "attribute": attribute,
            "seeds_a": " ".join(map(str, first)),
            "seeds_b": " ".join(map(str, second)),
        }
        for key, values in metrics.items():
            null = values[1:, i]
            row[key] = float(values[0, i])
            row[f"{key}_chance"] = float(np.nanmean(null))
            row[f"{key}_p"] = float((1 + np.sum(null >= values[0, i])) / (1 + null.size))
        row["spearman_null_p95"] = float(np.nanpercentile(metrics["spearman"][1:, i], 95))
        rows.append(row)
    return rows


def seed_reliability(
    activations: np.ndarray,
    attribute_rdms: np.ndarray,
    names: list[str],
    splits: int = 5,
    seed: int = 0,
    *,
    relabellings: int = 500,
    leave_one_out: bool = False,
    method: str = "kendall_tau_b",
    device=None,
    distance: str = "mean_abs",
) -> pd.DataFrame:
    """Per split and attribute: the agreement between the two halves' neuron statistics (Spearman over
    neurons, top-k overlaps) beside its null: the same agreement with the attribute's emotions
    relabelled for both halves (``relabellings`` draws, shared by every split and attribute). Columns
    ``{metric}``, ``{metric}_chance`` (the null mean), ``{metric}_p`` ((1 + #null >= observed) / (R + 1)).
    Rows ``split = mean`` average the splits (the null of the mean is the mean of the nulls under the
    same relabellings) and carry ``spearman_p_holm``, Holm across the attributes."""
    from model_emotion.rsa.permutation import draw_permutations

    R = reliability_null_check(relabellings, len(names))
    perms = draw_permutations(activations.shape[0], R, seed + 1)
    stat_of = _statistic_of(method, device)
    chosen = half_splits(activations.shape[1], splits, seed)
    if leave_one_out:
        chosen += leave_one_out_splits(activations.shape[1])
    rows, total = [], None
    for split in chosen:
        metrics = split_agreement(activations, split, attribute_rdms, perms, stat_of, distance=distance)
        rows += _split_rows(*split, names, metrics)
        if not split[0].startswith("loo"):
            total = metrics if total is None else {k: total[k] + metrics[k] for k in metrics}
        logger.info("seed reliability: split %s done", split[0])
    halves = sum(not s[0].startswith("loo") for s in chosen)
    mean_rows = _split_rows("mean", [], [], names, {k: v / halves for k, v in total.items()})
    holm_p = holm(np.array([r["spearman_p"] for r in mean_rows]))
    for row, p in zip(mean_rows, holm_p):
        row["spearman_p_holm"] = float(p)
    return pd.DataFrame(rows + mean_rows)


def _statistic_of(method: str, device):
    """stat_of(x [neurons, pairs], targets [T, pairs]) -> the searchlight's statistic [neurons, T], with the
    permutation test's kernel (every neuron's order walked once for all targets)."""
    from model_emotion.rsa.searchlight import _statistic

    def stat_of(x: np.ndarray, targets: np.ndarray) -> np.ndarray:
        stat = _statistic(x, method, "greater", len(targets), device)
        values = stat(x, np.arange(len(x)), stat.prepare(targets, len(targets)))
        if method == "spearman":  # a constant neuron RDM has no rank correlation
            values[np.ptp(x, axis=1) == 0] = np.nan
        return values

    return stat_of


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
        alone = (  # one seed has no cross-validated distance
            np.full(len(names), np.nan)
            if settings.get("distance") == "crossval"
            else searchlight(activations[:, [s]], attribute_rdms, names, alpha=alpha, **settings)
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
                    "significant_alone": int(alone[i]) if np.isfinite(alone[i]) else None,
                }
            )
        logger.info("seed influence: seed %s (share %.3f) done", label, share[s])
    return pd.DataFrame(rows)
