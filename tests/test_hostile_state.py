"""Hostile run state: stale, edited, partial or concurrent outputs, links, locks and full disks never pass for current.

How a refusal is checked (exit 2, one line, nothing written): ``hostile_helpers.refused``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from hostile_helpers import (
    BIN,
    _eval_argv,
    _train_argv,
    _umask,
    refused,
)

from model_emotion.commands import activations as get_active_neuron
from model_emotion.commands import cli, report, train
from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.errors import ToolkitError


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
