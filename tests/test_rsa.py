"""RSA statistics against independent computations: scipy, R's formulas, brute force."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from model_emotion.errors import ToolkitError
from model_emotion.rsa.fdr import fdr
from model_emotion.rsa.searchlight import kendall, neuron_rdms, rank_by, searchlight, spearman, summarize


def brute_tau_b(x, y):
    """O(n^2) Kendall tau-b straight from the definition."""
    concordant = discordant = tie_x = tie_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tie_x += 1
        elif dy == 0:
            tie_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / math.sqrt((concordant + discordant + tie_x) * (concordant + discordant + tie_y))


def r_cor_test_kendall_greater(x, y):
    """R's cor.test(x, y, method="kendall", alternative="greater") for n >= 50 (normal approximation)."""
    n = len(x)
    xt = np.unique(x, return_counts=True)[1]
    yt = np.unique(y, return_counts=True)[1]
    xt, yt = xt[xt > 1].astype(float), yt[yt > 1].astype(float)
    T0 = n * (n - 1) / 2
    T1 = (xt * (xt - 1)).sum() / 2
    T2 = (yt * (yt - 1)).sum() / 2
    r = brute_tau_b(x, y)
    S = r * math.sqrt((T0 - T1) * (T0 - T2))
    v0 = n * (n - 1) * (2 * n + 5)
    vt = (xt * (xt - 1) * (2 * xt + 5)).sum()
    vu = (yt * (yt - 1) * (2 * yt + 5)).sum()
    v1 = (xt * (xt - 1)).sum() * (yt * (yt - 1)).sum()
    v2 = (xt * (xt - 1) * (xt - 2)).sum() * (yt * (yt - 1) * (yt - 2)).sum()
    var_S = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1)) + v2 / (9 * n * (n - 1) * (n - 2))
    return r, stats.norm.sf(S / math.sqrt(var_S))


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(0)
    n = 78  # pairs of 13 emotions
    x = rng.random((40, n))
    x[1] = np.round(x[1] * 4)  # heavy ties
    x[2] = 3.0  # constant RDM
    x[3] = np.round(x[3] * 20) / 20
    y = rng.random((4, n))
    y[1] = np.round(y[1] * 6)
    y[2] = x[5] + 0.1 * rng.random(n)  # strongly related
    y[3] = np.round(x[6] * 3)
    return x, y


def test_kendall_tau_b_matches_scipy_r_and_brute_force(cases):
    x, y = cases
    tau, p = kendall(x, y)
    for i in [0, 1, 3, 5, 6, 17]:
        for a in range(y.shape[0]):
            ref = stats.kendalltau(x[i], y[a], alternative="greater", method="asymptotic")
            assert tau[i, a] == pytest.approx(ref.statistic, abs=1e-12)
            assert p[i, a] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
            r_tau, r_p = r_cor_test_kendall_greater(x[i], y[a])
            assert tau[i, a] == pytest.approx(r_tau, abs=1e-12)
            assert p[i, a] == pytest.approx(r_p, rel=1e-9, abs=1e-15)
    assert np.isnan(tau[2]).all() and np.isnan(p[2]).all()


def test_kendall_small_case_brute_force():
    x = np.array([[1.0, 2.0, 2.0, 5.0, 3.0, 0.5]])
    y = np.array([[2.0, 1.0, 3.0, 3.0, 4.0, 0.0]])
    tau, _ = kendall(x, y)
    assert tau[0, 0] == pytest.approx(brute_tau_b(x[0], y[0]), abs=1e-15)
    tau_a, _ = kendall(x, y, variant="a")
    s = sum(np.sign(x[0, i] - x[0, j]) * np.sign(y[0, i] - y[0, j]) for i, j in itertools.combinations(range(6), 2))
    assert tau_a[0, 0] == pytest.approx(s / 15, abs=1e-15)


def test_two_sided_and_less(cases):
    x, y = cases
    _, p2 = kendall(x, y, alternative="two-sided")
    _, pl = kendall(x, y, alternative="less")
    ref = stats.kendalltau(x[0], y[1], alternative="two-sided", method="asymptotic").pvalue
    assert p2[0, 1] == pytest.approx(ref, rel=1e-9)
    assert pl[0, 1] == pytest.approx(
        stats.kendalltau(x[0], y[1], alternative="less", method="asymptotic").pvalue, rel=1e-9
    )


def test_spearman_matches_scipy(cases):
    x, y = cases
    rho, p = spearman(x, y)
    for i in [0, 1, 5]:
        for a in range(y.shape[0]):
            ref = stats.spearmanr(x[i], y[a], alternative="greater")
            assert rho[i, a] == pytest.approx(ref.statistic, abs=1e-12)
            assert p[i, a] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-15)


def test_fdr_equals_scipy_and_paper_variant():
    rng = np.random.default_rng(1)
    p = rng.random((50, 3)) ** 3
    p[4, 1] = np.nan
    q = fdr(p, "bh")
    finite = np.isfinite(p)
    assert np.allclose(q[finite], stats.false_discovery_control(p[finite], method="bh"))
    assert np.isnan(q[4, 1])
    paper = fdr(p, "paper")
    values = p[finite]
    assert np.allclose(paper[finite], values * values.size / stats.rankdata(values))
    with pytest.raises(ToolkitError, match="unknown"):
        fdr(p, "holm")


