"""Coverage, one-sided error and power of the causal step's interval (report/causal.py) on simulated
runs with known truth (benchmarks/causal_sim.py), beside the 0.4 scheme (a two-stage bootstrap over
prompts and examples that takes the random baseline as known) on the same runs.

    python benchmarks/causal_coverage.py [--runs 1000]

Prints one line per scenario. Each scenario's variance sources are named in its line; every scenario
has emotions, seeds within emotions, random draws, emotion x draw interactions, per-emotion effects of
the top mask and example noise shared by an emotion's seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from causal_sim import measure  # noqa: E402

SCENARIOS = [
    ("defaults (27 emotions x 6 seeds, 20 draws)", {}),
    ("5 draws", {"draws": 5}),
    ("10 emotions, wide per-emotion effects", {"emotions": 10, "sd_effect_emotion": 0.06}),
    ("emotions dominate, draws narrow", {"sd_draw": 0.01, "sd_emotion": 0.08, "sd_effect_emotion": 0.06}),
    ("skewed draws (a fifth cost 12 pts more), 14 draws", {"jump": 0.12, "sd_draw": 0.02, "draws": 14}),
    ("skewed draws, 20 draws", {"jump": 0.12, "sd_draw": 0.02, "draws": 20}),
    ("skewed draws, 40 draws", {"jump": 0.12, "sd_draw": 0.02, "draws": 40}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--old_runs", type=int, default=200, help="runs of the slow 0.4 bootstrap")
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"{'scenario':52s} {'coverage':>8s} {'error':>6s} {'0.4 coverage':>12s}")
    for name, spec in SCENARIOS:
        coverage, error, old = measure(args.runs, 0.0, old=args.old_runs if not spec else 0, **spec)
        print(f"{name:52s} {coverage:8.3f} {error:6.3f} {old:12.3f}")
    for effect in (0.03, 0.05):
        _, power, _ = measure(args.runs // 2, effect, seed=9)
        print(f"power at a {100 * effect:.0f}-point drop (defaults): {power:.3f}")
    print(
        f"({args.runs} runs per scenario; Monte Carlo SE of a coverage near 0.95: "
        f"{np.sqrt(0.95 * 0.05 / args.runs):.3f}; {time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
