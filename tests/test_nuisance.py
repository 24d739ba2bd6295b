"""Nuisance RDMs beside the attributes (instability, frequency, length, a user RDM), and the
cross-validated neuron RDM, from the command; bad nuisance input is one line and exit 2."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from model_emotion.commands import cli
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.data.ratings import pair_index
from model_emotion.errors import ToolkitError
from model_emotion.rsa import nuisance as nz


@pytest.fixture()
def run(tmp_path, shared):
    rng = np.random.default_rng(5)
    emotions = sorted(pd.read_csv(shared / "emotion_attributes" / "attributes.csv").iloc[:, 0])[:10]
    acts = rng.normal(size=(10, 4, 2 * 10)) * np.linspace(0.2, 2.0, 10)[:, None, None]  # unequal seed noise
    npz = tmp_path / "acts.npz"
    np.savez(
        npz, activations=acts.astype(np.float32), emotions=np.array(emotions), seeds=np.arange(1, 5), layers=2, d_ffn=10
    )
    args = ["--activations", str(npz), "--attributes", str(shared / "emotion_attributes"), "--permutations", "99"]
    args += ["--alpha", "0.05", "--attribute_names", "valence", "arousal", "novelty"]
    return tmp_path, emotions, acts, args


def test_built_in_nuisances_by_hand(shared):
    from model_emotion.data.goemotions import load_goemotions

    rng = np.random.default_rng(0)
    acts = rng.normal(size=(5, 3, 4))
    rdm = nz.instability_rdm(acts)
    rows, cols = pair_index(5)
    spread = acts.std(axis=1).mean(axis=1)
    assert np.allclose(rdm, spread[rows] + spread[cols])
    data = load_goemotions(shared / "goemotions", splits=("train",))
    emotions = ["anger", "grief", "joy"]
    text = nz.text_rdms(data, emotions)
    train = data.split("train")
    n = [sum(e in labels for labels in train["labels"]) for e in emotions]
    assert text["frequency"][0] == pytest.approx(abs(np.log(n[0]) - np.log(n[1])))  # anger vs grief
    assert n[1] < n[0]  # grief is rare in GoEmotions
    with pytest.raises(ToolkitError, match="at least 2 seeds"):
        nz.instability_rdm(acts[:, :1])


def test_command_tests_nuisances_beside_the_attributes(run, shared):
    tmp_path, emotions, acts, args = run
    rows, cols = pair_index(len(emotions))
    user = tmp_path / "mine.csv"
    spread = acts.std(axis=1).mean(axis=1)
    pd.DataFrame(
        {
            "emotion_a": [emotions[i] for i in rows],
            "emotion_b": [emotions[j] for j in cols],
            "noise": spread[rows] + spread[cols],
        }
    ).to_csv(user, index=False)
    out = tmp_path / "r" / "r.csv"
    assert rsa_searchlight.main([*args, "--output", str(out), "--nuisance", "instability", str(user)]) == 0
    survivors = pd.read_csv(out.with_name("r_nuisance_maxt_survivors.csv"))
    assert list(survivors["attribute"]) == ["instability", "mine:noise"]
    confound = pd.read_csv(out.with_name("r_nuisance_confounds.csv"))
    assert len(confound) == 3 * 2 and {"tau", "perm_p", "perm_p_holm"} <= set(confound.columns)
    ratings = pd.read_csv(shared / "emotion_attributes" / "rdms.csv")
    lookup = {
        frozenset((a, b)): v for a, b, v in ratings[["emotion_a", "emotion_b", "valence"]].itertuples(index=False)
    }
    valence = np.array([lookup[frozenset((emotions[i], emotions[j]))] for i, j in zip(rows, cols)])
    row = confound[(confound.attribute == "valence") & (confound.nuisance == "instability")].iloc[0]
    assert row.tau == pytest.approx(stats.kendalltau(valence, spread[rows] + spread[cols]).statistic)
    # the user RDM equal to the built-in one gives the same test
    assert survivors.iloc[0].drop("attribute").equals(survivors.iloc[1].drop("attribute"))
    assert json.loads(out.with_name("r_meta.json").read_text())["attributes"] == ["valence", "arousal", "novelty"]


def test_bad_nuisance_input_is_one_line(run, capsys):
    tmp_path, emotions, _, args = run
    out = tmp_path / "bad" / "r.csv"
    rows, cols = pair_index(len(emotions))
    other = tmp_path / "other.csv"
    names = ["joy"] + emotions[1:]  # another emotion set
    pd.DataFrame(
        {"emotion_a": [names[i] for i in rows], "emotion_b": [names[j] for j in cols], "x": 1.0 * rows}
    ).to_csv(other, index=False)
    short = tmp_path / "short.csv"
    pd.DataFrame(
        {"emotion_a": [emotions[i] for i in rows], "emotion_b": [emotions[j] for j in cols], "x": 1.0 * rows}
    ).iloc[:-1].to_csv(short, index=False)
    for bad, message in (
        (["--nuisance", str(other)], "emotions differ"),
        (["--nuisance", str(short)], "rows for the"),
        (["--nuisance", "colour"], "neither one of"),
        (["--distance", "crossval", "--seed_diagnostics", "--leave_one_out"], "cannot rank on one seed"),
    ):
        capsys.readouterr()
        assert cli.run(rsa_searchlight.main, [*args, "--output", str(out), *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not out.exists()


def test_crossval_distance_from_the_command(run, shared):
    tmp_path, emotions, acts, args = run
    out = tmp_path / "cv" / "r.csv"
    assert rsa_searchlight.main([*args, "--output", str(out), "--distance", "crossval"]) == 0
    from model_emotion.rsa.searchlight import neuron_rdms

    tau = pd.read_csv(out.with_name("r_tau.csv"))
    assert json.loads(out.with_name("r_meta.json").read_text())["distance"] == "crossval"
    x = neuron_rdms(acts.astype(np.float32), "crossval")
    ratings = pd.read_csv(shared / "emotion_attributes" / "rdms.csv")
    lookup = {
        frozenset((a, b)): v for a, b, v in ratings[["emotion_a", "emotion_b", "valence"]].itertuples(index=False)
    }
    rows, cols = pair_index(len(emotions))
    valence = np.array([lookup[frozenset((emotions[i], emotions[j]))] for i, j in zip(rows, cols)])
    for n in (0, 7):
        assert tau["valence"][n] == pytest.approx(stats.kendalltau(x[n], valence).statistic)
    plain = pd.read_csv(out.with_name("r_tau.csv"))  # the same folder rerun with the paper's distance differs
    assert rsa_searchlight.main([*args, "--output", str(out), "--overwrite"]) == 0
    assert not np.allclose(pd.read_csv(out.with_name("r_tau.csv")).to_numpy(), plain.to_numpy())
