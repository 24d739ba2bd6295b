"""Shared fixtures: real GoEmotions rows from the shared data, and tiny models built in-process.

Nothing here touches the network. The shared data folder is ``$ME_SHARED_DATA`` or
``../shared/data`` beside the repository.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ME_OFFLINE", "1")


def shared_data() -> Path:
    path = Path(os.environ.get("ME_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not (path / "goemotions" / "train.tsv").exists():
        pytest.skip(f"shared data not found at {path} (set ME_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_data()


def _subset(src: Path, dest: Path, rows: dict[str, int]) -> Path:
    """A small GoEmotions folder in the original TSV layout, with rows of every emotion."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "labels.txt").write_text((src / "labels.txt").read_text())
    for split, n in rows.items():
        frame = pd.read_csv(src / f"{split}.tsv", sep="\t", header=None, quoting=3, dtype=str, keep_default_na=False)
        rng = np.random.default_rng(0)
        # Keep every emotion present: take the first rows of each label id, then fill up.
        first = frame.groupby(frame[1].str.split(",").str[0]).head(max(2, n // 56)).index
        rest = rng.permutation(frame.index.difference(first))[: max(0, n - len(first))]
        frame.loc[sorted(set(first) | set(rest))].to_csv(
            dest / f"{split}.tsv", sep="\t", header=False, index=False, quoting=3
        )
    return dest


@pytest.fixture(scope="session")
def small_goemotions(shared, tmp_path_factory) -> Path:
    return _subset(
        shared / "goemotions", tmp_path_factory.mktemp("goemotions"), {"train": 600, "dev": 300, "test": 300}
    )


def _texts(shared: Path) -> list[str]:
    frame = pd.read_csv(
        shared / "goemotions" / "dev.tsv", sep="\t", header=None, quoting=3, dtype=str, keep_default_na=False
    )
    return frame[0].tolist()[:2000] + ["negative positive"] * 50


@pytest.fixture(scope="session")
def tiny_roberta(shared, tmp_path_factory) -> Path:
    """A 2-layer RoBERTa with an MLM head and a byte-level BPE tokenizer, saved to a folder."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _texts(shared), vocab_size=600, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text())
    merges = [
        tuple(line.split())
        for line in (folder / "merges.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    tokenizer = RobertaTokenizerFast(vocab=vocab, merges=merges)
    tokenizer.model_max_length = 128
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    RobertaForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(shared, tmp_path_factory) -> Path:
    """A 2-layer BERT encoder without an MLM head (like all-MiniLM) and a WordPiece tokenizer."""
    import collections

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    counts = collections.Counter(w for t in _texts(shared) for w in t.lower().split())
    words = [w for w, _ in counts.most_common(800) if w.isalpha()]
    chars = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars] + words
    vocab = list(dict.fromkeys(vocab))
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.model_max_length = 128
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_script(script: str, *args: str, cwd: Path | None = None, env: dict | None = None):
    """Run a stage script as a user would; returns the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600
    )


def one_line_error(proc) -> str:
    """Assert a CLI failure exited non-zero with one error line (last on stderr) and no traceback.

    Progress log lines may come before it; the error itself is a single line.
    """
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    return errors[0]


@pytest.fixture(scope="session")
def lab(tmp_path_factory, shared, small_goemotions, tiny_bert):
    """Valid inputs of every kind (built by the real stages), to break one at a time (the hostile-input
    tests; built once per session, on first use)."""
    import shutil

    from model_emotion.commands import activations as get_active_neuron
    from model_emotion.commands import eval as eval_mask_neuron
    from model_emotion.commands import masks as gen_mask
    from model_emotion.commands import rsa as rsa_searchlight
    from model_emotion.commands import train

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
