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

from .attributes import pair_index
from .errors import ToolkitError
from .kendall import kendall_s, kendall_s_torch, order_bitsets, tie_sums

logger = logging.getLogger(__name__)

METHODS = ("kendall_tau_b", "kendall_tau_a", "spearman")
FDR_METHODS = ("bh", "paper")
ALTERNATIVES = ("greater", "two-sided", "less")


@dataclass
class RSAResult:
    names: list[str]  # attribute columns
    tau: np.ndarray  # [neurons, attributes]; NaN where the neuron's RDM is constant
    p: np.ndarray
    q: np.ndarray
    rank: np.ndarray  # 1 = best; NaN = unranked

    def table(self, which: str) -> pd.DataFrame:
        return pd.DataFrame(getattr(self, which), columns=self.names)


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


def neuron_rdms(activations: np.ndarray) -> np.ndarray:
    """Mean over seeds of |a_i - a_j| for every neuron. [emotions, seeds, neurons] -> [neurons, pairs] float64"""
    rows, cols = pair_index(activations.shape[0])
    acts = np.ascontiguousarray(activations.transpose(2, 0, 1), dtype=np.float64)  # [neurons, emotions, seeds]
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


def kendall(x: np.ndarray, y: np.ndarray, variant: str = "b", alternative: str = "greater",
            device=None) -> tuple[np.ndarray, np.ndarray]:
    """Kendall tau (variant b or a) and p-values of every row of x against every row of y.

    x: [neurons, n], y: [attributes, n]. As R's ``cor.test(method="kendall")``: with fewer than 50
    observations and no ties in either row, the exact null distribution (``kendall_exact_p``);
    otherwise the normal approximation of S with R's tie-corrected variance (no continuity
    correction; also scipy's ``kendalltau``).
    S is counted by the numba bitset kernel on the CPU, or by torch sign-matrix products on
    ``device`` when it is a GPU (or when a torch device is passed explicitly).
    """
    n = x.shape[1]
    if device is not None:
        S, xt = kendall_s_torch(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), device)
    else:
        less, greater = order_bitsets(np.ascontiguousarray(y, dtype=np.float64))
        S, xt = kendall_s(np.ascontiguousarray(x, dtype=np.float64), less, greater)
    S = S.astype(np.float64)
    yt = tie_sums(y)
    n0 = n * (n - 1) / 2.0
    n1 = xt[:, 0:1] / 2.0  # [neurons, 1]
    n2 = yt[None, :, 0] / 2.0  # [1, attributes]
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant == "b":
            tau = S / np.sqrt((n0 - n1) * (n0 - n2))
        else:
            tau = S / n0
        var = ((n * (n - 1) * (2 * n + 5) - xt[:, 1:2] - yt[None, :, 1]) / 18.0
               + xt[:, 0:1] * yt[None, :, 0] / (2.0 * n * (n - 1))
               + xt[:, 2:3] * yt[None, :, 2] / (9.0 * n * (n - 1) * (n - 2)))
        z = S / np.sqrt(var)
    constant = (n1[:, 0] >= n0)
    tau[constant] = np.nan
    z[constant] = np.nan
    p = _alternative_p(z, alternative)
    if n < EXACT_BELOW:
        untied = (xt[:, 0] == 0)[:, None] & (yt[:, 0] == 0)[None, :]  # [neurons, attributes]
        if untied.any():
            concordant = np.rint((S[untied] + n0) / 2.0)
            p[untied] = kendall_exact_p(concordant, n, alternative)
    return tau, p


def spearman(x: np.ndarray, y: np.ndarray, alternative: str = "greater") -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its t-approximation p-values (as ``scipy.stats.spearmanr``)."""
    n = x.shape[1]
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rx /= np.linalg.norm(rx, axis=1, keepdims=True)
        ry /= np.linalg.norm(ry, axis=1, keepdims=True)
        rho = np.clip(rx @ ry.T, -1.0, 1.0)
        t = rho * np.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
    dist = stats.t(n - 2)
    if alternative == "greater":
        p = dist.sf(t)
    elif alternative == "less":
        p = dist.cdf(t)
    else:
        p = 2 * dist.sf(np.abs(t))
    return rho, p


def fdr(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """q-values over all finite tests: Benjamini-Hochberg (scipy) or the paper's p * N / rank(p)."""
    if method not in FDR_METHODS:
        raise ToolkitError(f"{{--fdr}} {method!r} unknown; choose one of {', '.join(FDR_METHODS)}")
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    values = p[finite]
    if values.size:
        if method == "bh":
            q[finite] = stats.false_discovery_control(values, method="bh")
        else:
            q[finite] = values * values.size / stats.rankdata(values)
    return q


def rank_by(score: np.ndarray) -> np.ndarray:
    """Rank each column, 1 = highest score, ties averaged, NaN stays unranked."""
    return stats.rankdata(-score, axis=0, method="average", nan_policy="omit")


def searchlight(activations: np.ndarray, attribute_rdms: np.ndarray, names: list[str],
                method: str = "kendall_tau_b", fdr_method: str = "bh", alternative: str = "greater",
                device=None) -> RSAResult:
    """Run the per-neuron RSA. activations: [emotions, seeds, neurons]; attribute_rdms: [attributes, pairs].

    ``device``: a torch CUDA device moves the Kendall counting to the GPU; None or cpu uses the numba kernel.
    """
    if device is not None and getattr(device, "type", str(device)) == "cpu":
        device = None
    if method not in METHODS:
        raise ToolkitError(f"{{--method}} {method!r} unknown; choose one of {', '.join(METHODS)}")
    if alternative not in ALTERNATIVES:
        raise ToolkitError(f"{{--alternative}} {alternative!r} unknown; choose one of {', '.join(ALTERNATIVES)}")
    x = neuron_rdms(activations)  # [neurons, pairs]
    logger.info("RSA: %d neurons x %d attributes over %d emotion pairs (%s)", x.shape[0], len(names), x.shape[1], method)
    if method == "spearman":
        score, p = spearman(x, attribute_rdms, alternative)
        constant = np.ptp(x, axis=1) == 0
        score[constant] = np.nan
        p[constant] = np.nan
    else:
        score, p = kendall(x, attribute_rdms, "b" if method == "kendall_tau_b" else "a", alternative, device)
    return RSAResult(list(names), score, p, fdr(p, fdr_method), rank_by(score))


def summarize(result: RSAResult, num_layers: int, alpha: float) -> pd.DataFrame:
    """Significant neurons (q < alpha) per attribute and layer, and the selective ones among them
    (significant for exactly one attribute), plus an ``all`` row per attribute."""
    n = result.q.shape[0]
    if n % num_layers:
        raise ToolkitError(f"{n} neurons do not split into {num_layers} layers")
    d_ffn = n // num_layers
    significant = np.nan_to_num(result.q, nan=1.0) < alpha  # [neurons, attributes]
    selective = significant & (significant.sum(axis=1, keepdims=True) == 1)
    layer = np.arange(n) // d_ffn
    rows = []
    for a, name in enumerate(result.names):
        for ell in range(num_layers):
            in_layer = layer == ell
            rows.append({"attribute": name, "layer": str(ell), "n_significant": int(significant[in_layer, a].sum()),
                         "n_selective": int(selective[in_layer, a].sum()), "n_neurons": int(in_layer.sum())})
        rows.append({"attribute": name, "layer": "all", "n_significant": int(significant[:, a].sum()),
                     "n_selective": int(selective[:, a].sum()), "n_neurons": n})
    return pd.DataFrame(rows)
