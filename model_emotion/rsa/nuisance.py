"""Nuisance RDMs: model RDMs that are not emotion attributes, tested beside them.

A neuron RDM can follow structure that has nothing to do with what humans rate. Three such RDMs come
from the run itself, and any other from a file:

- ``instability``: how unstable each emotion's prompt is across seeds (per emotion, the mean over
  neurons of the SD of its activation across seeds); the RDM is s_i + s_j, since the mean over seeds of
  |a_i - a_j| grows with either emotion's seed noise: an unstable emotion is far from every other;
- ``frequency``: |log n_i - log n_j|, n = the emotion's training examples (GoEmotions train split);
- ``length``: |l_i - l_j|, l = the mean length in characters of the emotion's training texts;
- a CSV path: a user RDM in the attributes' long format (``emotion_a, emotion_b`` and one numeric
  column per RDM), with exactly the run's emotion pairs.

``nuisance_tests`` runs the searchlight's permutation test on them (the same permutations, so the
same null as the attributes') and ``confounds`` gives, per attribute and nuisance, the Kendall tau
between the two RDMs with its emotion-label permutation p: an attribute whose RDM follows a nuisance
cannot be told from it by the attribute test alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model_emotion.data.ratings import pair_index
from model_emotion.errors import ToolkitError
from model_emotion.io.files import read_csv

BUILT_IN = ("instability", "frequency", "length")


def instability_rdm(activations: np.ndarray) -> np.ndarray:
    """s_i + s_j over emotion pairs, s = mean over neurons of the across-seed SD. [emotions, seeds, neurons]"""
    if activations.shape[1] < 2:
        raise ToolkitError(f"the instability nuisance needs at least 2 seeds, got {activations.shape[1]}")
    spread = activations.std(axis=1).mean(axis=1)  # [emotions]
    rows, cols = pair_index(activations.shape[0])
    return spread[rows] + spread[cols]


def text_rdms(data, emotions: list[str]) -> dict[str, np.ndarray]:
    """The frequency and length RDMs from GoEmotions' train split (``data``: a ``GoEmotions``)."""
    train = data.split("train")
    counts, lengths = [], []
    for emotion in emotions:
        texts = train["text"][[emotion in labels for labels in train["labels"]]]
        if texts.empty:
            raise ToolkitError(f"the frequency and length nuisances: no training example of {emotion!r}")
        counts.append(len(texts))
        lengths.append(texts.str.len().mean())
    rows, cols = pair_index(len(emotions))
    log_n, length = np.log(np.array(counts, float)), np.array(lengths, float)
    return {"frequency": np.abs(log_n[rows] - log_n[cols]), "length": np.abs(length[rows] - length[cols])}


def user_rdms(path: Path, emotions: list[str]) -> dict[str, np.ndarray]:
    """The numeric columns of a long-format RDM file, over exactly the run's emotion pairs."""
    table = read_csv(
        path, "a nuisance RDM file (emotion_a, emotion_b, one numeric column per RDM)", ["emotion_a", "emotion_b"]
    )
    columns = [c for c in table.columns if c not in ("emotion_a", "emotion_b")]
    if not columns:
        raise ToolkitError(f"{path}: no RDM column besides emotion_a, emotion_b")
    named = set(table["emotion_a"].astype(str)) | set(table["emotion_b"].astype(str))
    if named != set(emotions):
        other = sorted(named ^ set(emotions))
        raise ToolkitError(f"{path}: its emotions differ from the run's ({', '.join(other[:5])}); give the run's pairs")
    lookup: dict[tuple[str, str], int] = {}
    for i, (a, b) in enumerate(zip(table["emotion_a"].astype(str), table["emotion_b"].astype(str))):
        if a == b or (a, b) in lookup:
            raise ToolkitError(f"{path}: row {i + 2} ({a}, {b}) is a self pair or a pair given twice")
        lookup[(a, b)] = lookup[(b, a)] = i
    rows, cols = pair_index(len(emotions))
    if len(table) != len(rows):
        raise ToolkitError(f"{path}: {len(table)} rows for the {len(rows)} pairs of {len(emotions)} emotions")
    index = np.array([lookup[(emotions[i], emotions[j])] for i, j in zip(rows, cols)])
    out = {}
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
        if not np.isfinite(values).all():
            raise ToolkitError(f"{path}: column {column!r} has a value that is not a finite number")
        out[column] = values[index]
    return out


def nuisance_rdms(specs, activations: np.ndarray, emotions: list[str], data=None) -> tuple[list[str], np.ndarray]:
    """The nuisance RDMs named by ``specs`` (BUILT_IN names or CSV paths), as (names, [nuisances, pairs]).
    ``data`` (a ``GoEmotions``) is needed for frequency and length."""
    found: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec == "instability":
            found["instability"] = instability_rdm(activations)
        elif spec in ("frequency", "length"):
            if data is None:
                raise ToolkitError(f"{{--nuisance}} {spec} needs the GoEmotions data ({{--nuisance_data}})")
            found[spec] = text_rdms(data, emotions)[spec]
        elif Path(spec).is_file():
            found.update({f"{Path(spec).stem}:{k}": v for k, v in user_rdms(Path(spec), emotions).items()})
        else:
            raise ToolkitError(f"{{--nuisance}} {spec!r}: neither one of {', '.join(BUILT_IN)} nor an RDM file")
    constant = [name for name, rdm in found.items() if np.ptp(rdm) == 0]
    if constant:
        raise ToolkitError(f"{{--nuisance}}: the RDM {constant[0]!r} is constant over the emotion pairs")
    return list(found), np.stack(list(found.values()))


def confounds(
    attribute_rdms: np.ndarray,
    names: list[str],
    nuisances: np.ndarray,
    nuisance_names: list[str],
    *,
    permutations: int,
    seed: int,
) -> pd.DataFrame:
    """Per attribute and nuisance: Kendall tau-b between the two RDMs and its two-sided emotion-label
    permutation p (Mantel), Holm across all the pairs."""
    from model_emotion.rsa.fdr import holm
    from model_emotion.rsa.permutation import mantel_p
    from model_emotion.rsa.searchlight import kendall

    n = int(round((1 + np.sqrt(1 + 8 * attribute_rdms.shape[1])) / 2))
    tau, _ = kendall(attribute_rdms, nuisances)  # [A, nuisances]
    p = mantel_p(attribute_rdms, nuisances, n, permutations, seed, alternative="two-sided")
    rows = [
        {"attribute": a, "nuisance": z, "tau": float(tau[i, j]), "perm_p": float(p[i, j])}
        for i, a in enumerate(names)
        for j, z in enumerate(nuisance_names)
    ]
    table = pd.DataFrame(rows)
    table["perm_p_holm"] = holm(table["perm_p"].to_numpy())
    return table
