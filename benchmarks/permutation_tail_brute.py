"""The tail fits against brute force: 10^6 permutations on a few neurons, below 1/(B + 1).

For each of ``--attributes`` (default valence, whose permutation null is narrow, and disgust-face,
whose null is wide), the neurons of the paper's activations at ``--ranks`` of tau (default 8
neurons from rank 100 to 3000, so that their p range from far below 1/(B+1) to about it) form one max-T
family. From B = ``--permutations`` (default 1000 and 10,000) permutations the
toolkit gives (for each B), per neuron, the empirical FWER p (never below 1/(B+1)), the GPD tail's FWER p (PALM's
threshold search, Anderson-Darling at 5%, no p outside the fitted support) and the Pearson III
per-test p. The reference is the empirical p from ``--reference`` (default 1,000,000) other
permutations, with Kendall's S counted exactly by the toolkit's bitset kernel, in blocks of
``--block`` permutations. Prints, per neuron, the reference p with its count, each approximation
and its ratio to the reference.

    python benchmarks/permutation_tail_brute.py [--reference 1000000] [--attributes valence disgust-face]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from common import shared_data


def reference_counts(x, y, tau_obs, denominator, *, perms_total: int, block: int, seed: int):
    """Exceedance counts over ``perms_total`` permutations of y's emotions: per neuron of its own tau
    (per-test) and of the family's maximum (max-T). x: [neurons, pairs]; y: [pairs]; denominator: the
    tau-b denominator per neuron (a permutation keeps y's ties)."""
    from model_emotion.rsa.kendall import TargetBitsets, kendall_s_targets
    from model_emotion.rsa.permutation import draw_permutations, pair_permutations

    own, family = np.zeros(len(x), np.int64), np.zeros(len(x), np.int64)
    n_emotions = int(round((1 + np.sqrt(1 + 8 * x.shape[1])) / 2))
    for start in range(0, perms_total, block):
        size = min(block, perms_total - start)
        perms = draw_permutations(n_emotions, size, seed + start)  # a fresh seed per block: independent draws
        S, _ = kendall_s_targets(x, TargetBitsets(y[pair_permutations(perms)]))  # exact [neurons, size]
        tau = S / denominator[:, None]
        own += (tau >= tau_obs[:, None] - 1e-12).sum(axis=1)
        family += (tau.max(axis=0)[None, :] >= tau_obs[:, None] - 1e-12).sum(axis=1)
    return own, family


def one_attribute(acts, rdms, name: str, args) -> None:
    from model_emotion.rsa.kendall import tie_sums
    from model_emotion.rsa.searchlight import kendall, neuron_rdms, searchlight

    a = rdms.names.index(name)
    y = rdms.rdms[a]
    x_all = neuron_rdms(acts)
    tau_all, _ = kendall(x_all, y[None])
    order = np.argsort(-np.nan_to_num(tau_all[:, 0], nan=-1))
    top = order[np.array(args.ranks) - 1]  # neurons at these tau ranks: p from far below 1/(B+1) to near it
    x = x_all[top]
    n0 = x.shape[1] * (x.shape[1] - 1) / 2.0
    tx, ty = tie_sums(x)[:, 0] / 2.0, tie_sums(y[None])[0, 0] / 2.0
    tau_obs = tau_all[top, 0]
    fits = {
        (B, tail): searchlight(
            acts[:, :, top], y[None], [name], test="permutation", permutations=B, perm_seed=1, alpha=0.05, tail=tail
        )
        for B in args.permutations
        for tail in ("gpd", "moments")
    }
    start = time.perf_counter()
    denominator = np.sqrt((n0 - tx) * (n0 - ty))
    own, family = reference_counts(
        x, y, tau_obs, denominator, perms_total=args.reference, block=args.block, seed=args.seed
    )
    R = args.reference
    print(
        f"\n{name}: {len(top)} neurons (tau ranks {args.ranks}) as one max-T family; reference {R:,} permutations ({time.perf_counter() - start:.0f} s)"
    )
    for B in args.permutations:
        record = fits[B, "gpd"].perm.tail_fits[0] if fits[B, "gpd"].perm.tail_fits else {"fitted": False}
        keys = ("fitted", "quantile", "shape", "ad_statistic", "ad_critical", "endpoint", "beyond_support")
        print(
            f"  B = {B}: GPD fit of the family's null maxima: "
            + ", ".join(f"{k} {record.get(k)}" for k in keys if k in record)
        )
        print(
            "  neuron    tau   ref FWER p (count)   empirical B   GPD FWER p  ratio | ref per-test p (count)  moments p  ratio"
        )
        for i, neuron in enumerate(top):
            ref_f, ref_p = (1 + family[i]) / (R + 1), (1 + own[i]) / (R + 1)
            emp = fits[B, "moments"].perm.variants["raw_within"][i, 0]  # the moments run's max-T p is empirical
            gpd, mom = fits[B, "gpd"].perm.fwer_p[i, 0], fits[B, "moments"].perm.perm_p[i, 0]
            print(
                f"  {neuron:6d} {tau_obs[i]:.3f}  {ref_f:.2e} ({family[i]:6d})   {emp:.2e}    {gpd:.2e}  {gpd / ref_f:5.2f} |"
                f"  {ref_p:.2e} ({own[i]:6d})  {mom:.2e}  {mom / ref_p:5.2f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None)
    parser.add_argument("--attributes", nargs="+", default=["valence", "disgust-face"])
    parser.add_argument(
        "--ranks", type=int, nargs="+", default=[100, 200, 400, 700, 1000, 1500, 2000, 3000],
        help="the family: the neurons at these ranks of tau (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--permutations", type=int, nargs="+", default=[1000, 10000], help="B of the fits (default %(default)s)"
    )
    parser.add_argument("--reference", type=int, default=1_000_000, help="brute-force permutations")
    parser.add_argument("--block", type=int, default=2000, help="permutations per block of the reference")
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.activations import load_activations

    root = shared_data(args.shared_data)
    data = load_activations(root / "paper_roberta" / "activations.npz")
    rdms = build_rdms(load_ratings(root / "emotion_attributes"), data.emotions)
    keep = [data.emotions.index(e) for e in rdms.emotions]
    for name in args.attributes:
        one_attribute(data.activations[keep], rdms, name, args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
