"""train.sh / eval.sh: the shards split the grid disjointly and cover it exactly once; done jobs are skipped."""

import os
import subprocess

import pytest
from conftest import REPO

from model_emotion.data.goemotions import EMOTIONS, PAPER_SEEDS


def jobs(script, shard, num_shards, **env):
    proc = subprocess.run(
        ["bash", str(REPO / script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DRY_RUN": "1", "SHARD": str(shard), "NUM_SHARDS": str(num_shards), **env},
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("run ", "skip "))]


@pytest.mark.parametrize("script", ["train.sh", "eval.sh"])
@pytest.mark.parametrize("num_shards", [1, 4, 7])
def test_shards_cover_the_paper_grid_exactly_once(script, num_shards):
    seen = []
    for shard in range(num_shards):
        seen += jobs(script, shard, num_shards)
    grid = [f"{e}-{s}" for e in EMOTIONS for s in PAPER_SEEDS]
    assert len(grid) == 324
    assert sorted(seen) == sorted(grid)


def test_slurm_array_variables_pick_the_shard():
    via_slurm = jobs("train.sh", "", "", SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_COUNT="5")
    assert via_slurm == jobs("train.sh", 2, 5)


def test_finished_runs_are_skipped(tmp_path):
    (tmp_path / "joy-1.pt").write_bytes(b"done")
    proc = subprocess.run(
        ["bash", str(REPO / "train.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DRY_RUN": "1", "EMOTIONS": "joy fear", "SEEDS": "1", "CHECKPOINT_DIR": str(tmp_path)},
    )
    assert "skip joy-1" in proc.stdout and "run fear-1" in proc.stdout


def test_bad_shard_is_an_error():
    proc = subprocess.run(
        ["bash", str(REPO / "eval.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DRY_RUN": "1", "SHARD": "3", "NUM_SHARDS": "3"},
    )
    assert proc.returncode != 0 and "SHARD=3 must be in 0..NUM_SHARDS-1" in proc.stderr


@pytest.mark.parametrize("script", ["scripts/demo.sh", "scripts/reproduce.sh"])
def test_demo_offline_without_paths_fails_with_one_line(script):
    env = {k: v for k, v in os.environ.items() if k not in ("ME_SHARED_DATA", "MODEL", "DATA_DIR", "ATTRIBUTES")}
    proc = subprocess.run(
        ["bash", str(REPO / script)], capture_output=True, text=True, timeout=300, env={**env, "ME_OFFLINE": "1"}
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "set ME_SHARED_DATA" in lines[0]


def test_a_real_run_announces_counts_not_jobs_before_they_run(tmp_path):
    """Only a dry run lists the plan job by job; a real run says how many, and each job is reported as
    it finishes (by the stage's progress lines), so nothing reads as done before it ran."""
    (tmp_path / "joy-1.pt").write_bytes(b"done")
    proc = subprocess.run(
        ["bash", str(REPO / "train.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": "true", "EMOTIONS": "joy fear", "SEEDS": "1", "CHECKPOINT_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if line.startswith(("run ", "skip "))]
    assert "shard 0/1: 1 job(s) to run, 1 already done (skipped)" in lines
    assert lines[-1] == "shard 0/1 finished: 1 job(s) run, 1 skipped"
