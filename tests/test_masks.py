"""Step 4 masks and step 5 masked evaluation."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import one_line_error, run_script

from model_emotion.commands import masks as gen_mask
from model_emotion.commands.cli import expand_bracket_lists
from model_emotion.errors import ToolkitError
from model_emotion.masking.masks import generate_masks, load_masks, top_k


@pytest.fixture
def ranks():
    rng = np.random.default_rng(0)
    layers, d_ffn = 4, 50
    table = pd.DataFrame({name: rng.permutation(layers * d_ffn).astype(float) + 1 for name in ("valence", "arousal")})
    table.loc[[3, 77], "arousal"] = np.nan  # unranked (constant RDM)
    return table, layers, d_ffn


def test_top_k_takes_best_ranks_and_never_unranked(ranks):
    table, _, _ = ranks
    chosen = top_k(table["arousal"].to_numpy(), 10)
    assert len(chosen) == 10 and 3 not in chosen and 77 not in chosen
    assert sorted(table["arousal"].iloc[chosen]) == sorted(table["arousal"].dropna())[:10]
    with pytest.raises(ToolkitError, match="exceeds the 198 rankable neurons"):
        top_k(table["arousal"].to_numpy(), 199)


@pytest.mark.parametrize("random_method", ["global", "layer_matched"])
def test_random_masks_have_exactly_k_zeros(ranks, random_method):
    table, layers, d_ffn = ranks
    masks = generate_masks(
        table, ["valence", "arousal"], [7, 40], layers, num_random=3, random_method=random_method, seed=5
    )
    assert len(masks) == 2 * 2 * 4
    for attribute in ("valence", "arousal"):
        for k in (7, 40):
            top = masks[f"{attribute}_top{k}"]
            assert top.shape == (layers, d_ffn) and int((top == 0).sum()) == k
            ranked = table[attribute].to_numpy().reshape(layers, d_ffn)
            assert np.nanmax(ranked[top.numpy() == 0]) <= np.sort(table[attribute].dropna())[k - 1]
            draws = [masks[f"{attribute}_top{k}_random"]] + [masks[f"{attribute}_top{k}_random_{d}"] for d in (2, 3)]
            for draw in draws:
                assert int((draw == 0).sum()) == k
                if random_method == "layer_matched":
                    assert torch.equal((draw == 0).sum(1), (top == 0).sum(1))
            assert not torch.equal(draws[0], draws[1])
    again = generate_masks(
        table, ["valence", "arousal"], [7, 40], layers, num_random=3, random_method=random_method, seed=5
    )
    assert all(torch.equal(masks[name], again[name]) for name in masks)


def test_float_masks_scale_in_unit_interval(ranks):
    table, layers, _ = ranks
    masks = generate_masks(table, ["valence"], [20], layers, mask_method="FLOAT_MASK", num_random=1)
    top = masks["valence_top20"]
    assert top.dtype == torch.float32 and int((top < 1).sum()) == 20 and float(top.min()) >= 0.0


def test_original_bracket_syntax_is_accepted():
    argv = ["--CSV_Path=x.csv", "--thresholds=[500,", "1000,", "1500]", "--mode=14Properties"]
    assert expand_bracket_lists(argv, ["--thresholds"]) == [
        "--CSV_Path=x.csv",
        "--thresholds",
        "500",
        "1000",
        "1500",
        "--mode=14Properties",
    ]
    assert gen_mask.parse_args(["--thresholds=[500, 1000]"]).thresholds == [500, 1000]
    assert gen_mask.parse_args(["--thresholds", "5", "6"]).thresholds == [5, 6]


@pytest.mark.slow
def test_gen_mask_cli_and_bad_inputs(tmp_path, ranks):
    table, layers, _ = ranks
    csv = tmp_path / "rank.csv"
    table.to_csv(csv, index=False)
    pkl = tmp_path / "m.pkl"
    proc = run_script(
        "gen_mask.py",
        f"--CSV_Path={csv}",
        "--mode=14Properties",
        "--mask_method=BINARY_MASK",
        f"--PKL_File={pkl}",
        "--thresholds=[5,",
        "10]",
        "--num_layers",
        str(layers),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    masks = load_masks(pkl)
    assert sorted(masks)[:2] == ["arousal_top10", "arousal_top10_random"]
    assert "missing" in one_line_error(
        run_script(
            "gen_mask.py",
            "--CSV_Path",
            str(csv),
            "--attributes",
            "missing",
            "--PKL_File",
            str(tmp_path / "a.pkl"),
            "--num_layers",
            "4",
            "--thresholds",
            "5",
        )
    )
    assert "must be at least 1" in one_line_error(
        run_script("gen_mask.py", "--CSV_Path", str(csv), "--thresholds", "0")
    )
    assert "not an integer" in one_line_error(run_script("gen_mask.py", "--CSV_Path", str(csv), "--thresholds", "1.5"))
    assert "exceed" in one_line_error(
        run_script(
            "gen_mask.py",
            "--CSV_Path",
            str(csv),
            "--PKL_File",
            str(tmp_path / "b.pkl"),
            "--num_layers",
            "4",
            "--thresholds",
            "5000",
        )
    )
    assert "--num_layers" in one_line_error(
        run_script("gen_mask.py", "--CSV_Path", str(csv), "--PKL_File", str(tmp_path / "c.pkl"), "--thresholds", "5")
    )


def test_load_masks_rejects_bad_files(tmp_path):
    with pytest.raises(ToolkitError, match="mask file not found"):
        load_masks(tmp_path / "none.pkl")
    bad = tmp_path / "list.pkl"
    bad.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ToolkitError, match="dict of name -> tensor"):
        load_masks(bad)
    bad.write_bytes(pickle.dumps({"a": np.ones(3)}))
    with pytest.raises(ToolkitError, match="not a 2-D tensor"):
        load_masks(bad)
    bad.write_bytes(pickle.dumps({"a": np.ones((2, 3))}))  # the original code's pickles may hold numpy arrays
    assert load_masks(bad)["a"].shape == (2, 3)
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ToolkitError, match="masks file"):
        load_masks(bad)
