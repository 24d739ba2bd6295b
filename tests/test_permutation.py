"""The emotion-label permutation test: exact statistics, brute-force p-values, error rates and power
measured on simulated data where the truth is known, and its command-line behaviour."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from model_emotion.commands import cli
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.data.ratings import pair_index
from model_emotion.errors import ToolkitError
from model_emotion.rsa import permutation as pm
from model_emotion.rsa.kendall import (
    TargetBitsets,
    TorchTargets,
    kendall_s,
    kendall_s_targets,
    kendall_s_targets_torch,
    order_bitsets,
)
from model_emotion.rsa.searchlight import _KendallStatistic, _SpearmanStatistic, neuron_rdms, searchlight


def attribute_rdms(scores: np.ndarray) -> np.ndarray:
    """|score_i - score_j| per emotion pair, one row per attribute. scores: [emotions, attributes]"""
    rows, cols = pair_index(scores.shape[0])
    return np.abs(scores[rows] - scores[cols]).T


def per_emotion_null(rng, K, S, N, big=4.0):
    """Activations with strong per-emotion effects (one emotion far from the others per neuron, as in
    real neuron RDMs) that carry no information about any attribute: exchangeable over emotions."""
    effect = rng.standard_t(2, size=(K, 1, N))
    outlier = rng.integers(0, K, size=N)
    effect[outlier, 0, np.arange(N)] += big * rng.choice([-1, 1], size=N)
    return effect + 0.3 * rng.normal(size=(K, S, N))


@pytest.fixture(scope="module")
def paper_sample(shared):
    """40 neurons of the paper's activations (the tied ones included) and its 14 attribute RDMs (with ties)."""
    data = np.load(shared / "paper_roberta" / "activations.npz")
    x = neuron_rdms(data["activations"][:, :, :3072])  # layer 0
    tied = np.flatnonzero([np.unique(row).size < row.size for row in x])
    pick = np.concatenate([tied[:5], np.random.default_rng(0).choice(x.shape[0], 35, replace=False)])
    rdms = pd.read_csv(shared / "emotion_attributes" / "rdms.csv")
    return x[pick], rdms.iloc[:, 2:].to_numpy(dtype=float).T, tied.size


def test_permuted_statistics_equal_scipy_kendalltau_with_ties(paper_sample):
    x, y, n_tied = paper_sample
    assert n_tied > 0 and (np.array([np.unique(r).size for r in y]) < y.shape[1]).any()  # ties on both sides
    perms = pm.draw_permutations(27, 20, seed=3)
    targets = pm.permuted_targets(y, perms)  # [(B+1) * A, pairs]
    for variant in ("b", "a"):
        stat = _KendallStatistic(len(x), x.shape[1], variant, "greater", y.shape[0])
        tau = stat(x, np.arange(len(x)), stat.prepare(targets, y.shape[0]))  # [neurons, targets]
        rng = np.random.default_rng(1)
        for n, t in zip(rng.integers(0, len(x), 150), rng.integers(0, len(targets), 150)):
            expected = stats.kendalltau(x[n], targets[t]).statistic
            if variant == "a":  # scipy has tau-b only: tau-a = S / n0 with S = tau-b * sqrt((n0 - Tx)(n0 - Ty))
                n0 = x.shape[1] * (x.shape[1] - 1) / 2
                tied = [sum(c * (c - 1) / 2 for c in np.unique(v, return_counts=True)[1]) for v in (x[n], targets[t])]
                expected *= math.sqrt((n0 - tied[0]) * (n0 - tied[1])) / n0
            assert tau[n, t] == pytest.approx(expected, abs=1e-12)
    rho = _SpearmanStatistic(x.shape[1], "greater")
    values = rho(x, None, rho.prepare(targets, y.shape[0]))
    for n, t in [(0, 5), (7, 200), (len(x) - 1, 293)]:
        assert values[n, t] == pytest.approx(stats.spearmanr(x[n], targets[t]).statistic, abs=1e-10)


