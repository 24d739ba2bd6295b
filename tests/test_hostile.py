"""Hostile and broken inputs, driven through every script as a user would.

Each case runs a script's ``main`` through ``cli.run`` (what ``__main__`` calls) on real files in a
temporary folder and asserts: exit status 2, exactly one error line, no traceback, and no output
file created or changed. A sample of cases, the malicious pickle among them, also runs as a real
subprocess (and through ``eval.sh``). A table-driven fuzz truncates and flips bytes of every real
input file type and asserts that the parsers either read the file or refuse it with one
``ToolkitError``. Concurrency: two trainings of one prompt, two evaluations of one result file.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, one_line_error, run_script

from model_emotion.commands import activations as get_active_neuron
from model_emotion.commands import cli, report, train
from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.errors import ToolkitError

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


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shared, small_goemotions, tiny_bert):
    """Valid inputs of every kind (built by the real stages), to break one at a time."""
    root = tmp_path_factory.mktemp("hostile")
    ckpt = root / "checkpoint"
    common = ["--model", str(tiny_bert), "--data_dir", str(small_goemotions), "--device", "cpu"]
    assert (
        train.main(
            [
                "--jobs",
                "joy-1",
                "anger-1",
                "fear-1",
                "love-1",
                *common,
                "--checkpoint_dir",
                str(ckpt),
                "--log_dir",
                str(root / "log"),
                "--epochs",
                "1",
                "--prompt_len",
                "2",
                "--max_length",
                "32",
                "--max_train_samples",
                "16",
                "--max_eval_samples",
                "8",
            ]
        )
        == 0
    )
    acts = root / "acts"
    assert (
        get_active_neuron.main(
            ["--model", str(tiny_bert), "--checkpoint_dir", str(ckpt), "--output_dir", str(acts), "--device", "cpu"]
        )
        == 0
    )
    ratings = root / "ratings"
    shutil.copytree(shared / "emotion_attributes", ratings)
    rank = root / "rank" / "r.csv"
    # 4 emotions have 24 permutations, too few for a permutation test at 0.01: the paper's test here
    assert (
        rsa_searchlight.main(
            [
                "--activations",
                str(acts / "activations.npz"),
                "--attributes",
                str(ratings),
                "--output",
                str(rank),
                "--test",
                "parametric",
            ]
        )
        == 0
    )
    pkl = root / "masks" / "m.pkl"
    assert (
        gen_mask.main(["--CSV_Path", str(rank), "--PKL_File", str(pkl), "--thresholds", "4", "--num_random", "1"]) == 0
    )
    results = root / "eval"
    assert (
        eval_mask_neuron.main(
            [
                "--sentiment",
                "joy",
                "--random_seed",
                "1",
                "--maskPath",
                str(pkl),
                "--resultPath",
                str(results),
                *common,
                "--checkpoint_dir",
                str(ckpt),
                "--max_eval_samples",
                "8",
            ]
        )
        == 0
    )
    return {
        "root": root,
        "ckpt": ckpt,
        "acts": acts,
        "ratings": ratings,
        "rank": rank,
        "pkl": pkl,
        "results": results,
        "common": common,
        "data": small_goemotions,
        "model": tiny_bert,
        "shared": shared,
    }


def _copy_data(lab, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(lab["data"], data)
    return data


# ---------------------------------------------------------------- train.py
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


def test_train_refuses_broken_data_files(capsys, lab, tmp_path):
    data = _copy_data(lab, tmp_path)
    labels = (data / "labels.txt").read_text()
    (data / "labels.txt").write_bytes(BIN)
    assert "UTF-8" in refused(capsys, train.main, _train_argv(lab, tmp_path, data), tmp_path)
    (data / "labels.txt").write_text(labels.replace("joy", "../joy"))
    assert "plain word" in refused(capsys, train.main, _train_argv(lab, tmp_path, data), tmp_path)
    (data / "labels.txt").write_text(labels)
    train_tsv = (data / "train.tsv").read_text()
    (data / "train.tsv").write_text("a\t1\tx\tEXTRA\n" * 3)
    assert "4 tab-separated columns" in refused(capsys, train.main, _train_argv(lab, tmp_path, data), tmp_path)
    (data / "train.tsv").write_text("text\tnot,ids\tx\n")
    assert "label ids" in refused(capsys, train.main, _train_argv(lab, tmp_path, data), tmp_path)
    (data / "train.tsv").write_bytes(BIN)
    refused(capsys, train.main, _train_argv(lab, tmp_path, data), tmp_path)
    (data / "train.tsv").write_text(train_tsv)
    # The paper's CSV layout: empty, binary, non-numeric flags.
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for content in (b"", BIN, b"text,classes,ids,joy,neutral\nhello,1,x,yes,0\n"):
        for split in ("train", "dev", "test"):
            (csv_dir / f"{split}.csv").write_bytes(content)
        refused(capsys, train.main, _train_argv(lab, tmp_path, csv_dir), tmp_path)


def test_train_unwritable_output_fails_before_any_work(capsys, lab, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for key in ("ckpt", "log"):
        line = refused(capsys, train.main, _train_argv(lab, tmp_path, lab["data"], **{key: blocker / "sub"}), tmp_path)
        assert "not a writable folder" in line


def test_nan_loss_stops_training_and_keeps_no_checkpoint(capsys, lab, tmp_path):
    argv = _train_argv(lab, tmp_path, lab["data"]) + ["--lr", "1e30"]
    code = cli.run(train.main, argv)
    err = capsys.readouterr().err
    assert code == 2 and "training loss became" in err and "Traceback" not in err
    assert not (tmp_path / "ckpt" / "joy-1.pt").exists()
    log = (tmp_path / "log" / "joy-1.log").read_text()  # the failed run's log is kept, its reason last
    assert "training loss became" in log.splitlines()[-1] and "failed:" in log.splitlines()[-1]


def test_log_is_not_written_through_a_symlink(lab, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "joy-1.log").symlink_to(target)
    assert train.main(_train_argv(lab, tmp_path, lab["data"])) == 0
    assert target.read_text() == "keep me"
    assert (
        not (tmp_path / "log" / "joy-1.log").is_symlink()
        and "train loss" in (tmp_path / "log" / "joy-1.log").read_text()
    )
    mode = (tmp_path / "ckpt" / "joy-1.pt").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_stale_tmp_files_of_a_killed_run_are_removed(lab, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = ckpt / f".joy-1.pt.{int(dead.stdout)}.abcd.tmp"
    stale.write_text("half")
    live = ckpt / f".joy-1.pt.{os.getpid()}.efgh.tmp"
    live.write_text("in progress")
    assert train.main(_train_argv(lab, tmp_path, lab["data"])) == 0
    assert not stale.exists() and live.exists()


# ---------------------------------------------------------------- get_active_neuron.py
def test_get_active_neuron_refuses_bad_checkpoints(capsys, lab, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    marker = tmp_path / "MARKER"
    argv = [
        "--model",
        str(lab["model"]),
        "--checkpoint_dir",
        str(ckpt),
        "--output_dir",
        str(tmp_path / "out"),
        "--device",
        "cpu",
    ]
    with open(ckpt / "joy-1.pt", "wb") as handle:
        pickle.dump({"best_prompt": Evil(marker)}, handle)
    refused(capsys, get_active_neuron.main, argv, tmp_path / "out", ckpt)
    assert not marker.exists()
    (ckpt / "joy-1.pt").write_bytes(BIN)
    assert "not a readable prompt checkpoint" in refused(capsys, get_active_neuron.main, argv, tmp_path / "out", ckpt)
    torch.save({"best_prompt": "text"}, ckpt / "joy-1.pt")
    refused(capsys, get_active_neuron.main, argv, tmp_path / "out", ckpt)
    shutil.copy(lab["ckpt"] / "joy-1.pt", ckpt / "joy-1.pt")
    for flags in (["--seeds", "-1"], ["--device", "meta"], ["--activation_mode", "bogus"]):
        refused(capsys, get_active_neuron.main, argv + flags, tmp_path / "out", ckpt)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    refused(
        capsys, get_active_neuron.main, argv[:-4] + ["--output_dir", str(blocker / "o"), "--device", "cpu"], tmp_path
    )


def test_activations_are_recomputed_after_retraining(lab, tmp_path, caplog):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(lab["ckpt"], ckpt)
    argv = [
        "--model",
        str(lab["model"]),
        "--checkpoint_dir",
        str(ckpt),
        "--output_dir",
        str(tmp_path / "out"),
        "--device",
        "cpu",
    ]
    assert get_active_neuron.main(argv) == 0
    before = np.load(tmp_path / "out" / "activations.npz")["activations"].copy()
    assert get_active_neuron.main(argv) == 0  # unchanged checkpoints: CSVs reused
    record = torch.load(ckpt / "joy-1.pt", weights_only=True)
    record["best_prompt"] = torch.randn(
        record["best_prompt"].shape, generator=torch.Generator().manual_seed(5)
    )  # retrained
    torch.save(record, ckpt / "joy-1.pt")
    assert get_active_neuron.main(argv) == 0
    after = np.load(tmp_path / "out" / "activations.npz")["activations"]
    data = np.load(tmp_path / "out" / "activations.npz")
    joy = list(data["emotions"]).index("joy")
    assert not np.allclose(after[joy], before[joy])
    others = [i for i in range(len(data["emotions"])) if i != joy]
    assert np.array_equal(after[others], before[others])


# ---------------------------------------------------------------- rsa_searchlight.py
def test_rsa_refuses_broken_inputs(capsys, lab, tmp_path):
    out = tmp_path / "rank" / "r.csv"
    npz = lab["acts"] / "activations.npz"
    good = [
        "--activations",
        str(npz),
        "--attributes",
        str(lab["ratings"]),
        "--output",
        str(out),
        "--test",
        "parametric",
    ]
    for flags in (
        ["--num_layers", "-3"],
        ["--alpha", "nan"],
        ["--alpha", "1.5"],
        ["--method", "bogus"],
        ["--device", "meta"],
    ):
        refused(capsys, rsa_searchlight.main, good + flags, tmp_path)
    raw = npz.read_bytes()
    bad_npz = tmp_path / "bad.npz"
    for content in (raw[: len(raw) // 2], BIN, b""):
        bad_npz.write_bytes(content)
        refused(capsys, rsa_searchlight.main, ["--activations", str(bad_npz), *good[2:]], tmp_path / "rank")
    data = dict(np.load(npz))
    data["activations"] = data["activations"].copy()
    data["activations"][0, 0, 0] = np.nan
    np.savez(bad_npz, **data)
    assert "NaN" in refused(capsys, rsa_searchlight.main, ["--activations", str(bad_npz), *good[2:]], tmp_path / "rank")
    ratings = tmp_path / "ratings"
    for name, contents in (
        ("attributes.csv", [b"", BIN, None]),
        ("rdms.csv", [b"", BIN]),
        ("descriptions.csv", [b"", BIN]),
    ):
        for content in contents:
            shutil.rmtree(ratings, ignore_errors=True)
            shutil.copytree(lab["ratings"], ratings)
            if content is None:  # an infinite rating
                table = pd.read_csv(ratings / name)
                table.loc[0, table.columns[1]] = np.inf
                table.to_csv(ratings / name, index=False)
            else:
                (ratings / name).write_bytes(content)
            refused(
                capsys, rsa_searchlight.main, [*good[:2], "--attributes", str(ratings), *good[4:]], tmp_path / "rank"
            )
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    refused(capsys, rsa_searchlight.main, [*good[:4], "--output", str(blocker / "r.csv")], tmp_path / "rank")


# ---------------------------------------------------------------- gen_mask.py
def test_gen_mask_refuses_broken_inputs(capsys, lab, tmp_path):
    out = tmp_path / "masks" / "m.pkl"
    good = ["--CSV_Path", str(lab["rank"]), "--PKL_File", str(out), "--thresholds", "4"]
    for flags in (
        ["--percent", "nan"],
        ["--percent", "inf"],
        ["--percent", "-5"],
        ["--seed", "-1"],
        ["--num_random", "-1"],
        ["--num_layers", "0"],
        ["--thresholds", "0"],
        ["--thresholds", "99999"],
        ["--mask_method", "bogus"],
    ):
        refused(capsys, gen_mask.main, good + flags, tmp_path)
    bad = tmp_path / "rank"
    bad.mkdir()
    for content in (b"", BIN, b"arousal,valence\n1,high\n", b"arousal\n0\n"):
        (bad / "r.csv").write_bytes(content)
        refused(
            capsys,
            gen_mask.main,
            ["--CSV_Path", str(bad / "r.csv"), *good[2:], "--num_layers", "1"],
            tmp_path / "masks",
        )
    shutil.copy(lab["rank"], bad / "r.csv")
    (bad / "r_summary.csv").write_text("attribute,layer,n_significant,n_selective\nvalence,one,1,1\n")
    assert "neither a layer number" in refused(
        capsys, gen_mask.main, ["--CSV_Path", str(bad / "r.csv"), *good[2:]], tmp_path / "masks"
    )
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    refused(
        capsys, gen_mask.main, [*good[:2], "--PKL_File", str(blocker / "m.pkl"), "--thresholds", "4"], tmp_path / "rank"
    )


# ---------------------------------------------------------------- eval_mask_neuron.py
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


def test_eval_result_is_recomputed_when_masks_change(lab, tmp_path):
    out = tmp_path / "eval"
    shutil.copytree(lab["results"], out)
    before = (out / "joy-1.json").read_text()
    assert eval_mask_neuron.main(_eval_argv(lab, tmp_path, lab["pkl"], out)) == 0
    assert (out / "joy-1.json").read_text() == before  # up to date: skipped
    other = tmp_path / "other.pkl"
    assert (
        gen_mask.main(
            ["--CSV_Path", str(lab["rank"]), "--PKL_File", str(other), "--thresholds", "8", "--num_random", "1"]
        )
        == 0
    )
    assert eval_mask_neuron.main(_eval_argv(lab, tmp_path, other, out)) == 0
    result = json.loads((out / "joy-1.json").read_text())
    assert "valence_top8" in result["accuracies"] and "valence_top4" not in result["accuracies"]


def test_one_failing_job_does_not_stop_the_others(capsys, lab, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "anger-1.partial.json").write_text("[1, 2, 3]")  # not a dict: reported for that job only
    (out / "fear-1.partial.json").write_bytes(BIN)
    argv = [
        "--jobs",
        "anger-1",
        "grief-1",
        "fear-1",
        "--maskPath",
        str(lab["pkl"]),
        "--resultPath",
        str(out),
        *lab["common"],
        "--checkpoint_dir",
        str(lab["ckpt"]),
        "--max_eval_samples",
        "8",
    ]
    code = cli.run(eval_mask_neuron.main, argv)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert (out / "anger-1.json").exists() and (out / "fear-1.json").exists()
    assert "grief-1 failed" in err and "checkpoint not found" in err


# ---------------------------------------------------------------- report.py
def test_report_refuses_broken_results(capsys, lab, tmp_path, shared):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier report")
    root = tmp_path / "res"

    def fresh():
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(lab["results"], root / "eval")
        shutil.copytree(lab["rank"].parent, root / "rank")
        shutil.copy(lab["acts"] / "goemotions_prompt_tuning_accuracy.csv", root / "acc.csv")
        (root / "acc.csv").rename(root / "goemotions_prompt_tuning_accuracy.csv")

    argv = ["--results_dir", str(root), "--output_dir", str(out), "--attributes", str(lab["ratings"])]
    breakages = [
        lambda: (root / "eval" / "joy-1.json").write_text('{"sentiment": "joy", "seed": 1, "valence_top4": 0.'),
        lambda: (root / "eval" / "joy-1.json").write_text("[0.5, 0.6]"),
        lambda: (root / "eval" / "joy-1.json").write_text('{"sentiment": "joy", "seed": 1, "valence_top4": "high"}'),
        lambda: (root / "goemotions_prompt_tuning_accuracy.csv").write_bytes(BIN),
        lambda: (root / "goemotions_prompt_tuning_accuracy.csv").write_text("a,b\n1,2\n"),
        lambda: (root / "rank" / "r_summary.csv").write_text(
            "attribute,layer,n_significant,n_selective\nvalence,x,1,1\n"
        ),
        lambda: (root / "rank" / "r_args.json").write_text("{corrupt"),
        lambda: (root / "rank" / "r.csv").write_bytes(b""),
        lambda: (root / "rank" / "r_tau.csv").write_bytes(BIN),
    ]
    for brk in breakages:
        fresh()
        brk()
        refused(capsys, report.main, argv, out, root)
    fresh()
    for flags in (["--k", "999"], ["--alpha", "nan"], ["--n_boot", "-1"], ["--formats", "exe"]):
        refused(capsys, report.main, argv + flags, out, root)
    human = tmp_path / "human"
    human.mkdir()
    (human / "similarity_judgments.csv").write_bytes(BIN)
    refused(capsys, report.main, argv + ["--human_dir", str(human)], out, root)
    assert (out / "keep.txt").read_text() == "an earlier report"


# ---------------------------------------------------------------- shell runners
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


# ---------------------------------------------------------------- fuzz of the parsers
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


# ---------------------------------------------------------------- concurrency
@pytest.mark.slow
def test_two_trainings_of_one_prompt_leave_one_checkpoint(lab, tmp_path):
    argv = [sys.executable, str(REPO / "train.py"), *_train_argv(lab, tmp_path, lab["data"])]
    env = dict(os.environ)
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)][1]
    assert "Traceback" not in loser
    assert any(
        s in loser for s in ("being written by another run", "exists; pass --overwrite", "written by another run")
    )
    record = torch.load(tmp_path / "ckpt" / "joy-1.pt", weights_only=True)
    assert record["best_prompt"].shape[0] == 2
    assert not list((tmp_path / "ckpt").glob("*.lock")) and not list((tmp_path / "ckpt").glob(".*.tmp"))


@pytest.mark.slow
def test_two_evaluations_of_one_result_leave_one_valid_json(lab, tmp_path):
    argv = [sys.executable, str(REPO / "eval_mask_neuron.py"), *_eval_argv(lab, tmp_path, lab["pkl"])]
    env = dict(os.environ)
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert 0 in [p.returncode for p in procs], outs
    for proc, (_, err) in zip(procs, outs):
        assert proc.returncode in (0, 2) and "Traceback" not in err
    result = json.loads((tmp_path / "eval" / "joy-1.json").read_text())
    assert result["sentiment"] == "joy" and "valence_top4" in result["accuracies"]
    assert not list((tmp_path / "eval").glob("*.lock"))


def test_eval_accuracies_that_are_not_an_object_are_refused(tmp_path):
    from model_emotion.report.results import masking_from_json

    bad = tmp_path / "joy-1.json"
    bad.write_text('{"sentiment": "joy", "seed": 1, "accuracies": [0.5, 0.6]}')
    with pytest.raises(ToolkitError, match="'accuracies' is list"):
        masking_from_json([bad])
    old = tmp_path / "anger-1.json"  # the layout before "accuracies" existed is still read
    old.write_text('{"sentiment": "anger", "seed": 1, "unmasked": 0.8, "valence_top4": 0.7}')
    new = tmp_path / "fear-1.json"
    new.write_text('{"sentiment": "fear", "seed": 1, "accuracies": {"unmasked": 0.8, "valence_top4": 0.6}}')
    table = masking_from_json([old, new])
    assert sorted(table["accuracy"]) == [0.6, 0.7] and set(table["unmasked"]) == {0.8}


def test_meta_files_with_wrong_types_are_ignored(tmp_path, caplog):
    from model_emotion.io.files import read_meta, write_meta

    table = tmp_path / "rank.csv"
    write_meta(table, num_layers=6, d_ffn=1536, alpha=0.01, model="m")
    assert read_meta(table) == {"num_layers": 6, "d_ffn": 1536, "alpha": 0.01, "model": "m"}
    (tmp_path / "rank_meta.json").write_text('{"num_layers": "six", "d_ffn": -3, "alpha": true}')
    assert read_meta(table) == {}
    (tmp_path / "rank_meta.json").write_text("[1, 2]")
    with pytest.raises(ToolkitError, match="expected a JSON dict"):
        read_meta(table)


# ---------------------------------------------------------------- round two: crafted tensors, sizes, names, locks
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


def test_weights_that_are_a_pickle_and_deep_json_are_plain_errors(capsys, lab, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(lab["ckpt"], ckpt)
    (ckpt / "joy-1.pt").write_bytes(pickle.dumps({"best_prompt": [1.0, 2.0]}))
    argv = [
        "--model",
        str(lab["model"]),
        "--checkpoint_dir",
        str(ckpt),
        "--output_dir",
        str(tmp_path / "o"),
        "--device",
        "cpu",
    ]
    assert "best_prompt must be" in refused(capsys, get_active_neuron.main, argv, tmp_path / "o")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    from model_emotion.io.files import read_json

    with pytest.raises(ToolkitError, match="nests too deeply"):
        read_json(deep)


def test_npz_headers_are_checked_before_allocation(capsys, lab, tmp_path):
    """An 890-byte activations.npz declaring [4, 1, 1e12] float32: refused from its header."""
    import io
    import zipfile

    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (4, 1, 10**12)}
    np.lib.format.write_array_header_1_0(buffer, header)
    bad = tmp_path / "activations.npz"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("activations.npy", buffer.getvalue() + b"\0" * 16)
        for name, value in (("emotions", np.array(["a", "b", "c", "d"])), ("seeds", np.array([1]))):
            one = io.BytesIO()
            np.save(one, value)
            archive.writestr(f"{name}.npy", one.getvalue())
    assert bad.stat().st_size < 2000
    argv = ["--activations", str(bad), "--attributes", str(lab["ratings"]), "--output", str(tmp_path / "r" / "r.csv")]
    assert "has 4000000000000 elements, above the limit" in refused(capsys, rsa_searchlight.main, argv, tmp_path / "r")


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


def test_csv_cells_are_written_inert(tmp_path):
    from model_emotion.io.files import write_csv
    from model_emotion.report.tables import md_escape
    from model_emotion.util.names import csv_safe

    write_csv(
        tmp_path / "t.csv", pd.DataFrame({"=cmd": ["=1+2", "+x", "-y", "@z", "ok", "\tt"], "v": [-1, 2, 3, 4, 5, 6]})
    )
    text = (tmp_path / "t.csv").read_text().splitlines()
    assert (
        text[0] == "'=cmd,v" and text[1] == "'=1+2,-1" and all(line.startswith(("'", "ok", "\"'")) for line in text[1:])
    )
    assert csv_safe(-3) == -3 and md_escape("<b>|") == "\\<b\\>\\|"


def test_locks_are_whole_and_say_what_they_are(capsys, lab, tmp_path):
    import socket

    from model_emotion.io.files import job_lock

    target = tmp_path / "x.json"
    lock = Path(f"{target}.lock")
    with job_lock(target):
        record = json.loads(lock.read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname() and record["start"]
        with pytest.raises(ToolkitError, match="already being written by this process"):
            with job_lock(target):
                pass
    assert not lock.exists()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 10**20}))  # a 20-digit PID: no such process
    with job_lock(target):
        pass
    lock.write_text("")
    os.utime(lock, (0, 0))  # an old empty lock (a run that died while taking it, before 0.4) is taken over
    with job_lock(target):
        pass
    lock.write_text("")
    with pytest.raises(ToolkitError, match="is empty"):  # a fresh empty one may be a run taking it right now
        with job_lock(target):
            pass
    lock.unlink()
    lock.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ToolkitError, match="dangling symbolic link"):
        with job_lock(target):
            pass
    lock.unlink()
    lock.write_text(json.dumps({"host": "another-host", "pid": 1}))
    with pytest.raises(ToolkitError, match="another run .pid 1 on another-host"):
        with job_lock(target):
            pass
    lock.unlink()
    # rsa and masks take the output's lock too
    rank = tmp_path / "r.csv"
    Path(f"{rank}.lock").write_text(json.dumps({"host": "another-host", "pid": 1}))
    argv = [
        "--activations",
        str(lab["acts"] / "activations.npz"),
        "--attributes",
        str(lab["ratings"]),
        "--output",
        str(rank),
    ]
    assert "being written by another run" in refused(capsys, rsa_searchlight.main, argv)
    pkl = tmp_path / "m.pkl"
    Path(f"{pkl}.lock").write_text(json.dumps({"host": "another-host", "pid": 1}))
    argv = ["--CSV_Path", str(lab["rank"]), "--PKL_File", str(pkl), "--thresholds", "4"]
    assert "being written by another run" in refused(capsys, gen_mask.main, argv)


def test_duplicate_jobs_are_refused(capsys, lab, tmp_path):
    argv = _eval_argv(lab, tmp_path, lab["pkl"]) + ["--jobs", "joy-1", "joy-1"]
    assert "lists joy-1 twice" in refused(capsys, eval_mask_neuron.main, argv, tmp_path / "eval")


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r.update(accuracies="x"),
        lambda r: r["accuracies"].update(unmasked=2.5),
        lambda r: r.update(made_from="x"),
        lambda r: r.update(provenance="x") or r.pop("made_from"),  # an older version's record, malformed
        lambda r: r["correct"].update(unmasked="01"),
    ],
    ids=["accuracies x", "accuracy 2.5", "record x", "old record x", "correct contradicts"],
)
def test_an_invalid_result_is_evaluated_again_not_skipped(lab, tmp_path, edit, capsys):
    out = tmp_path / "eval"
    shutil.copytree(lab["results"], out)
    record = json.loads((out / "joy-1.json").read_text())
    edit(record)
    (out / "joy-1.json").write_text(json.dumps(record))
    assert eval_mask_neuron.main(_eval_argv(lab, tmp_path, lab["pkl"], out)) == 0
    assert json.loads((out / "joy-1.json").read_text()) == json.loads((lab["results"] / "joy-1.json").read_text())
    assert "evaluating again" in capsys.readouterr().err


def test_a_hand_edited_activation_csv_is_recomputed_not_reused(lab, tmp_path, capsys):
    out = tmp_path / "acts"
    argv = [
        "--model",
        str(lab["model"]),
        "--checkpoint_dir",
        str(lab["ckpt"]),
        "--output_dir",
        str(out),
        "--device",
        "cpu",
    ]
    assert get_active_neuron.main(argv) == 0
    original = (out / "joy-1.csv").read_text()
    first = np.load(out / "activations.npz")["activations"].copy()
    (out / "joy-1.csv").write_text(original.replace("0", "9", 5))  # edited by hand
    capsys.readouterr()
    assert get_active_neuron.main(argv) == 0
    assert "was changed since it was written; recomputing" in capsys.readouterr().err
    assert (out / "joy-1.csv").read_text() == original
    assert np.array_equal(np.load(out / "activations.npz")["activations"], first)


def test_report_installs_all_of_its_outputs_or_none(capsys, lab, tmp_path):
    out = tmp_path / "report"
    (out / "report.html").mkdir(parents=True)  # in the way of the last file written
    (out / "keep.txt").write_text("an earlier report")
    argv = ["--results_dir", str(lab["root"]), "--output_dir", str(out)]
    assert "a folder of that name is in the way" in refused(capsys, report.main, argv, out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "report.html"]


def test_a_full_disk_while_torch_saves_is_a_plain_error(capsys, lab, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(torch, "save", full)
    argv = ["--CSV_Path", str(lab["rank"]), "--PKL_File", str(tmp_path / "m" / "m.pkl"), "--thresholds", "4"]
    assert "file write failed; outputs finished before this are kept" in refused(
        capsys, gen_mask.main, argv, tmp_path / "m"
    )
