"""Hostile settings of the causal step: held-out selection that leaves a prompt nothing to be evaluated
with, reference sets that cannot serve an ablation, unknown ablation kinds, and more random draws than
the memory bound. Each is one error line and exit 2 with no output written (``hostile_helpers.refused``)."""

from __future__ import annotations

import json
import shutil

from hostile_helpers import _eval_argv, refused

from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask


def _masks_with_folds(lab, tmp_path, evaluate_seeds):
    """A copy of the lab's masks whose _meta.json lists seed folds evaluating only ``evaluate_seeds``."""
    folder = tmp_path / "masks"
    folder.mkdir()
    pkl = folder / "m.pkl"
    shutil.copy(lab["pkl"], pkl)
    shutil.copy(lab["pkl"], folder / "m_fold1.pkl")
    meta = json.loads(lab["pkl"].with_name("m_meta.json").read_text())
    meta["folds"] = [{"fold": 1, "select_seeds": [1], "evaluate_seeds": evaluate_seeds, "file": "m_fold1.pkl"}]
    (folder / "m_meta.json").write_text(json.dumps(meta))
    return pkl


def test_a_selection_that_leaves_no_prompt_to_evaluate_is_refused(capsys, lab, tmp_path):
    pkl = _masks_with_folds(lab, tmp_path, [2])  # the job is seed 1, which selected the only fold
    line = refused(capsys, eval_mask_neuron.main, _eval_argv(lab, tmp_path, pkl), tmp_path / "eval")
    assert "seed 1 selected the masks of every fold" in line
    # held-out selection asked of masks without folds
    line = refused(
        capsys,
        eval_mask_neuron.main,
        _eval_argv(lab, tmp_path, lab["pkl"]) + ["--selection", "held_out"],
        tmp_path / "eval",
    )
    assert "needs masks with seed folds" in line


def test_reference_sets_that_cannot_serve_are_refused(capsys, lab, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(lab["data"], data)
    for split in ("dev", "test"):  # no neutral-only text left in the evaluation splits
        rows = (data / f"{split}.tsv").read_text().splitlines()
        (data / f"{split}.tsv").write_text("\n".join(r for r in rows if r.split("\t")[1] != "27") + "\n")
    argv = _eval_argv(lab, tmp_path, lab["pkl"])
    argv[argv.index("--data_dir") + 1] = str(data)
    line = refused(capsys, eval_mask_neuron.main, argv + ["--ablation", "mean"], tmp_path / "eval")
    assert "reference set" in line and "no example" in line
    line = refused(
        capsys,
        eval_mask_neuron.main,
        _eval_argv(lab, tmp_path, lab["pkl"])
        + ["--ablation", "resample", "--reference", "split", "--reference_samples", "1"],
        tmp_path / "eval",
    )
    assert "at least 2 reference texts" in line
    line = refused(
        capsys,
        eval_mask_neuron.main,
        _eval_argv(lab, tmp_path, lab["pkl"]) + ["--ablation", "noise"],
        tmp_path / "eval",
    )
    assert "--ablation" in line and "noise" in line


def test_more_random_draws_than_the_memory_bound_are_refused(capsys, lab, tmp_path, monkeypatch):
    from model_emotion.stages import masks as masks_stage

    argv = ["--CSV_Path", str(lab["rank"]), "--PKL_File", str(tmp_path / "m" / "m.pkl"), "--thresholds", "4"]
    line = refused(capsys, gen_mask.main, argv + ["--num_random", "1001"], tmp_path / "m")
    assert "at most 1000" in line
    monkeypatch.setattr(masks_stage, "MASK_BYTES", 10_000)
    line = refused(capsys, gen_mask.main, argv + ["--num_random", "40"], tmp_path / "m")
    assert "above the" in line and "--num_random" in line
