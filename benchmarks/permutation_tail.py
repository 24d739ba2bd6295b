"""How accurate are the permutation test's tail approximations? Against brute force with many more
permutations, on a sample of the paper's neurons.

With B permutations an empirical p cannot go below 1/(B+1). Two options resolve further:
- ``--tail gpd``: a generalized Pareto fit to the top 10% of the max-T null (the FWER-adjusted p);
- ``--tail moments``: a Pearson type III fit to each test's own null (the per-test p).
Both are computed from B (default 1000) permutations and compared with the empirical p from
``--reference`` (default 20,000) other permutations of the same neurons, where that reference is
itself resolved (at least 20 exceedances). Prints, per option, the median and 90th percentile of
|log10(p_approx / p_reference)| and the share within a factor of 2.

    python benchmarks/permutation_tail.py [--neurons 1500] [--permutations 1000] [--reference 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from common import shared_data


def summary(name: str, approx: np.ndarray, reference: np.ndarray, counts: np.ndarray, B: int) -> None:
    ok = np.isfinite(approx) & np.isfinite(reference) & (counts >= 20)
    beyond = ok & (reference < 10 / (B + 1))  # where B alone has fewer than 10 exceedances
    for label, sel in (("all resolved tests", ok), (f"p_ref < 10/(B+1) = {10 / (B + 1):.3g}", beyond)):
        if not sel.any():
            print(f"  {name}: {label}: none")
            continue
        err = np.abs(np.log10(approx[sel] / reference[sel]))
        print(
            f"  {name}: {label}: n = {sel.sum():6d}  median |log10 ratio| {np.median(err):.3f}  "
            f"90th pct {np.percentile(err, 90):.3f}  within 2x {np.mean(err < np.log10(2)):.1%}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None)
    parser.add_argument("--neurons", type=int, default=1500, help="neurons sampled (default %(default)s)")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--reference", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.activations import load_activations
    from model_emotion.rsa.searchlight import searchlight

    root = shared_data(args.shared_data)
    data = load_activations(root / "paper_roberta" / "activations.npz")
    rdms = build_rdms(load_ratings(root / "emotion_attributes"), data.emotions)
    pick = np.sort(np.random.default_rng(args.seed).choice(data.activations.shape[2], args.neurons, replace=False))
    acts = data.activations[:, :, pick]
    start = time.perf_counter()
    runs = {
        tail: searchlight(
            acts,
            rdms.rdms,
            rdms.names,
            test="permutation",
            permutations=args.permutations,
            perm_seed=1,
            alpha=0.05,
            tail=tail,
            chunk=256,
        )
        for tail in ("gpd", "moments")
    }
    ref = searchlight(
        acts, rdms.rdms, rdms.names, test="permutation", permutations=args.reference, perm_seed=2, alpha=0.05, chunk=64
    )
    print(
        f"{args.neurons} neurons x {len(rdms.names)} attributes of the paper's activations; B = {args.permutations} "
        f"against a reference of {args.reference} other permutations ({time.perf_counter() - start:.0f} s)"
    )
    R = args.reference
    # FWER (max-T within attribute): GPD from B vs the empirical from the reference
    ref_fwer = ref.perm.fwer_p
    fwer_counts = np.rint(ref_fwer * (R + 1) - 1)
    summary("gpd, FWER p", runs["gpd"].perm.fwer_p, ref_fwer, fwer_counts, args.permutations)
    summary("empirical, FWER p", runs["moments"].perm.fwer_p, ref_fwer, fwer_counts, args.permutations)
    ref_p = ref.perm.perm_p
    p_counts = np.rint(ref_p * (R + 1) - 1)
    summary("moments, per-test p", runs["moments"].perm.perm_p, ref_p, p_counts, args.permutations)
    summary("empirical, per-test p", runs["gpd"].perm.perm_p, ref_p, p_counts, args.permutations)
    parametric = runs["gpd"].p
    summary("parametric p (for contrast)", parametric, ref_p, p_counts, args.permutations)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
