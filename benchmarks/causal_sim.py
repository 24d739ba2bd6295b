"""Simulated masked-evaluation runs with known truth, for the causal step's inference.

One run: E emotions x S seeds (prompts), each emotion with its own n test examples (shared by its
seeds, as GoEmotions' prompts of one emotion share their test set), D random masks shared by every
prompt, and one top mask. Example i of emotion e is answered correctly by prompt (e, s) under mask m
with probability

    q[e, i] + u[e] + v[e, s] + b[m] + c[e, m]        (clipped to [0.01, 0.99]; rarely reached)

where q is the example's difficulty (shared by the seeds and masks of the emotion), u the emotion's
and v the seed's effect, b[R_d] ~ N(0, sd_draw) a random mask's own cost (shared by all prompts),
c[e, m] ~ N(0, sd_emotion_draw) the interaction (with ``jump`` > 0 a share ``jump_prob`` of the
random masks costs ``jump`` more, centred: the left-skewed draws of the paper's release), and the top mask costs b[T] = -(effect + t[e]) with
t[e] ~ N(0, sd_effect_emotion) a per-emotion effect (mean 0). Correctness is drawn per example with
one uniform per (prompt, example) shared across masks, so the masks' results are paired on examples
as in a real evaluation. The true drop beyond random, E[y(R) - y(T)], is ``effect`` (clipping aside).

The default spreads are on the scale of the paper's released RoBERTa results (``DEFAULTS``): random
draws at k = 3000 whose mean accuracy varies with SD about 5.7 points, emotion-clustered drops, and
prompt-level example noise of a few hundred examples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULTS = dict(
    emotions=27,
    seeds=6,
    draws=20,
    examples=200,
    sd_emotion=0.05,
    sd_seed=0.02,
    sd_draw=0.05,
    sd_emotion_draw=0.02,
    sd_effect_emotion=0.03,
    jump=0.0,
    jump_prob=0.2,
)


def simulate(rng: np.random.Generator, effect: float = 0.0, **spec) -> tuple[pd.DataFrame, np.ndarray]:
    """One run as a long table (emotion, seed, attribute, kind, k, draw, accuracy) and the per-prompt
    per-example paired differences (mean random minus top correctness), for the older scheme."""
    p = {**DEFAULTS, **spec}
    E, S, D, n = p["emotions"], p["seeds"], p["draws"], p["examples"]
    q = rng.uniform(0.6, 0.9, (E, n))  # example difficulty
    u = rng.normal(0, p["sd_emotion"], E)
    v = rng.normal(0, p["sd_seed"], (E, S))
    draws = rng.normal(0, p["sd_draw"], D)
    # a skewed draw distribution: a share of random masks hits a few critical neurons and costs ``jump``
    # more (centred, so that the mean random mask still costs 0), as the paper's draws at k = 3000 do
    draws += p["jump"] * (p["jump_prob"] - (rng.random(D) < p["jump_prob"]))
    b = np.concatenate([[0.0], draws])  # mask 0 = top (its cost below)
    c = rng.normal(0, p["sd_emotion_draw"], (E, D + 1))
    t = rng.normal(0, p["sd_effect_emotion"], E)
    b_top = -(effect + t)  # [E]
    shift = u[:, None, None] + v[:, :, None] + b[None, None, :] + c[:, None, :]  # [E, S, D + 1]
    shift[:, :, 0] += b_top[:, None] - b[0]
    prob = np.clip(q[:, None, None, :] + shift[..., None], 0.01, 0.99)  # [E, S, D + 1, n]
    uniform = rng.random((E, S, 1, n))
    correct = uniform < prob
    acc = correct.mean(axis=-1)  # [E, S, D + 1]
    rows = []
    for e in range(E):
        for s in range(S):
            rows.append((f"e{e}", s, "a", "top", 1, 0, acc[e, s, 0]))
            rows += [(f"e{e}", s, "a", "random", 1, d, acc[e, s, d]) for d in range(1, D + 1)]
    table = pd.DataFrame(rows, columns=["emotion", "seed", "attribute", "kind", "k", "draw", "accuracy"])
    paired = correct[:, :, 1:, :].mean(axis=2) - correct[:, :, 0, :]  # [E, S, n]
    return table, paired.reshape(E * S, n).astype(float)


def old_two_stage_bootstrap(
    differences: list[np.ndarray], confidence: float = 0.95, seed: int = 0, draws: int = 2000
) -> tuple[float, float, float]:
    """The interval of toolkit 0.4 (kept here only to measure it beside the new one): a two-stage percentile bootstrap of a mean paired difference over prompts and examples.

    ``differences``: per prompt, the per-example paired differences (e.g. random-mask correctness minus
    top-k-mask correctness on the same examples). Each draw resamples the prompts with replacement and,
    for every drawn prompt, its examples with replacement, then averages the prompt means. Returns the
    interval and the bootstrap standard error; NaNs without data. With one prompt it is the bootstrap
    over that prompt's examples alone."""
    groups = [np.asarray(d, dtype=float) for d in differences if len(d)]
    if not groups:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # stage 2 first: draws example resamples of each prompt's mean [prompts, draws]
    pool = np.stack([g[rng.integers(0, g.size, (draws, g.size))].mean(axis=1) for g in groups])
    # stage 1: resample prompts; each drawn occurrence takes an independent example resample from the pool
    picks = rng.integers(0, len(groups), (draws, len(groups)))
    columns = rng.integers(0, draws, (draws, len(groups)))
    means = pool[picks, columns].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)), float(means.std(ddof=1))


def measure(runs: int, effect: float = 0.0, seed: int = 7, old: int = 0, **spec) -> tuple[float, float, float]:
    """Over ``runs`` simulated runs: the coverage of the causal step's 95% interval, its one-sided
    rejections at 5%, and the 0.4 scheme's coverage on the first ``old`` runs (NaN when 0)."""
    from model_emotion.report.causal import causal_table

    rng = np.random.default_rng(seed)
    covered = rejected = old_covered = 0
    for r in range(runs):
        table, paired = simulate(rng, effect, **spec)
        est = causal_table(table, 1).iloc[0]
        covered += est.ci_low <= effect <= est.ci_high
        rejected += est.p < 0.05
        if r < old:
            low, high, _ = old_two_stage_bootstrap(list(paired), seed=r, draws=500)
            old_covered += low <= effect <= high
    return covered / runs, rejected / runs, (old_covered / old if old else float("nan"))
