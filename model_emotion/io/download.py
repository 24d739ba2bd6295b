"""The paper's human attribute ratings, downloaded once from its public data release into a cache.

Source: the repository thunlp/Model_Emotion (branch main). ``score_emotional_PCs.csv`` holds 27
rows of attribute scores in the order of ``reordered_emotions.csv``; ``dist_emotional_PCs.csv``
holds the 351 pairwise distances in R's ``lower.tri`` order over the same emotion order. They are
converted into the toolkit's ratings layout (``attributes.csv``, ``rdms.csv``,
``descriptions.csv``) under ``$ME_CACHE`` (default ``~/.cache/model_emotion``).
"""

from __future__ import annotations

import io
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from model_emotion.defaults import cache_dir
from model_emotion.errors import ToolkitError
from model_emotion.io.files import write_csv

logger = logging.getLogger(__name__)

RAW_BASE = "https://raw.githubusercontent.com/thunlp/Model_Emotion/main/"
SOURCE_FILES = {
    "scores": "Data/preprocessed/emotional_features/score_emotional_PCs.csv",
    "distances": "Data/preprocessed/emotional_features/dist_emotional_PCs.csv",
    "emotions": "Data/preprocessed/reordered_emotions.csv",
}
# The paper's three attribute spaces.
GROUPS = {
    "affective": ["arousal", "valence"],
    "basic-emotion": ["happy-face", "anger-face", "sad-face", "fear-face", "surprise-face", "disgust-face"],
    "appraisal": ["control", "fairness", "self-relativity", "other-relativity", "expectedness", "novelty"],
}


def _fetch(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https source or a user override
        return response.read().decode("utf-8")


def fetch_paper_attributes(dest: str | Path, base_url: str | None = None, timeout: float = 30.0) -> Path:
    """Download the paper's ratings and write them in the toolkit's layout to ``dest``."""
    base = base_url or os.environ.get("ME_ATTRIBUTES_URL") or RAW_BASE
    base = base if base.endswith("/") else base + "/"
    texts = {}
    for key, rel in SOURCE_FILES.items():
        url = base + rel
        try:
            texts[key] = _fetch(url, timeout)
        except (urllib.error.URLError, OSError) as exc:
            raise ToolkitError(
                f"could not download the paper's attribute ratings ({url}: {exc}); offline, pass "
                f"{{--attributes}} DIR or set ME_ATTRIBUTES to a folder with attributes.csv"
            ) from None
    emotions = [line.strip() for line in texts["emotions"].splitlines() if line.strip()]
    scores = pd.read_csv(io.StringIO(texts["scores"]))
    distances = pd.read_csv(io.StringIO(texts["distances"]))
    n = len(emotions)
    if len(scores) != n or len(distances) != n * (n - 1) // 2:
        raise ToolkitError(
            f"unexpected shapes in the downloaded ratings: {len(scores)} score rows, "
            f"{len(distances)} distance rows for {n} emotions"
        )
    scores.insert(0, "emotion", emotions)
    scores = scores.sort_values("emotion")
    pairs = [(emotions[i], emotions[j]) for j in range(n) for i in range(j + 1, n)]  # R's lower.tri order
    distances.insert(0, "emotion_b", [max(a, b) for a, b in pairs])
    distances.insert(0, "emotion_a", [min(a, b) for a, b in pairs])
    distances = distances.sort_values(["emotion_a", "emotion_b"])
    group_of = {a: g for g, members in GROUPS.items() for a in members}
    descriptions = pd.DataFrame({"attribute": [c for c in scores.columns if c != "emotion"]})
    descriptions["group"] = descriptions["attribute"].map(group_of).fillna("other")
    descriptions["description"] = "from thunlp/Model_Emotion " + SOURCE_FILES["scores"]
    dest = Path(dest)
    write_csv(dest / "rdms.csv", distances)
    write_csv(dest / "descriptions.csv", descriptions)
    write_csv(dest / "attributes.csv", scores)  # last: its presence marks a complete cache
    logger.info("downloaded the paper's attribute ratings to %s", dest)
    return dest


def resolve_attributes(path: str | Path | None) -> Path:
    """The ratings folder: ``path`` when given, else the cached (or freshly downloaded) paper ratings."""
    if path:
        return Path(path)
    cached = cache_dir() / "emotion_attributes"
    if (cached / "attributes.csv").exists():
        return cached
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("ME_OFFLINE") == "1":
        raise ToolkitError(
            "no attribute ratings given and offline: pass {--attributes} DIR or set ME_ATTRIBUTES "
            "to a folder with attributes.csv"
        )
    return fetch_paper_attributes(cached)
