"""Export the toolkit's RDMs as ``rsatoolbox.rdm.RDMs`` (optional dependency: ``pip install rsatoolbox``).

Both kinds use the same condensed pair order as ``scipy.spatial.distance.squareform`` (and
rsatoolbox): emotion pairs (i, j), i < j, row by row over the sorted emotions.

- ``attribute_rdms``: one RDM per attribute (or attribute space), the human side.
- ``neuron_rdms``: one RDM per chosen neuron, the mean over seeds of |a_i - a_j|, the model side.

From there rsatoolbox's own tools apply, e.g. ``rsatoolbox.rdm.compare(neurons, attributes,
method="tau-a")`` or its inference and plotting modules.
"""

from __future__ import annotations

import numpy as np

from model_emotion.data.ratings import AttributeRDMs
from model_emotion.errors import ConfigError, MissingDependencyError
from model_emotion.io.activations import ActivationSet
from model_emotion.rsa.searchlight import neuron_rdms as _neuron_rdms


def _rsatoolbox():
    try:
        import rsatoolbox
    except ImportError:
        raise MissingDependencyError(
            "exporting RDMs to rsatoolbox needs the rsatoolbox package: pip install rsatoolbox"
        ) from None
    return rsatoolbox


def attribute_rdms(rdms: AttributeRDMs):
    """The attribute RDMs as one ``RDMs`` object: rdm_descriptors ``name``, pattern_descriptors ``emotion``."""
    rsatoolbox = _rsatoolbox()
    return rsatoolbox.rdm.RDMs(
        np.asarray(rdms.rdms, dtype=np.float64),
        dissimilarity_measure="euclidean",
        descriptors={"source": "human attribute ratings"},
        rdm_descriptors={"name": list(rdms.names)},
        pattern_descriptors={"emotion": list(rdms.emotions)},
    )


def neuron_rdms(activations: ActivationSet, neurons, emotions=None):
    """RDMs of the given neurons (flat indices, layer-major) over ``emotions`` (default: all, sorted).

    rdm_descriptors: ``neuron`` and, when the layer count is known, ``layer`` and ``unit``.
    """
    rsatoolbox = _rsatoolbox()
    neurons = [int(n) for n in np.atleast_1d(neurons)]
    total = activations.activations.shape[2]
    bad = [n for n in neurons if not 0 <= n < total]
    if bad:
        raise ConfigError(f"neurons {bad[:5]} are outside 0..{total - 1}")
    emotions = sorted(emotions) if emotions is not None else list(activations.emotions)
    missing = [e for e in emotions if e not in activations.emotions]
    if missing:
        raise ConfigError(f"emotions {missing} are not in the activations ({', '.join(activations.emotions)})")
    rows = [activations.emotions.index(e) for e in emotions]
    values = _neuron_rdms(activations.activations[rows][:, :, neurons])  # [neurons, pairs]
    descriptors = {"neuron": neurons}
    if activations.d_ffn:
        descriptors.update(
            layer=[n // activations.d_ffn for n in neurons], unit=[n % activations.d_ffn for n in neurons]
        )
    return rsatoolbox.rdm.RDMs(
        values,
        dissimilarity_measure="mean absolute difference over seeds",
        descriptors={"source": "model neurons"},
        rdm_descriptors=descriptors,
        pattern_descriptors={"emotion": emotions},
    )