def test_neuron_rdms_brute_force():
    rng = np.random.default_rng(2)
    acts = rng.random((5, 3, 4)).astype(np.float32)  # emotions, seeds, neurons
    got = neuron_rdms(acts)
    pairs = list(itertools.combinations(range(5), 2))
    for neuron in range(4):
        expected = [
            np.mean([abs(float(acts[i, s, neuron]) - float(acts[j, s, neuron])) for s in range(3)]) for i, j in pairs
        ]
        assert np.allclose(got[neuron], expected)


def test_rank_ties_averaged_and_nan_unranked():
    score = np.array([[0.5], [0.9], [0.5], [np.nan], [0.1]])
    assert np.array_equal(rank_by(score)[:, 0], np.array([2.5, 1.0, 2.5, np.nan, 4.0]), equal_nan=True)


def test_summary_counts_significant_and_selective():
    rng = np.random.default_rng(3)
    acts = rng.random((6, 2, 8)).astype(np.float32)
    rdms = rng.random((2, 15))
    result = searchlight(acts, rdms, ["a", "b"])
    result.q = np.array(
        [[0.001, 0.5], [0.001, 0.001], [0.5, 0.5], [0.002, 0.9], [0.9, 0.001], [0.9, 0.9], [0.001, 0.9], [np.nan, 0.9]]
    )
    table = summarize(result, num_layers=2, alpha=0.01).set_index(["attribute", "layer"])
    assert table.loc[("a", "0"), "n_significant"] == 3 and table.loc[("a", "0"), "n_selective"] == 2
    assert table.loc[("a", "1"), "n_significant"] == 1 and table.loc[("b", "all"), "n_significant"] == 2
    assert table.loc[("b", "all"), "n_selective"] == 1


def test_paper_activations_sample_matches_scipy(shared):
    data = np.load(shared / "paper_roberta" / "activations.npz")
    from model_emotion.data.ratings import build_rdms, load_ratings

    rdms = build_rdms(load_ratings(shared / "emotion_attributes"), [str(e) for e in data["emotions"]])
    rng = np.random.default_rng(4)
    neurons = rng.choice(data["activations"].shape[2], 12, replace=False)
    x = neuron_rdms(data["activations"][:, :, neurons])
    tau, p = kendall(x, rdms.rdms)
    for k in range(len(neurons)):
        for a in (0, 9, 13):
            ref = stats.kendalltau(x[k], rdms.rdms[a], alternative="greater")
            assert tau[k, a] == pytest.approx(ref.statistic, abs=1e-12)
            assert p[k, a] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


def test_torch_sign_matrix_path_equals_the_numba_kernel(cases):
    """The GPU path (run here on the CPU through torch) counts exactly what the bitset kernel counts."""
    import torch

    x, y = cases
    tau, p = kendall(x, y)
    tau_t, p_t = kendall(x, y, device=torch.device("cpu"))
    assert np.array_equal(np.isnan(tau), np.isnan(tau_t))
    assert np.allclose(tau[~np.isnan(tau)], tau_t[~np.isnan(tau_t)], atol=1e-15, rtol=0)
    assert np.allclose(p[np.isfinite(p)], p_t[np.isfinite(p_t)], rtol=1e-12, atol=0)


def _enumerated_p(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """One-sided (greater, less) and two-sided p of Kendall's S by enumerating every permutation of y."""
    import itertools

    def s_of(b):
        return sum(np.sign(x[i] - x[j]) * np.sign(b[i] - b[j]) for i in range(len(x)) for j in range(i + 1, len(x)))

    observed = s_of(y)
    null = np.array([s_of(np.array(perm)) for perm in itertools.permutations(y)])
    greater, less = (null >= observed).mean(), (null <= observed).mean()
    return greater, less, min(1.0, 2 * min(greater, less))


@pytest.mark.parametrize("n", [4, 6, 7])
def test_exact_kendall_p_equals_enumeration_of_all_permutations(n):
    from model_emotion.rsa.searchlight import kendall

    rng = np.random.default_rng(n)
    for _ in range(3):
        x, y = rng.permutation(n).astype(float), rng.permutation(n).astype(float) + 0.5
        want = _enumerated_p(x, y)
        for alternative, expected in zip(("greater", "less", "two-sided"), want):
            _, p = kendall(x[None], y[None], "b", alternative)
            assert p[0, 0] == pytest.approx(expected, abs=1e-12), (alternative, x, y)


def test_exact_path_only_without_ties_and_below_50_pairs():
    from model_emotion.rsa.searchlight import kendall

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(1, 45)), rng.normal(size=(1, 45))  # 10 emotions: 45 pairs, exact
    _, p_exact = kendall(x, y)
    assert p_exact[0, 0] == pytest.approx(
        stats.kendalltau(x[0], y[0], method="exact", alternative="greater").pvalue, rel=1e-9
    )
    tied = y.copy()
    tied[0, 1] = tied[0, 0]  # one tie: R falls back to the normal approximation
    _, p_tied = kendall(x, tied)
    assert p_tied[0, 0] == pytest.approx(
        stats.kendalltau(x[0], tied[0], method="asymptotic", alternative="greater").pvalue, rel=1e-9
    )
    big_x, big_y = rng.normal(size=(1, 55)), rng.normal(size=(1, 55))  # 11 emotions: 55 pairs, normal
    _, p_big = kendall(big_x, big_y)
    assert p_big[0, 0] == pytest.approx(
        stats.kendalltau(big_x[0], big_y[0], method="asymptotic", alternative="greater").pvalue, rel=1e-9
    )
