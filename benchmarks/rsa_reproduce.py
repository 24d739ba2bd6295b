"""Reproduce the paper's searchlight ranking from its released RoBERTa activations.

For every attribute: Spearman correlation between our rank column and the paper's
``neurons_rank.csv``, and how many of the paper's top-1000 neurons are in our top 1000.
Targets: Spearman >= 0.9999 and overlap >= 990 for every attribute.

    python benchmarks/rsa_reproduce.py [--shared_data ../shared/data]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from common import shared_data
from scipy import stats

from model_emotion.data.ratings import build_rdms, load_ratings
from model_emotion.io.activations import load_activations
from model_emotion.rsa.searchlight import searchlight


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument("--top", type=int, default=1000, help="size of the top set compared (default %(default)s)")
    args = parser.parse_args()
    root = shared_data(args.shared_data)
    data = load_activations(root / "paper_roberta" / "activations.npz")
    rdms = build_rdms(load_ratings(root / "emotion_attributes"), data.emotions)
    result = searchlight(data.activations, rdms.rdms, rdms.names)
    paper = pd.read_csv(root / "paper_roberta" / "neurons_rank.csv")
    print(f"{'attribute':<18} {'spearman':>12} {'top' + str(args.top) + ' overlap':>16}")
    worst_rho, worst_overlap = 1.0, args.top
    for j, name in enumerate(rdms.names):
        ours, theirs = result.rank[:, j], paper[name].to_numpy(float)
        rho = stats.spearmanr(ours, theirs, nan_policy="omit").statistic
        overlap = len(set(np.argsort(ours)[: args.top]) & set(np.argsort(theirs)[: args.top]))
        worst_rho, worst_overlap = min(worst_rho, rho), min(worst_overlap, overlap)
        print(f"{name:<18} {rho:>12.8f} {overlap:>16d}")
    ok = worst_rho >= 0.9999 and worst_overlap >= 990
    print(f"worst: spearman {worst_rho:.8f}, overlap {worst_overlap}/{args.top} -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
