"""examples/quickstart.ipynb runs headless (nbclient) at toy size, so it cannot rot; and the API and
the installed command work the way the README says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # every test here runs a real stage or model end to end


def test_quickstart_notebook_executes_with_inline_figures(shared):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(REPO / "examples" / "quickstart.ipynb", as_version=4)
    os.environ["ME_QUICKSTART_QUICK"] = "1"
    os.environ["ME_SHARED_DATA"] = str(shared)
    try:
        nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO / "examples")}}
        ).execute()
    finally:
        del os.environ["ME_QUICKSTART_QUICK"]
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # accuracy, selectivity, drop matrix, attribute importance


def test_import_sets_no_backend_and_loads_no_torch():
    code = (
        "import sys, model_emotion, model_emotion.report.plots; "
        "import matplotlib; print('torch' in sys.modules, matplotlib.get_backend())"
    )
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", check=True)
    loaded_torch, backend = out.stdout.split()
    assert backend == "svg"  # the user's choice, not Agg forced on import
    code = "import sys, model_emotion; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/").stdout.strip() == "False"
    )


def test_installed_command_runs_a_stage_from_outside_the_repository(tmp_path, shared):
    cmd = [sys.executable, "-c", "import sys; from model_emotion.commands import main; sys.exit(main())"]
    out = tmp_path / "rank.csv"
    proc = subprocess.run(
        [
            *cmd,
            "rsa",
            "--activations",
            str(shared / "paper_roberta" / "activations.npz"),
            "--attributes",
            str(shared / "emotion_attributes"),
            "--output",
            str(out),
            "--test",
            "parametric",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and out.with_name("rank_summary.csv").exists()
    bad = subprocess.run([*cmd, "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr
    import model_emotion

    version = subprocess.run([*cmd, "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"model-emotion {model_emotion.__version__}"
    usage = subprocess.run([*cmd, "--help"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "rsa          correlate each neuron's RDM" in usage and "the stage of" not in usage
    # Messages name the stage as this user runs it: the subcommand here, the script for script users.
    missing = subprocess.run([*cmd, "masks", "--CSV_Path", "none.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and "(run model-emotion rsa first)" in missing.stderr
    script = subprocess.run(
        [sys.executable, str(REPO / "gen_mask.py"), "--CSV_Path", "none.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert script.returncode == 2 and "(run rsa_searchlight.py first)" in script.stderr


def notebook_is_stale(notebook: dict, version: str) -> str | None:
    """Why the committed outputs are stale (None when they are not): they record the toolkit version
    that made them (scripts/regen_notebook.py), which must be this one."""
    recorded = notebook.get("metadata", {}).get("model_emotion", {})
    if not recorded:
        return "no record of the toolkit version that made the outputs"
    if recorded.get("version") != version:
        return f"outputs made by model_emotion {recorded.get('version')}, this is {version}"
    return None


def test_committed_notebook_outputs_are_not_stale():
    import json

    import model_emotion

    notebook = json.loads((REPO / "examples" / "quickstart.ipynb").read_text())
    reason = notebook_is_stale(notebook, model_emotion.__version__)
    assert reason is None, f"{reason}: run ME_SHARED_DATA=... python scripts/regen_notebook.py"
    assert notebook_is_stale({"metadata": {"model_emotion": {"version": "0.0.1"}}}, model_emotion.__version__)
    assert notebook_is_stale({"metadata": {}}, model_emotion.__version__)
