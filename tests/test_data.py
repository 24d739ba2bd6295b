"""GoEmotions loading and the balanced binary task."""

import numpy as np
import pandas as pd
import pytest

from model_emotion.data.goemotions import EMOTIONS, binary_task, check_emotions, load_goemotions
from model_emotion.errors import ToolkitError


def test_loads_tsv_layout(small_goemotions):
    data = load_goemotions(small_goemotions)
    assert data.emotions == EMOTIONS
    train = data.split("train")
    assert len(train) >= 600 and {"text", "labels"} <= set(train.columns)
    assert all(isinstance(labels, tuple) for labels in train["labels"])


def test_full_shared_counts(shared):
    data = load_goemotions(shared / "goemotions")
    assert [len(data.split(s)) for s in ("train", "dev", "test")] == [43410, 5426, 5427]


@pytest.mark.parametrize("emotion", ["gratitude", "realization", "grief"])
def test_binary_task_is_balanced(shared, emotion):
    frame = load_goemotions(shared / "goemotions").split("train")
    task = binary_task(frame, emotion, seed=1)
    n_pos = sum(emotion in labels for labels in frame["labels"])
    assert task.labels.sum() == n_pos and len(task) == 2 * n_pos


def test_negatives_never_carry_the_label(shared):
    frame = load_goemotions(shared / "goemotions").split("train").reset_index(drop=True)
    frame["text"] = [f"{i}:{t}" for i, t in enumerate(frame["text"])]  # make rows identifiable
    lookup = dict(zip(frame["text"], frame["labels"]))
    for emotion in ("anger", "joy", "pride"):
        task = binary_task(frame, emotion, seed=7)
        for text, label in zip(task.texts, task.labels):
            assert (emotion in lookup[text]) == bool(label)


def test_same_seed_same_examples_and_caps(shared):
    frame = load_goemotions(shared / "goemotions").split("dev")
    a = binary_task(frame, "fear", seed=3, split="dev")
    b = binary_task(frame, "fear", seed=3, split="dev")
    c = binary_task(frame, "fear", seed=5, split="dev")
    assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
    assert a.texts != c.texts
    capped = binary_task(frame, "fear", seed=3, split="dev", max_samples=40)
    assert len(capped) == 40 and capped.labels.sum() == 20


def test_unknown_emotion_lists_valid_ones():
    with pytest.raises(ToolkitError, match="valid: admiration amusement"):
        check_emotions(["angry"])


def test_missing_and_malformed_files(tmp_path, small_goemotions):
    with pytest.raises(ToolkitError, match="not a folder"):
        load_goemotions(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ToolkitError, match="holds no GoEmotions files"):
        load_goemotions(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "labels.txt").write_text((small_goemotions / "labels.txt").read_text())
    for split in ("train", "dev", "test"):
        (broken / f"{split}.tsv").write_text("hello\tnot-a-label\tid1\n")
    with pytest.raises(ToolkitError, match="not comma-separated integers"):
        load_goemotions(broken)
    (broken / "dev.tsv").unlink()
    with pytest.raises(ToolkitError, match="missing GoEmotions file"):
        load_goemotions(broken, splits=("dev",))


def test_paper_csv_layout(tmp_path):
    columns = ["text", "classes", "ids"] + list(EMOTIONS) + ["neutral"]
    for split in ("train", "dev", "test"):
        rows = []
        for i, emotion in enumerate(EMOTIONS):
            flags = [1 if e == emotion else 0 for e in EMOTIONS] + [0]
            rows.append([f"text {i}", str(i), f"id{i}"] + flags)
        pd.DataFrame(rows, columns=columns).to_csv(tmp_path / f"{split}.csv", index=False)
    data = load_goemotions(tmp_path)
    assert data.split("dev")["labels"].iloc[2] == ("anger",)
