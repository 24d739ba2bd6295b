"""The untrusted tensor reader (io/tensors.py): crafted storages, offsets and strides are refused
before anything is built, genuine pickles and torch.save files of every protocol are read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hostile_helpers import (
    _eval_argv,
    crafted_masks,
    refused,
)

from model_emotion.commands import eval as eval_mask_neuron


@pytest.fixture
def trapped_rebuild(monkeypatch):
    """Call it after writing the files: from then on the test fails if torch builds a tensor from a
    file itself (where it would grow a too-small storage and read heap memory as data)."""

    def trap(*args, **kwargs):
        raise AssertionError("torch's own tensor rebuild ran on a file's tensor")

    def arm():
        monkeypatch.setattr(torch._utils, "_rebuild_tensor_v2", trap)
        monkeypatch.setattr(torch.Tensor, "set_", trap)

    return arm


HEAP_AND_BOMB_CASES = [
    ("past the storage", dict(size=(2, 4800), stride=(4800, 1)), "reaches past its storage"),
    ("offset past the storage", dict(offset=90), "reaches past its storage"),
    ("zero strides", dict(size=(40000, 40000), stride=(0, 0)), "zero, negative or overlapping"),
    ("negative stride", dict(stride=(-48, 1)), "zero, negative or overlapping"),
    ("overlapping rows", dict(size=(2, 48), stride=(1, 1)), "zero, negative or overlapping"),
    ("float size", dict(size=(2.0, 48), stride=(48, 1)), "not non-negative integers"),
    ("too many dims", dict(size=(1,) * 9 + (96,), stride=(96,) * 9 + (1,)), "sizes and"),
]


@pytest.mark.parametrize("fmt", ["pickle", "torch.save"])
@pytest.mark.parametrize("case, layout, message", HEAP_AND_BOMB_CASES, ids=[c[0] for c in HEAP_AND_BOMB_CASES])
def test_crafted_tensors_are_refused_before_they_are_built(
    capsys, lab, tmp_path, trapped_rebuild, fmt, case, layout, message
):
    path = crafted_masks(tmp_path / "m.pkl", fmt, **layout)
    trapped_rebuild()
    assert message in refused(capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, path), tmp_path / "eval")


def test_a_genuine_file_reads_under_the_trap(lab, tmp_path, trapped_rebuild):
    from model_emotion.masking.masks import load_masks

    paths = [crafted_masks(tmp_path / f"ok_{fmt}.pkl", fmt) for fmt in ("pickle", "torch.save")]
    trapped_rebuild()
    for path in paths:
        masks = load_masks(path)
        assert masks["valence_top4"].shape == (2, 48) and int(masks["valence_top4"].sum()) == 96


@pytest.mark.parametrize("protocol", range(6))
def test_original_pickles_of_every_protocol_are_read(tmp_path, protocol):
    """pickle.dump with protocols 0-2 (the original's Python 2-era defaults) to 5; tensors and arrays."""
    from model_emotion.masking.masks import load_masks

    rng = np.random.default_rng(protocol)
    want = {
        "valence_top4": torch.from_numpy((rng.random((2, 48)) > 0.5).astype(np.int8)),
        "arousal_top4": torch.from_numpy(rng.random((2, 48)).astype(np.float32)),
        "joy_top4": (rng.random((2, 48)) > 0.5).astype(np.uint8),  # a numpy array, as some scripts save
    }
    path = tmp_path / "m.pkl"
    with open(path, "wb") as handle:
        pickle.dump(want, handle, protocol=protocol)
    got = load_masks(path)
    for name, value in want.items():
        assert torch.equal(got[name], torch.as_tensor(value)), name


def test_legacy_torch_save_and_views_are_read(tmp_path):
    from model_emotion.masking.masks import load_masks

    base = (torch.rand(4, 48) > 0.5).to(torch.int8)
    path = tmp_path / "legacy.pkl"
    torch.save({"valence_top4": base[1:3], "arousal_top4": base[::2]}, path, _use_new_zipfile_serialization=False)
    got = load_masks(path)
    assert torch.equal(got["valence_top4"], base[1:3]) and torch.equal(got["arousal_top4"], base[::2])


# ---- the reader itself, without a stage around it


def test_check_layout_accepts_dense_permuted_and_sliced_views():
    from model_emotion.io.tensors import check_layout

    assert check_layout(12, 0, (3, 4), (4, 1), 100, "f") == ((3, 4), 12)
    assert check_layout(12, 0, (4, 3), (1, 4), 100, "f") == ((4, 3), 12)  # a transpose of a dense block
    assert check_layout(12, 4, (2, 4), (4, 1), 100, "f") == ((2, 4), 8)  # the last two rows
    assert check_layout(12, 11, (1, 1), (99, 99), 100, "f")[1] == 1  # size-1 dims may have any stride
    assert check_layout(0, 0, (0, 5), (5, 1), 100, "f")[1] == 0  # an empty tensor of an empty storage


@pytest.mark.parametrize(
    "offset, size, stride, message",
    [
        (0, (3, 4), (4, 1, 1), "sizes and"),
        (0, (2,) * 9, (1,) * 9, "at most"),
        (0, (3, -4), (4, 1), "non-negative integers"),
        (0, (3, 4.0), (4, 1), "non-negative integers"),
        (True, (3, 4), (4, 1), "non-negative integers"),
        (0, (3, 4), (3, 1), "overlapping"),
        (0, (3, 4), (0, 1), "overlapping"),
        (0, (3, 4), (4, -1), "overlapping"),
        (1, (3, 4), (4, 1), "reaches past"),
        (-1, (3, 4), (4, 1), "reaches past"),
        (0, (11, 11), (11, 1), "above the limit"),
    ],
)
def test_check_layout_refuses_what_would_read_outside_or_twice(offset, size, stride, message):
    from model_emotion.io.tensors import TensorFileError, check_layout

    with pytest.raises(TensorFileError, match=message):
        check_layout(12, offset, size, stride, 100, "f")


def test_the_element_limit_comes_from_the_environment(monkeypatch, tmp_path):
    from model_emotion.errors import ToolkitError
    from model_emotion.io.tensors import LIMIT_ENV, TensorFileError, element_limit, read_tensor_file

    path = tmp_path / "t.pt"
    torch.save({"w": torch.zeros(10, 10)}, path)
    monkeypatch.setenv(LIMIT_ENV, "99")
    assert element_limit() == 99
    with pytest.raises(TensorFileError, match="above the limit of 99"):
        read_tensor_file(path)
    monkeypatch.setenv(LIMIT_ENV, "100")
    assert torch.equal(read_tensor_file(path)["w"], torch.zeros(10, 10))
    for bad in ("0", "-5", "ten", ""):
        monkeypatch.setenv(LIMIT_ENV, bad)
        with pytest.raises(ToolkitError, match=LIMIT_ENV):
            element_limit()


def test_values_round_trip_exactly_in_every_dtype(tmp_path):
    from model_emotion.io.tensors import read_tensor_file

    rng = np.random.default_rng(0)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8, torch.bool):
        x = torch.from_numpy(rng.standard_normal((3, 5)) * 10).to(dtype)
        obj = {"x": x, "t": x.t(), "row": x[1:], "list": [x[0], 3, "s"], "arr": np.arange(4)}
        torch.save(obj, tmp_path / "z.pt")
        back = read_tensor_file(tmp_path / "z.pt")
        assert back["x"].dtype == dtype and torch.equal(back["x"], x)
        assert torch.equal(back["t"], x.t()) and torch.equal(back["row"], x[1:])
        assert back["list"][1:] == [3, "s"] and torch.equal(back["list"][0], x[0])
        np.testing.assert_array_equal(back["arr"], np.arange(4))


