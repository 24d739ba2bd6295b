"""A table-driven fuzz: truncated and flipped bytes of every real input file type are read or refused with one ToolkitError.

How a refusal is checked (exit 2, one line, nothing written): ``hostile_helpers.refused``."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_helpers import (
    crafted_masks,
)

from model_emotion.errors import ToolkitError


def _mutations(raw: bytes, rng: np.random.Generator, n: int = 8):
    for i in range(n):
        data = bytearray(raw)
        if i % 2 == 0:
            yield bytes(data[: int(rng.integers(0, max(1, len(data))))])  # truncated
        else:
            for _ in range(int(rng.integers(1, 8))):  # flipped bytes
                pos = int(rng.integers(0, max(1, len(data))))
                if data:
                    data[pos] ^= int(rng.integers(1, 256))
            yield bytes(data)


def _parsers(lab, shared):
    from model_emotion.data.goemotions import load_goemotions
    from model_emotion.data.ratings import load_ratings
    from model_emotion.io.activations import load_activations, read_activation_csv
    from model_emotion.io.files import read_json
    from model_emotion.masking.masks import load_masks
    from model_emotion.prompts.checkpoint import load_checkpoint
    from model_emotion.report import human
    from model_emotion.report.results import load_results, read_rank_table, read_summary

    def in_folder(files: dict, target: str, loader):
        def parse(path: Path):
            folder = path.parent / "folder"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for name, source in files.items():
                shutil.copy(source, folder / name)
            shutil.copy(path, folder / target)
            return loader(folder)

        return parse

    goemotions = {n: lab["data"] / n for n in ("labels.txt", "train.tsv", "dev.tsv", "test.tsv")}
    ratings = {n: lab["ratings"] / n for n in ("attributes.csv", "rdms.csv", "descriptions.csv")}
    people = {n: shared / "human_judgments" / n for n in ("similarity_judgments.csv", "rater_agreement.csv")}
    original = lab["root"] / "original.pkl"
    with open(original, "wb") as handle:
        pickle.dump({"valence_top4": torch.ones(2, 48, dtype=torch.int8)}, handle)
    return [
        ("labels.txt", lab["data"] / "labels.txt", in_folder(goemotions, "labels.txt", load_goemotions)),
        ("dev.tsv", lab["data"] / "dev.tsv", in_folder(goemotions, "dev.tsv", load_goemotions)),
        ("attributes.csv", lab["ratings"] / "attributes.csv", in_folder(ratings, "attributes.csv", load_ratings)),
        ("rdms.csv", lab["ratings"] / "rdms.csv", in_folder(ratings, "rdms.csv", load_ratings)),
        ("descriptions.csv", lab["ratings"] / "descriptions.csv", in_folder(ratings, "descriptions.csv", load_ratings)),
        ("activations.npz", lab["acts"] / "activations.npz", load_activations),
        ("activation csv", lab["acts"] / "joy-1.csv", read_activation_csv),
        ("rank csv", lab["rank"], read_rank_table),
        ("summary csv", Path(f"{lab['rank'].with_suffix('')}_summary.csv"), read_summary),
        ("masks (toolkit)", lab["pkl"], load_masks),
        ("masks (original pickle)", original, load_masks),
        ("checkpoint", lab["ckpt"] / "joy-1.pt", load_checkpoint),
        ("eval json", lab["results"] / "joy-1.json", lambda p: read_json(p, dict)),
        (
            "results folder json",
            lab["results"] / "joy-1.json",
            lambda p: load_results(in_folder({}, "joy-1.json", lambda f: f)(p)),
        ),
        (
            "similarity judgments",
            shared / "human_judgments" / "similarity_judgments.csv",
            in_folder(people, "similarity_judgments.csv", human.load_human),
        ),
        (
            "rater agreement",
            shared / "human_judgments" / "rater_agreement.csv",
            in_folder(people, "rater_agreement.csv", human.load_human),
        ),
    ]


def _check_parse(name, parse, path, i):
    try:
        parse(path)
    except ToolkitError as exc:
        assert "\n" not in str(exc), (name, i, str(exc))
    except Exception as exc:  # noqa: BLE001 - this is what the test is for
        pytest.fail(f"{name}, case {i}: {type(exc).__name__}: {exc}")


def _fuzz(lab, shared, tmp_path, per_reader: int) -> int:
    rng = np.random.default_rng(per_reader)
    tried = 0
    for name, source, parse in _parsers(lab, shared):
        raw = source.read_bytes()
        if len(raw) > 200_000:
            raw = raw[:200_000]
        for i, mutated in enumerate(_mutations(raw, rng, per_reader)):
            path = tmp_path / f"case{tried % 50}{source.suffix}"
            path.write_bytes(mutated)
            _check_parse(name, parse, path, i)
            tried += 1
    return tried


def _crafted(kind: str, rng: np.random.Generator, path: Path) -> None:
    """A file whose header declares random sizes, strides, offsets, shapes or nesting."""
    import io
    import zipfile

    dims = int(rng.integers(0, 4))
    size = tuple(int(v) for v in rng.choice([0, 1, 2, 3, 48, 96, 10**6, 2**40], size=dims))
    stride = tuple(int(v) for v in rng.choice([-1, 0, 1, 2, 48, 96, 2**40], size=dims))
    offset = int(rng.choice([0, 1, 50, 95, 96, 2**40]))
    if kind in ("pickle", "torch.save"):
        crafted_masks(path, kind, offset=offset, size=size, stride=stride, numel=int(rng.choice([0, 1, 96])))
    elif kind == "npz":
        buffer = io.BytesIO()
        shape = tuple(int(v) for v in rng.choice([0, 1, 4, 27, 10**6, 10**12], size=dims))
        np.lib.format.write_array_header_1_0(
            buffer,
            {
                "descr": str(rng.choice(["<f4", "<f8", "|u1", "<i8"])),
                "fortran_order": bool(rng.integers(0, 2)),
                "shape": shape,
            },
        )
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("activations.npy", buffer.getvalue() + bytes(int(rng.integers(0, 64))))
    else:  # json: deep or wide nesting
        depth = int(rng.choice([10, 1000, 100_000]))
        opener, closer = ("[", "]") if rng.integers(0, 2) else ('{"a":', "}")
        path.write_text(opener * depth + "1" + closer * depth)


def _crafted_cases(tmp_path, per_kind: int) -> int:
    from model_emotion.io.activations import load_activations
    from model_emotion.io.files import read_json
    from model_emotion.masking.masks import load_masks

    rng = np.random.default_rng(per_kind)
    readers = {"pickle": load_masks, "torch.save": load_masks, "npz": load_activations, "json": read_json}
    tried = 0
    for kind, parse in readers.items():
        for i in range(per_kind):
            path = tmp_path / f"crafted{i % 20}.{'npz' if kind == 'npz' else 'bin'}"
            _crafted(kind, rng, path)
            _check_parse(f"crafted {kind}", parse, path, i)
            tried += 1
    return tried


def test_fuzzed_inputs_are_read_or_refused_with_one_error(lab, shared, tmp_path):
    """A sample (the fast suite): 30 truncations and byte flips per reader, 30 crafted headers per format."""
    assert _fuzz(lab, shared, tmp_path, 30) == 16 * 30
    assert _crafted_cases(tmp_path, 30) == 4 * 30


@pytest.mark.slow
def test_fuzzed_inputs_at_scale(lab, shared, tmp_path):
    """1,000 truncations and byte flips per reader (16 readers) and 1,000 crafted headers per format."""
    assert _fuzz(lab, shared, tmp_path, 1000) == 16 * 1000
    assert _crafted_cases(tmp_path, 1000) == 4 * 1000