def test_permuted_targets_are_the_permuted_emotions_rdm():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(7, 2))
    perms = pm.draw_permutations(7, 5, seed=1)
    targets = pm.permuted_targets(attribute_rdms(scores), perms).reshape(6, 2, -1)
    assert np.array_equal(targets[0], attribute_rdms(scores))  # block 0: the observed order
    for b, perm in enumerate(perms, start=1):
        assert np.allclose(targets[b], attribute_rdms(scores[perm]))


def test_bit_gemm_kernel_equals_the_order_kernel_and_the_torch_path():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    n = 66  # two 64-bit words, the second partly used
    x = np.concatenate(
        [rng.integers(0, 5, size=(9, n)).astype(float), rng.normal(size=(8, n)), np.ones((1, n))]
    )  # heavy ties and a constant row
    y = np.concatenate([rng.integers(0, 3, size=(70, n)).astype(float), rng.normal(size=(60, n))])
    S, ties = kendall_s_targets(x, TargetBitsets(y))
    less, greater = order_bitsets(y)
    S_ref, ties_ref = kendall_s(x, less, greater)
    assert np.array_equal(S, S_ref) and np.allclose(ties, ties_ref)
    S_torch, ties_torch = kendall_s_targets_torch(x, TorchTargets(y, torch.device("cpu"), chunk_bytes=1 << 16))
    assert np.array_equal(S_torch, S) and np.allclose(ties_torch, ties)


def brute_force(x, y, perms, alternative="greater"):
    """Per-test, max-T and global max-T p-values by scipy loops over every permutation; the last two
    also on the studentized statistic (each test standardized by the mean and SD of its B + 1 values)."""
    index = pm.pair_permutations(perms)
    B = len(perms)

    def signed(t):
        return {"greater": t, "less": -t}.get(alternative, np.abs(t))

    raw_obs = np.array([[stats.kendalltau(row, target).statistic for target in y] for row in x])
    raw_null = np.array(
        [[[stats.kendalltau(row, target[index[b]]).statistic for target in y] for row in x] for b in range(B)]
    )  # [B, N, A]
    values = np.concatenate([raw_obs[None], raw_null])  # [B + 1, N, A]
    mean, sd = values.mean(axis=0), values.std(axis=0)
    obs, null = signed(raw_obs), signed(raw_null)
    perm_p = (1 + (null >= obs[None] - 1e-12).sum(0)) / (B + 1)

    def max_t(o, n):
        maxima = np.nanmax(n, axis=1)  # [B, A]
        within = (1 + (maxima[:, None, :] >= o[None]).sum(0)) / (B + 1)
        across = (1 + (maxima.max(axis=1)[:, None, None] >= o[None]).sum(0)) / (B + 1)
        return within, across

    fwer, fwer_global = max_t(obs, null)
    z_within, z_across = max_t(signed((raw_obs - mean) / sd), signed((raw_null - mean[None]) / sd[None]))
    return perm_p, fwer, fwer_global, z_within, z_across


@pytest.mark.slow
@pytest.mark.parametrize("alternative", ["greater", "two-sided", "less"])
def test_p_values_equal_brute_force_over_every_permutation(alternative):
    rng = np.random.default_rng(5)
    K = 8
    acts = rng.normal(size=(K, 3, 25))
    acts[:, :, :4] = np.round(acts[:, :, :4])  # tied neuron RDMs
    acts[:, :, 6] += 2 * rng.integers(0, 3, size=(K, 1))[:, :1]  # some structure
    y = attribute_rdms(rng.integers(0, 4, size=(K, 3)).astype(float))  # tied attribute RDMs
    result = searchlight(
        acts, y, ["a", "b", "c"], alternative=alternative, test="permutation", permutations=150, perm_seed=9, alpha=0.05
    )
    perm_p, fwer, fwer_global, z_within, z_across = brute_force(
        neuron_rdms(acts), y, pm.draw_permutations(K, 150, 9), alternative
    )
    assert np.allclose(result.perm.perm_p, perm_p)
    assert np.allclose(result.perm.fwer_p, fwer)  # the default: raw within each attribute ...
    assert np.allclose(result.perm.fwer_global_p, z_across)  # ... studentized across them
    variants = result.perm.variants
    assert np.allclose(variants["raw_across"], fwer_global)
    assert np.allclose(variants["studentized_within"], z_within)
    both = searchlight(
        acts, y, ["a", "b", "c"], alternative=alternative, test="permutation", permutations=150, perm_seed=9,
        alpha=0.05, studentize="both",
    )  # fmt: skip
    assert np.allclose(both.perm.fwer_p, z_within) and np.allclose(both.perm.fwer_global_p, z_across)
    raw = searchlight(
        acts, y, ["a", "b", "c"], alternative=alternative, test="permutation", permutations=150, perm_seed=9,
        alpha=0.05, studentize="none",
    )  # fmt: skip
    assert np.allclose(raw.perm.fwer_global_p, fwer_global)


