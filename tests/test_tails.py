"""The permutation p beyond 1/(B + 1): PALM's threshold search with Anderson-Darling, and no p outside
the fitted support (GPD and Pearson III)."""

import numpy as np
import pytest
from scipy import stats

from model_emotion.rsa import tails


def test_anderson_darling_equals_its_formula_and_scipy():
    rng = np.random.default_rng(0)
    excess = stats.genpareto.rvs(-0.2, scale=0.5, size=200, random_state=rng)
    u = np.sort(stats.genpareto.cdf(excess, -0.2, scale=0.5))
    n, i = u.size, np.arange(1, u.size + 1)
    by_hand = -n - np.sum((2 * i - 1) * (np.log(u) + np.log(1 - u[::-1]))) / n
    assert tails.anderson_darling(excess, -0.2, 0.5) == pytest.approx(by_hand)
    known = {"c": -0.2, "scale": 0.5, "loc": 0.0}
    res = stats.goodness_of_fit(stats.genpareto, excess, known_params=known, statistic="ad", n_mc_samples=9, rng=1)
    assert tails.anderson_darling(excess, -0.2, 0.5) == pytest.approx(res.statistic)


def test_critical_values_follow_the_table_and_clamp():
    assert tails.ad_critical(0.0) == pytest.approx(0.974)  # k = 0 (exponential)
    assert tails.ad_critical(0.5) == pytest.approx(1.321)  # k = -0.5, heavy tail
    assert tails.ad_critical(-0.9) == pytest.approx(0.771)
    assert tails.ad_critical(-5.0) == pytest.approx(0.771) and tails.ad_critical(5.0) == pytest.approx(1.321)
    assert tails.ad_critical(-0.15) == pytest.approx((0.935 + 0.903) / 2)


def test_an_exact_gpd_tail_passes_at_the_first_threshold_and_recovers_its_p():
    rng = np.random.default_rng(1)
    null = stats.genpareto.rvs(0.1, scale=1.0, size=4000, random_state=rng)
    fit = tails.fit_gpd_tail(null)
    assert fit is not None and fit.quantile == pytest.approx(0.75) and fit.ad_statistic < fit.ad_critical
    t = stats.genpareto.isf(1e-5, 0.1)  # far beyond the null's resolution of 1/4001
    assert fit.p(np.array([t]))[0] == pytest.approx(1e-5, rel=1.0)  # within a factor of 2 of the truth


def test_the_search_raises_the_threshold_past_a_misfit_and_falls_back_when_nothing_fits():
    rng = np.random.default_rng(2)
    # a body from one distribution and a tail from another: the lowest thresholds misfit
    body = rng.normal(size=3000)
    tail = 2.0 + stats.genpareto.rvs(-0.3, scale=0.3, size=200, random_state=rng)
    fit = tails.fit_gpd_tail(np.concatenate([body, tail]))
    assert fit is not None and fit.quantile > 0.75
    # a null of a few distinct values (a discrete statistic): no continuous fit passes, empirical p kept
    discrete = rng.integers(0, 4, size=2000).astype(float)
    assert tails.fit_gpd_tail(discrete) is None
    count = np.array([0])
    empirical = np.array([1 / 2001])
    assert tails.gpd_p(np.array([10.0]), count, empirical, None)[0] == empirical[0]
    assert tails.fit_gpd_tail(rng.normal(size=50)) is None  # too few null values


def test_no_p_beyond_the_fitted_support():
    rng = np.random.default_rng(3)
    null = stats.genpareto.rvs(-0.5, scale=1.0, size=3000, random_state=rng)  # bounded at 2
    fit = tails.fit_gpd_tail(null)
    assert fit is not None and fit.shape < 0 and np.isfinite(fit.endpoint)
    stat = np.array([fit.endpoint - 1e-3, fit.endpoint, fit.endpoint + 1.0])
    count = np.zeros(3, int)
    empirical = np.full(3, 1 / 3001)
    p = tails.gpd_p(stat, count, empirical, fit)
    assert 0 < p[0] < empirical[0]  # inside the support: the fit resolves below 1/(B+1)
    assert p[1] == empirical[1] and p[2] == empirical[2]  # at or beyond its end: the empirical p
    assert tails.beyond_support(stat, fit) == 2
    assert np.all(p >= 1e-300)


def test_moment_tail_keeps_the_empirical_p_beyond_its_support():
    rng = np.random.default_rng(4)
    B = 999
    null = -stats.gamma.rvs(2.0, size=(B, 1, 1), random_state=rng)  # negative skew: bounded above
    moments = np.stack([null.sum(0), (null**2).sum(0), (null**3).sum(0)])
    mean, sd = null.mean(), null.std()
    skew = stats.skew(null.ravel())
    bound = mean - 2 * sd / skew  # the Pearson III upper end for negative skew
    for observed, inside in ((mean + 0.5 * (bound - mean), True), (bound + 1.0, False)):
        empirical = np.array([[1 / (B + 1)]])
        p = tails.moment_p(moments, B, np.array([[observed]]), "greater", empirical)[0, 0]
        assert (0 < p < 1) if inside else p == empirical[0, 0]
