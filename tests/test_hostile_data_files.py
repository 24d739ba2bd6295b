"""Hostile data, checkpoint and weight files: broken GoEmotions files, checkpoints and weights are refused in one line.

How a refusal is checked (exit 2, one line, nothing written): ``hostile_helpers.refused``."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch
from hostile_helpers import (
    BIN,
    Evil,
    _copy_data,
    _train_argv,
    refused,
)

from model_emotion.commands import activations as get_active_neuron
from model_emotion.commands import cli, train
from model_emotion.errors import ToolkitError


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


def test_nan_loss_stops_training_and_keeps_no_checkpoint(capsys, lab, tmp_path):
    argv = _train_argv(lab, tmp_path, lab["data"]) + ["--lr", "1e30"]
    code = cli.run(train.main, argv)
    err = capsys.readouterr().err
    assert code == 2 and "training loss became" in err and "Traceback" not in err
    assert not (tmp_path / "ckpt" / "joy-1.pt").exists()
    log = (tmp_path / "log" / "joy-1.log").read_text()  # the failed run's log is kept, its reason last
    assert "training loss became" in log.splitlines()[-1] and "failed:" in log.splitlines()[-1]
