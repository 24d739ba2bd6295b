"""Representational similarity analysis per neuron (the paper's searchlight).

For every neuron: per seed the RDM |a_i - a_j| over emotion pairs, averaged over seeds; then its
rank correlation with each attribute RDM (Kendall tau-b by default, as R's
``cor.test(method="kendall")``), one-sided p-values as R computes them (exact null distribution
below 50 pairs without ties, i.e. up to 10 emotions; otherwise the normal approximation with R's
tie correction), FDR over all tests, and a rank per attribute (1 = best, ties averaged, neurons with a
constant RDM unranked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numba as nb
import numpy as np
import pandas as pd
from scipy import stats

from model_emotion.data.ratings import pair_index
from model_emotion.errors import ToolkitError
from model_emotion.rsa.fdr import fdr
from model_emotion.rsa.kendall import (
    TargetBitsets,
    TorchTargets,
    kendall_s,
    kendall_s_targets,
    kendall_s_targets_torch,
    kendall_s_torch,
    order_bitsets,
    tie_sums,
)
from model_emotion.rsa.permutation import CORRECTIONS, STUDENTIZE, TAILS, TESTS, PermutationResult, permutation_test

logger = logging.getLogger(__name__)

METHODS = ("kendall_tau_b", "kendall_tau_a", "spearman")
RANK_BY = ("statistic", "studentized")  # rank on tau (or rho), or on it standardized by its permutation null
ALTERNATIVES = ("greater", "two-sided", "less")


@dataclass
class RSAResult:
    names: list[str]  # attribute columns
    tau: np.ndarray  # [neurons, attributes]; NaN where the neuron's RDM is constant
    p: np.ndarray  # the parametric p (R's cor.test), whichever test decides significance
    q: np.ndarray  # the parametric p's FDR q
    rank: np.ndarray  # 1 = best; NaN = unranked
    test: str = "parametric"
    perm: PermutationResult | None = None  # the permutation test's p-values and nulls (test="permutation")

    def table(self, which: str) -> pd.DataFrame:
        return pd.DataFrame(getattr(self, which), columns=self.names)

    @property
    def adjusted(self) -> np.ndarray:
        """The p-value that decides significance: the FDR q (parametric), the max-T adjusted p within each
        attribute or over all of them, or the FDR q of the permutation p (permutation, by correction)."""
        if self.perm is None:
            return self.q
        if self.perm.correction == "maxt":
            return self.perm.fwer_p
        if self.perm.correction == "maxt_global":
            return self.perm.fwer_global_p
        return self.perm_q

    perm_q: np.ndarray | None = None  # FDR q of the permutation p (correction "fdr")

    def significant(self, alpha: float) -> np.ndarray:
        """[neurons, attributes] bool: q < alpha (FDR), or adjusted p <= alpha (max-T: exact level alpha)."""
        adjusted = np.nan_to_num(self.adjusted, nan=np.inf)
        if self.perm is not None and self.perm.correction != "fdr":
            return adjusted <= alpha
        return adjusted < alpha


class _KendallStatistic:
    """Kendall tau of chunks of neuron RDMs against many targets (``permutation_test``'s ``stat_fn``)."""

    tolerance = 0.0  # tau is S / a per-test constant, so equal S give equal floats

    def __init__(self, n_neurons: int, n: int, variant: str, alternative: str, n_attributes: int, device=None):
        self.n, self.variant, self.alternative, self.A, self.device = n, variant, alternative, n_attributes, device
        self.xt = np.zeros((n_neurons, 3))
        self.n0 = n * (n - 1) / 2.0

    def prepare(self, targets: np.ndarray, n_attributes: int):
        """The kernel's form of ``targets``: rows b * n_attributes + a (b = 0 the observed order)."""
        # [T, 3]: a permutation keeps each attribute's ties, so the observed block's tie sums repeat
        self.yt = np.tile(tie_sums(targets[:n_attributes]), (len(targets) // n_attributes, 1))
        if self.device is not None:
            return TorchTargets(targets, self.device)
        return TargetBitsets(targets, tied=self.yt[:, 0] / 2.0)

    def _tau(self, S: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> np.ndarray:
        if self.variant == "a":
            return S / self.n0
        with np.errstate(divide="ignore", invalid="ignore"):
            return S / np.sqrt((self.n0 - xt[:, 0:1] / 2.0) * (self.n0 - yt[None, :, 0] / 2.0))

    def __call__(self, x: np.ndarray, rows: np.ndarray, prepared) -> np.ndarray:
        if self.device is None:
            S, ties = kendall_s_targets(x, prepared)
        else:
            S, ties = kendall_s_targets_torch(x, prepared)
        self.xt[rows] = ties
        return self._tau(S.astype(np.float64), ties, self.yt)  # [chunk, targets]

    def null_hits(self, rows: np.ndarray, stat: np.ndarray, alpha: float):
        """The tests whose parametric p is below alpha among statistics [chunk, perms, A] of these
        neurons: (perm index, attribute, p). p is computed only where z can reach alpha."""
        c, b, A = stat.shape
        xt, yt = self.xt[rows], self.yt[:A]
        if self.n < EXACT_BELOW:  # R's exact p for untied rows: compute every p (small problems only)
            den = self._tau(np.ones((c, A)), xt, yt)
            with np.errstate(invalid="ignore"):
                S = np.rint(stat / den[:, None, :]).reshape(c, b * A)
            _, p = kendall_from_s(np.nan_to_num(S), xt, np.tile(yt, (b, 1)), self.n, self.variant, self.alternative)
            hit = np.nonzero(p.reshape(c, b, A) < alpha)
            return hit[1], hit[2], p.reshape(c, b, A)[hit]
        with np.errstate(invalid="ignore", divide="ignore"):
            den = self._tau(np.ones((c, A)), xt, yt)  # tau per unit of S
            sd = np.sqrt(_kendall_var(xt, yt, self.n))
            z = np.rint(stat / den[:, None, :]) / sd[:, None, :]  # [c, b, A]
        return _screen(z, alpha, self.alternative, stats.norm, lambda v: _alternative_p(v, self.alternative))


def _screen(values: np.ndarray, alpha: float, alternative: str, dist, p_of):
    """Entries [chunk, perms, A] of a statistic with null distribution ``dist`` whose p (``p_of``, monotone in
    it) is below alpha: screened by the critical value (slightly lowered, so rounding never drops a hit),
    p computed for the candidates only. Returns (perm index, attribute, p)."""
    crit = dist.isf(alpha / (2 if alternative == "two-sided" else 1)) * (1 - 1e-9)
    with np.errstate(invalid="ignore"):
        candidate = {"greater": values > crit, "less": values < -crit}.get(alternative, np.abs(values) > crit)
    hit = np.nonzero(candidate)
    p = p_of(values[hit])
    keep = p < alpha
    return hit[1][keep], hit[2][keep], p[keep]


class _SpearmanStatistic:
    tolerance = 1e-9  # rho comes from matrix products, whose rounding differs between columns

    def __init__(self, n: int, alternative: str):
        self.n, self.alternative = n, alternative

    def prepare(self, targets: np.ndarray, n_attributes: int):
        return _unit_ranks(targets)

    def __call__(self, x: np.ndarray, rows: np.ndarray, prepared) -> np.ndarray:
        return np.clip(_unit_ranks(x) @ prepared.T, -1.0, 1.0)

    def null_hits(self, rows: np.ndarray, stat: np.ndarray, alpha: float):
        """As ``_KendallStatistic.null_hits``: screened on t, whose p is monotone in it."""
        return _screen(
            _spearman_t(stat, self.n),
            alpha,
            self.alternative,
            stats.t(self.n - 2),
            lambda t: _t_p(t, self.n, self.alternative),
        )


@nb.njit(parallel=True, cache=True)
def _mean_abs_differences(acts: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    N, _, S = acts.shape
    out = np.empty((N, rows.size), np.float64)
    for n in nb.prange(N):
        for p in range(rows.size):
            total = 0.0
            for s in range(S):
                total += abs(acts[n, rows[p], s] - acts[n, cols[p], s])
            out[n, p] = total / S
    return out


@nb.njit(parallel=True, cache=True)
def _crossval_products(acts: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    N, _, S = acts.shape
    out = np.empty((N, rows.size), np.float64)
    for n in nb.prange(N):
        for p in range(rows.size):
            total, squares = 0.0, 0.0
            for s in range(S):
                d = acts[n, rows[p], s] - acts[n, cols[p], s]
                total += d
                squares += d * d
            out[n, p] = (total * total - squares) / (S * (S - 1))
    return out


DISTANCES = ("mean_abs", "crossval")


def neuron_rdms(activations: np.ndarray, distance: str = "mean_abs") -> np.ndarray:
    """Every neuron's RDM. [emotions, seeds, neurons] -> [neurons, pairs] float64

    ``mean_abs`` (the paper's): the mean over seeds of |a_i - a_j|. ``crossval``: the mean over every
    pair of distinct seeds s != t of (a_is - a_js)(a_it - a_jt), a cross-validated squared distance
    (Walther et al. 2016): seed noise independent between seeds adds nothing to its expectation, which
    is (mu_i - mu_j)^2, so an emotion whose prompt is unstable across seeds is not made far from every
    other. It can be negative, and needs at least 2 seeds.
    """
    rows, cols = pair_index(activations.shape[0])
    acts = np.ascontiguousarray(activations.transpose(2, 0, 1), dtype=np.float64)  # [neurons, emotions, seeds]
    if distance == "crossval":
        if acts.shape[2] < 2:
            raise ToolkitError(f"{{--distance}} crossval needs at least 2 seeds, got {acts.shape[2]}")
        return _crossval_products(acts, rows.astype(np.int64), cols.astype(np.int64))
    if distance != "mean_abs":
        raise ToolkitError(f"{{--distance}} {distance!r} unknown; choose one of {', '.join(DISTANCES)}")
    return _mean_abs_differences(acts, rows.astype(np.int64), cols.astype(np.int64))


def _alternative_p(z: np.ndarray, alternative: str) -> np.ndarray:
    if alternative == "greater":
        return stats.norm.sf(z)
    if alternative == "less":
        return stats.norm.cdf(z)
    return 2 * stats.norm.sf(np.abs(z))


# R's cor.test(method = "kendall") uses the exact null distribution below this many observations
# when neither variable has ties (its default exact = NULL), and the normal approximation otherwise.
EXACT_BELOW = 50


@lru_cache(maxsize=64)
def _concordance_cdf(n: int) -> np.ndarray:
    """P(T <= t) for t = 0..n(n-1)/2, T = concordant pairs of n untied items under independence.

    T has the distribution of the inversions of a random permutation (Mahonian numbers): adding
    item k adds 0..k-1 inversions with equal probability, so the pmf is a product of uniform
    convolutions (R's ``ckendall`` counts the same numbers). [n(n-1)/2 + 1]
    """
    pmf = np.ones(1)
    for k in range(2, n + 1):
        pmf = np.convolve(pmf, np.full(k, 1.0 / k))
    return np.minimum(np.cumsum(pmf), 1.0)


def kendall_exact_p(concordant: np.ndarray, n: int, alternative: str = "greater") -> np.ndarray:
    """R's exact p-values of Kendall's test from the concordant-pair counts of n untied items."""
    cdf = _concordance_cdf(n)
    q = np.asarray(concordant, dtype=np.int64)
    below = np.where(q > 0, cdf[np.clip(q - 1, 0, None)], 0.0)  # P(T <= q - 1)
    if alternative == "greater":
        return 1.0 - below
    if alternative == "less":
        return cdf[q]
    one_side = np.where(q > n * (n - 1) / 4.0, 1.0 - below, cdf[q])
    return np.minimum(2.0 * one_side, 1.0)


def kendall(
    x: np.ndarray, y: np.ndarray, variant: str = "b", alternative: str = "greater", device=None
) -> tuple[np.ndarray, np.ndarray]:
    """Kendall tau (variant b or a) and p-values of every row of x against every row of y.

    x: [neurons, n], y: [attributes, n]. As R's ``cor.test(method="kendall")``: with fewer than 50
    observations and no ties in either row, the exact null distribution (``kendall_exact_p``);
    otherwise the normal approximation of S with R's tie-corrected variance (no continuity
    correction; also scipy's ``kendalltau``).
    S is counted by the numba bitset kernel on the CPU, or by torch sign-matrix products on
    ``device`` when it is a GPU (or when a torch device is passed explicitly).
    """
    if device is not None:
        S, xt = kendall_s_torch(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), device)
    else:
        less, greater = order_bitsets(np.ascontiguousarray(y, dtype=np.float64))
        S, xt = kendall_s(np.ascontiguousarray(x, dtype=np.float64), less, greater)
    return kendall_from_s(S.astype(np.float64), xt, tie_sums(y), x.shape[1], variant, alternative)


def kendall_from_s(
    S: np.ndarray, xt: np.ndarray, yt: np.ndarray, n: int, variant: str = "b", alternative: str = "greater"
) -> tuple[np.ndarray, np.ndarray]:
    """tau and R's p-values from Kendall's S [rows, targets], the rows' tie sums [rows, 3] and the
    targets' [targets, 3] (``tie_sums``); n observations."""
    n0 = n * (n - 1) / 2.0
    n1 = xt[:, 0:1] / 2.0  # [neurons, 1]
    n2 = yt[None, :, 0] / 2.0  # [1, attributes]
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "b":
            tau = S / np.sqrt((n0 - n1) * (n0 - n2))
        else:
            tau = S / n0
        z = S / np.sqrt(_kendall_var(xt, yt, n))
    constant = n1[:, 0] >= n0
    tau[constant] = np.nan
    z[constant] = np.nan
    p = _alternative_p(z, alternative)
    if n < EXACT_BELOW:
        untied = (xt[:, 0] == 0)[:, None] & (yt[:, 0] == 0)[None, :]  # [neurons, attributes]
        if untied.any():
            concordant = np.rint((S[untied] + n0) / 2.0)
            p[untied] = kendall_exact_p(concordant, n, alternative)
    return tau, p


def _kendall_var(xt: np.ndarray, yt: np.ndarray, n: int) -> np.ndarray:
    """R's tie-corrected variance of S. [rows, targets]"""
    return (
        (n * (n - 1) * (2 * n + 5) - xt[:, 1:2] - yt[None, :, 1]) / 18.0
        + xt[:, 0:1] * yt[None, :, 0] / (2.0 * n * (n - 1))
        + xt[:, 2:3] * yt[None, :, 2] / (9.0 * n * (n - 1) * (n - 2))
    )


def spearman(x: np.ndarray, y: np.ndarray, alternative: str = "greater") -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its t-approximation p-values (as ``scipy.stats.spearmanr``)."""
    rho = np.clip(_unit_ranks(x) @ _unit_ranks(y).T, -1.0, 1.0)
    return rho, spearman_p(rho, x.shape[1], alternative)


def _unit_ranks(x: np.ndarray) -> np.ndarray:
    """Each row's ranks, centred and scaled to unit length (a dot product of two is Spearman's rho)."""
    r = stats.rankdata(x, axis=1)
    r = r - r.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return r / np.linalg.norm(r, axis=1, keepdims=True)


def spearman_p(rho: np.ndarray, n: int, alternative: str) -> np.ndarray:
    return _t_p(_spearman_t(rho, n), n, alternative)


def _spearman_t(rho: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return rho * np.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))


def _t_p(t: np.ndarray, n: int, alternative: str) -> np.ndarray:
    """p of Spearman's t statistic (n - 2 degrees of freedom), as ``scipy.stats.spearmanr``."""
    dist = stats.t(n - 2)
    if alternative == "greater":
        return dist.sf(t)
    if alternative == "less":
        return dist.cdf(t)
    return 2 * dist.sf(np.abs(t))


def rank_by(score: np.ndarray) -> np.ndarray:
    """Rank each column, 1 = highest score, ties averaged, NaN stays unranked."""
    return stats.rankdata(-score, axis=0, method="average", nan_policy="omit")


def _checked_options(
    method: str, alternative: str, test: str, correction: str | None, tail: str, studentize: str, rank: str
) -> str:
    """The choices of a direct Python call checked (a stage's config has checked them already); the correction."""
    for flag, value, allowed in (
        ("method", method, METHODS),
        ("alternative", alternative, ALTERNATIVES),
        ("test", test, TESTS),
        ("tail", tail, TAILS),
        ("studentize", studentize, STUDENTIZE),
        ("rank_by", rank, RANK_BY),
    ):
        if value not in allowed:
            raise ToolkitError(f"{{--{flag}}} {value!r} unknown; choose one of {', '.join(allowed)}")
    correction = correction or ("maxt" if test == "permutation" else "fdr")
    if correction not in CORRECTIONS:
        raise ToolkitError(f"{{--correction}} {correction!r} unknown; choose one of {', '.join(CORRECTIONS)}")
    if test == "parametric" and correction != "fdr":
        raise ToolkitError(f"{{--correction}} {correction} needs {{--test}} permutation (the parametric test uses FDR)")
    if test == "parametric" and rank == "studentized":
        raise ToolkitError(
            "{--rank_by} studentized needs {--test} permutation (it standardizes by the permutation null)"
        )
    return correction


def _statistic(x: np.ndarray, method: str, alternative: str, n_attributes: int, device):
    """The permutation test's statistic object for ``method`` (Spearman or Kendall tau-a/b)."""
    if method == "spearman":
        return _SpearmanStatistic(x.shape[1], alternative)
    variant = "b" if method == "kendall_tau_b" else "a"
    return _KendallStatistic(x.shape[0], x.shape[1], variant, alternative, n_attributes, device)


def searchlight(
    activations: np.ndarray,
    attribute_rdms: np.ndarray,
    names: list[str],
    method: str = "kendall_tau_b",
    fdr_method: str = "bh",
    alternative: str = "greater",
    device=None,
    *,
    test: str = "parametric",
    permutations: int = 1000,
    perm_seed: int = 0,
    alpha: float = 0.01,
    correction: str | None = None,
    tail: str = "empirical",
    chunk: int = 2048,
    studentize: str = "across",
    rank: str = "statistic",
    distance: str = "mean_abs",
) -> RSAResult:
    """Run the per-neuron RSA. activations: [emotions, seeds, neurons]; attribute_rdms: [attributes, pairs].

    ``test="parametric"`` is the paper's test (p from R's cor.test, FDR over all tests). ``test="permutation"``
    adds the condition-label randomisation test (``permutation.permutation_test``) with ``permutations``
    draws from ``perm_seed``, corrected by ``correction`` (default max-T within each attribute) at
    ``alpha``; the parametric p and q are still computed (the null counts compare both).
    ``studentize``: which max-T corrections take each test's statistic standardized by its permutation
    null (``permutation.STUDENTIZE``); ``rank``: rank on the statistic or on its studentized value
    (``RANK_BY``, permutation test only).
    ``distance``: the neuron RDM (``neuron_rdms``: the paper's mean over seeds of |a_i - a_j|, or the
    cross-validated one).
    ``device``: a torch CUDA device moves the Kendall counting to the GPU; None or cpu uses the numba kernel.
    """
    if device is not None and getattr(device, "type", str(device)) == "cpu":
        device = None
    correction = _checked_options(method, alternative, test, correction, tail, studentize, rank)
    x = neuron_rdms(activations, distance)  # [neurons, pairs]
    logger.info(
        "RSA: %d neurons x %d attributes over %d emotion pairs (%s)", x.shape[0], len(names), x.shape[1], method
    )
    if method == "spearman":
        score, p = spearman(x, attribute_rdms, alternative)
        constant = np.ptp(x, axis=1) == 0
        score[constant] = np.nan
        p[constant] = np.nan
    else:
        score, p = kendall(x, attribute_rdms, "b" if method == "kendall_tau_b" else "a", alternative, device)
    result = RSAResult(list(names), score, p, fdr(p, fdr_method), rank_by(score), test)
    if test == "permutation":
        stat = _statistic(x, method, alternative, len(names), device)
        result.perm = permutation_test(
            x,
            np.asarray(attribute_rdms, dtype=np.float64),
            list(names),
            activations.shape[0],
            stat_fn=stat,
            observed=score,
            parametric_null_hits=stat.null_hits,
            observed_p=p,
            valid=np.isfinite(score),
            permutations=permutations,
            seed=perm_seed,
            alpha=alpha,
            correction=correction,
            fdr_method=fdr_method,
            parametric_fdr_method=fdr_method,
            alternative=alternative,
            tail=tail,
            chunk=chunk,
            studentize=studentize,
        )
        if rank == "studentized":
            result.rank = rank_by(result.perm.z)
        if correction == "fdr":
            result.perm_q = fdr(result.perm.perm_p, fdr_method)
    return result


def summarize(result: RSAResult, num_layers: int, alpha: float) -> pd.DataFrame:
    """Significant neurons (by the result's test and correction) per attribute and layer, and the selective ones among them
    (significant for exactly one attribute), plus an ``all`` row per attribute."""
    n = result.q.shape[0]
    if n % num_layers:
        raise ToolkitError(f"{n} neurons do not split into {num_layers} layers")
    d_ffn = n // num_layers
    significant = result.significant(alpha)  # [neurons, attributes]
    selective = significant & (significant.sum(axis=1, keepdims=True) == 1)
    layer = np.arange(n) // d_ffn
    rows = []
    for a, name in enumerate(result.names):
        for ell in range(num_layers):
            in_layer = layer == ell
            rows.append(
                {
                    "attribute": name,
                    "layer": str(ell),
                    "n_significant": int(significant[in_layer, a].sum()),
                    "n_selective": int(selective[in_layer, a].sum()),
                    "n_neurons": int(in_layer.sum()),
                }
            )
        rows.append(
            {
                "attribute": name,
                "layer": "all",
                "n_significant": int(significant[:, a].sum()),
                "n_selective": int(selective[:, a].sum()),
                "n_neurons": n,
            }
        )
    return pd.DataFrame(rows)
