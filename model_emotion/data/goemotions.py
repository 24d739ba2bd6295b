"""GoEmotions loading and the balanced binary task of one emotion.

Three sources give the same in-memory form (one DataFrame per split with ``text`` and
``labels``, a tuple of emotion names per row):

- the Hugging Face hub dataset ``google-research-datasets/go_emotions`` (config ``simplified``),
- a local folder in the original GoEmotions TSV layout (``train.tsv``, ``dev.tsv``, ``test.tsv``,
  ``labels.txt``),
- a local folder in the paper's CSV layout (``train.csv`` ... with one 0/1 column per emotion).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model_emotion.errors import ToolkitError
from model_emotion.io.files import read_csv
from model_emotion.util.names import check_emotion_name

logger = logging.getLogger(__name__)

HUB_ID = "google-research-datasets/go_emotions"
HUB_CONFIG = "simplified"
SPLITS = ("train", "dev", "test")
HUB_SPLIT_NAMES = {"train": "train", "dev": "validation", "test": "test"}
NEUTRAL = "neutral"

# The 27 GoEmotions emotions, alphabetical (the order of labels.txt without "neutral").
EMOTIONS = (
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
)

# The paper's 12 prompt-tuning seeds.
PAPER_SEEDS = (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 42, 100)


@dataclass(frozen=True)
class GoEmotions:
    """Label names and one DataFrame (columns ``text``, ``labels``) per split."""

    label_names: tuple[str, ...]
    splits: dict[str, pd.DataFrame]

    @property
    def emotions(self) -> tuple[str, ...]:
        return tuple(name for name in self.label_names if name != NEUTRAL)

    def split(self, name: str) -> pd.DataFrame:
        if name not in self.splits:
            raise ToolkitError(f"split {name!r} not loaded; have {sorted(self.splits)}")
        return self.splits[name]


def check_emotions(names, valid=EMOTIONS) -> list[str]:
    """Return ``names`` if each is a known emotion, else fail with the list of valid ones."""
    bad = [name for name in names if name not in valid]
    if bad:
        raise ToolkitError(f"unknown emotion {', '.join(map(repr, bad))}; valid: {' '.join(valid)}")
    return list(names)


def load_goemotions(data_dir: str | Path | None = None, splits=SPLITS) -> GoEmotions:
    """Load GoEmotions from ``data_dir`` (TSV or paper CSV layout) or, when None, from the hub."""
    if data_dir is None:
        return _load_hub(splits)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ToolkitError(
            f"{{--data_dir}} {data_dir} is not a folder (expected GoEmotions train.tsv, dev.tsv, "
            f"test.tsv and labels.txt)"
        )
    if (data_dir / "labels.txt").exists() or any((data_dir / f"{s}.tsv").exists() for s in splits):
        return _load_tsv_dir(data_dir, splits)
    if any((data_dir / f"{s}.csv").exists() for s in splits):
        return _load_paper_csv_dir(data_dir, splits)
    raise ToolkitError(
        f"{data_dir} holds no GoEmotions files: expected train.tsv, dev.tsv, test.tsv and "
        f"labels.txt (original layout) or train.csv, dev.csv, test.csv (paper layout)"
    )


def _load_tsv_dir(data_dir: Path, splits) -> GoEmotions:
    labels_path = data_dir / "labels.txt"
    if not labels_path.exists():
        raise ToolkitError(f"missing {labels_path} (one label name per line, line i = label id i)")
    try:
        text = labels_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolkitError(f"{labels_path} is not UTF-8 text (one label name per line)") from None
    label_names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(set(label_names)) != len(label_names) or not label_names:
        raise ToolkitError(f"{labels_path} must list distinct label names, one per line")
    for name in label_names:
        check_emotion_name(name, str(labels_path))
    frames = {}
    for split in splits:
        path = data_dir / f"{split}.tsv"
        if not path.exists():
            raise ToolkitError(f"missing GoEmotions file {path}")
        try:
            raw = pd.read_csv(
                path,
                sep="\t",
                header=None,
                quoting=3,
                dtype=str,
                keep_default_na=False,
                on_bad_lines="error",
                engine="python",
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ToolkitError(f"{path} is not a GoEmotions TSV (text<TAB>label_ids<TAB>id): {reason}") from None
        if raw.shape[1] != 3:
            raise ToolkitError(
                f"{path} has {raw.shape[1]} tab-separated columns; a GoEmotions TSV has 3 (text<TAB>label_ids<TAB>id)"
            )
        raw.columns = ["text", "label_ids", "id"]
        frames[split] = pd.DataFrame(
            {"text": raw["text"], "labels": _parse_label_ids(raw["label_ids"], label_names, path)}
        )
        logger.info("loaded %s: %d rows", path, len(raw))
    return GoEmotions(label_names, frames)


def _parse_label_ids(column: pd.Series, label_names, path: Path) -> list[tuple[str, ...]]:
    out = []
    for row, value in enumerate(column, start=1):
        try:
            ids = [int(part) for part in str(value).split(",")]
        except ValueError:
            raise ToolkitError(f"{path} row {row}: label ids {value!r} are not comma-separated integers") from None
        if any(i < 0 or i >= len(label_names) for i in ids):
            raise ToolkitError(
                f"{path} row {row}: label id in {value!r} outside 0..{len(label_names) - 1} "
                f"(labels.txt has {len(label_names)} names)"
            )
        out.append(tuple(label_names[i] for i in ids))
    return out


def _load_paper_csv_dir(data_dir: Path, splits) -> GoEmotions:
    frames = {}
    label_names: tuple[str, ...] | None = None
    for split in splits:
        path = data_dir / f"{split}.csv"
        if not path.exists():
            raise ToolkitError(f"missing GoEmotions file {path}")
        what = "a GoEmotions CSV in the paper's layout (text,classes,ids,<emotion columns>,neutral)"
        raw = read_csv(path, what, ["text"], keep_default_na=False)
        names = tuple(col for col in raw.columns if col in EMOTIONS or col == NEUTRAL)
        if not names:
            raise ToolkitError(f"{path} is not {what}: no emotion column")
        label_names = label_names or names
        flags = raw[list(names)].apply(pd.to_numeric, errors="coerce")
        if not flags.isin([0, 1]).all().all():
            bad = flags.columns[~flags.isin([0, 1]).all()][0]
            raise ToolkitError(f"{path}: column {bad!r} must hold 0/1 flags")
        labels = [tuple(n for n, f in zip(names, row) if int(f) == 1) for row in flags.to_numpy()]
        frames[split] = pd.DataFrame({"text": raw["text"].astype(str), "labels": labels})
    return GoEmotions(tuple(label_names), frames)


def _load_hub(splits) -> GoEmotions:
    import datasets

    try:
        dataset = datasets.load_dataset(HUB_ID, HUB_CONFIG)
    except Exception as exc:  # noqa: BLE001 - any failure means the hub is unreachable for us
        raise ToolkitError(
            f"could not load {HUB_ID} ({HUB_CONFIG}) from the Hugging Face hub "
            f"({type(exc).__name__}); offline, pass {{--data_dir}} or set ME_DATA_DIR to a local "
            f"GoEmotions folder"
        ) from None
    label_names = tuple(dataset["train"].features["labels"].feature.names)
    frames = {}
    for split in splits:
        part = dataset[HUB_SPLIT_NAMES[split]]
        frames[split] = pd.DataFrame(
            {
                "text": part["text"],
                "labels": [tuple(label_names[i] for i in ids) for ids in part["labels"]],
            }
        )
    return GoEmotions(label_names, frames)


@dataclass(frozen=True)
class BinaryTask:
    """Texts and 0/1 labels of one emotion's balanced binary task on one split."""

    texts: list[str]
    labels: np.ndarray  # [n] int64, 1 = the emotion is labelled

    def __len__(self) -> int:
        return len(self.texts)