@pytest.mark.slow
def test_family_wise_error_under_the_null_and_the_parametric_tests_error(record_property):
    """200 simulated datasets with strong per-emotion effects and no attribute alignment: max-T keeps the
    family-wise error at alpha (within Monte Carlo error); the parametric test's does not."""
    rng = np.random.default_rng(11)
    alpha, B, runs = 0.05, 199, 200
    any_maxt = any_global = any_parametric = 0
    for _ in range(runs):
        K = 10
        acts = per_emotion_null(rng, K, 3, 40)
        y = attribute_rdms(rng.normal(size=(K, 2)))
        result = searchlight(
            acts, y, ["a", "b"], test="permutation", permutations=B, perm_seed=int(rng.integers(1e9)), alpha=alpha
        )
        any_maxt += bool((result.perm.fwer_p[:, 0] <= alpha).any())  # one attribute's family
        any_global += bool((result.perm.fwer_global_p <= alpha).any())
        any_parametric += bool((np.nan_to_num(result.q[:, 0], nan=1) < alpha).any())
    mc = 2.5 * math.sqrt(alpha * (1 - alpha) / runs)
    record_property("fwer", (any_maxt / runs, any_global / runs, any_parametric / runs))
    assert any_maxt / runs <= alpha + mc
    assert any_global / runs <= alpha + mc
    assert any_parametric / runs > 0.5  # a fact about these data: the parametric test's FWER is far above alpha


def test_power_finds_planted_aligned_neurons(record_property):
    rng = np.random.default_rng(12)
    found = false = 0
    runs, planted = 20, 5
    for _ in range(runs):
        K = 12
        scores = rng.normal(size=(K, 2))
        acts = per_emotion_null(rng, K, 3, 60)
        acts[:, :, :planted] = 1.5 * scores[:, None, 0:1] + 0.4 * rng.normal(size=(K, 3, planted))  # attribute 0
        result = searchlight(
            acts, attribute_rdms(scores), ["a", "b"], test="permutation", permutations=499, perm_seed=1, alpha=0.05
        )
        significant = result.perm.fwer_p[:, 0] <= 0.05
        found += significant[:planted].sum()
        false += significant[planted:].sum()
    power = found / (runs * planted)
    record_property("power", power)
    assert power >= 0.8 and false <= 2


def test_p_values_never_zero_and_seeded():
    rng = np.random.default_rng(6)
    K = 9
    scores = rng.normal(size=(K, 2))
    acts = np.repeat(scores[:, None, :1], 2, axis=1) + 0.01 * rng.normal(size=(K, 2, 30))  # every neuron aligned
    y = attribute_rdms(scores)
    runs = [
        searchlight(acts, y, ["a", "b"], test="permutation", permutations=99, perm_seed=s, alpha=0.05, tail=tail)
        for s, tail in ((1, "empirical"), (1, "empirical"), (2, "empirical"), (1, "gpd"), (1, "moments"))
    ]
    for run in runs:
        for p in (run.perm.perm_p, run.perm.fwer_p, run.perm.fwer_global_p):
            assert np.nanmin(p) > 0
    assert np.nanmin(runs[0].perm.perm_p) == pytest.approx(1 / 100)
    assert np.array_equal(runs[0].perm.fwer_p, runs[1].perm.fwer_p, equal_nan=True)
    assert np.array_equal(runs[0].perm.permutations, runs[1].perm.permutations)
    assert not np.array_equal(runs[0].perm.permutations, runs[2].perm.permutations)
    assert np.nanmin(runs[4].perm.perm_p) < 1 / 100  # the moment fit resolves beyond 1/(B+1)


