"""Hostile tables and arrays: rank tables, ratings, NPZ headers, result JSON and meta files, and CSV cells written inert.

How a refusal is checked (exit 2, one line, nothing written): ``hostile_helpers.refused``."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hostile_helpers import (
    BIN,
    refused,
)

from model_emotion.commands import masks as gen_mask
from model_emotion.commands import report
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.errors import ToolkitError


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
