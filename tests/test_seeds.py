"""Seed diagnostics: normalisation, split-half reliability beside its chance level, seed influence."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from model_emotion.commands import cli
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.data.ratings import pair_index
from model_emotion.errors import ToolkitError
from model_emotion.rsa.searchlight import neuron_rdms
from model_emotion.rsa.seeds import distance_mass, half_splits, normalize_seeds, seed_influence, seed_reliability


def rdms_of(scores):
    rows, cols = pair_index(scores.shape[0])
    return np.abs(scores[rows] - scores[cols]).T


def test_normalisations_by_hand():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(6, 3, 5)) * np.array([1.0, 3.0, 0.5])[None, :, None]
    acts[:, 1, 2] = 7.0  # a neuron constant over emotions in one seed
    assert np.array_equal(normalize_seeds(acts, "none"), acts)
    z = normalize_seeds(acts, "zscore")
    assert np.allclose(z[:, 0, 0], stats.zscore(acts[:, 0, 0]))
    assert np.all(z[:, 1, 2] == 0)
    scaled = normalize_seeds(acts, "scale")
    assert np.allclose(distance_mass(scaled), 1.0)  # every seed carries the same distance mass
    mass = distance_mass(acts)
    assert mass[1] == pytest.approx(neuron_rdms(acts[:, [1], :]).mean())
    with pytest.raises(ToolkitError, match="seed_normalization"):
        normalize_seeds(acts, "rank")


def test_half_splits_cover_the_seeds_and_need_four():
    splits = half_splits(5, 3)
    assert [name for name, _, _ in splits] == ["odd_even", "random1", "random2", "random3"]
    assert list(splits[0][1]) == [0, 2, 4] and list(splits[0][2]) == [1, 3]
    for _, a, b in splits:
        assert sorted([*a, *b]) == list(range(5)) and len(a) >= 2 and len(b) >= 2
    with pytest.raises(ToolkitError, match="at least 4 seeds"):
        half_splits(3, 1)
    with pytest.raises(ToolkitError, match="splits"):
        half_splits(6, 0)


def test_reliability_is_high_for_a_seed_stable_signal_and_at_chance_when_shuffled():
    rng = np.random.default_rng(1)
    K, S, N = 12, 6, 80
    scores = rng.normal(size=(K, 2))
    stable = rng.normal(size=(K, 1, N))  # the same emotion structure in every seed
    stable[:, :, :10] += 2 * scores[:, None, 0:1]  # 10 neurons follow attribute 0
    acts = stable + 0.3 * rng.normal(size=(K, S, N))
    table = seed_reliability(acts, rdms_of(scores), ["a", "b"], 0.05, splits=2, test="permutation", permutations=99)
    mean = table[table.split == "mean"].set_index("attribute")
    assert set(table.split) == {"odd_even", "random1", "random2", "mean"}
    assert mean.loc["a", "spearman"] > 0.8 and mean.loc["a", "spearman_chance"] < 0.4
    assert mean.loc["a", "jaccard"] > mean.loc["a", "jaccard_chance"]
    # the figures themselves, recomputed for the odd/even split
    from model_emotion.rsa.searchlight import searchlight

    first = searchlight(acts[:, [0, 2, 4]], rdms_of(scores), ["a", "b"]).tau[:, 0]
    second = searchlight(acts[:, [1, 3, 5]], rdms_of(scores), ["a", "b"]).tau[:, 0]
    row = table[(table.split == "odd_even") & (table.attribute == "a")].iloc[0]
    assert row.spearman == pytest.approx(stats.spearmanr(first, second).statistic)
    top = lambda v: set(np.argsort(-v, kind="stable")[:80])  # noqa: E731 - k capped at the neuron count
    assert row.top500_overlap == pytest.approx(len(top(first) & top(second)) / 80)


def test_influence_finds_the_loud_seed():
    rng = np.random.default_rng(2)
    K, S, N = 10, 4, 40
    scores = rng.normal(size=(K, 1))
    acts = rng.normal(size=(K, S, N))
    acts[:, 2] *= 3.0  # seed 2 spreads three times more
    acts[:, 2, :8] += 6 * scores  # and it alone carries an aligned signal
    table = seed_influence(acts, [1, 3, 5, 7], rdms_of(scores), ["a"], 0.05, test="permutation", permutations=99)
    share = table.set_index("seed")["distance_share"]
    assert share.idxmax() == 5 and share.sum() == pytest.approx(1.0)
    row = table.set_index("seed").loc[5]
    assert row.significant_without < row.significant_all <= row.significant_alone + 8


def test_command_writes_diagnostics_and_refuses_too_few_seeds(tmp_path, shared, capsys):
    rng = np.random.default_rng(3)
    emotions = sorted(pd.read_csv(shared / "emotion_attributes" / "attributes.csv").iloc[:, 0])[:10]

    def npz(seeds):
        path = tmp_path / f"acts{seeds}.npz"
        np.savez(
            path,
            activations=rng.normal(size=(10, seeds, 2 * 8)).astype(np.float32),
            emotions=np.array(emotions),
            seeds=np.arange(1, seeds + 1),
            layers=2,
            d_ffn=8,
        )
        return path

    out = tmp_path / "rank" / "r.csv"
    args = [
        "--attributes",
        str(shared / "emotion_attributes"),
        "--output",
        str(out),
        "--permutations",
        "99",
        "--alpha",
        "0.05",
        "--seed_diagnostics",
        "--splits",
        "2",
        "--diagnostic_permutations",
        "49",
        "--seed_normalization",
        "scale",
    ]
    assert rsa_searchlight.main(["--activations", str(npz(4)), *args]) == 0
    reliability = pd.read_csv(out.with_name("r_seed_reliability.csv"))
    influence = pd.read_csv(out.with_name("r_seed_influence.csv"))
    assert {
        "spearman",
        "spearman_chance",
        "jaccard",
        "jaccard_chance",
        "top500_overlap",
        "top4000_overlap_chance",
    } <= set(reliability.columns)
    assert len(influence) == 4 * 14 and set(influence.seed) == {1, 2, 3, 4}
    assert json.loads(out.with_name("r_meta.json").read_text())["seed_normalization"] == "scale"
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    capsys.readouterr()
    assert cli.run(rsa_searchlight.main, ["--activations", str(npz(3)), *args, "--overwrite"]) == 2
    assert "at least 4 seeds" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