def test_permutation_count_and_alpha_are_validated():
    for bad in (0, -1, 2.5, "12", True):
        with pytest.raises(ToolkitError, match="permutations"):
            pm.check_permutations(bad, 10)
    with pytest.raises(ToolkitError, match="more than the 24 distinct permutations of 4 emotions"):
        pm.check_permutations(25, 4)
    assert pm.check_permutations(24, 4) == 24
    with pytest.raises(ToolkitError, match=r"smallest permutation p is 1/\(B\+1\) = 0\.0099"):
        pm.check_alpha(0.005, 100, "empirical")
    pm.check_alpha(0.005, 100, "gpd")  # the tail fit reaches below the resolution


def test_null_counts_count_what_each_permutation_would_call_significant():
    """The null count of the parametric test under permutation b equals BH on that permutation's own
    p-values, recomputed from scratch."""
    from model_emotion.rsa.fdr import fdr
    from model_emotion.rsa.searchlight import kendall

    rng = np.random.default_rng(8)
    K = 9
    acts = per_emotion_null(rng, K, 2, 30)
    y = attribute_rdms(rng.normal(size=(K, 2)))
    result = searchlight(acts, y, ["a", "b"], test="permutation", permutations=40, perm_seed=4, alpha=0.05)
    x = neuron_rdms(acts)
    index = pm.pair_permutations(result.perm.permutations)
    draws = result.perm.count_draws["parametric_bh"]
    for b in range(40):
        _, p = kendall(x, y[:, index[b]])
        expected = (np.nan_to_num(fdr(p, "bh"), nan=1) < 0.05).sum(0)
        assert np.array_equal(draws[b], expected)
    table = result.perm.null_counts
    assert list(table.columns) == ["attribute", "test", "observed", "null_mean", "null_p95", "null_max", "count_p"]
    row = table[(table.attribute == "a") & (table.test == "parametric_bh")].iloc[0]
    assert row.count_p == pytest.approx((1 + (draws[:, 0] >= row.observed).sum()) / 41)


