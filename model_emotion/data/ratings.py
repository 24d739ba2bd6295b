"""Human emotion-attribute ratings and the representational dissimilarity matrices (RDMs) built from them.

A ratings folder holds ``attributes.csv`` (one row per emotion, one column per attribute) and,
optionally, ``rdms.csv`` (long format: ``emotion_a, emotion_b`` then one distance column per
attribute) and ``descriptions.csv`` (``attribute, group, description``). When ``rdms.csv`` is
present its distances are used as given; otherwise an attribute's RDM is |score_a - score_b|.
In ``3Spaces`` mode there is one RDM per attribute group: the Euclidean distance over the group's
attribute scores.

RDMs are vectors over the unordered emotion pairs (i < j) of a sorted emotion list, in the order
of ``numpy.triu_indices(n, 1)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model_emotion.errors import ToolkitError
from model_emotion.io.files import read_csv
from model_emotion.util.names import check_emotion_names, check_name, check_names

logger = logging.getLogger(__name__)

MODES = ("14Properties", "3Spaces")
MIN_EMOTIONS = 3


@dataclass(frozen=True)
class Ratings:
    scores: pd.DataFrame  # index: emotion (sorted); columns: attributes; float
    distances: pd.DataFrame | None  # long format or None
    groups: dict[str, list[str]]  # group name -> attribute names
    source: str


@dataclass(frozen=True)
class AttributeRDMs:
    names: list[str]  # attribute (or space) names, the columns of every output table
    emotions: list[str]  # sorted
    rdms: np.ndarray  # [attributes, pairs] float64


def _numeric(frame: pd.DataFrame, path: Path, skip: tuple[str, ...]) -> pd.DataFrame:
    for column in frame.columns:
        if column in skip:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][~np.isfinite(values.to_numpy(float))]
        if len(bad):
            raise ToolkitError(
                f"{path}: column {column!r} has value {bad.iloc[0]!r} (row {bad.index[0] + 2}); "
                f"every attribute value must be a finite number"
            )
        frame[column] = values.astype(float)
    return frame


def load_ratings(path: str | Path) -> Ratings:
    """Read a ratings folder (or an ``attributes.csv`` file, with its siblings when present)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    scores_path = path if path.is_file() else folder / "attributes.csv"
    if not scores_path.exists():
        raise ToolkitError(
            f"attribute ratings not found: {scores_path} (expected a folder with attributes.csv, "
            f"emotion x attribute scores)"
        )
    raw = read_csv(
        scores_path, "an attribute ratings table (an 'emotion' column, then one column per attribute)", ["emotion"]
    )
    raw["emotion"] = raw["emotion"].astype(str)
    dup = raw["emotion"][raw["emotion"].duplicated()]
    if len(dup):
        raise ToolkitError(f"{scores_path}: emotion {dup.iloc[0]!r} appears more than once; one row per emotion")
    if raw.shape[1] < 2:
        raise ToolkitError(f"{scores_path} has no attribute columns")
    check_emotion_names(list(raw["emotion"]), str(scores_path))
    check_names([c for c in raw.columns if c != "emotion"], "attribute", str(scores_path))
    raw = _numeric(raw, scores_path, ("emotion",))
    scores = raw.set_index("emotion").sort_index()

    distances = None
    rdm_path = folder / "rdms.csv"
    if rdm_path.exists():
        distances = read_csv(
            rdm_path,
            "an RDM table (emotion_a, emotion_b, one distance column per attribute)",
            ["emotion_a", "emotion_b"],
        )
        check_names([c for c in distances.columns if c not in ("emotion_a", "emotion_b")], "attribute", str(rdm_path))
        distances = _numeric(distances, rdm_path, ("emotion_a", "emotion_b"))

    groups: dict[str, list[str]] = {}
    desc_path = folder / "descriptions.csv"
    if desc_path.exists():
        desc = read_csv(
            desc_path, "an attribute description table (attribute, group, description)", ["attribute", "group"]
        )
        for attribute, group in zip(desc["attribute"], desc["group"]):
            groups.setdefault(check_name(str(group), "group", str(desc_path)), []).append(str(attribute))
    return Ratings(scores, distances, groups, str(folder))


