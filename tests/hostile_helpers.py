"""Helpers of the hostile-input tests (tests/test_hostile_*.py): snapshots, the refusal check,
argument lists, a malicious pickle and crafted tensors."""

from __future__ import annotations

import collections
import os
import pickle
import shutil
import warnings
from pathlib import Path

import torch

from model_emotion.commands import cli

BIN = bytes(range(256)) * 4


class Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def snapshot(*roots: Path) -> dict:
    """Every file under the roots with its bytes (what a refused run must leave untouched)."""
    out = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = root.read_bytes()
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() or path.is_symlink():
                    out[str(path)] = path.read_bytes() if path.exists() else b"<dangling link>"
    return out


def refused(capsys, main, argv, *watch: Path) -> str:
    """Run ``main`` through cli.run; assert exit 2, one error line, no traceback, nothing written."""
    before = snapshot(*watch)
    capsys.readouterr()
    try:
        code = cli.run(main, argv)
    except SystemExit as exc:  # argparse's own exit after its one-line message
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert snapshot(*watch) == before, f"outputs changed for {argv}"
    return errors[0]


def _copy_data(lab, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(lab["data"], data)
    return data


def _train_argv(lab, tmp_path, data, **extra):
    return [
        "--sentiment",
        "joy",
        "--model",
        str(lab["model"]),
        "--data_dir",
        str(data),
        "--device",
        "cpu",
        "--checkpoint_dir",
        str(extra.get("ckpt", tmp_path / "ckpt")),
        "--log_dir",
        str(extra.get("log", tmp_path / "log")),
        "--epochs",
        "1",
        "--max_train_samples",
        "16",
        "--max_eval_samples",
        "8",
        "--prompt_len",
        "2",
        "--max_length",
        "32",
    ]


def _eval_argv(lab, tmp_path, masks: Path, out: Path | None = None):
    return [
        "--sentiment",
        "joy",
        "--random_seed",
        "1",
        "--maskPath",
        str(masks),
        "--resultPath",
        str(out or tmp_path / "eval"),
        *lab["common"],
        "--checkpoint_dir",
        str(lab["ckpt"]),
        "--max_eval_samples",
        "8",
    ]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class CraftedTensor:
    """Pickles as the original code's masks do (``_rebuild_tensor_v2`` over a real storage), with any
    offset, size and strides: what a crafted file declares."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def crafted_masks(path: Path, fmt: str, offset=0, size=(2, 48), stride=(48, 1), numel=96, dtype=torch.int8):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage: what the original's files hold
        storage = torch.ones(numel, dtype=dtype).storage()
    tensor = CraftedTensor(storage, offset, size, stride)
    if fmt == "pickle":
        with open(path, "wb") as handle:
            pickle.dump({"valence_top4": tensor}, handle, protocol=2)
    else:
        torch.save({"valence_top4": tensor}, path)
    return path