@pytest.mark.slow
def test_command_writes_permutation_tables_and_refuses_bad_input(tmp_path, shared, capsys):
    rng = np.random.default_rng(3)
    emotions = sorted(pd.read_csv(shared / "emotion_attributes" / "attributes.csv").iloc[:, 0])[:9]
    npz = tmp_path / "acts.npz"
    np.savez(
        npz,
        activations=rng.normal(size=(9, 2, 2 * 16)).astype(np.float32),
        emotions=np.array(emotions),
        seeds=np.array([1, 2]),
        layers=2,
        d_ffn=16,
    )
    out = tmp_path / "rank" / "r.csv"
    args = [
        "--activations",
        str(npz),
        "--attributes",
        str(shared / "emotion_attributes"),
        "--output",
        str(out),
        "--permutations",
        "199",
        "--alpha",
        "0.05",
    ]
    assert rsa_searchlight.main(args) == 0
    for suffix in ("_perm_p_value", "_fwer_p_value", "_fwer_global_p_value", "_null_counts", "_tau", "_summary"):
        assert out.with_name(f"r{suffix}.csv").exists()
    fwer = pd.read_csv(out.with_name("r_fwer_p_value.csv"))
    assert fwer.shape == (32, 14) and fwer.min().min() >= 1 / 200
    meta = json.loads(out.with_name("r_meta.json").read_text())
    assert meta["test"] == "permutation" and meta["permutations"] == 199 and meta["correction"] == "maxt"
    null = np.load(out.with_name("r_null.npz"))
    assert null["null_max"].shape == (14, 199) and null["counts_permutation_maxt"].shape == (199, 14)
    assert null["null_max_studentized"].shape == (14, 199)
    survivors = pd.read_csv(out.with_name("r_maxt_survivors.csv")).set_index("attribute")
    assert np.array_equal(survivors["raw_within_0.05"].to_numpy(), (fwer.to_numpy() <= 0.05).sum(0))
    across = pd.read_csv(out.with_name("r_fwer_global_p_value.csv"))
    assert np.array_equal(survivors["studentized_across_0.05"].to_numpy(), (across.to_numpy() <= 0.05).sum(0))
    assert meta["studentize"] == "across" and meta["rank_by"] == "statistic"
    summary = pd.read_csv(out.with_name("r_summary.csv"))
    total = summary[summary.layer == "all"].set_index("attribute")["n_significant"]
    assert np.array_equal(total.to_numpy(), (fwer.to_numpy() <= 0.05).sum(0))
    # the report shows every count beside its null, and its figures use the run's own significance
    from model_emotion.commands import report
    from model_emotion.report.results import load_results

    assert (
        report.main(
            [
                "--results_dir",
                str(out.parent),
                "--output_dir",
                str(tmp_path / "report"),
                "--attributes",
                str(shared / "emotion_attributes"),
            ]
        )
        == 0
    )
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "significant neurons beside their null" in text and "permutation test (max-T)" in text
    loaded = load_results(out.parent)
    assert loaded.test == "permutation" and np.array_equal(loaded.q.to_numpy(), fwer.to_numpy())
    survival = pd.read_csv(tmp_path / "report" / "survival.csv")
    assert list(survival.columns) == [
        "attribute",
        "significant",
        "null_mean",
        "null_p95",
        "count_p",
        "fwer_survivors",
        "fwer_across_survivors",
        "split_half_spearman",
        "split_half_chance",
        "split_half_p_holm",
        "confounded_by",
        "k",
        "selection",
        "drop_beyond_random",
        "drop_ci_low",
        "drop_ci_high",
        "p_random_holm",
        "rank_p_random",
        "n_random_draws",
        "random_draw_skew",
        "drop_beyond_permuted",
        "p_permuted_holm",
        "verdict",
        "min_detectable_drop",
    ]
    assert len(survival) == 14 and np.array_equal(survival.fwer_survivors, (fwer.to_numpy() <= 0.05).sum(0))
    assert "what survives" in text and (tmp_path / "report" / "null_counts_parametric_bh.png").exists()
    # masks of the top k of rankings made under shuffled labels, from the searchlight's _null.npz
    import torch

    from model_emotion.commands import masks as gen_mask
    from model_emotion.masking.records import MASK_KEY
    from model_emotion.rsa.searchlight import rank_by

    pkl = tmp_path / "masks" / "m.pkl"
    assert (
        gen_mask.main(["--CSV_Path", str(out), "--PKL_File", str(pkl), "--thresholds", "5", "--num_random", "1"]) == 0
    )
    masks = torch.load(pkl, weights_only=True)
    kept = null["permuted_stat"].shape[0]
    assert kept == 20 and len(masks) == 14 * (2 + kept)  # top, 1 random draw, every kept permutation (B = 199)
    assert {f"valence_top5_permuted{i}" for i in (1, 2, 3)} <= set(masks)
    ranks = rank_by(null["permuted_stat"][1].astype(float))[:, list(fwer.columns).index("valence")]
    zeros = np.flatnonzero(masks["valence_top5_permuted2"].flatten().numpy() == 0)
    assert set(zeros) == set(np.argsort(ranks, kind="stable")[:5])
    match = MASK_KEY.match("valence_top5_permuted2")
    assert (
        match["attribute"] == "valence"
        and match["permuted"] == "2"
        and MASK_KEY.match("valence_top5_random_2")["draw"] == "2"
    )
    broken = tmp_path / "broken" / "r.csv"
    broken.parent.mkdir()
    for name in ("r.csv", "r_meta.json"):
        (broken.parent / name).write_bytes((out.parent / name).read_bytes())
    np.savez(
        broken.with_name("r_null.npz"),
        permuted_stat=np.zeros((3, 7, 14), np.float32),
        attributes=np.array(list(fwer.columns), dtype=str),
    )
    capsys.readouterr()
    assert (
        cli.run(gen_mask.main, ["--CSV_Path", str(broken), "--PKL_File", str(tmp_path / "m2.pkl"), "--thresholds", "5"])
        == 2
    )
    assert "does not match its rank table" in capsys.readouterr().err and not (tmp_path / "m2.pkl").exists()
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    for bad, message in (
        (["--permutations", "0"], "permutations"),
        (["--permutations", "x"], "permutations"),
        (["--permutations", "400000"], "more than the 362880 distinct permutations"),
        (["--alpha", "0.001", "--overwrite"], "smallest permutation p"),
    ):
        capsys.readouterr()
        try:
            code = cli.run(rsa_searchlight.main, args + bad)
        except SystemExit as exc:  # argparse's own one-line refusal
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if ": error: " in line]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    # another seed is another result: recomputed, not skipped
    assert rsa_searchlight.main(args + ["--perm_seed", "5"]) == 0
    assert json.loads(out.with_name("r_args.json").read_text())["args"]["perm_seed"] == 5
    # the parametric test: its own tables only, no stale permutation tables
    assert rsa_searchlight.main(args + ["--test", "parametric"]) == 0
    assert not out.with_name("r_fwer_p_value.csv").exists()
    assert json.loads(out.with_name("r_meta.json").read_text())["test"] == "parametric"


