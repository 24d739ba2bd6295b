"""Intervals for masked evaluation: the two-stage bootstrap over prompts and examples, checked against a
plain double loop and for coverage on simulated data with a known drop; per-example results in eval
JSONs read back, and refused when they contradict the accuracies they sit beside."""

import json

import numpy as np
import pytest

from model_emotion.errors import ToolkitError
from model_emotion.masking.records import correct_of, encode_correct
from model_emotion.report.results import Results, masking_from_json
from model_emotion.report.tables import hierarchical_bootstrap, summary_table


def brute_force_bootstrap(groups, draws, seed):
    """The two-stage bootstrap written as loops: resample prompts, then each drawn prompt's examples."""
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(draws):
        prompt_means = []
        for j in rng.integers(0, len(groups), len(groups)):
            g = groups[j]
            prompt_means.append(g[rng.integers(0, g.size, g.size)].mean())
        means.append(np.mean(prompt_means))
    return np.percentile(means, [2.5, 97.5]), np.std(means, ddof=1)


def simulate(rng, prompts, examples, drop, prompt_sd=0.03):
    """Per prompt, paired per-example differences random-mask minus top-mask correctness with a true
    mean drop ``drop``: each prompt's accuracies vary around 0.75, top masking loses ``drop`` more."""
    groups = []
    for _ in range(prompts):
        base = np.clip(0.75 + rng.normal(0, prompt_sd), 0.05, 0.95)
        random_hits = rng.random(examples) < base
        top_hits = rng.random(examples) < base - drop
        groups.append(random_hits.astype(float) - top_hits.astype(float))
    return groups


def test_bootstrap_matches_the_double_loop():
    rng = np.random.default_rng(1)
    groups = simulate(rng, 6, 40, 0.05)
    low, high, se = hierarchical_bootstrap(groups)
    (b_low, b_high), b_se = brute_force_bootstrap(groups, 20000, 2)
    # same sampling distribution: the 2,000-draw percentiles sit within Monte Carlo error of 20,000 loops
    assert low == pytest.approx(b_low, abs=0.3 * b_se)
    assert high == pytest.approx(b_high, abs=0.3 * b_se)
    assert se == pytest.approx(b_se, rel=0.08)


def test_one_prompt_is_the_bootstrap_over_its_examples():
    groups = [np.r_[np.ones(30), np.zeros(70)]]
    low, high, se = hierarchical_bootstrap(groups)
    assert se == pytest.approx(np.sqrt(0.3 * 0.7 / 100), rel=0.1)
    assert low < 0.3 < high
    assert hierarchical_bootstrap([]) == pytest.approx((np.nan,) * 3, nan_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("drop", [0.0, 0.08])
def test_coverage_on_simulated_runs_with_a_known_drop(drop):
    """Measured coverage of the 95% interval over 300 simulated runs (12 prompts x 64 examples). The
    two-stage bootstrap counts example noise twice (it is already in the prompt means), so it is
    conservative: the measured coverage sits between 0.93 and 1."""
    rng = np.random.default_rng(7)
    covered = 0
    runs = 300
    for i in range(runs):
        low, high, _ = hierarchical_bootstrap(simulate(rng, 12, 64, drop), seed=i)
        covered += low <= drop <= high
    assert 0.93 <= covered / runs <= 1.0


@pytest.mark.slow
def test_power_to_see_a_planted_drop_and_no_false_alarm_without_one():
    rng = np.random.default_rng(11)
    lows_null = [hierarchical_bootstrap(simulate(rng, 12, 64, 0.0), seed=i)[0] for i in range(100)]
    lows_effect = [hierarchical_bootstrap(simulate(rng, 12, 64, 0.1), seed=i)[0] for i in range(100)]
    assert np.mean(np.array(lows_null) > 0) <= 0.06  # one-sided error of "interval above 0"
    assert np.mean(np.array(lows_effect) > 0) >= 0.9  # a 10-point drop on 12 x 64 examples is seen


def eval_record(emotion, seed, hits: dict, per_batch=None):
    from model_emotion.lm.inference import mean_accuracy

    return {
        "sentiment": emotion,
        "seed": seed,
        "n_examples": len(next(iter(hits.values()))),
        "accuracies": {k: mean_accuracy(np.array(v), per_batch) for k, v in hits.items()},
        "correct": {k: encode_correct(v) for k, v in hits.items()},
        "provenance": {"settings": {"per_batch": per_batch}},
    }


def test_per_example_results_round_trip_and_feed_the_summary(tmp_path):
    rng = np.random.default_rng(3)
    files = []
    for e in ("anger", "fear", "joy"):
        for s in (1, 2):
            n = 50
            hits = {
                "unmasked": rng.random(n) < 0.8,
                "valence_top5": rng.random(n) < 0.6,
                "valence_top5_random": rng.random(n) < 0.78,
                "valence_top5_random_2": rng.random(n) < 0.78,
            }
            path = tmp_path / f"{e}-{s}.json"
            path.write_text(json.dumps(eval_record(e, s, hits, per_batch=16 if s == 2 else None)))
            files.append(path)
    masking = masking_from_json(files)
    assert masking["correct"].map(len).eq(50).all()
    table, k = summary_table(Results(masking=masking), None)
    row = table.set_index("attribute").loc["valence"]
    assert k == 5 and row["ci_over"] == "prompts+examples"
    assert row["drop_ci_low"] < row["drop_beyond_random"] < row["drop_ci_high"]
    assert row["top_ci_low"] < row["top_drop"] < row["top_ci_high"]
    assert row["min_detectable_drop"] > 0
    # the same files without the per-example key fall back to the interval over prompts
    for path in files:
        record = json.loads(path.read_text())
        del record["correct"]
        path.write_text(json.dumps(record))
    row = summary_table(Results(masking=masking_from_json(files)), None)[0].set_index("attribute").loc["valence"]
    assert row["ci_over"] == "prompts"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["correct"].update(unmasked="01x1"), "string of 0 and 1"),
        (lambda r: r["correct"].update(valence_top5="0101"), "has 4 examples, not 6"),
        (lambda r: r["accuracies"].update(unmasked=0.123), "gives accuracy"),
        (lambda r: r.update(correct=["0"]), "not an object"),
        (lambda r: r.update(n_examples=7), "n_examples is 7"),
    ],
)
def test_contradicting_per_example_results_are_refused(edit, message):
    record = eval_record("anger", 1, {"unmasked": [1, 0, 1, 1, 0, 1], "valence_top5": [0, 0, 1, 1, 0, 1]})
    assert correct_of(record)["valence_top5"].tolist() == [False, False, True, True, False, True]
    edit(record)
    with pytest.raises(ToolkitError, match=message):
        correct_of(record)
