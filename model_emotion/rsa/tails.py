"""Permutation p-values beyond 1/(B + 1): tail fits that check their fit and never leave their support.

``--tail gpd`` (the max-T adjusted p): a generalized Pareto distribution fitted by maximum likelihood
to the excesses of the null maxima over a threshold u. The threshold search follows PALM (Winkler et
al., NeuroImage 2016; Knijnenburg et al., Bioinformatics 2009): u starts at the 75th percentile of the
null and rises in steps of 1% of it until the Anderson-Darling statistic of the fit is below its 5%
critical value for the fitted shape (Choulakian & Stephens, Technometrics 2001, Table 2, both
parameters estimated); if no threshold passes, the empirical p is kept. A fitted shape below zero
bounds the distribution at u + scale / |shape|: a statistic at or beyond that end gets the empirical
p, never a p the fit does not support (the fit's record says how many did).

``--tail moments`` (the per-test p): a Pearson type III distribution with each test's own null mean,
variance and skewness. A negative skew bounds it above (at mean + 2 sd / |skew|); the same rule
applies: at or beyond the bound, or where the fitted p underflows, the empirical p.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

GPD_MIN_EXCEEDANCES = 10  # below this many null values >= T the empirical p is replaced by the tail fit
MIN_TAIL = 25  # fewest excesses a fit uses
MIN_NULL = 100  # fewest null values for any fit
START_QUANTILE = 0.75  # the threshold search: first u at this quantile of the null ...
STEP_QUANTILE = 0.01  # ... raised by this much ...
LAST_QUANTILE = 0.99  # ... up to this quantile (at least MIN_TAIL excesses left)

# Choulakian & Stephens (2001), Table 2: 5% critical values of A^2 for the GPD with shape and scale
# estimated, by their shape k (k = -c in scipy's genpareto, whose c > 0 is the heavy tail).
_AD_K = np.array([-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.5, 0.9])
_AD_CRIT_05 = np.array([1.321, 1.221, 1.140, 1.074, 1.020, 0.974, 0.935, 0.903, 0.830, 0.771])


def ad_critical(shape: float) -> float:
    """The 5% critical value of the Anderson-Darling statistic for scipy shape ``shape`` (table clamped)."""
    k = float(np.clip(-shape, _AD_K[0], _AD_K[-1]))
    return float(np.interp(k, _AD_K, _AD_CRIT_05))


def anderson_darling(excess: np.ndarray, shape: float, scale: float) -> float:
    """A^2 of the sorted excesses against the fitted GPD."""
    cdf = np.clip(stats.genpareto.cdf(np.sort(excess), shape, scale=scale), 1e-300, 1 - 1e-16)
    n = cdf.size
    i = np.arange(1, n + 1)
    return float(-n - np.mean((2 * i - 1) * (np.log(cdf) + np.log1p(-cdf[::-1]))))


@dataclass
class GPDTail:
    threshold: float  # u: the fit is to M - u for the null values above u
    shape: float  # scipy's c (c < 0: bounded above)
    scale: float
    share: float  # share of the B + 1 null values above u
    quantile: float = np.nan  # the quantile of the null at which u was taken
    ad_statistic: float = np.nan
    ad_critical: float = np.nan

    @property
    def endpoint(self) -> float:
        """The upper end of the fitted support (inf for shape >= 0)."""
        return self.threshold + self.scale / -self.shape if self.shape < 0 else np.inf

    def p(self, t: np.ndarray) -> np.ndarray:
        """The tail p; NaN at or beyond the fitted support's end (the caller keeps the empirical p)."""
        t = np.asarray(t, dtype=float)
        sf = self.share * stats.genpareto.sf(t - self.threshold, self.shape, scale=self.scale)
        return np.where((t < self.endpoint) & (sf > 0), sf, np.nan)

    def isf(self, p: float) -> float:
        """The statistic whose tail p is ``p`` (for p below the share of the fitted tail)."""
        return self.threshold + float(stats.genpareto.isf(p / self.share, self.shape, scale=self.scale))

    def record(self) -> dict:
        return {**asdict(self), "endpoint": self.endpoint}


def _fit_at(values: np.ndarray, n_null: int, q: float) -> GPDTail | None:
    """The ML fit to the excesses over the q-th quantile of the sorted null ``values``."""
    n_tail = values.size - int(np.ceil(q * values.size))
    if n_tail < MIN_TAIL:
        return None
    if values[-n_tail] <= values[-n_tail - 1] or values[-1] <= values[-n_tail]:
        return None  # tied at the cut, or no spread in the tail: try the next threshold
    u = 0.5 * (values[-n_tail - 1] + values[-n_tail])  # between the last value kept out and the first in
    excess = values[-n_tail:] - u
    shape, _, scale = stats.genpareto.fit(excess, floc=0)
    a2 = anderson_darling(excess, shape, scale)
    return GPDTail(float(u), float(shape), float(scale), n_tail / (n_null + 1.0), q, a2, ad_critical(shape))


def fit_gpd_tail(null: np.ndarray) -> GPDTail | None:
    """The first threshold (from the 75th percentile up) whose GPD fit passes Anderson-Darling at 5%,
    or None: no fit passes, too few null values, or a null with too many ties."""
    values = np.sort(null[np.isfinite(null)])
    if values.size < MIN_NULL:
        return None
    for q in np.arange(START_QUANTILE, LAST_QUANTILE + 1e-9, STEP_QUANTILE):
        fit = _fit_at(values, null.size, float(q))
        if fit is not None and fit.ad_statistic < fit.ad_critical:
            return fit
    return None


def gpd_p(stat: np.ndarray, count: np.ndarray, empirical: np.ndarray, fit: GPDTail | None) -> np.ndarray:
    """The empirical p replaced by the fit where fewer than GPD_MIN_EXCEEDANCES null values reach the
    statistic, the statistic is above u and within the fitted support."""
    if fit is None:
        return empirical
    use = (count < GPD_MIN_EXCEEDANCES) & np.isfinite(stat) & (stat > fit.threshold)
    with np.errstate(invalid="ignore"):
        tail = fit.p(np.where(use, stat, fit.threshold))
    return np.where(use & np.isfinite(tail), tail, empirical)


def beyond_support(stat: np.ndarray, fit: GPDTail | None) -> int:
    """How many statistics lie at or beyond the fitted support's end (they kept the empirical p)."""
    if fit is None:
        return 0
    return int((np.isfinite(stat) & (stat >= fit.endpoint)).sum())


def moment_p(moments: np.ndarray, B: int, observed: np.ndarray, alternative: str, empirical: np.ndarray) -> np.ndarray:
    """Each test's p from a Pearson type III fit to the mean, variance and skewness of its own
    permutation null (Winkler et al. 2016); the empirical p where the null has no spread, or where the
    statistic is at or beyond the fitted support (the fitted p is 0 there)."""
    mean = moments[0] / B
    var = np.maximum(moments[1] / B - mean**2, 0.0)
    sd = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        third = moments[2] / B - 3 * mean * moments[1] / B + 2 * mean**3
        skew = np.where(sd > 0, third / sd**3, 0.0)
        z = (observed - mean) / sd
    skew = np.clip(np.nan_to_num(skew), -50, 50)
    if alternative == "greater":
        p = stats.pearson3.sf(z, skew)
    elif alternative == "less":
        p = stats.pearson3.cdf(z, skew)
    else:
        p = np.minimum(1.0, 2 * np.minimum(stats.pearson3.sf(z, skew), stats.pearson3.cdf(z, skew)))
    return np.where((sd > 0) & (p > 0) & np.isfinite(p), p, empirical)
