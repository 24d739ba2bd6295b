"""The original README's command lines, run as written, on the original code's kinds of input.

The model and the data come from the environment (ME_MODEL, ME_DATA_DIR), as a user without
roberta-base's download would set them; the flags are exactly the original README's.
"""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_script

from model_emotion.masking.masks import load_masks

PAPER_THRESHOLDS = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000]


pytestmark = pytest.mark.slow  # every test here runs a real stage or model end to end


def test_gen_mask_original_command_on_the_released_rank_table_alone(tmp_path, shared):
    (tmp_path / "neuron_rank").mkdir()
    shutil.copy(
        shared / "paper_roberta" / "neurons_rank.csv",
        tmp_path / "neuron_rank" / "neuron_rank_by_searchlight_RSA_14property.csv",
    )
    # The shell splits the bracketed list into several words; this is that argv.
    proc = run_script(
        "gen_mask.py",
        "--CSV_Path=./neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv",
        "--mode=14Properties",
        "--mask_method=BINARY_MASK",
        "--PKL_File=./masks/RSA_14property_top_500_6000.pkl",
        "--thresholds=[500,",
        "1000,",
        "1500,",
        "2000,",
        "2500,",
        "3000,",
        "4000,",
        "5000,",
        "6000]",
        cwd=tmp_path,
        env={"ME_MODEL": ""},
    )
    assert proc.returncode == 0, proc.stderr
    masks = load_masks(tmp_path / "masks" / "RSA_14property_top_500_6000.pkl")
    ranks = pd.read_csv(tmp_path / "neuron_rank" / "neuron_rank_by_searchlight_RSA_14property.csv")
    for k in PAPER_THRESHOLDS:  # exactly k neurons, the k best ranked, in roberta-base's 12 x 3072 shape
        mask = masks[f"valence_top{k}"]
        assert tuple(mask.shape) == (12, 3072) and int((mask == 0).sum()) == k
        best = np.argsort(ranks["valence"].to_numpy(), kind="stable")[:k]
        assert (mask.flatten()[best] == 0).all()
    assert len(masks) == 14 * len(PAPER_THRESHOLDS) * 41  # top-k + 40 random draws each (the default since 0.5)


@pytest.fixture(scope="module")
def original_repo(tmp_path_factory, tiny_roberta):
    """A working folder laid out like the original's: a model that fits its default lengths
    (1 + 100 + 256 positions), checkpoints as the original wrote them, masks as it pickled them."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

    root = tmp_path_factory.mktemp("original")
    model_dir = root / "model"
    tokenizer = AutoTokenizer.from_pretrained(tiny_roberta)
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=400,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    RobertaForMaskedLM(config).save_pretrained(model_dir)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(model_dir)
    (root / "checkpoint").mkdir()
    for seed in (1, 3):
        prompt = torch.randn(100, 32, generator=torch.Generator().manual_seed(seed))
        torch.save(
            {
                "best_prompt": prompt,
                "best_acc": torch.tensor(0.75),
                "epoch": 1,
                "final_prompt": prompt,
                "final_acc": 0.7,
            },
            root / "checkpoint" / f"joy-{seed}.pt",
        )
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    masks = {}
    for k in (8, 32):
        top = torch.ones(2 * 64, dtype=torch.int8)
        top[torch.from_numpy(rng.choice(128, k, replace=False))] = 0
        masks[f"valence_top{k}"] = top.reshape(2, 64)
        masks[f"valence_top{k}_random"] = torch.Tensor(rng.permutation(top.numpy()).astype(float)).reshape(2, 64)
    with open(root / "masks" / "RSA_14property_top_500_6000.pkl", "wb") as handle:
        pickle.dump(masks, handle)  # exactly how the original gen_mask.py saved them
    return root, model_dir


def test_get_active_neuron_original_command(original_repo):
    root, model_dir = original_repo
    for mode in ("before_relu", "after_relu"):
        proc = run_script(
            "get_active_neuron.py",
            f"--activation_mode={mode}",
            cwd=root,
            env={"ME_MODEL": str(model_dir), "ME_DEVICE": "cpu"},
        )
        assert proc.returncode == 0, proc.stderr
        row = pd.read_csv(root / f"active_neuron_{mode}_csv" / "joy-1.csv")
        assert row.shape == (1, 128) and list(row.columns[:2]) == ["0", "1"]
    binary = pd.read_csv(root / "active_neuron_after_relu_csv" / "joy-1.csv").to_numpy()
    values = pd.read_csv(root / "active_neuron_before_relu_csv" / "joy-1.csv").to_numpy()
    assert np.array_equal(binary, (values > 0).astype(float))
    assert (root / "active_neuron_before_relu_csv" / "joy-all.csv").exists()


def test_eval_mask_neuron_original_command_on_original_pickled_masks(original_repo, small_goemotions):
    root, model_dir = original_repo
    proc = run_script(
        "eval_mask_neuron.py",
        "--sentiment=joy",
        "--random_seed=1",
        "--maskPath=./masks/RSA_14property_top_500_6000.pkl",
        "--resultPath=./eval_mask_neuron_result/RSA_14property_top_500_6000",
        cwd=root,
        env={"ME_MODEL": str(model_dir), "ME_DATA_DIR": str(small_goemotions), "ME_DEVICE": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((root / "eval_mask_neuron_result" / "RSA_14property_top_500_6000" / "joy-1.json").read_text())
    assert result["sentiment"] == "joy" and result["seed"] == 1 and result["best"] == pytest.approx(0.75)
    assert {"valence_top8", "valence_top8_random", "valence_top32", "valence_top32_random"} <= set(result["accuracies"])


def test_train_original_command(original_repo, small_goemotions, tmp_path):
    _, model_dir = original_repo
    proc = run_script(
        "train.py",
        "--sentiment=joy",
        "--random_seed=1",
        "--epochs=2",
        "--train_batch_size=16",
        "--eval_batch_size=32",
        cwd=tmp_path,
        env={"ME_MODEL": str(model_dir), "ME_DATA_DIR": str(small_goemotions), "ME_DEVICE": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    record = torch.load(tmp_path / "checkpoint" / "joy-1.pt", weights_only=True)
    assert tuple(record["best_prompt"].shape) == (100, 32) and record["config"]["protocol"] == "toolkit"
    assert (tmp_path / "log" / "joy-1.log").exists()


def test_snake_case_aliases_reach_the_original_flags():
    from model_emotion.commands import eval as evaluate
    from model_emotion.commands import masks, train

    pairs = [
        (
            evaluate,
            ["--emotion", "joy", "--seed", "3", "--mask_path", "m.pkl", "--result_path", "r"],
            ["--sentiment", "joy", "--random_seed", "3", "--maskPath", "m.pkl", "--resultPath", "r"],
        ),
        (masks, ["--csv_path", "r.csv", "--pkl_file", "m.pkl"], ["--CSV_Path", "r.csv", "--PKL_File", "m.pkl"]),
        (train, ["--emotion", "joy", "--seed", "5"], ["--sentiment", "joy", "--random_seed", "5"]),
    ]
    for module, alias, original in pairs:
        assert vars(module.parse_args(alias)) == vars(module.parse_args(original))