def parse_groups(specs: list[str] | None) -> dict[str, list[str]] | None:
    """``--groups affective=arousal,valence appraisal=control,fairness`` -> dict."""
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, members = spec.partition("=")
        if not sep or not name or not members:
            raise ToolkitError(f"{{--groups}} entry {spec!r} must look like NAME=attr1,attr2")
        out[name] = [m for m in members.split(",") if m]
    return out


def pair_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def build_rdms(
    ratings: Ratings,
    emotions: list[str],
    mode: str = "14Properties",
    attributes: list[str] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> AttributeRDMs:
    """The attribute RDMs over the emotions shared by the ratings and ``emotions``."""
    if mode not in MODES:
        raise ToolkitError(f"{{--mode}} {mode!r} unknown; choose one of {', '.join(MODES)}")
    shared = sorted(set(emotions) & set(ratings.scores.index))
    if len(shared) < MIN_EMOTIONS:
        raise ToolkitError(
            f"only {len(shared)} emotion(s) are in both the activations and {ratings.source} "
            f"({', '.join(shared) or 'none'}); RSA needs at least {MIN_EMOTIONS}"
        )
    missing = sorted(set(emotions) - set(shared))
    if missing:
        logger.warning("no ratings for %s; RSA uses the %d shared emotions", ", ".join(missing), len(shared))
    rows, cols = pair_index(len(shared))
    if mode == "14Properties":
        names = list(ratings.scores.columns) if not attributes else list(attributes)
        unknown = [a for a in names if a not in ratings.scores.columns]
        if unknown:
            raise ToolkitError(
                f"unknown attribute {', '.join(map(repr, unknown))}; the ratings have: "
                f"{', '.join(ratings.scores.columns)}"
            )
        if ratings.distances is not None:
            rdms = _given_rdms(ratings, shared, names)
        else:
            values = ratings.scores.loc[shared, names].to_numpy(float)  # [emotions, attributes]
            rdms = np.abs(values[rows] - values[cols]).T
    else:
        groups = groups or ratings.groups
        if not groups:
            raise ToolkitError(
                f"3Spaces needs attribute groups: a descriptions.csv beside the ratings "
                f"({ratings.source}) or {{--groups}} NAME=attr1,attr2 ..."
            )
        names = sorted(groups) if not attributes else list(attributes)
        unknown = [g for g in names if g not in groups]
        if unknown:
            raise ToolkitError(f"unknown space {', '.join(map(repr, unknown))}; known: {', '.join(sorted(groups))}")
        rdms = []
        for name in names:
            members = groups[name]
            bad = [a for a in members if a not in ratings.scores.columns]
            if bad:
                raise ToolkitError(f"space {name!r} names unknown attribute(s) {', '.join(bad)}")
            values = ratings.scores.loc[shared, members].to_numpy(float)
            rdms.append(np.sqrt(((values[rows] - values[cols]) ** 2).sum(axis=1)))
        rdms = np.stack(rdms)
    return AttributeRDMs(names, shared, np.ascontiguousarray(rdms, dtype=np.float64))


def _given_rdms(ratings: Ratings, shared: list[str], names: list[str]) -> np.ndarray:
    table = ratings.distances
    unknown = [a for a in names if a not in table.columns]
    if unknown:
        raise ToolkitError(f"rdms.csv in {ratings.source} has no column for {', '.join(unknown)}")
    a = table["emotion_a"].astype(str).to_numpy()
    b = table["emotion_b"].astype(str).to_numpy()
    lookup = {}
    for i, (x, y) in enumerate(zip(a, b)):
        lookup[(x, y)] = i
        lookup[(y, x)] = i
    rows, cols = pair_index(len(shared))
    index = []
    for i, j in zip(rows, cols):
        key = (shared[i], shared[j])
        if key not in lookup:
            raise ToolkitError(f"rdms.csv in {ratings.source} has no row for the pair {key[0]}, {key[1]}")
        index.append(lookup[key])
    return table[names].to_numpy(float)[np.array(index)].T