def test_survival_verdicts_by_hand():
    from model_emotion.report.survival import survival_sentences, survival_table

    counts = pd.DataFrame(
        {
            "attribute": ["a", "b", "all"],
            "test": ["parametric_bh"] * 3,
            "observed": [50, 40, 90],
            "null_mean": [5.0, 60.0, 65.0],
            "null_p95": [20.0, 150.0, 170.0],
            "null_max": [30, 200, 230],
            "count_p": [0.001, 0.6, 0.2],
        }
    )
    fwer = pd.DataFrame({"a": [0.001, 0.5, 0.01], "b": [0.9, 0.8, 0.7]})
    summary = pd.DataFrame(
        {
            "attribute": ["a", "b"],
            "drop_beyond_random": [0.04, 0.0],
            "drop_ci_low": [0.01, -0.02],
            "drop_ci_high": [0.07, 0.02],
            "p_random_holm": [0.004, 0.6],
            "n_random_draws": [40, 40],
            "k": [5, 5],
            "selection": ["held_out", "held_out"],
            "drop_beyond_permuted": [0.03, -0.01],
            "p_permuted_holm": [0.02, 0.9],
        }
    )
    table = survival_table(counts, fwer, None, summary, 0.01).set_index("attribute")
    assert table.loc["a", "fwer_survivors"] == 2 and table.loc["b", "fwer_survivors"] == 0
    assert "more significant neurons than label permutations" in table.loc["a", "verdict"]
    assert "more than permuted-ranking masks" in table.loc["a", "verdict"]
    assert "ablating the top neurons costs more than random masks (Holm p = 0.004)" in table.loc["a", "verdict"]
    assert "does not cost reliably more" in table.loc["b", "verdict"] and "circular" not in table.loc["b", "verdict"]
    assert (
        "within its permutation null" in table.loc["b", "verdict"] and "no neuron survives" in table.loc["b", "verdict"]
    )
    text = " ".join(survival_sentences(table.reset_index(), 0.01))
    assert "for 1 of them the count is above" in text and "neurons survive for 1 of 2 attributes: a." in text
    assert "costs more accuracy than random masks for 1 of 2 attributes (a)" in text and "Holm across the 2" in text
    assert "masks selected on other seeds" in text


def test_min_detectable_drop_by_formula():
    from model_emotion.report.causal import estimate_drop

    index = pd.MultiIndex.from_product([["a", "b", "c", "d"], [1, 2]])
    rng = np.random.default_rng(2)
    top = pd.Series(rng.uniform(0.5, 0.7, 8), index=index)
    random = pd.DataFrame({f"d{i}": top + rng.normal(0.02, 0.02, 8) for i in range(5)}, index=index)
    est = estimate_drop(top, random)
    t = stats.t.isf(0.05, est.df) + stats.t.ppf(0.8, est.df)
    assert est.df == 3 and est.min_detectable == pytest.approx(t * est.se)
    assert est.p == pytest.approx(stats.t.sf(est.drop / est.se, est.df))


