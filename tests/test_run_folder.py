"""The run folder's one staleness mechanism (run_folder): one record, one rule, used by every stage that
skips finished work; older run folders (provenance.json, the provenance key, digests in _args.json)
are still read."""

import json

import numpy as np
import pytest

from model_emotion import MaskConfig, RSAConfig, run_folder, run_masks, run_rsa
from model_emotion.data.goemotions import EMOTIONS
from model_emotion.io.activations import ActivationSet, save_npz


def test_the_rule():
    current = {"inputs": {"checkpoint": "a"}, "settings": {"state": "best", "model": "m"}}
    assert run_folder.changes(None, current) is None  # no record: an older version wrote it
    assert run_folder.changes(current, current) == []
    assert run_folder.changes({**current, "settings": {"state": "final", "model": "m"}}, current) == ["state"]
    assert run_folder.changes({"inputs": {"checkpoint": "b"}, "settings": {}}, current) == ["checkpoint"]
    # a setting the record does not name (added by a later version) is not compared
    assert run_folder.changes({"inputs": {"checkpoint": "a"}, "settings": {"state": "best"}}, current) == []
    for malformed in ("x", {"inputs": None}, {"settings": [1]}):
        assert run_folder.changes(malformed, current) == ["record"]


def test_an_output_edited_since_it_was_written_is_stale(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("a\n1\n")
    record = run_folder.with_output(run_folder.made_from({}, {"k": 1}), out)
    assert run_folder.changes(record, run_folder.made_from({}, {"k": 1}), out) == []
    out.write_text("a\n2\n")
    assert run_folder.changes(record, run_folder.made_from({}, {"k": 1}), out) == ["output"]


def test_old_records_read_as_today_s():
    old_eval = {"settings": {"masks_sha256": "m", "checkpoint_sha256": "c", "split": "dev"}, "examples_sha256": "e"}
    assert run_folder.result_record({"provenance": old_eval}) == {
        "inputs": {"masks": "m", "checkpoint": "c"},
        "settings": {"split": "dev"},
        "examples_sha256": "e",
    }
    assert run_folder.result_record({}) is None
    assert run_folder.changes(run_folder.result_record({"provenance": "x"}), {"inputs": {}, "settings": {}}) == [
        "record"
    ]


@pytest.fixture
def acts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "acts" / "activations.npz"
    path.parent.mkdir()
    save_npz(path, ActivationSet(rng.normal(size=(27, 2, 16)).astype(np.float32), list(EMOTIONS), [1, 2], 2, 8))
    return path


def mtime(path):
    return path.stat().st_mtime_ns


def test_searchlight_and_masks_records_and_their_older_form(acts, shared, tmp_path):
    rank = tmp_path / "rank" / "r.csv"
    config = RSAConfig(activations=acts, attributes=str(shared / "emotion_attributes"), test="parametric", output=rank)
    assert run_rsa(config) == 0
    meta = json.loads(rank.with_name("r_meta.json").read_text())
    assert set(meta["made_from"]) == {"inputs", "settings", "output_sha256"}
    before = mtime(rank)
    assert run_rsa(config) == 0 and mtime(rank) == before  # up to date: skipped
    # A folder of an older version: no record in the meta file, the digest in r_args.json: still read.
    digest = meta.pop("made_from")["inputs"]["activations"]
    rank.with_name("r_meta.json").write_text(json.dumps(meta))
    args = json.loads(rank.with_name("r_args.json").read_text())
    rank.with_name("r_args.json").write_text(json.dumps({**args, "activations_sha256": digest}))
    assert run_rsa(config) == 0 and mtime(rank) == before
    # ... and still found stale when its input changed
    data = np.load(acts)
    save_npz(acts, ActivationSet(data["activations"] + 1, list(EMOTIONS), [1, 2], 2, 8))
    assert run_rsa(config) == 0 and mtime(rank) != before
    # an edited output is made again
    rank.write_text(rank.read_text().replace("\n1", "\n2", 1))
    edited = rank.read_bytes()
    assert run_rsa(config) == 0 and rank.read_bytes() != edited

    masks = tmp_path / "masks" / "m.pkl"
    mask_config = MaskConfig(csv_path=rank, pkl_file=masks, thresholds=(4,), num_random=1, num_layers=2)
    assert run_masks(mask_config) == 0
    before = mtime(masks)
    assert run_masks(mask_config) == 0 and mtime(masks) == before
    # other settings than the masks were made with: made again (before 0.4.1 only the rank table counted)
    assert run_masks(MaskConfig(**{**mask_config.__dict__, "thresholds": (4, 8)})) == 0 and mtime(masks) != before
    before = mtime(masks)
    meta = json.loads(masks.with_name("m_meta.json").read_text())
    digest = meta.pop("made_from")["inputs"]["rank_table"]
    masks.with_name("m_meta.json").write_text(json.dumps(meta))
    args = json.loads(masks.with_name("m_args.json").read_text())
    masks.with_name("m_args.json").write_text(json.dumps({**args, "rank_sha256": digest}))
    assert run_masks(MaskConfig(**{**mask_config.__dict__, "thresholds": (4, 8)})) == 0 and mtime(masks) == before
