"""Speed and memory of the RSA searchlight at the paper's scale, against a plain scipy loop.

36,864 neurons x 14 attributes, 27 emotions x 12 seeds, from the paper's activations.npz. Reports
the kernel's JIT compile time separately (numba caches it on disk after the first run), the wall
time of a full searchlight, the process's peak memory, and a ``scipy.stats.kendalltau`` loop over a
sample of neurons extrapolated to all of them: the ratio is the speed-up.

    python benchmarks/rsa_speed.py [--shared_data ../shared/data] [--sample 300]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from common import shared_data
from scipy import stats

from model_emotion.data.ratings import build_rdms, load_ratings
from model_emotion.io.activations import load_activations
from model_emotion.rsa.searchlight import kendall, neuron_rdms, searchlight


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument(
        "--activations",
        type=str,
        default=None,
        help="an activations.npz to use instead of the paper's (default: paper_roberta/activations.npz)",
    )
    parser.add_argument(
        "--sample", type=int, default=300, help="neurons in the scipy baseline loop (default %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of the full searchlight")
    parser.add_argument(
        "--torch_device", type=str, default=None, help="also time the torch sign-matrix path on this device (e.g. cuda)"
    )
    args = parser.parse_args()
    root = shared_data(args.shared_data)
    data = load_activations(args.activations or root / "paper_roberta" / "activations.npz")
    rdms = build_rdms(load_ratings(root / "emotion_attributes"), data.emotions)
    E, S, N = data.activations.shape
    print(f"input: {E} emotions x {S} seeds x {N} neurons, {len(rdms.names)} attributes, {rdms.rdms.shape[1]} pairs")

    start = time.perf_counter()
    kendall(np.random.default_rng(0).random((4, 10)), np.random.default_rng(1).random((2, 10)))
    print(f"kernel compile (or cache load): {time.perf_counter() - start:.2f} s")
    rss_before = peak_rss_gib()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = searchlight(data.activations, rdms.rdms, rdms.names)
        times.append(time.perf_counter() - start)
    ours = min(times)
    print(
        f"searchlight (RDMs + tau-b + p + FDR + ranks): best {ours:.2f} s, runs {', '.join(f'{t:.2f}' for t in times)}"
    )
    print(f"peak RSS: {peak_rss_gib():.2f} GiB (before the searchlight: {rss_before:.2f} GiB)")
    if args.torch_device:
        import torch

        device = torch.device(args.torch_device)
        searchlight(data.activations[:, :, :64], rdms.rdms, rdms.names, device=device)  # warm-up
        start = time.perf_counter()
        on_device = searchlight(data.activations, rdms.rdms, rdms.names, device=device)
        print(
            f"searchlight with torch on {device}: {time.perf_counter() - start:.2f} s; max |tau difference| "
            f"{np.nanmax(np.abs(on_device.tau - result.tau)):.1e}"
        )

    x = neuron_rdms(data.activations)
    sample = np.random.default_rng(0).choice(N, args.sample, replace=False)
    start = time.perf_counter()
    for i in sample:
        for a in range(rdms.rdms.shape[0]):
            ref = stats.kendalltau(x[i], rdms.rdms[a], alternative="greater")
            assert abs(ref.statistic - result.tau[i, a]) < 1e-12
    loop = (time.perf_counter() - start) / args.sample * N
    print(
        f"scipy.stats.kendalltau loop: {args.sample} neurons in {loop * args.sample / N:.2f} s -> {loop:.1f} s "
        f"extrapolated to {N} neurons (same values to 1e-12)"
    )
    print(f"speed-up: {loop / ours:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
