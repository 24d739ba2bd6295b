"""Hostile mask files: malicious, broken and mislabelled mask pickles never run and are refused in one line.

How a refusal is checked (exit 2, one line, nothing written): ``hostile_helpers.refused``."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch
from conftest import REPO, one_line_error, run_script
from hostile_helpers import (
    BIN,
    Evil,
    _eval_argv,
    refused,
)

from model_emotion.commands import eval as eval_mask_neuron


@pytest.mark.slow
def test_malicious_masks_never_run(capsys, lab, tmp_path):
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as handle:
        pickle.dump({"valence_top4": Evil(marker)}, handle)
    assert "reads safely" in refused(capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, evil), tmp_path / "eval")
    assert not marker.exists()
    # The same as a user runs it: a real process, and the grid runner.
    assert "reads safely" in one_line_error(run_script("eval_mask_neuron.py", *_eval_argv(lab, tmp_path, evil)))
    env = {
        **os.environ,
        "MASK_PATH": str(evil),
        "RESULT_PATH": str(tmp_path / "eval"),
        "MODEL": str(lab["model"]),
        "DATA_DIR": str(lab["data"]),
        "CHECKPOINT_DIR": str(lab["ckpt"]),
        "EMOTIONS": "joy",
        "SEEDS": "1",
        "MAX_EVAL_SAMPLES": "8",
        "DEVICE": "cpu",
        "PYTHON": sys.executable,
    }
    proc = subprocess.run(["bash", str(REPO / "eval.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "reads safely" in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "eval" / "joy-1.json").exists()


def test_eval_refuses_broken_masks_and_values(capsys, lab, tmp_path):
    bad = tmp_path / "bad.pkl"
    cases = [BIN, b"", pickle.dumps([1, 2]), pickle.dumps({"a": torch.ones(3)})]
    nan_mask = torch.ones(2, 48)
    nan_mask[0, 0] = float("nan")
    cases.append(pickle.dumps({"valence_top4": nan_mask}))
    cases.append(pickle.dumps({"valence_top4": torch.ones(3, 7)}))  # wrong shape for the model
    for content in cases:
        bad.write_bytes(content)
        refused(capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, bad), tmp_path / "eval")
    for flags in (
        ["--eval_batch_size", "0"],
        ["--accuracy_mean", "per_batch"],
        ["--random_seed", "-2"],
        ["--device", "meta"],
    ):
        refused(capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, lab["pkl"]) + flags, tmp_path / "eval")
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert "not a writable folder" in refused(
        capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, lab["pkl"], blocker / "out"), tmp_path
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda: {"valence_top4": torch.full((2, 48), -3, dtype=torch.int64)}, "holds the value -3"),
        (lambda: {"valence_top4": torch.full((2, 48), 255, dtype=torch.uint8)}, "holds the value 255"),
        (lambda: {"valence_top4": torch.full((2, 48), 1.5)}, "outside [0, 1]"),
        (lambda: {"valence_top4": torch.full((2, 48), -0.1)}, "outside [0, 1]"),
        (lambda: {"valence_top4": torch.empty(2, 48, device="meta")}, "reads safely (refused global"),
        (lambda: {"valence_top4": torch.eye(48)[:2].to_sparse()}, "reads safely"),
        (
            lambda: {"valence_top4": torch.ones(2, 48, dtype=torch.complex64)},
            "refused global torch.ComplexFloatStorage",
        ),
        (lambda: {"=1+2": torch.ones(2, 48, dtype=torch.int8)}, "not a valid name"),
        (lambda: {"a/b_top4": torch.ones(2, 48, dtype=torch.int8)}, "not a valid name"),
        (lambda: {"x" * 5000: torch.ones(2, 48, dtype=torch.int8)}, "not a valid name"),
    ],
    ids=[
        "int64 -3",
        "uint8 255",
        "float 1.5",
        "float -0.1",
        "meta",
        "sparse",
        "complex",
        "formula",
        "slash",
        "5000 chars",
    ],
)
def test_mask_values_and_names_are_checked(capsys, lab, tmp_path, content, message):
    path = tmp_path / "m.pkl"
    torch.save(content(), path)
    assert message in refused(capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, path), tmp_path / "eval")


def test_a_folder_as_masks_path_is_named_as_such(capsys, lab, tmp_path):
    assert "is a folder" in refused(
        capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, tmp_path), tmp_path / "eval"
    )
