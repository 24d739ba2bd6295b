"""The paper's human side: similarity judgments, rater agreement, and how they meet the model.

A human folder (``--human_dir``) holds the Concept Similarity Judgment experiment and the
GoEmotions rater agreement, as released with the paper:

- ``similarity_judgments.csv``: ``emotion_a, emotion_b, dissimilarity`` (the mean over participants);
- ``similarity_judgments_by_participant.csv`` (optional): ``participant, emotion_a, emotion_b, dissimilarity``;
- ``rater_agreement.csv`` (optional): ``emotion`` and numeric agreement columns (e.g.
  ``interrater_correlation``, ``cohens_kappa``).

Analyses (the paper's argument that the neurons matter in proportion to how much each attribute
matters to humans):

- ``attribute_importance``: Kendall tau-b of the human similarity RDM with each attribute's RDM:
  the paper's one-sided p (R's ``cor.test``, which treats the emotion pairs as independent) with BH
  q-values, beside the emotion-label permutation p (Mantel; Nili et al. 2014) with Holm across the
  attributes, and a percentile interval from the dual bootstrap over emotions and participants
  (Schuett et al. 2023: both are samples; resampled pairs of one emotion with itself are left out, as
  rsatoolbox does);
- ``noise_ceiling``: the lower and upper bounds of the human RDM's noise ceiling from the participants
  (Nili et al. 2014; rsatoolbox's ``boot_noise_ceiling``): each participant's RDM against the pooled
  RDM of the others (lower) and of everyone (upper), pooled as ranks for the rank correlations;
- ``importance_vs_drop``: per k, the rank correlation across attributes between importance and the
  masking drop beyond random (mean random-mask accuracy minus mean top-k accuracy);
- ``agreement_vs_accuracy``: rater agreement against prompt accuracy per emotion;
- ``model_rsa``: the RDM of the whole activation pattern (all neurons, and per layer; correlation
  distance between the emotions' seed-averaged activation vectors) against the human and attribute RDMs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from model_emotion.data.ratings import AttributeRDMs, pair_index
from model_emotion.errors import ToolkitError
from model_emotion.io.files import read_csv
from model_emotion.rsa.fdr import fdr, holm
from model_emotion.rsa.permutation import mantel_p
from model_emotion.rsa.searchlight import kendall

logger = logging.getLogger(__name__)

SIMILARITY = "similarity_judgments.csv"
BY_PARTICIPANT = "similarity_judgments_by_participant.csv"
AGREEMENT = "rater_agreement.csv"


@dataclass(frozen=True)
class HumanData:
    similarity: pd.DataFrame  # emotion_a, emotion_b, dissimilarity
    by_participant: pd.DataFrame | None  # participant, emotion_a, emotion_b, dissimilarity
    agreement: pd.DataFrame | None  # emotion + numeric columns
    source: str


def _read_table(path: Path, required: list[str], numeric: list[str]) -> pd.DataFrame:
    frame = read_csv(path, f"a table with columns {', '.join(required)}", required)
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(float))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ToolkitError(
                f"{path}: column {column!r} row {row + 2} is {frame[column].iloc[row]!r}, not a finite number"
            )
        frame[column] = values.astype(float)
    for column in ("emotion_a", "emotion_b", "emotion"):
        if column in frame.columns:
            frame[column] = frame[column].astype(str)
    return frame


def load_human(folder: str | Path) -> HumanData:
    """Read a human-judgment folder; the averaged similarity judgments are required."""
    folder = Path(folder)
    if not (folder / SIMILARITY).is_file():
        raise ToolkitError(f"{{--human_dir}} {folder}: no {SIMILARITY} (emotion_a, emotion_b, dissimilarity)")
    pair_columns = ["emotion_a", "emotion_b", "dissimilarity"]
    similarity = _read_table(folder / SIMILARITY, pair_columns, ["dissimilarity"])
    by_participant = None
    if (folder / BY_PARTICIPANT).is_file():
        by_participant = _read_table(folder / BY_PARTICIPANT, ["participant"] + pair_columns, ["dissimilarity"])
    agreement = None
    if (folder / AGREEMENT).is_file():
        agreement = _read_table(folder / AGREEMENT, ["emotion"], [])
        numeric = [
            c
            for c in agreement.columns
            if c != "emotion" and pd.to_numeric(agreement[c], errors="coerce").notna().all()
        ]
        agreement = agreement[["emotion"] + numeric].copy()
        agreement[numeric] = agreement[numeric].astype(float)
    return HumanData(similarity, by_participant, agreement, str(folder))


def pair_vector(table: pd.DataFrame, emotions: list[str], value: str = "dissimilarity", where: str = "") -> np.ndarray:
    """A long pair table as an RDM vector over ``emotions`` in ``pair_index`` order. [pairs]"""
    lookup = {}
    for a, b, v in zip(table["emotion_a"], table["emotion_b"], table[value]):
        lookup[(a, b)] = lookup[(b, a)] = v
    rows, cols = pair_index(len(emotions))
    out = np.empty(len(rows))
    for p, (i, j) in enumerate(zip(rows, cols)):
        key = (emotions[i], emotions[j])
        if key not in lookup:
            raise ToolkitError(f"{where or 'human RDM'}: no dissimilarity for the pair {key[0]}, {key[1]}")
        out[p] = lookup[key]
    return out


def shared_emotions(human: HumanData, rdms: AttributeRDMs) -> list[str]:
    named = set(human.similarity["emotion_a"]) | set(human.similarity["emotion_b"])
    shared = [e for e in rdms.emotions if e in named]
    if len(shared) < 3:
        raise ToolkitError(f"{human.source}: only {len(shared)} emotion(s) shared with the attribute ratings; need 3")
    return shared


def _restrict(rdms: AttributeRDMs, emotions: list[str]) -> np.ndarray:
    """The attribute RDMs over a subset of their emotions. [attributes, pairs]"""
    if emotions == rdms.emotions:
        return rdms.rdms
    keep = [rdms.emotions.index(e) for e in emotions]
    # pair_index order is scipy's condensed order: square each RDM, take the sub-matrix, condense it.
    return np.stack([squareform(squareform(rdm, checks=False)[np.ix_(keep, keep)], checks=False) for rdm in rdms.rdms])


def attribute_importance(
    human: HumanData,
    rdms: AttributeRDMs,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    permutations: int = 10000,
) -> pd.DataFrame:
    """Kendall tau-b of the human similarity RDM with each attribute RDM: the paper's one-sided p and BH
    q, the emotion-label permutation p (``permutations`` draws) and its Holm adjustment across the
    attributes, and a percentile interval from the dual bootstrap over emotions and participants (over
    emotions alone without per-participant data; ``bootstrap`` says which).

    Columns: attribute, tau, p_value, q_value, perm_p, perm_p_holm, ci_low, ci_high, bootstrap.
    """
    emotions = shared_emotions(human, rdms)
    attribute = _restrict(rdms, emotions)  # [A, pairs]
    target = pair_vector(human.similarity, emotions, where=f"{human.source}/{SIMILARITY}")
    tau, p = kendall(target[None], attribute)  # [1, A]
    perm_p = mantel_p(target[None], attribute, len(emotions), permutations, seed)[0]
    table = pd.DataFrame({"attribute": rdms.names, "tau": tau[0], "p_value": p[0], "q_value": fdr(p[0], "bh")})
    table["perm_p"], table["perm_p_holm"] = perm_p, holm(perm_p)
    table["ci_low"], table["ci_high"], table["bootstrap"] = np.nan, np.nan, ""
    if n_boot > 0:
        people = participant_rdms(human, emotions)  # [people, pairs] or None
        boot_tau = dual_bootstrap(target, people, attribute, n_boot, seed)  # [n_boot, A]
        tail = (1 - confidence) / 2 * 100
        table["ci_low"] = np.nanpercentile(boot_tau, tail, axis=0)
        table["ci_high"] = np.nanpercentile(boot_tau, 100 - tail, axis=0)
        table["bootstrap"] = "emotions" if people is None else "emotions+participants"
        logger.info("attribute importance: %d bootstrap draws (%s)", n_boot, table["bootstrap"].iloc[0])
    return table


def participant_rdms(human: HumanData, emotions: list[str]) -> np.ndarray | None:
    """Each participant's RDM over ``emotions`` (participants sorted). [people, pairs], or None."""
    if human.by_participant is None:
        return None
    return np.stack(
        [
            pair_vector(group, emotions, where=f"{human.source}/{BY_PARTICIPANT}")
            for _, group in human.by_participant.groupby("participant", sort=True)
        ]
    )


