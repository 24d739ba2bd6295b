"""The stages chained end to end on a tiny model: 27 emotions, train -> activations -> RSA -> masks -> eval."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import one_line_error, run_script

from model_emotion.commands import activations as get_active_neuron
from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.commands import train
from model_emotion.data.goemotions import EMOTIONS
from model_emotion.errors import ToolkitError
from model_emotion.lm.neurons import count_hooks
from model_emotion.masking.records import correct_of


@pytest.fixture(scope="module")
def chain(tiny_bert, small_goemotions, shared, tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    ckpt = root / "checkpoint"
    # All 27 runs in one process (the model is loaded once), as train.sh does.
    assert (
        train.main(
            [
                "--jobs",
                *[f"{e}-1" for e in EMOTIONS],
                "--model",
                str(tiny_bert),
                "--data_dir",
                str(small_goemotions),
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
                "--train_batch_size",
                "8",
                "--lr",
                "0.05",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    acts_dir = root / "acts"
    assert (
        get_active_neuron.main(
            ["--model", str(tiny_bert), "--checkpoint_dir", str(ckpt), "--output_dir", str(acts_dir), "--device", "cpu"]
        )
        == 0
    )
    rank_csv = root / "neuron_rank" / "rank.csv"
    assert (
        rsa_searchlight.main(
            [
                "--activations",
                str(acts_dir / "activations.npz"),
                "--attributes",
                str(shared / "emotion_attributes"),
                "--output",
                str(rank_csv),
            ]
        )
        == 0
    )
    pkl = root / "masks" / "m.pkl"
    assert (
        gen_mask.main(
            ["--CSV_Path", str(rank_csv), "--PKL_File", str(pkl), "--thresholds", "4", "16", "--num_random", "2"]
        )
        == 0
    )
    return root, ckpt, acts_dir, rank_csv, pkl


@pytest.mark.slow
def test_control_prompts_have_the_trained_norms_and_run_through_the_stages(chain, tiny_bert, tmp_path, shared):
    import torch

    from model_emotion.stages.activations import control_prompt

    _, ckpt, acts_dir, _, _ = chain
    record = torch.load(ckpt / "joy-1.pt", weights_only=True)
    control = control_prompt(record, "best", "joy", 1, 0)
    assert torch.allclose(control["best_prompt"].norm(dim=1), record["best_prompt"].norm(dim=1), atol=1e-5)
    assert not torch.allclose(control["best_prompt"], record["best_prompt"])
    assert torch.equal(control_prompt(record, "best", "joy", 1, 0)["best_prompt"], control["best_prompt"])
    assert not torch.equal(control_prompt(record, "best", "anger", 1, 0)["best_prompt"], control["best_prompt"])
    vocabulary = torch.randn(50, record["best_prompt"].shape[1])
    clean = control_prompt(record, "best", "joy", 1, 0, vocabulary)["best_prompt"]  # the vocab_prompts null
    assert all(any(torch.equal(row, v) for v in vocabulary) for row in clean)  # each a token's embedding
    assert clean.shape == record["best_prompt"].shape
    assert not torch.allclose(clean.norm(dim=1), record["best_prompt"].norm(dim=1))  # nothing of the trained norms
    out = tmp_path / "control"
    assert (
        get_active_neuron.main(
            [
                "--model",
                str(tiny_bert),
                "--checkpoint_dir",
                str(ckpt),
                "--output_dir",
                str(out),
                "--device",
                "cpu",
                "--control",
                "random_prompts",
            ]
        )
        == 0
    )
    trained, random = np.load(acts_dir / "activations.npz"), np.load(out / "activations.npz")
    assert random["activations"].shape == trained["activations"].shape
    assert not np.allclose(random["activations"], trained["activations"])
    assert json.loads((out / "activations_meta.json").read_text())["control"] == "random_prompts"
    rank = tmp_path / "rank" / "r.csv"  # the next stage runs on them unchanged
    assert (
        rsa_searchlight.main(
            [
                "--activations",
                str(out / "activations.npz"),
                "--attributes",
                str(shared / "emotion_attributes"),
                "--output",
                str(rank),
            ]
        )
        == 0
    )
    assert pd.read_csv(rank.with_name("r_null_counts.csv"))["attribute"].nunique() == 15
    from model_emotion.commands import report

    root = acts_dir.parent
    assert (
        report.main(
            [
                "--results_dir",
                str(root / "neuron_rank"),
                "--control_dir",
                str(rank.parent),
                "--output_dir",
                str(tmp_path / "report"),
                "--attributes",
                str(shared / "emotion_attributes"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "report" / "control_comparison.csv")
    assert len(table) == 14 and {"trained_significant", "control_significant", "control_fwer_survivors"} <= set(
        table.columns
    )
    assert "untrained control prompts" in (tmp_path / "report" / "summary.md").read_text()


def test_activation_outputs(chain, tiny_bert):
    root, ckpt, acts_dir, _, _ = chain
    data = np.load(acts_dir / "activations.npz")
    assert data["activations"].shape == (27, 1, 2 * 48)
    assert int(data["layers"]) == 2 and int(data["d_ffn"]) == 48
    single = pd.read_csv(acts_dir / "anger-1.csv")
    assert list(single.columns[:3]) == ["0", "1", "2"] and single.shape == (1, 96)
    assert np.allclose(single.to_numpy()[0], data["activations"][2, 0], atol=1e-6)
    accuracy = pd.read_csv(acts_dir / "goemotions_prompt_tuning_accuracy.csv")
    assert len(accuracy) == 27 and accuracy["accuracy"].between(0, 1).all()
    assert (acts_dir / "anger-all.csv").exists() and (acts_dir / "get_active_neuron_args.json").exists()


def test_rsa_outputs(chain):
    _, _, _, rank_csv, _ = chain
    ranks = pd.read_csv(rank_csv)
    assert ranks.shape == (96, 14) and ranks.columns[0] == "arousal"
    for suffix in ("_tau", "_p_value", "_q_value", "_summary"):
        assert rank_csv.with_name(f"rank{suffix}.csv").exists()
    tau = pd.read_csv(rank_csv.with_name("rank_tau.csv"))
    best = tau["valence"].idxmax()
    assert ranks.loc[best, "valence"] == 1.0


@pytest.mark.slow
def test_masked_eval_end_to_end_and_resume(chain, tiny_bert, small_goemotions):
    root, ckpt, _, _, pkl = chain
    out = root / "eval"
    argv = [
        "--sentiment",
        "joy",
        "--random_seed",
        "1",
        "--maskPath",
        str(pkl),
        "--resultPath",
        str(out),
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(small_goemotions),
        "--checkpoint_dir",
        str(ckpt),
        "--max_eval_samples",
        "20",
        "--device",
        "cpu",
    ]
    assert eval_mask_neuron.main(argv) == 0
    first = json.loads((out / "joy-1.json").read_text())
    # Per-example results beside every accuracy, which the reader checks against them.
    assert set(first["correct"]) == set(first["accuracies"])
    assert set(correct_of(first, "joy-1", 20)) == set(first["accuracies"])
    # A partial result of an interrupted run with the same inputs: its masks are not evaluated again.
    (out / "joy-1.json").unlink()
    partial = {
        "split": "dev",
        "n_examples": 20,
        "accuracies": {"unmasked": 1.0, "arousal_top4": 0.05},
        "correct": {"unmasked": "1" * 20, "arousal_top4": "1" + "0" * 19},
        "made_from": first["made_from"],
    }
    (out / "joy-1.partial.json").write_text(json.dumps(partial))
    assert eval_mask_neuron.main(argv) == 0
    result = json.loads((out / "joy-1.json").read_text())
    assert result["accuracies"]["arousal_top4"] == 0.05 and result["accuracies"]["unmasked"] == 1.0
    assert result["correct"]["arousal_top4"] == "1" + "0" * 19
    # The same partial file after the masks file changed: it is not trusted, everything is evaluated anew.
    other_pkl = root / "masks" / "other.pkl"
    assert (
        gen_mask.main(
            [
                "--CSV_Path",
                str(root / "neuron_rank" / "rank.csv"),
                "--PKL_File",
                str(other_pkl),
                "--thresholds",
                "4",
                "16",
                "--num_random",
                "2",
                "--seed",
                "7",
            ]
        )
        == 0
    )
    other_out = root / "eval_other"
    other_out.mkdir()
    (other_out / "joy-1.partial.json").write_text(json.dumps(partial))
    other_argv = [*argv[:4], "--maskPath", str(other_pkl), "--resultPath", str(other_out), *argv[8:]]
    assert eval_mask_neuron.main(other_argv) == 0
    fresh_other = json.loads((other_out / "joy-1.json").read_text())
    assert fresh_other["accuracies"]["unmasked"] == first["accuracies"]["unmasked"]
    assert fresh_other["accuracies"]["arousal_top4"] == first["accuracies"]["arousal_top4"]
    # A garbage value in a partial file with the right key is not copied into the result either.
    (other_out / "joy-1.json").unlink()
    (other_out / "joy-1.partial.json").write_text(
        json.dumps(
            {
                **partial,
                "made_from": fresh_other["made_from"],
                "accuracies": {"unmasked": 1.0, "arousal_top4": "garbage"},
            }
        )
    )
    assert eval_mask_neuron.main(other_argv) == 0
    assert (
        json.loads((other_out / "joy-1.json").read_text())["accuracies"]["arousal_top4"]
        == first["accuracies"]["arousal_top4"]
    )
    assert {"sentiment", "seed", "best", "accuracies", "made_from"} <= set(result)
    assert list(result["accuracies"])[0] == "unmasked" and "valence_top16_random_2" in result["accuracies"]
    assert not (out / "joy-1.partial.json").exists()
    # Without --overwrite a finished result is skipped; with it everything is recomputed.
    assert eval_mask_neuron.main(argv) == 0
    assert json.loads((out / "joy-1.json").read_text()) == result
    assert eval_mask_neuron.main(argv + ["--overwrite"]) == 0
    fresh = json.loads((out / "joy-1.json").read_text())
    assert fresh["accuracies"]["unmasked"] != 1.0 and fresh["n_examples"] == 20
    assert all(0.0 <= value <= 1.0 for value in fresh["accuracies"].values())
    # Several prompts in one process give the same numbers as one process per prompt.
    batch_out = root / "eval_batch"
    assert (
        eval_mask_neuron.main(["--jobs", "joy-1", "anger-1", *argv[4:6], "--resultPath", str(batch_out), *argv[8:]])
        == 0
    )
    assert json.loads((batch_out / "joy-1.json").read_text()) == fresh
    assert (batch_out / "anger-1.json").exists()


@pytest.mark.slow
def test_masked_eval_bad_inputs(chain, tiny_bert, small_goemotions, tmp_path):
    root, ckpt, _, _, pkl = chain
    base = [
        "--random_seed",
        "1",
        "--resultPath",
        str(tmp_path / "r"),
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(small_goemotions),
        "--checkpoint_dir",
        str(ckpt),
        "--device",
        "cpu",
    ]
    assert "checkpoint not found" in one_line_error(
        run_script("eval_mask_neuron.py", "--sentiment", "joy", "--random_seed", "9", *base[2:], "--maskPath", str(pkl))
    )
    assert "mask file not found" in one_line_error(
        run_script("eval_mask_neuron.py", "--sentiment", "joy", *base, "--maskPath", str(tmp_path / "none.pkl"))
    )
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps({"x_top1": torch.ones(3, 48)}))
    assert "but the model's FFN is [2, 48]" in one_line_error(
        run_script("eval_mask_neuron.py", "--sentiment", "joy", *base, "--maskPath", str(wrong))
    )
    wrong.write_bytes(pickle.dumps({"x_top1": [1, 2]}))
    assert "not a 2-D tensor" in one_line_error(
        run_script("eval_mask_neuron.py", "--sentiment", "joy", *base, "--maskPath", str(wrong))
    )


@pytest.mark.slow
def test_rsa_bad_inputs(chain, shared, tmp_path):
    _, _, acts_dir, _, _ = chain
    attrs = str(shared / "emotion_attributes")
    out = ["--output", str(tmp_path / "r.csv")]
    # Missing seed files in a CSV folder: say which.
    folder = tmp_path / "csvs"
    folder.mkdir()
    for name in ("anger-1.csv", "anger-3.csv", "joy-1.csv"):
        (folder / name).write_text((acts_dir / "anger-1.csv").read_text())
    assert "missing joy-3" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", str(folder), "--attributes", attrs, *out)
    )
    (folder / "joy-3.csv").write_text("0,1\n0.5,0.25\n")
    assert "has 2 neurons" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", str(folder), "--attributes", attrs, *out)
    )
    (folder / "joy-3.csv").write_text(
        (acts_dir / "anger-1.csv").read_text().replace("\n", "\n", 1).rsplit(",", 1)[0] + ",nan\n"
    )
    assert "NaN or infinite" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", str(folder), "--attributes", attrs, *out)
    )
    npz = str(acts_dir / "activations.npz")
    ratings = tmp_path / "ratings"
    ratings.mkdir()
    table = pd.read_csv(shared / "emotion_attributes" / "attributes.csv")
    pd.concat([table, table.iloc[:1]]).to_csv(ratings / "attributes.csv", index=False)
    assert "appears more than once" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", npz, "--attributes", str(ratings), *out)
    )
    broken = table.copy()
    broken["valence"] = broken["valence"].astype(object)
    broken.loc[4, "valence"] = "high"
    broken.to_csv(ratings / "attributes.csv", index=False)
    assert "has value 'high'" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", npz, "--attributes", str(ratings), *out)
    )
    table.iloc[:2].to_csv(ratings / "attributes.csv", index=False)
    assert "needs at least 3" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", npz, "--attributes", str(ratings), *out)
    )
    assert "unknown attribute 'joyfulness'" in one_line_error(
        run_script(
            "rsa_searchlight.py", "--activations", npz, "--attributes", attrs, "--attribute_names", "joyfulness", *out
        )
    )
    assert "--method: invalid choice: 'pearson'" in one_line_error(
        run_script("rsa_searchlight.py", "--activations", npz, "--attributes", attrs, "--method", "pearson", *out)
    )


@pytest.mark.slow
def test_get_active_neuron_refuses_other_models(chain, tiny_roberta, tmp_path):
    _, ckpt, _, _, _ = chain
    line = one_line_error(
        run_script(
            "get_active_neuron.py",
            "--model",
            str(tiny_roberta),
            "--checkpoint_dir",
            str(ckpt),
            "--output_dir",
            str(tmp_path / "a"),
            "--sentiments",
            "joy",
            "--seeds",
            "1",
        )
    )
    assert "prompt trained on another model" in line and "model_type bert vs roberta" in line
    line = one_line_error(
        run_script(
            "get_active_neuron.py",
            "--model",
            str(tiny_roberta),
            "--checkpoint_dir",
            str(ckpt),
            "--output_dir",
            str(tmp_path / "a"),
            "--sentiments",
            "joy",
            "--seeds",
            "1",
            "2",
        )
    )
    assert "missing checkpoint(s)" in line and "joy-2.pt" in line


def test_no_hooks_left_after_the_stages(tiny_bert):
    from model_emotion.lm.loading import load_backbone

    backbone, _, _ = load_backbone(str(tiny_bert))
    assert count_hooks(backbone) == 0


def test_eval_stage_from_python_equals_the_command(chain, tiny_bert, small_goemotions, tmp_path):
    """The same tiny inputs through eval_mask_neuron.py and through run_eval(EvalConfig(...)): identical
    result files; the saved config reruns the stage (everything up to date, nothing rewritten)."""
    from model_emotion import EvalConfig, run_eval

    root, ckpt, _, _, pkl = chain
    common = dict(model=str(tiny_bert), data_dir=str(small_goemotions), checkpoint_dir=ckpt, device="cpu")
    argv = [
        "--jobs",
        "joy-1",
        "anger-1",
        "--maskPath",
        str(pkl),
        "--resultPath",
        str(tmp_path / "cli"),
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(small_goemotions),
        "--checkpoint_dir",
        str(ckpt),
        "--max_eval_samples",
        "12",
        "--device",
        "cpu",
    ]
    assert eval_mask_neuron.main(argv) == 0
    config = EvalConfig(
        mask_path=pkl, result_path=tmp_path / "py", jobs=(("joy", 1), ("anger", 1)), max_eval_samples=12, **common
    )
    assert run_eval(config) == 0
    for name in ("joy-1.json", "anger-1.json"):
        assert json.loads((tmp_path / "cli" / name).read_text()) == json.loads((tmp_path / "py" / name).read_text())
    saved = EvalConfig.load(tmp_path / "py" / "eval_config.json")
    assert saved == config
    before = (tmp_path / "py" / "joy-1.json").stat().st_mtime_ns
    assert run_eval(saved) == 0 and (tmp_path / "py" / "joy-1.json").stat().st_mtime_ns == before
    # the cross-setting rules live in the config: the same refusal from Python as from the command line
    with pytest.raises(ToolkitError, match="accuracy_mean per_batch reproduces the original evaluation"):
        EvalConfig(accuracy_mean="per_batch")
    with pytest.raises(ToolkitError, match="lists a prompt twice"):
        EvalConfig(jobs=(("joy", 1), ("joy", 1)))
    paper = EvalConfig(protocol="paper", accuracy_mean="per_batch", eval_batch_size=5)
    assert paper.per_batch == 5


def test_masks_stage_from_python_equals_the_command(chain, tmp_path):
    """gen_mask.py and run_masks(MaskConfig(...)) on the same rank table: the same masks, and the masks'
    metadata (attribute, k, kind, draw) stored as data in the meta file."""
    from model_emotion import MaskConfig, load_masks, run_masks

    root = chain[0]
    rank = root / "neuron_rank" / "rank.csv"
    argv = [
        "--CSV_Path",
        str(rank),
        "--PKL_File",
        str(tmp_path / "cli.pkl"),
        "--thresholds",
        "4",
        "16",
        "--num_random",
        "2",
        "--seed",
        "3",
    ]
    assert gen_mask.main(argv) == 0
    config = MaskConfig(csv_path=rank, pkl_file=tmp_path / "py.pkl", thresholds=(4, 16), num_random=2, seed=3)
    assert run_masks(config) == 0
    cli_masks, py_masks = load_masks(tmp_path / "cli.pkl"), load_masks(tmp_path / "py.pkl")
    assert list(cli_masks) == list(py_masks) and all(torch.equal(cli_masks[n], py_masks[n]) for n in cli_masks)
    meta = json.loads((tmp_path / "py_meta.json").read_text())
    records = {r["name"]: r for r in meta["masks"]}
    assert set(records) == set(py_masks)
    assert records["valence_top16_random_2"] == {
        "name": "valence_top16_random_2",
        "attribute": "valence",
        "k": 16,
        "kind": "random",
        "draw": 2,
    }
    with pytest.raises(ToolkitError, match="mask_method"):
        MaskConfig(mask_method="nope")


def test_rsa_stage_from_python_equals_the_command(chain, shared, tmp_path):
    """rsa_searchlight.py and run_rsa(RSAConfig(...)) on the same activations: identical tables; the
    test follows the protocol in the config, and a rerun with the same config is skipped."""
    from model_emotion import RSAConfig, run_rsa

    acts = chain[0] / "acts" / "activations.npz"
    common = ["--activations", str(acts), "--attributes", str(shared / "emotion_attributes"), "--test", "parametric"]
    assert rsa_searchlight.main([*common, "--output", str(tmp_path / "cli" / "r.csv")]) == 0
    config = RSAConfig(
        activations=acts,
        attributes=str(shared / "emotion_attributes"),
        test="parametric",
        output=tmp_path / "py" / "r.csv",
    )
    assert run_rsa(config) == 0
    for name in ("r.csv", "r_tau.csv", "r_q_value.csv", "r_summary.csv"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "py" / name).read_bytes(), name
    before = (tmp_path / "py" / "r.csv").stat().st_mtime_ns
    assert run_rsa(config) == 0 and (tmp_path / "py" / "r.csv").stat().st_mtime_ns == before
    assert RSAConfig(protocol="paper").test == "parametric" and RSAConfig().test == "permutation"
    with pytest.raises(ToolkitError, match="method .pearson. unknown"):
        RSAConfig(method="pearson")


def test_activations_stage_from_python_equals_the_command(chain, tiny_bert, tmp_path):
    from model_emotion import ActivationsConfig, run_activations

    ckpt = chain[1]
    argv = [
        "--model",
        str(tiny_bert),
        "--checkpoint_dir",
        str(ckpt),
        "--output_dir",
        str(tmp_path / "cli"),
        "--sentiments",
        "joy",
        "anger",
        "--device",
        "cpu",
    ]
    assert get_active_neuron.main(argv) == 0
    config = ActivationsConfig(
        model=str(tiny_bert), checkpoint_dir=ckpt, output_dir=tmp_path / "py", sentiments=("joy", "anger"), device="cpu"
    )
    assert run_activations(config) == 0
    for name in ("joy-1.csv", "anger-1.csv", "goemotions_prompt_tuning_accuracy.csv"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "py" / name).read_bytes(), name
    a, b = np.load(tmp_path / "cli" / "activations.npz"), np.load(tmp_path / "py" / "activations.npz")
    assert np.array_equal(a["activations"], b["activations"]) and list(a["emotions"]) == list(b["emotions"])
    with pytest.raises(ToolkitError, match="control 'x' unknown"):
        ActivationsConfig(control="x")


def test_train_stage_from_python_equals_the_command(tiny_bert, small_goemotions, tmp_path):
    from model_emotion import TrainConfig, load_checkpoint, run_train

    flags = dict(epochs=1, prompt_len=2, max_length=32, max_train_samples=16, max_eval_samples=8)
    argv = [
        "--jobs",
        "joy-1",
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(small_goemotions),
        "--device",
        "cpu",
        "--checkpoint_dir",
        str(tmp_path / "cli"),
        "--log_dir",
        str(tmp_path / "log_cli"),
    ]
    argv += [x for k, v in flags.items() for x in (f"--{k}", str(v))]
    assert train.main(argv) == 0
    config = TrainConfig(
        jobs=(("joy", 1),),
        model=str(tiny_bert),
        data_dir=str(small_goemotions),
        device="cpu",
        checkpoint_dir=tmp_path / "py",
        log_dir=tmp_path / "log_py",
        **flags,
    )
    assert run_train(config) == 0
    a, b = load_checkpoint(tmp_path / "cli" / "joy-1.pt"), load_checkpoint(tmp_path / "py" / "joy-1.pt")
    assert torch.equal(a["best_prompt"], b["best_prompt"]) and a["best_acc"] == b["best_acc"]
    with pytest.raises(ToolkitError, match="multi_prompt keeps the backbone in eval mode"):
        TrainConfig(protocol="paper", multi_prompt=True)


def test_report_stage_from_python_equals_the_command(chain, shared, tmp_path):
    """report.py and run_report(ReportConfig(...)) on the same results: the same files, the same tables
    and summary; the config validates itself."""
    from model_emotion import ReportConfig, run_report
    from model_emotion.commands import report

    root = chain[0]
    common = dict(results_dir=root, attributes=str(shared / "emotion_attributes"), k=4, n_boot=50)
    argv = [x for k, v in common.items() for x in (f"--{k}", str(v))]
    assert report.main([*argv, "--output_dir", str(tmp_path / "cli")]) == 0
    assert run_report(ReportConfig(**common, output_dir=tmp_path / "py")) == 0
    names = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "py").iterdir())
    assert {"summary.csv", "summary.md", "report.html", "accuracy_per_emotion.png"} <= set(names)
    for name in names:
        if name.endswith((".csv", ".md")):
            assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "py" / name).read_bytes(), name
    with pytest.raises(ToolkitError, match="give --results_dir"):
        ReportConfig()
    with pytest.raises(ToolkitError, match="n_boot"):
        ReportConfig(results_dir=root, n_boot=10**6)


def test_older_activation_and_eval_records_are_still_read(chain, tiny_bert, small_goemotions, tmp_path):
    """Run folders of versions before 0.4.1: the activations' folder-wide provenance.json and the
    provenance key inside eval results are read as today's record (run_folder): up-to-date outputs are
    kept, stale ones redone."""
    root, ckpt, _, _, pkl = chain
    acts = tmp_path / "acts"
    argv = ["--model", str(tiny_bert), "--checkpoint_dir", str(ckpt), "--output_dir", str(acts)]
    argv += ["--sentiments", "joy", "anger", "--device", "cpu"]
    assert get_active_neuron.main(argv) == 0
    old = {}
    for name in ("joy-1", "anger-1"):
        record = json.loads((acts / f"{name}_meta.json").read_text())["made_from"]
        old[f"{name}.csv"] = {
            "checkpoint_sha256": record["inputs"]["checkpoint"],
            **record["settings"],
            "csv_sha256": record["output_sha256"],
        }
        (acts / f"{name}_meta.json").unlink()
    (acts / "provenance.json").write_text(json.dumps(old))
    before = (acts / "joy-1.csv").stat().st_mtime_ns
    assert get_active_neuron.main(argv) == 0
    assert (acts / "joy-1.csv").stat().st_mtime_ns == before  # the old record says: up to date
    assert get_active_neuron.main([*argv, "--state", "final"]) == 0
    assert (acts / "joy-1.csv").stat().st_mtime_ns != before  # another setting: recomputed

    out = tmp_path / "eval"
    eval_argv = ["--sentiment", "joy", "--random_seed", "1", "--maskPath", str(pkl), "--resultPath", str(out)]
    eval_argv += ["--model", str(tiny_bert), "--data_dir", str(small_goemotions), "--checkpoint_dir", str(ckpt)]
    eval_argv += ["--max_eval_samples", "8", "--device", "cpu"]
    assert eval_mask_neuron.main(eval_argv) == 0
    result = json.loads((out / "joy-1.json").read_text())
    record = result.pop("made_from")
    result["provenance"] = {
        "settings": {
            "masks_sha256": record["inputs"]["masks"],
            "checkpoint_sha256": record["inputs"]["checkpoint"],
            **record["settings"],
        },
        "examples_sha256": record["examples_sha256"],
        "resolved": record["resolved"],
    }
    (out / "joy-1.json").write_text(json.dumps(result))
    before = (out / "joy-1.json").stat().st_mtime_ns
    assert eval_mask_neuron.main(eval_argv) == 0 and (out / "joy-1.json").stat().st_mtime_ns == before
    assert eval_mask_neuron.main([*eval_argv, "--state", "final"]) == 0
    assert "made_from" in json.loads((out / "joy-1.json").read_text())  # stale: evaluated again, today's record
