"""Split-half seed reliability of the searchlight's neuron statistics against its relabelling null, alone.

``rsa_searchlight.py --seed_diagnostics`` writes the same table beside a run, with the seed-influence
searchlights as well; this script runs only the reliability (the part the survival table uses), for a
large activations file where the influence searchlights would cost more than the answer needs:

    python benchmarks/seed_reliability.py --activations ../shared/data/paper_roberta/activations.npz \\
        --attributes ../shared/data/emotion_attributes --output OUT/rank_seed_reliability.csv [--splits 1]

Prints, per attribute, the mean over splits of the Spearman agreement, its null mean and p (and Holm).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", type=Path, required=True)
    parser.add_argument("--attributes", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True, help="the _seed_reliability.csv to write")
    parser.add_argument("--splits", type=int, default=5, help="random half splits besides odd/even")
    parser.add_argument("--relabellings", type=int, default=500)
    parser.add_argument("--leave_one_out", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.activations import load_activations
    from model_emotion.io.files import write_csv
    from model_emotion.report.tables import to_markdown
    from model_emotion.rsa.seeds import seed_reliability

    data = load_activations(args.activations)
    rdms = build_rdms(load_ratings(args.attributes), data.emotions)
    keep = [data.emotions.index(e) for e in rdms.emotions]
    start = time.perf_counter()
    table = seed_reliability(
        data.activations[keep], rdms.rdms, rdms.names, args.splits, args.seed, relabellings=args.relabellings,
        leave_one_out=args.leave_one_out,
    )  # fmt: skip
    write_csv(args.output, table)
    mean = table[table["split"] == "mean"]
    columns = ["attribute", "spearman", "spearman_chance", "spearman_null_p95", "spearman_p", "spearman_p_holm"]
    print(
        f"{len(data.seeds)} seeds, {args.splits + 1} half splits, {args.relabellings} relabellings ({time.perf_counter() - start:.0f} s)"
    )
    print(to_markdown(mean[columns + ["top500_overlap", "top500_overlap_chance", "top500_overlap_p"]].round(4)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