def test_globals_outside_the_allowed_set_are_refused_by_name(tmp_path):
    import collections

    from model_emotion.io.tensors import TensorFileError, read_tensor_file

    (tmp_path / "ok.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    assert read_tensor_file(tmp_path / "ok.pkl") == {"a": 1}
    for obj in (collections.Counter("ab"), {"f": np.load}, [print]):
        (tmp_path / "bad.pkl").write_bytes(pickle.dumps(obj))
        with pytest.raises(TensorFileError, match="reads safely"):
            read_tensor_file(tmp_path / "bad.pkl", "mask file")


def test_nesting_and_garbage_are_one_error(tmp_path):
    from model_emotion.io.tensors import TensorFileError, read_tensor_file

    deep: list = []
    for _ in range(200):
        deep = [deep]
    (tmp_path / "deep.pkl").write_bytes(pickle.dumps(deep))
    torch.save(deep, tmp_path / "deep.pt")
    for name in ("deep.pkl", "deep.pt"):
        try:
            read_tensor_file(tmp_path / name)
        except TensorFileError as exc:
            assert "\n" not in str(exc)
    for content in (b"", b"\x80\x05", b"PK\x03\x04junk", bytes(range(256))):
        (tmp_path / "g.pkl").write_bytes(content)
        with pytest.raises(TensorFileError):
            read_tensor_file(tmp_path / "g.pkl")


def test_npz_arrays_are_read_and_object_arrays_refused(tmp_path):
    from model_emotion.io.tensors import TensorFileError, read_npz

    np.savez_compressed(tmp_path / "a.npz", x=np.arange(6.0).reshape(2, 3), y=np.array(["a", "bc"]))
    back = read_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(back["x"], np.arange(6.0).reshape(2, 3))
    assert list(back["y"]) == ["a", "bc"]
    np.savez(tmp_path / "o.npz", o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TensorFileError, match="Python objects"):
        read_npz(tmp_path / "o.npz")
