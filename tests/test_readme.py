"""Every Python block in the README runs as written (offline, on the shared data), in order in one
process like a notebook, or is marked ``<!-- readme-test: skip (why) -->`` with the reason it cannot
(the network, a GPU, a trained run's files)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BLOCK = re.compile(r"(<!-- readme-test: skip \(([^)]*)\) -->\n)?```python\n(.*?)```", re.S)


def blocks(text: str) -> list[tuple[str | None, str]]:
    """(skip reason or None, code) for each Python block, in order."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def run_blocks(text: str, shared: Path, cwd: Path) -> subprocess.CompletedProcess:
    code = "\n".join(c for reason, c in blocks(text) if reason is None)
    script = cwd / "readme_blocks.py"
    script.write_text(code.replace("../shared/data", str(shared)))
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=1200)


def test_the_runner_fails_on_a_broken_block_and_honours_skips(tmp_path, shared):
    broken = "```python\nimport model_emotion as me\nme.no_such_function()\n```\n"
    skipped = "<!-- readme-test: skip (needs the network) -->\n```python\nraise SystemExit(3)\n```\n"
    assert run_blocks(broken, shared, tmp_path).returncode != 0
    assert run_blocks(skipped, shared, tmp_path).returncode == 0
    assert blocks(skipped) == [("needs the network", "raise SystemExit(3)\n")]


@pytest.mark.slow
def test_readme_python_blocks_run_as_written(tmp_path, shared):
    text = (REPO / "README.md").read_text()
    found = blocks(text)
    assert len(found) >= 4 and all(reason is None or reason.strip() for reason, _ in found)
    assert sum(reason is None for reason, _ in found) >= 2  # the RSA-only path and the rsatoolbox export run
    pytest.importorskip("rsatoolbox")
    proc = run_blocks(text, shared, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "n_significant" in proc.stdout
