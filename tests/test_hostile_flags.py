"""Hostile flag values and names: every stage refuses a bad value, size or name where it enters, with one line and exit 2.

How a refusal is checked (exit 2, one line, nothing written): ``hostile_helpers.refused``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from hostile_helpers import (
    _eval_argv,
    _train_argv,
    refused,
)

from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask
from model_emotion.commands import report, train
from model_emotion.commands import rsa as rsa_searchlight

TRAIN_BAD_FLAGS = [
    ["--lr", "inf"],
    ["--lr", "nan"],
    ["--lr", "-1"],
    ["--lr", "1e300"],
    ["--weight_decay", "nan"],
    ["--random_seed", "-1"],
    ["--random_seed", str(2**32)],
    ["--epochs", "0"],
    ["--eval_batch_size", "0"],
    ["--train_batch_size", "-3"],
    ["--max_train_samples", "0"],
    ["--sentiment", "../escape"],
    ["--sentiment", "a/b"],
    ["--jobs", "joy-x"],
    ["--jobs", "../x-1"],
    ["--device", "meta"],
    ["--negative_sampling", "paper"],
    ["--protocol", "bogus"],
    ["--head", "bogus"],
    ["--prompt_len", "0"],
]


@pytest.mark.parametrize("flags", TRAIN_BAD_FLAGS, ids=lambda f: " ".join(f))
def test_train_refuses_bad_values(capsys, lab, tmp_path, flags):
    out = tmp_path / "ckpt"
    argv = [
        "--sentiment",
        "joy",
        *lab["common"],
        "--checkpoint_dir",
        str(out),
        "--log_dir",
        str(tmp_path / "log"),
        "--epochs",
        "1",
        "--max_train_samples",
        "16",
        *flags,
    ]
    refused(capsys, train.main, argv, tmp_path)
    assert not (out / "joy-1.pt").exists()


def test_train_unwritable_output_fails_before_any_work(capsys, lab, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for key in ("ckpt", "log"):
        line = refused(capsys, train.main, _train_argv(lab, tmp_path, lab["data"], **{key: blocker / "sub"}), tmp_path)
        assert "not a writable folder" in line


@pytest.mark.parametrize(
    "env",
    [
        {"SHARD": "08", "NUM_SHARDS": "9", "DRY_RUN": "1"},
        {"NUM_SHARDS": "010", "DRY_RUN": "1"},
        {"JOBS_PER_PROCESS": "abc"},
        {"EMOTIONS": "*"},
        {"SEEDS": "1 x"},
        {"SHARD": "3", "NUM_SHARDS": "2"},
        {"NUM_SHARDS": "18446744073709551617"},  # 2^64 + 1: wraps to 1 in bash arithmetic
        {"JOBS_PER_PROCESS": "99999999999999999999"},
    ],
)
def test_grid_variables_are_validated_and_never_globbed(tmp_path, env):
    (tmp_path / "joy-1.pt").write_text("a file a glob would find")
    proc = subprocess.run(
        ["bash", str(REPO / "train.sh")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": "false", "EMOTIONS": "joy", "SEEDS": "1", **env},
    )
    if env.get("DRY_RUN") == "1":  # valid base-10 numbers: 08 is eight, 010 is ten
        assert proc.returncode == 0, proc.stderr
        assert "run joy-1" in proc.stdout or "0 to run" in proc.stdout
    else:
        assert proc.returncode == 2 and "error:" in proc.stderr and "joy-1.pt" not in proc.stdout + proc.stderr


def test_sizes_from_flags_and_meta_files_are_bounded(capsys, lab, tmp_path, shared):
    out = tmp_path / "report"
    argv = ["--results_dir", str(lab["root"]), "--output_dir", str(out), "--human_dir", str(shared / "human_judgments")]
    assert "at most 100000" in refused(capsys, report.main, argv + ["--n_boot", "1000000"], out)
    assert "at most 100000" in refused(capsys, report.main, argv + ["--n_boot", "1000000000000"], out)
    rank = tmp_path / "rank" / "r.csv"
    shutil.copytree(lab["rank"].parent, rank.parent)
    meta = json.loads(Path(f"{rank.with_suffix('')}_meta.json").read_text())
    for edit, message in (
        ({"num_layers": 10**12}, "above 100000"),
        ({"num_layers": 4}, "x d_ffn 48 is not its num_neurons 96"),
        ({"num_layers": 4, "d_ffn": 24}, "its _summary.csv 2"),  # consistent in itself, not with the summary
        ({"num_neurons": 192, "num_layers": 4}, "its _meta.json says 192"),
    ):
        Path(f"{rank.with_suffix('')}_meta.json").write_text(json.dumps({**meta, **edit}))
        argv = ["--CSV_Path", str(rank), "--PKL_File", str(tmp_path / "m" / "m.pkl"), "--thresholds", "4"]
        assert message in refused(capsys, gen_mask.main, argv, tmp_path / "m")


def test_names_that_could_inject_are_refused_where_they_enter(capsys, lab, tmp_path):
    for bad in ("=1+2", "<img src=x onerror=alert(1)>", "a/b", "x" * 5000, "@SUM(A1)"):
        ratings = tmp_path / "ratings"
        shutil.rmtree(ratings, ignore_errors=True)
        shutil.copytree(lab["ratings"], ratings)
        table = pd.read_csv(ratings / "attributes.csv")
        table.rename(columns={"valence": bad}).to_csv(ratings / "attributes.csv", index=False)
        argv = [
            "--activations",
            str(lab["acts"] / "activations.npz"),
            "--attributes",
            str(ratings),
            "--output",
            str(tmp_path / "r" / "r.csv"),
            "--test",
            "parametric",
        ]
        assert "not a valid name" in refused(capsys, rsa_searchlight.main, argv, tmp_path / "r")
    rank = tmp_path / "dup.csv"
    rank.write_text("valence,valence\n1,2\n2,1\n")
    argv = [
        "--CSV_Path",
        str(rank),
        "--PKL_File",
        str(tmp_path / "m" / "m.pkl"),
        "--thresholds",
        "1",
        "--num_layers",
        "1",
    ]
    assert "appears more than once" in refused(capsys, gen_mask.main, argv, tmp_path / "m")


def test_duplicate_jobs_are_refused(capsys, lab, tmp_path):
    argv = _eval_argv(lab, tmp_path, lab["pkl"]) + ["--jobs", "joy-1", "joy-1"]
    assert "lists joy-1 twice" in refused(capsys, eval_mask_neuron.main, argv, tmp_path / "eval")