@pytest.mark.slow
def test_studentized_max_t_keeps_the_error_and_balances_the_attributes(shared, record_property):
    """300 simulated datasets on the paper's 27 emotions and 14 attribute RDMs, whose permutation nulls
    differ in spread as the real ones do (tau SD from about 0.03 for valence to 0.07 for disgust-face),
    with heavy per-emotion effects and no alignment, then with one neuron planted per attribute for
    valence and disgust-face: the studentized max-T across attributes keeps the family-wise error at
    alpha (as raw does); raw max-T draws its across-attribute null maxima from the wide-null attributes
    and so misses valence's neuron, studentized does not (measured facts, asserted)."""
    rdms = pd.read_csv(shared / "emotion_attributes" / "rdms.csv")
    scores = pd.read_csv(shared / "emotion_attributes" / "attributes.csv").set_index("emotion")
    y, names = rdms.iloc[:, 2:].to_numpy(dtype=float).T, list(rdms.columns[2:])
    emotions = list(dict.fromkeys(list(rdms.emotion_a) + list(rdms.emotion_b)))
    rng = np.random.default_rng(21)
    alpha, B, runs, K = 0.05, 199, 300, 27
    errors = {"raw_across": 0, "studentized_across": 0}
    share = {"raw": np.zeros(len(names)), "studentized": np.zeros(len(names))}
    found = {(v, a): 0 for v in ("raw_across", "studentized_across") for a in ("valence", "disgust-face")}
    for r in range(runs):
        acts = per_emotion_null(rng, K, 3, 40)
        res = searchlight(acts, y, names, test="permutation", permutations=B, perm_seed=r, alpha=alpha)
        for v in errors:
            errors[v] += bool((res.perm.variants[v] <= alpha).any())
        share["raw"] += np.bincount(res.perm.null_max.argmax(0), minlength=len(names)) / (B * runs)
        share["studentized"] += np.bincount(res.perm.null_max_z.argmax(0), minlength=len(names)) / (B * runs)
        if r < 60:  # power: the same null with one neuron per attribute following its ratings
            for i, a in enumerate(("valence", "disgust-face")):
                level = scores.loc[emotions, a].to_numpy()
                acts[:, :, i] = 0.8 * level[:, None] / level.std() + rng.normal(size=(K, 3))
            res = searchlight(acts, y, names, test="permutation", permutations=B, perm_seed=r, alpha=alpha)
            for v, a in list(found):
                i, col = ("valence", "disgust-face").index(a), names.index(a)
                found[v, a] += bool(res.perm.variants[v][i, col] <= alpha)
    mc = 2.5 * math.sqrt(alpha * (1 - alpha) / runs)
    low, high = names.index("valence"), names.index("disgust-face")
    measured = {
        "fwer": {v: n / runs for v, n in errors.items()},
        "null_max_share": {k: (round(s[low], 3), round(s[high], 3)) for k, s in share.items()},
        "power": {f"{v}:{a}": n / 60 for (v, a), n in found.items()},
    }
    record_property("studentized", measured)
    print(measured)
    assert errors["studentized_across"] / runs <= alpha + mc and errors["raw_across"] / runs <= alpha + mc
    assert share["raw"][low] < 0.01 and share["raw"][high] > 0.1  # raw: disgust-face sets the global null
    assert share["studentized"][low] > 0.03 and share["studentized"][high] < 0.1  # studentized: near 1/14 each
    # raw max-T across attributes spends its correction on the narrow-null attribute (valence)
    assert found["studentized_across", "valence"] >= found["raw_across", "valence"] + 12


