"""Held-out mask selection end to end: the searchlight writes one rank table per seed fold (ranked on
the other folds' seeds), gen_mask.py one masks file per fold, and each prompt is evaluated with the
masks its own seed did not select, as its result and the report say."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from model_emotion.commands import activations as get_active_neuron
from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask
from model_emotion.commands import report, train
from model_emotion.commands import rsa as rsa_searchlight


def test_held_out_selection_from_folds_to_the_report(tmp_path, shared, small_goemotions, tiny_bert):
    common = ["--model", str(tiny_bert), "--data_dir", str(small_goemotions), "--device", "cpu"]
    jobs = [f"{e}-{s}" for e in ("joy", "anger", "fear", "love") for s in (1, 2)]
    ckpt = tmp_path / "ckpt"
    assert train.main(["--jobs", *jobs, *common, "--checkpoint_dir", str(ckpt), "--log_dir", str(tmp_path / "log"),
                       "--epochs", "1", "--prompt_len", "2", "--max_length", "32", "--max_train_samples", "16",
                       "--max_eval_samples", "8"]) == 0  # fmt: skip
    acts = tmp_path / "acts"
    assert get_active_neuron.main(["--model", str(tiny_bert), "--checkpoint_dir", str(ckpt), "--output_dir", str(acts),
                                   "--device", "cpu"]) == 0  # fmt: skip
    rank = tmp_path / "rank" / "r.csv"
    assert rsa_searchlight.main(["--activations", str(acts / "activations.npz"), "--attributes",
                                 str(shared / "emotion_attributes"), "--output", str(rank), "--test", "parametric"]) == 0  # fmt: skip
    meta = json.loads(rank.with_name("r_meta.json").read_text())
    assert meta["selection_folds"] == [
        {"fold": 1, "select_seeds": [2], "evaluate_seeds": [1]},
        {"fold": 2, "select_seeds": [1], "evaluate_seeds": [2]},
    ]
    fold1 = pd.read_csv(rank.with_name("r_fold1.csv"))
    pkl = tmp_path / "masks" / "m.pkl"
    assert gen_mask.main(["--CSV_Path", str(rank), "--PKL_File", str(pkl), "--thresholds", "4", "--num_random", "3",
                          "--random_method", "global"]) == 0  # fmt: skip
    masks_meta = json.loads(pkl.with_name("m_meta.json").read_text())
    assert masks_meta["selection"] == "held_out" and [f["file"] for f in masks_meta["folds"]] == [
        "m_fold1.pkl",
        "m_fold2.pkl",
    ]
    fold_masks = torch.load(pkl.with_name("m_fold1.pkl"), weights_only=True)
    top = np.flatnonzero(fold_masks["valence_top4"].flatten().numpy() == 0)
    assert set(top) == set(np.argsort(fold1["valence"].to_numpy(), kind="stable")[:4])  # ranked on seed 2 alone
    # global draws are shared by every attribute: the same mask under each attribute's name
    assert torch.equal(fold_masks["valence_top4_random_2"], fold_masks["arousal_top4_random_2"])
    results = tmp_path / "eval"
    assert eval_mask_neuron.main(["--jobs", *jobs, "--maskPath", str(pkl), "--resultPath", str(results), *common,
                                  "--checkpoint_dir", str(ckpt), "--max_eval_samples", "8"]) == 0  # fmt: skip
    for job in jobs:
        record = json.loads((results / f"{job}.json").read_text())
        seed = int(job.split("-")[1])
        assert record["selection"]["kind"] == "held_out" and record["selection"]["select_seeds"] == [3 - seed]
        assert record["split"] == "test"  # the toolkit protocol evaluates on test; dev chose the epoch
    out = tmp_path / "report"
    assert report.main(["--results_dir", str(tmp_path), "--rank_csv", str(rank), "--output_dir", str(out),
                        "--attributes", str(shared / "emotion_attributes")]) == 0  # fmt: skip
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["selection"].dropna()) == {"held_out"} and (summary["n_random_draws"].dropna() == 3).all()
    assert "held_out" in (out / "summary.md").read_text()


def test_ablation_kinds_through_the_eval_stage_and_the_report(lab, tmp_path, shared):
    """Each kind writes its results with its record; the mean is cached and reused; the report leads
    with zero ablation and adds the other kinds' columns."""
    from model_emotion.report.results import load_results
    from model_emotion.report.tables import summary_table

    base = ["--jobs", "joy-1", "anger-1", "fear-1", "love-1", "--maskPath", str(lab["pkl"]), *lab["common"],
            "--checkpoint_dir", str(lab["ckpt"]), "--max_eval_samples", "8"]  # fmt: skip
    runs = {"zero": [], "mean": [], "resample": ["--reference", "split"], "scale": ["--ablation_scale", "0.25"]}
    for kind, extra in runs.items():
        out = tmp_path / "results" / f"eval_{kind}"
        assert eval_mask_neuron.main([*base, "--resultPath", str(out), "--ablation", kind, *extra]) == 0
        record = json.loads((out / "joy-1.json").read_text())
        assert record["ablation"]["kind"] == kind and record["selection"]["kind"] == "circular"
    cache = tmp_path / "results" / "eval_mean" / "reference" / "joy-1.npz"
    assert cache.is_file()
    before = cache.stat().st_mtime_ns
    out = tmp_path / "results" / "eval_mean"
    assert eval_mask_neuron.main([*base, "--resultPath", str(out), "--ablation", "mean", "--overwrite"]) == 0
    assert cache.stat().st_mtime_ns == before  # the cached mean was reused
    res = load_results(tmp_path / "results")
    table, _ = summary_table(res, None)
    assert set(table["ablation"].dropna()) == {"zero"}
    assert {"p_random_holm_mean", "p_random_holm_resample", "p_random_holm_scale"} <= set(table.columns)