def bootstrap_pairs(n: int, rng) -> np.ndarray:
    """One bootstrap sample of n emotions as pair indices (``pair_index`` order) of the sampled pairs,
    a pair drawn twice kept twice and a pair of one emotion with itself left out. [pairs drawn]"""
    draw = rng.integers(0, n, size=n)
    rows, cols = pair_index(n)
    a, b = draw[rows], draw[cols]
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    return n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)


def dual_bootstrap(
    target: np.ndarray, people: np.ndarray | None, others: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """Kendall tau-b of the target RDM (the mean of resampled participants' RDMs when ``people`` is given,
    else ``target`` itself) with each of ``others`` [R, pairs] over resampled emotions. [n_boot, R]"""
    rng = np.random.default_rng(seed)
    n = int(round((1 + np.sqrt(1 + 8 * len(target))) / 2))
    out = np.full((n_boot, len(others)), np.nan)
    for b in range(n_boot):
        pairs = bootstrap_pairs(n, rng)
        vector = target if people is None else people[rng.integers(0, len(people), size=len(people))].mean(axis=0)
        if pairs.size >= 3:
            out[b] = kendall(vector[pairs][None], others[:, pairs])[0][0]
    return out


def noise_ceiling(people: np.ndarray, method: str = "kendall_tau_b") -> tuple[float, float]:
    """The (lower, upper) noise ceiling of a group RDM from its participants' RDMs [people, pairs]: the
    mean over participants of the correlation of their RDM with the pooled RDM of the others (lower) and
    of all (upper). Pooled as the mean of ranks for ``kendall_tau_b``/``spearman``, as rsatoolbox's
    ``boot_noise_ceiling`` pools for rank correlations."""
    if len(people) < 2:
        raise ToolkitError(f"a noise ceiling needs at least 2 participants, got {len(people)}")
    if method not in ("kendall_tau_b", "spearman"):
        raise ToolkitError(f"noise ceiling method {method!r} unknown; choose kendall_tau_b or spearman")
    ranks = stats.rankdata(people, axis=1)

    def corr(x: np.ndarray, y: np.ndarray) -> float:
        return float((stats.kendalltau if method == "kendall_tau_b" else stats.spearmanr)(x, y).statistic)

    everyone = ranks.mean(axis=0)
    lower = [corr(np.delete(ranks, i, axis=0).mean(axis=0), people[i]) for i in range(len(people))]
    upper = [corr(everyone, people[i]) for i in range(len(people))]
    return float(np.mean(lower)), float(np.mean(upper))


def drop_beyond_random(effects: pd.DataFrame) -> pd.DataFrame:
    """Per (attribute, k): mean random-mask accuracy minus mean top-k accuracy over (emotion, seed)."""
    valid = effects.dropna(subset=["top", "random"])
    grouped = valid.groupby(["attribute", "k"])
    return (grouped["random"].mean() - grouped["top"].mean()).rename("drop_beyond_random").reset_index()


def importance_vs_drop(importance: pd.DataFrame, drops: pd.DataFrame) -> pd.DataFrame:
    """Per k, rank correlations across attributes between importance (tau) and drop beyond random.

    Spearman's rho with its one-sided p-value (greater: the paper's hypothesis that neurons of more
    important attributes matter more) and Kendall's tau-b. Columns: k, spearman_rho, p_value,
    kendall_tau, n_attributes.
    """
    merged = drops.merge(importance[["attribute", "tau"]], on="attribute")
    rows = []
    for k, group in merged.groupby("k"):
        n = len(group)
        if n >= 3 and group["tau"].nunique() > 1 and group["drop_beyond_random"].nunique() > 1:
            rho = stats.spearmanr(group["tau"], group["drop_beyond_random"], alternative="greater")
            kt = stats.kendalltau(group["tau"], group["drop_beyond_random"])
            rows.append(
                {
                    "k": int(k),
                    "spearman_rho": float(rho.statistic),
                    "p_value": float(rho.pvalue),
                    "kendall_tau": float(kt.statistic),
                    "n_attributes": n,
                }
            )
        else:
            rows.append(
                {"k": int(k), "spearman_rho": np.nan, "p_value": np.nan, "kendall_tau": np.nan, "n_attributes": n}
            )
    return pd.DataFrame(rows, columns=["k", "spearman_rho", "p_value", "kendall_tau", "n_attributes"])


def agreement_vs_accuracy(agreement: pd.DataFrame, accuracy: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per emotion: agreement columns beside the mean prompt accuracy over seeds; and per agreement
    column the Pearson r and Spearman rho with accuracy (two-sided p). Returns (per_emotion, correlations)."""
    mean_acc = accuracy.groupby("emotion")["accuracy"].mean().rename("prompt_accuracy")
    per_emotion = agreement.merge(mean_acc, left_on="emotion", right_index=True)
    measures = [c for c in agreement.columns if c not in ("emotion", "paper_prompt_accuracy")]
    rows = []
    for measure in measures:
        x, y = per_emotion[measure].to_numpy(float), per_emotion["prompt_accuracy"].to_numpy(float)
        if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            r, rho = stats.pearsonr(x, y), stats.spearmanr(x, y)
            rows.append(
                {
                    "measure": measure,
                    "n_emotions": len(x),
                    "pearson_r": float(r.statistic),
                    "pearson_p": float(r.pvalue),
                    "spearman_rho": float(rho.statistic),
                    "spearman_p": float(rho.pvalue),
                }
            )
    return per_emotion, pd.DataFrame(rows)


def model_rsa(
    activations: np.ndarray,
    emotions: list[str],
    num_layers: int | None,
    human: HumanData | None,
    rdms: AttributeRDMs,
    permutations: int = 1000,
    seed: int = 0,
    n_boot: int = 0,
) -> pd.DataFrame:
    """Kendall tau-b (one-sided) of the model's activation-pattern RDM with the human and attribute RDMs.

    activations: [emotions, seeds, neurons]. The pattern of an emotion is its seed-averaged activation
    vector; the model RDM is the correlation distance (1 - Pearson r) between patterns, over all neurons
    (scope ``all``) and within each layer. Columns: scope, target, tau, p_value (the parametric test's,
    which treats the emotion pairs as independent), perm_p (emotion-label permutation test, ``permutations``
    draws from ``seed``; exact over all orders when there are fewer); with ``n_boot`` > 0 ci_low, ci_high
    (percentile interval of the bootstrap over emotions, and over participants too for the human RDM when
    the folder has them); for the human RDM with participants, noise_ceiling_low and noise_ceiling_high
    (the same for every scope: how well the best possible model RDM could do).
    """
    shared = [e for e in rdms.emotions if e in emotions]
    if human is not None:
        named = set(human.similarity["emotion_a"]) | set(human.similarity["emotion_b"])
        shared = [e for e in shared if e in named]
    if len(shared) < 3:
        raise ToolkitError(
            f"model RSA needs at least 3 emotions shared by the activations and the ratings, got {len(shared)}"
        )
    patterns = activations[[emotions.index(e) for e in shared]].mean(axis=1).astype(np.float64)  # [emotions, neurons]
    targets = {name: row for name, row in zip(rdms.names, _restrict(rdms, shared))}
    if human is not None:
        targets = {"human_similarity": pair_vector(human.similarity, shared, where=human.source), **targets}
    scopes = {"all": slice(None)}
    if num_layers and patterns.shape[1] % num_layers == 0:
        width = patterns.shape[1] // num_layers
        scopes.update({str(layer): slice(layer * width, (layer + 1) * width) for layer in range(num_layers)})
    target_matrix = np.stack(list(targets.values()))  # [targets, pairs]
    model_rdms = []
    for part in scopes.values():
        with np.errstate(invalid="ignore", divide="ignore"):
            model_rdms.append(pdist(patterns[:, part], metric="correlation"))  # pair_index order (i < j)
    model = np.nan_to_num(np.stack(model_rdms), nan=0.0)  # [scopes, pairs]
    tau, p = kendall(model, target_matrix)  # [scopes, targets]
    perm_p = mantel_p(model, target_matrix, len(shared), permutations, seed)  # the emotion pairs are not independent
    rows = [
        {
            "scope": scope,
            "target": target,
            "tau": float(tau[s, t]),
            "p_value": float(p[s, t]),
            "perm_p": float(perm_p[s, t]),
        }
        for s, scope in enumerate(scopes)
        for t, target in enumerate(targets)
    ]
    table = pd.DataFrame(rows)
    people = participant_rdms(human, shared) if human is not None else None
    if n_boot > 0:
        _add_intervals(table, targets, model, people, n_boot, seed)
    if people is not None and len(people) >= 2:
        low, high = noise_ceiling(people)
        human_rows = table["target"] == "human_similarity"
        table.loc[human_rows, "noise_ceiling_low"], table.loc[human_rows, "noise_ceiling_high"] = low, high
    return table


def _add_intervals(table: pd.DataFrame, targets: dict, model: np.ndarray, people, n_boot: int, seed: int) -> None:
    """95% percentile intervals of each (scope, target) tau: the bootstrap over emotions, and over
    participants too for the human RDM."""
    for t, (name, vector) in enumerate(targets.items()):
        draws = dual_bootstrap(vector, people if name == "human_similarity" else None, model, n_boot, seed + t)
        rows = table["target"] == name
        table.loc[rows, "ci_low"] = np.nanpercentile(draws, 2.5, axis=0)
        table.loc[rows, "ci_high"] = np.nanpercentile(draws, 97.5, axis=0)