def _rng(seed: int, emotion: str, split: str) -> np.random.Generator:
    # Independent, reproducible streams per (seed, emotion, split): adding an emotion or a split
    # never changes the examples drawn for another.
    return np.random.default_rng([seed, zlib.crc32(emotion.encode()), zlib.crc32(split.encode())])


NEGATIVE_SAMPLING = ("exclusive", "paper")


def binary_task(
    frame: pd.DataFrame,
    emotion: str,
    seed: int,
    split: str = "train",
    max_samples: int | None = None,
    negatives: str = "exclusive",
) -> BinaryTask:
    """Positives = rows labelled ``emotion``; negatives = as many rows NOT labelled with it.

    Negatives are drawn without replacement with ``seed``. ``max_samples`` caps the total size
    while keeping the classes balanced (half positives, half negatives).

    ``negatives="paper"`` is the original code's sampler instead (kept for exact reproduction, a
    bug otherwise): ``np.random.seed(seed)`` then as many draws *with replacement from the whole
    split* as there are positives, so some "negatives" are positives (and keep their label 1);
    rows in the original order, positives (file order) first. A cap keeps the first positives.
    """
    if negatives not in NEGATIVE_SAMPLING:
        raise ToolkitError(f"negative sampling {negatives!r} unknown; choose one of {', '.join(NEGATIVE_SAMPLING)}")
    has = np.fromiter((emotion in labels for labels in frame["labels"]), dtype=bool, count=len(frame))
    pos = np.flatnonzero(has)
    neg_pool = np.flatnonzero(~has)
    if len(pos) == 0:
        raise ToolkitError(f"no {split} example is labelled {emotion!r}")
    if negatives == "paper":
        if max_samples is not None:
            pos = pos[: max(1, max_samples // 2)]
        rows = np.concatenate([pos, np.random.RandomState(seed).choice(len(frame), len(pos))])
        return BinaryTask(frame["text"].to_numpy()[rows].tolist(), has[rows].astype(np.int64))
    rng = _rng(seed, emotion, split)
    n_pos = len(pos)
    if max_samples is not None:
        if max_samples < 2:
            raise ToolkitError(f"sample cap {max_samples} is too small: need at least 2 (one per class)")
        n_pos = min(n_pos, max_samples // 2)
    n_pos = min(n_pos, len(neg_pool))
    pos = rng.choice(pos, size=n_pos, replace=False) if n_pos < len(pos) else pos
    neg = rng.choice(neg_pool, size=n_pos, replace=False)
    order = rng.permutation(2 * n_pos)
    rows = np.concatenate([pos, neg])[order]
    labels = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_pos, np.int64)])[order]
    texts = frame["text"].to_numpy()[rows].tolist()
    return BinaryTask(texts, labels)
