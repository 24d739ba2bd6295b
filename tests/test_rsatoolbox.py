"""The rsatoolbox adapter: the exported RDMs are the toolkit's, in rsatoolbox's pair order."""

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from scipy.stats import kendalltau

from model_emotion.data.goemotions import EMOTIONS
from model_emotion.data.ratings import build_rdms, load_ratings
from model_emotion.errors import ConfigError, MissingDependencyError
from model_emotion.io.activations import ActivationSet

rsatoolbox = pytest.importorskip("rsatoolbox")


@pytest.fixture(scope="module")
def acts(shared):
    rdms = build_rdms(load_ratings(shared / "emotion_attributes"), list(EMOTIONS))
    rng = np.random.default_rng(0)
    return ActivationSet(
        rng.normal(size=(len(rdms.emotions), 2, 12)).astype(np.float32), list(rdms.emotions), [1, 2], 3, 4
    ), rdms


def test_attribute_rdms_round_trip(acts):
    from model_emotion.rsa.export import attribute_rdms

    _, rdms = acts
    exported = attribute_rdms(rdms)
    assert exported.n_rdm == len(rdms.names) and exported.n_cond == len(rdms.emotions)
    assert exported.rdm_descriptors["name"] == list(rdms.names)
    assert np.allclose(exported.get_matrices()[0], squareform(rdms.rdms[0]))


def test_neuron_rdms_are_mean_absolute_differences(acts):
    from model_emotion.rsa.export import neuron_rdms

    data, rdms = acts
    exported = neuron_rdms(data, [5, 11])
    a = data.activations[:, :, 5].astype(np.float64)  # [emotions, seeds]
    by_hand = np.abs(a[:, None, :] - a[None, :, :]).mean(-1)
    assert np.allclose(exported.get_matrices()[0], by_hand)
    assert exported.rdm_descriptors["layer"] == [1, 2] and exported.rdm_descriptors["unit"] == [1, 3]
    # rsatoolbox's Kendall tau-a on the exported pair vectors equals scipy's tau-a on ours.
    tau = rsatoolbox.rdm.compare(exported[0], rsatoolbox.rdm.RDMs(rdms.rdms[:1]), method="tau-a")[0, 0]
    n = rdms.rdms.shape[1]
    x, y = exported.dissimilarities[0], rdms.rdms[0]
    concordant = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    assert tau == pytest.approx(concordant.sum() / (n * (n - 1)), abs=1e-9)
    assert kendalltau(x, y).statistic == pytest.approx(tau, abs=0.05)
    with pytest.raises(ConfigError, match="outside"):
        neuron_rdms(data, [12])


def test_missing_rsatoolbox_is_named(monkeypatch, acts):
    import builtins

    from model_emotion.rsa import export as rsatoolbox_adapter

    real = builtins.__import__
    monkeypatch.setattr(
        builtins,
        "__import__",
        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "rsatoolbox" else real(name, *a, **k),
    )
    with pytest.raises(MissingDependencyError, match="pip install rsatoolbox"):
        rsatoolbox_adapter.attribute_rdms(acts[1])
