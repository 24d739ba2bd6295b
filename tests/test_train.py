"""Step 1 end to end on tiny in-process models and real GoEmotions rows."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, one_line_error, run_script

from model_emotion.commands import train
from model_emotion.errors import ToolkitError
from model_emotion.lm.loading import load_backbone
from model_emotion.prompts.checkpoint import load_checkpoint, prompt_model_from_checkpoint, save_checkpoint

TRAIN_ARGS = [
    "--epochs",
    "2",
    "--train_batch_size",
    "16",
    "--eval_batch_size",
    "32",
    "--prompt_len",
    "4",
    "--max_length",
    "48",
    "--max_train_samples",
    "64",
    "--max_eval_samples",
    "40",
    "--lr",
    "0.01",
    "--device",
    "cpu",
]


def _train(tmp_path, model, sentiment="joy", seed=1, extra=()):
    argv = [
        "--sentiment",
        sentiment,
        "--random_seed",
        str(seed),
        "--model",
        str(model),
        "--data_dir",
        str(tmp_path.data),
        "--checkpoint_dir",
        str(tmp_path / "ckpt"),
        "--log_dir",
        str(tmp_path / "log"),
        *TRAIN_ARGS,
        *extra,
    ]
    assert train.main(argv) == 0
    return tmp_path / "ckpt" / f"{sentiment}-{seed}.pt"


class WorkDir(type(Path())):
    """A temporary folder that also knows the GoEmotions subset (``.data``)."""


@pytest.fixture
def work(tmp_path, small_goemotions):
    folder = WorkDir(tmp_path)
    folder.data = small_goemotions
    return folder


@pytest.mark.parametrize("which,head", [("tiny_roberta", "mlm"), ("tiny_bert", "linear")])
def test_train_end_to_end(work, request, which, head):
    model = request.getfixturevalue(which)
    path = _train(work, model)
    record = torch.load(path, weights_only=True)
    for key in ("best_prompt", "best_acc", "epoch", "final_prompt", "final_acc", "config", "test_acc"):
        assert key in record
    assert record["config"]["head"] == head
    assert record["best_prompt"].shape == (4, 32)
    assert 0.0 <= record["best_acc"] <= 1.0
    assert (work / "log" / "joy-1.log").read_text().count("train loss") == 2
    if head == "linear":
        assert set(record["best_head"]) == {"head.weight", "head.bias"}


def test_checkpoint_round_trip_and_same_seed_same_accuracy(work, tiny_bert):
    first = _train(work, tiny_bert)
    record = load_checkpoint(first)
    backbone, tokenizer, _ = load_backbone(str(tiny_bert))
    model = prompt_model_from_checkpoint(record, backbone, tokenizer)
    assert torch.equal(model.prompt.detach(), record["best_prompt"])
    assert torch.equal(model.head.weight.detach(), record["best_head"]["head.weight"])
    copy = work / "copy.pt"
    save_checkpoint(copy, record)
    again = load_checkpoint(copy)
    assert torch.equal(again["best_prompt"], record["best_prompt"]) and again["config"] == record["config"]
    # Retraining with the same seed on CPU reproduces the prompt and the accuracy exactly.
    second = _train(work, tiny_bert, extra=["--checkpoint_dir", str(work / "ckpt2")])
    other = load_checkpoint(second)
    assert other["best_acc"] == record["best_acc"] and torch.equal(other["best_prompt"], record["best_prompt"])


def test_original_code_checkpoint_loads(work, tiny_roberta):
    backbone, tokenizer, _ = load_backbone(str(tiny_roberta))
    hidden = backbone.get_input_embeddings().embedding_dim
    prompt = torch.randn(4, hidden)
    path = work / "anger-42.pt"
    torch.save(
        {
            "best_prompt": prompt,
            "best_acc": torch.tensor(0.75),
            "epoch": 3,
            "final_prompt": prompt * 2,
            "final_acc": 0.7,
        },
        path,
    )
    record = load_checkpoint(path, str(tiny_roberta))
    assert record["config"]["sentiment"] == "anger" and record["config"]["seed"] == 42
    assert record["best_acc"] == 0.75 and record["config"]["prompt_len"] == 4
    record["config"]["max_length"] = 48  # the tiny model has 128 positions; the original default is 256
    model = prompt_model_from_checkpoint(record, backbone, tokenizer, state="final")
    assert torch.equal(model.prompt.detach(), prompt * 2)


@pytest.mark.slow
def test_bad_inputs_give_one_line_errors(work, tiny_bert):
    common = [
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(work.data),
        "--checkpoint_dir",
        str(work / "ck"),
        "--log_dir",
        str(work / "log"),
        *TRAIN_ARGS,
    ]
    line = one_line_error(run_script("train.py", "--sentiment", "angry", *common, cwd=work))
    assert "unknown emotion 'angry'" in line and "gratitude" in line
    line = one_line_error(
        run_script("train.py", "--sentiment", "joy", *common, "--model", str(work / "no_model"), cwd=work)
    )
    assert "no such folder" in line
    line = one_line_error(
        run_script("train.py", "--sentiment", "joy", *common, "--data_dir", str(work / "nothing"), cwd=work)
    )
    assert "not a folder" in line
    line = one_line_error(run_script("train.py", "--sentiment", "joy", *common, "--prompt_len", "500", cwd=work))
    assert "prompt too long" in line
    line = one_line_error(run_script("train.py", "--sentiment", "joy", *common, "--epochs", "zero", cwd=work))
    assert "is not an integer" in line


def test_existing_checkpoint_is_kept_without_overwrite(work, tiny_bert):
    path = _train(work, tiny_bert)
    before = path.read_bytes()
    with pytest.raises(ToolkitError, match="exists; pass --overwrite"):
        _train(work, tiny_bert)
    assert path.read_bytes() == before


@pytest.mark.slow
def test_ctrl_c_mid_epoch_leaves_nothing_half_written(work, tiny_bert):
    path = _train(work, tiny_bert)
    before = path.read_bytes()
    # A slow run (many epochs) interrupted with SIGINT (what Ctrl-C sends) while it trains.
    argv = [
        "--sentiment",
        "joy",
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(work.data),
        "--checkpoint_dir",
        str(work / "ckpt"),
        "--log_dir",
        str(work / "log2"),
        *TRAIN_ARGS,
        "--epochs",
        "500",
        "--overwrite",
    ]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *argv],
        cwd=work,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(__import__("os").environ),
    )

    # The log is written to a temporary file beside its place until the run ends: wait until the live
    # one shows the first epoch, so the signal arrives while the run trains.
    def live_log() -> str:
        return "".join(p.read_text() for p in (work / "log2").glob(".joy-1.log.*")) if (work / "log2").is_dir() else ""

    deadline = time.time() + 120
    while time.time() < deadline and "epoch 1/500" not in live_log():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err.splitlines()[-1]
    assert path.read_bytes() == before
    assert not [p for p in (work / "ckpt").iterdir() if p.name.startswith(".")]


def test_jobs_in_one_process_match_single_runs_and_go_on_after_a_failure(work, tiny_bert):
    single = _train(work, tiny_bert, sentiment="fear", seed=3)
    argv = [
        "--jobs",
        "fear-3",
        "anger-5",
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(work.data),
        "--checkpoint_dir",
        str(work / "ckpt"),
        "--log_dir",
        str(work / "log"),
        *TRAIN_ARGS,
    ]
    before = single.read_bytes()
    assert train.main(argv) == 1  # fear-3 exists (reported, kept), anger-5 is trained
    assert single.read_bytes() == before
    batched = load_checkpoint(work / "ckpt" / "anger-5.pt")
    alone = load_checkpoint(
        _train(work, tiny_bert, sentiment="anger", seed=5, extra=["--checkpoint_dir", str(work / "alone")])
    )
    assert torch.equal(batched["best_prompt"], alone["best_prompt"]) and batched["best_acc"] == alone["best_acc"]
    with pytest.raises(ToolkitError, match="must look like EMOTION-SEED"):
        train.main(["--jobs", "anger", "--model", str(tiny_bert), "--data_dir", str(work.data)])


def test_progress_bars_only_on_a_terminal(work, tiny_bert):
    """Run with its output captured (not a terminal), training logs its lines but draws no progress bars."""
    proc = run_script(
        "train.py",
        "--sentiment",
        "joy",
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(work.data),
        "--checkpoint_dir",
        str(work / "ck_bars"),
        "--log_dir",
        str(work / "log_bars"),
        *TRAIN_ARGS,
        "--device",
        "cpu",
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and "\r" not in proc.stderr and "it/s" not in proc.stderr