def test_rank_by_studentized_ranks_on_the_standardized_statistic(tmp_path, shared, capsys):
    rng = np.random.default_rng(8)
    emotions = sorted(pd.read_csv(shared / "emotion_attributes" / "attributes.csv").iloc[:, 0])[:9]
    npz = tmp_path / "acts.npz"
    acts = rng.normal(size=(9, 4, 2 * 12)) * rng.gamma(1.0, size=(1, 1, 24))  # unequal neuron spreads
    np.savez(
        npz, activations=acts.astype(np.float32), emotions=np.array(emotions), seeds=np.arange(1, 5), layers=2, d_ffn=12
    )
    base = ["--activations", str(npz), "--attributes", str(shared / "emotion_attributes"), "--permutations", "99"]
    base += ["--alpha", "0.05", "--attribute_names", "valence", "arousal"]
    out = tmp_path / "r" / "r.csv"
    assert rsa_searchlight.main([*base, "--output", str(out), "--rank_by", "studentized"]) == 0
    from model_emotion.rsa.searchlight import rank_by

    z = pd.read_csv(out.with_name("r_zstat.csv"))
    rank = pd.read_csv(out)
    assert np.allclose(rank.to_numpy(), rank_by(z.to_numpy()), equal_nan=True)
    tau = pd.read_csv(out.with_name("r_tau.csv"))
    assert not np.allclose(rank.to_numpy(), rank_by(tau.to_numpy()), equal_nan=True)  # a different order
    fold = json.loads(out.with_name("r_fold1_meta.json").read_text())
    assert fold["rank_by"] == "studentized" and fold["permutations"] == 100
    capsys.readouterr()
    bad = [*base, "--output", str(tmp_path / "p" / "p.csv"), "--rank_by", "studentized", "--test", "parametric"]
    assert cli.run(rsa_searchlight.main, bad) == 2
    assert "rank_by" in capsys.readouterr().err and not (tmp_path / "p" / "p.csv").exists()


@pytest.mark.parametrize("correction", ["maxt", "maxt_global", "fdr"])
def test_attribute_blocks_and_small_chunks_change_nothing(monkeypatch, correction):
    """The memory bounds (a few attributes' targets at a time, a few neurons per chunk) give the same
    test as one block of everything."""
    rng = np.random.default_rng(13)
    K = 9
    acts = per_emotion_null(rng, K, 2, 30)
    y = attribute_rdms(rng.normal(size=(K, 4)))
    settings = dict(test="permutation", permutations=99, perm_seed=3, alpha=0.05, correction=correction, tail="moments")
    whole = searchlight(acts, y, list("abcd"), **settings)
    monkeypatch.setattr(pm, "TARGET_BYTES", 1)  # one attribute per block
    monkeypatch.setattr(pm, "CHUNK_BYTES", 8 * 100 * 2)  # a neuron or two per chunk
    assert [len(c) for c in pm.attribute_blocks(4, 99, y.shape[1])] == [1, 1, 1, 1]
    blocked = searchlight(acts, y, list("abcd"), **settings)
    for key in ("perm_p", "fwer_p", "fwer_global_p", "null_max", "null_max_z", "z", "permuted_stat"):
        assert np.allclose(getattr(whole.perm, key), getattr(blocked.perm, key), equal_nan=True), key
    pd.testing.assert_frame_equal(whole.perm.null_counts, blocked.perm.null_counts)
    for key, draws in whole.perm.count_draws.items():
        assert np.array_equal(draws, blocked.perm.count_draws[key])


def test_searchlight_survivors_need_every_check():
    from model_emotion.report.survival import COLUMNS, searchlight_survivors, survival_sentences

    table = pd.DataFrame(
        {
            "attribute": ["a", "b", "c", "d"],
            "fwer_survivors": [5, 5, 5, 0],
            "fwer_across_survivors": [2, 0, 3, 0],
            "split_half_p_holm": [0.01, 0.01, 0.2, 0.01],
            "confounded_by": ["none", "none", "none", "none"],
        }
    ).reindex(columns=COLUMNS)
    names, checks = searchlight_survivors(table)
    assert names == ["a"] and "reliable" in checks and "nuisance" in checks
    table.loc[0, "confounded_by"] = "instability"
    assert searchlight_survivors(table)[0] == []
    assert any("every check" in sentence and "0 of 4" in sentence for sentence in survival_sentences(table, 0.05))
