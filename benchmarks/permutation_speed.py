"""The permutation test's cost against today's parametric searchlight, side by side in one run.

Runs ``rsa_searchlight.py`` on the paper's activations (36,864 neurons x 14 attributes, 27 emotions x
12 seeds) three ways, each as its own process so that wall time and peak memory are the command's:

1. ``--test parametric`` (the paper's test: the baseline);
2. ``--test permutation --permutations B`` (max-T within each attribute and globally, null counts);
3. the API loop that the permutation test replaces, measured on a few permutations and
   extrapolated to B: one parametric searchlight (``rsa.kendall``) per permuted attribute RDM.

The issue's target: (2) in at most 40 x the wall time of (1), under 4 GiB. On a CUDA machine it also
times the exact GPU path (``--device cuda``) at ``--gpu_permutations`` (target: B = 10,000 in under 2
minutes on one H200); elsewhere it prints the FLOP count of that path for an estimate.

    python benchmarks/permutation_speed.py [--shared_data ../shared/data] [--permutations 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, shared_data


def run_command(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of one command in its own process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "rsa_searchlight.py"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rsa_searchlight.py {' '.join(args)} failed:\n{err}")
    return wall, usage.ru_maxrss / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument(
        "--permutations", type=int, default=1000, help="B of the permutation test (default %(default)s)"
    )
    parser.add_argument("--loop_sample", type=int, default=3, help="permutations timed for the API-loop baseline")
    parser.add_argument("--gpu_permutations", type=int, default=10000, help="B of the GPU timing (CUDA only)")
    args = parser.parse_args()
    root = shared_data(args.shared_data)
    acts = root / "paper_roberta" / "activations.npz"
    common = ["--activations", str(acts), "--attributes", str(root / "emotion_attributes"), "--device", "cpu"]
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: numba compiles (or loads its cache) once; not part of either timing.
        run_command(
            [
                *common,
                "--output",
                f"{tmp}/warm/r.csv",
                "--test",
                "permutation",
                "--permutations",
                "20",
                "--alpha",
                "0.05",
            ]
        )
        parametric, parametric_mem = run_command([*common, "--output", f"{tmp}/par/r.csv", "--test", "parametric"])
        permutation, permutation_mem = run_command(
            [
                *common,
                "--output",
                f"{tmp}/perm/r.csv",
                "--test",
                "permutation",
                "--permutations",
                str(args.permutations),
            ]
        )
    print(f"paper activations, 36,864 neurons x 14 attributes, 2 CPU threads (numba: {os.cpu_count()} cores seen)")
    print(f"parametric rsa_searchlight.py:            {parametric:7.1f} s  peak {parametric_mem:.2f} GiB")
    print(
        f"permutation, B = {args.permutations:<6d} (max-T, nulls): {permutation:7.1f} s  peak {permutation_mem:.2f} GiB"
        f"  = {permutation / parametric:.1f} x parametric (target <= 40 x, < 4 GiB)"
    )

    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.activations import load_activations
    from model_emotion.rsa.permutation import draw_permutations, pair_permutations
    from model_emotion.rsa.searchlight import kendall, neuron_rdms

    data = load_activations(acts)
    rdms = build_rdms(load_ratings(root / "emotion_attributes"), data.emotions)
    x = neuron_rdms(data.activations)
    index = pair_permutations(draw_permutations(len(data.emotions), args.loop_sample, 0))
    kendall(x[:10], rdms.rdms)  # compiled
    start = time.perf_counter()
    for b in range(args.loop_sample):
        kendall(x, rdms.rdms[:, index[b]])
    per = (time.perf_counter() - start) / args.loop_sample
    loop = per * args.permutations
    print(
        f"API loop (one searchlight per permutation): {per:.2f} s each -> {loop:7.0f} s for B = {args.permutations}"
        f" = {loop / parametric:.0f} x parametric, {loop / permutation:.1f} x the permutation kernel"
    )

    n0 = x.shape[1] * (x.shape[1] - 1) // 2
    targets = len(rdms.names) * (args.gpu_permutations + 1)
    flops = 2.0 * x.shape[0] * n0 * targets
    import torch

    if torch.cuda.is_available():
        with tempfile.TemporaryDirectory() as tmp:
            gpu, gpu_mem = run_command(
                [
                    "--activations",
                    str(acts),
                    "--attributes",
                    str(root / "emotion_attributes"),
                    "--device",
                    "cuda",
                    "--output",
                    f"{tmp}/gpu/r.csv",
                    "--test",
                    "permutation",
                    "--permutations",
                    str(args.gpu_permutations),
                ]
            )
        print(
            f"GPU path, B = {args.gpu_permutations}: {gpu:.1f} s (target < 120 s on one H200), host peak {gpu_mem:.2f} GiB"
        )
    else:
        print(
            f"GPU path, B = {args.gpu_permutations}: no CUDA device here; its float64 sign-matrix products are "
            f"{flops / 1e12:.0f} TFLOP ({flops / 67e12:.0f} s at an H200's 67 TFLOP/s FP64 peak), plus the "
            f"CPU post-processing per chunk, which scales with B as on the CPU path"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
