"""Family-wise error and power of the searchlight's tests, measured on simulated data where the truth is known.

Null: neuron activations with strong per-emotion effects (each neuron has one emotion far from the
others, heavy-tailed emotion effects, small seed noise), independent of the attribute ratings: the
structure that makes the parametric test's p-values too small on real RDMs. Planted: the same, with
``--planted`` neurons whose activations follow attribute 0's scores.

Prints the share of datasets with at least one significant neuron (FWER) for max-T within an
attribute, max-T over all attributes, and the parametric test (BH at the same alpha); then the power
(share of planted neurons found by max-T) and the false positives among the others.

    python benchmarks/permutation_error_rates.py [--runs 500] [--permutations 199] [--alpha 0.05]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from model_emotion.data.ratings import pair_index
from model_emotion.rsa.searchlight import searchlight


def attribute_rdms(scores: np.ndarray) -> np.ndarray:
    rows, cols = pair_index(scores.shape[0])
    return np.abs(scores[rows] - scores[cols]).T


def per_emotion_null(rng, K, S, N, big=4.0):
    effect = rng.standard_t(2, size=(K, 1, N))
    effect[rng.integers(0, K, size=N), 0, np.arange(N)] += big * rng.choice([-1, 1], size=N)
    return effect + 0.3 * rng.normal(size=(K, S, N))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--emotions", type=int, default=10)
    parser.add_argument("--neurons", type=int, default=40)
    parser.add_argument("--planted", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    K, a = args.emotions, args.alpha
    hits = np.zeros(3)
    for _ in range(args.runs):
        acts = per_emotion_null(rng, K, 3, args.neurons)
        res = searchlight(
            acts,
            attribute_rdms(rng.normal(size=(K, 2))),
            ["a", "b"],
            test="permutation",
            permutations=args.permutations,
            perm_seed=int(rng.integers(1e9)),
            alpha=a,
        )
        hits += [
            (res.perm.fwer_p[:, 0] <= a).any(),
            (res.perm.fwer_global_p <= a).any(),
            (np.nan_to_num(res.q[:, 0], nan=1) < a).any(),
        ]
    mc = math.sqrt(a * (1 - a) / args.runs)
    print(
        f"null: {args.runs} datasets of {K} emotions x 3 seeds x {args.neurons} neurons, B = {args.permutations}, "
        f"alpha = {a} (Monte Carlo sd at alpha: {mc:.3f})"
    )
    for name, h in zip(("max-T within attribute", "max-T over attributes", "parametric + BH"), hits):
        print(f"  FWER {name:24s} {h / args.runs:.3f}")
    found = false = 0
    runs = max(20, args.runs // 10)
    for _ in range(runs):
        scores = rng.normal(size=(K, 2))
        acts = per_emotion_null(rng, K, 3, args.neurons + args.planted)
        acts[:, :, : args.planted] = 1.5 * scores[:, None, 0:1] + 0.4 * rng.normal(size=(K, 3, args.planted))
        res = searchlight(
            acts,
            attribute_rdms(scores),
            ["a", "b"],
            test="permutation",
            permutations=max(args.permutations, 499),
            perm_seed=1,
            alpha=a,
        )
        sig = res.perm.fwer_p[:, 0] <= a
        found += sig[: args.planted].sum()
        false += sig[args.planted :].sum()
    print(
        f"planted: {runs} datasets, {args.planted} aligned neurons each: power of max-T {found / (runs * args.planted):.3f}, "
        f"false positives {false} of {runs * args.neurons} null neurons"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
