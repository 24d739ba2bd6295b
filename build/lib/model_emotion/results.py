"""Reading a results folder into tidy tables, and the numbers of the summary table.

A results folder is whatever the stages wrote under one root; files are found by name anywhere
below it (the first match in sorted order wins, ``report.py`` flags pick others):

- ``goemotions_prompt_tuning_accuracy.csv`` (step 2): prompt accuracy per emotion and seed;
- ``activations.npz`` (step 2): neuron activations, for the per-neuron RDM figure;
- a rank table ``NAME.csv`` with ``NAME_tau.csv``, ``NAME_q_value.csv`` and ``NAME_summary.csv`` beside it (step 3);
- ``{emotion}-{seed}.json`` masked-evaluation results (step 5).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ToolkitError
from .io import read_csv, read_json

logger = logging.getLogger(__name__)

MASK_KEY = re.compile(r"^(?P<attribute>.+)_top(?P<k>\d+)(?P<random>_random(?:_(?P<draw>\d+))?)?$")
RESULT_NAME = re.compile(r"^(?P<emotion>[^/]+)-(?P<seed>\d+)\.json$")


@dataclass
class Results:
    """Everything a report can draw from; any piece may be missing (None)."""

    accuracy: pd.DataFrame | None = None  # emotion, seed, accuracy
    tau: pd.DataFrame | None = None  # [neurons, attributes]
    q: pd.DataFrame | None = None
    rank: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None  # attribute, layer, n_significant, n_selective
    masking: pd.DataFrame | None = None  # emotion, seed, attribute, kind, k, draw, accuracy, unmasked
    activations: object | None = None  # ActivationSet
    num_layers: int | None = None
    alpha: float = 0.01
    ratings_dir: str | None = None  # human ratings used, when known
    sources: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        names = {"accuracy": "prompt accuracy (goemotions_prompt_tuning_accuracy.csv)",
                 "tau": "RSA tables (rank CSV with _tau/_q_value/_summary)",
                 "masking": "masked-evaluation JSONs ({emotion}-{seed}.json)",
                 "activations": "activations.npz"}
        return [text for key, text in names.items() if getattr(self, key) is None]


def masking_from_json(files: list[Path]) -> pd.DataFrame:
    """Long table of masked accuracies from eval JSONs."""
    records = []
    for file in files:
        record = read_json(file, dict)
        emotion, seed = record.get("sentiment"), record.get("seed")
        if not isinstance(emotion, str) or not isinstance(seed, int) or isinstance(seed, bool):
            match = RESULT_NAME.match(file.name)
            record = {**record, "sentiment": match["emotion"], "seed": int(match["seed"])}
        records.append((record, str(file)))
    return _masking_rows(records)


def masking_from_records(records: list[dict]) -> pd.DataFrame:
    """Long table of masked accuracies from eval-result dicts (``sentiment``, ``seed``, ``unmasked``, masks)."""
    return _masking_rows([(record, f"result of {record.get('sentiment')}-{record.get('seed')}") for record in records])


def _masking_rows(records: list[tuple[dict, str]]) -> pd.DataFrame:
    rows = []
    for record, file in records:
        emotion, seed = record["sentiment"], record["seed"]
        unmasked = record.get("unmasked")
        if unmasked is not None and not _is_accuracy(unmasked):
            raise ToolkitError(f"{file}: 'unmasked' is {unmasked!r}, not an accuracy in [0, 1]")
        for key, value in record.items():
            match = MASK_KEY.match(key)
            if not match:
                continue
            if not _is_accuracy(value):
                raise ToolkitError(f"{file}: {key!r} is {value!r}, not an accuracy in [0, 1]")
            rows.append({"emotion": emotion, "seed": int(seed), "attribute": match["attribute"],
                         "kind": "random" if match["random"] else "top", "k": int(match["k"]),
                         "draw": int(match["draw"] or 1) if match["random"] else 0,
                         "accuracy": float(value), "unmasked": unmasked})
    return pd.DataFrame(rows)


def _is_accuracy(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _numeric_table(frame: pd.DataFrame, path: Path, columns) -> pd.DataFrame:
    """Columns that must be numbers (NaN allowed: unranked neurons); anything else is refused."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any() or np.isinf(values).any():
            row = int(np.flatnonzero(bad | np.isinf(values))[0])
            raise ToolkitError(f"{path}: column {column!r} row {row + 2} is {frame[column].iloc[row]!r}, not a number")
        frame[column] = values.astype(float)
    return frame


def read_summary(path: Path) -> pd.DataFrame:
    """A searchlight summary: attribute, layer (integers and 'all'), n_significant, n_selective."""
    table = read_csv(path, "a searchlight summary (attribute, layer, n_significant, n_selective, n_neurons)",
                     ["attribute", "layer", "n_significant", "n_selective"])
    layers = table["layer"].astype(str)
    if not layers[layers != "all"].str.fullmatch(r"\d+").all():
        bad = layers[(layers != "all") & ~layers.str.fullmatch(r"\d+")].iloc[0]
        raise ToolkitError(f"{path}: layer {bad!r} is neither a layer number nor 'all'")
    return _numeric_table(table, path, ["n_significant", "n_selective"])


def _first(root: Path, pattern: str) -> Path | None:
    found = sorted(root.rglob(pattern))
    return found[0] if found else None


def read_rank_table(path: str | Path) -> pd.DataFrame:
    """A rank table: one row per neuron, one numeric column per attribute (NaN = unranked)."""
    path = Path(path)
    table = read_csv(path, "a neuron rank table (one row per neuron, one column per attribute)")
    table = _numeric_table(table, path, table.columns)
    if (table < 1).any().any():
        raise ToolkitError(f"{path}: ranks must be 1 or more (1 = best)")
    return table


def load_results(root: str | Path, rank_csv: str | Path | None = None, num_layers: int | None = None,
                 alpha: float = 0.01) -> Results:
    from .activations import load_activations

    root = Path(root)
    if not root.is_dir():
        raise ToolkitError(f"--results_dir {root} is not a folder")
    res = Results(num_layers=num_layers, alpha=alpha)
    acc_path = _first(root, "goemotions_prompt_tuning_accuracy.csv")
    if acc_path:
        table = read_csv(acc_path, "a prompt accuracy table (sentiment, random_seed, accuracy)",
                         ["sentiment", "random_seed", "accuracy"])
        table = _numeric_table(table, acc_path, ["random_seed", "accuracy"])
        res.accuracy = table.rename(columns={"sentiment": "emotion", "random_seed": "seed"})
        res.sources["accuracy"] = str(acc_path)
    rank_path = Path(rank_csv) if rank_csv else None
    if rank_path is None:
        for tau_path in sorted(root.rglob("*_tau.csv")):
            candidate = tau_path.with_name(tau_path.name[: -len("_tau.csv")] + ".csv")
            if candidate.exists():
                rank_path = candidate
                break
    if rank_path is not None and rank_path.exists():
        stem = rank_path.with_suffix("")
        res.rank = read_rank_table(rank_path)
        for key, suffix in (("tau", "_tau"), ("q", "_q_value")):
            path = Path(f"{stem}{suffix}.csv")
            if path.exists():
                table = read_csv(path, f"a searchlight {suffix[1:]} table (one row per neuron)")
                setattr(res, key, _numeric_table(table, path, table.columns))
                if len(table) != len(res.rank) or list(table.columns) != list(res.rank.columns):
                    raise ToolkitError(f"{path} does not match {rank_path} (rows or columns differ)")
        if Path(f"{stem}_summary.csv").exists():
            res.summary = read_summary(Path(f"{stem}_summary.csv"))
        if res.summary is not None and res.num_layers is None:
            layers = res.summary["layer"].astype(str)
            res.num_layers = int(layers[layers != "all"].astype(int).max()) + 1
        args_path = Path(f"{stem}_args.json")
        if args_path.exists():
            recorded = read_json(args_path, dict).get("args")
            value = recorded.get("alpha", alpha) if isinstance(recorded, dict) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
                raise ToolkitError(f"{args_path}: no valid 'args.alpha' (a q threshold in (0, 1)); the file is corrupt")
            res.alpha = float(value)
        res.sources["rank"] = str(rank_path)
    json_files = [p for p in sorted(root.rglob("*.json")) if RESULT_NAME.match(p.name)]
    if json_files:
        res.masking = masking_from_json(json_files)
        if res.masking.empty:
            res.masking = None
        else:
            res.sources["masking"] = f"{len(json_files)} JSON files"
    npz = _first(root, "activations.npz")
    if npz:
        res.activations = load_activations(npz)
        res.num_layers = res.num_layers or res.activations.layers
        res.sources["activations"] = str(npz)
    if all(getattr(res, key) is None for key in ("accuracy", "tau", "masking", "activations")):
        raise ToolkitError(f"{root} holds no results: expected goemotions_prompt_tuning_accuracy.csv, a rank table with "
                           f"_tau/_q_value/_summary tables, activations.npz or {{emotion}}-{{seed}}.json eval results")
    return res


def masking_effects(masking: pd.DataFrame) -> pd.DataFrame:
    """Per (emotion, seed, attribute, k): top-k accuracy, mean random accuracy over draws, unmasked."""
    top = masking[masking["kind"] == "top"].groupby(["emotion", "seed", "attribute", "k"])["accuracy"].mean()
    rand = masking[masking["kind"] == "random"].groupby(["emotion", "seed", "attribute", "k"])["accuracy"].mean()
    base = masking.groupby(["emotion", "seed"])["unmasked"].first()
    table = pd.DataFrame({"top": top, "random": rand}).reset_index()
    table["unmasked"] = [base.get((e, s), np.nan) for e, s in zip(table["emotion"], table["seed"])]
    table["beyond_random"] = table["random"] - table["top"]  # accuracy lost beyond what random masking costs
    return table


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the t confidence interval (NaN half-width for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean()), float(half)


def summary_table(res: Results, k: int | None) -> tuple[pd.DataFrame, int | None]:
    """Per attribute: significant and selective neurons, top-k and random drops, their difference and a
    paired t-test over (emotion, seed). Returns the table and the k used."""
    rows: dict[str, dict] = {}
    if res.summary is not None:
        totals = res.summary[res.summary["layer"].astype(str) == "all"]
        for _, row in totals.iterrows():
            rows.setdefault(row["attribute"], {})["n_significant"] = int(row["n_significant"])
            rows[row["attribute"]]["n_selective"] = int(row["n_selective"])
    if res.masking is not None:
        effects = masking_effects(res.masking)
        ks = sorted(effects["k"].unique())
        k = k if k in ks else ks[len(ks) // 2]
        at_k = effects[effects["k"] == k].dropna(subset=["top", "random"])
        for attribute, group in at_k.groupby("attribute"):
            entry = rows.setdefault(attribute, {})
            entry["k"] = int(k)
            entry["top_drop"] = float((group["unmasked"] - group["top"]).mean())
            entry["random_drop"] = float((group["unmasked"] - group["random"]).mean())
            entry["drop_beyond_random"] = float(group["beyond_random"].mean())
            entry["n_pairs"] = int(len(group))
            if len(group) > 1 and group["beyond_random"].std() > 0:
                test = stats.ttest_rel(group["random"], group["top"], alternative="greater")
                entry["t"] = float(test.statistic)
                entry["p_paired"] = float(test.pvalue)
            else:
                entry["t"], entry["p_paired"] = float("nan"), float("nan")
    else:
        k = None
    table = pd.DataFrame([{"attribute": a, **v} for a, v in rows.items()])
    return table, k


def to_markdown(table: pd.DataFrame) -> str:
    """A plain GitHub-style Markdown table (no optional dependency)."""
    def fmt(value):
        if isinstance(value, float):
            return "" if np.isnan(value) else (f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}")
        return str(value)

    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def load_paper_results(paper_dir: str | Path, attributes: str | Path | None, fdr_method: str = "paper",
                       alpha: float = 0.01) -> Results:
    """The paper's released RoBERTa results in the same form (its searchlight recomputed from its
    activations, which reproduces its ``neurons_rank.csv``; see benchmarks/rsa_reproduce.py)."""
    from .activations import load_activations
    from .attributes import build_rdms, load_ratings
    from .download import resolve_attributes
    from .rsa import searchlight, summarize

    paper_dir = Path(paper_dir)
    needed = ["activations.npz", "prompt_tuning_accuracy.csv", "masking_accuracy.csv"]
    missing = [name for name in needed if not (paper_dir / name).exists()]
    if len(missing) == len(needed):
        raise ToolkitError(f"--paper_dir {paper_dir} holds none of {', '.join(needed)}")
    res = Results(alpha=alpha)
    if (paper_dir / "prompt_tuning_accuracy.csv").exists():
        path = paper_dir / "prompt_tuning_accuracy.csv"
        table = read_csv(path, "the paper's accuracy table (sentiment, random_seed, accuracy)",
                         ["sentiment", "random_seed", "accuracy"])
        res.accuracy = _numeric_table(table, path, ["random_seed", "accuracy"]).rename(
            columns={"sentiment": "emotion", "random_seed": "seed"})
    if (paper_dir / "activations.npz").exists():
        res.activations = load_activations(paper_dir / "activations.npz")
        if attributes is None and (paper_dir.parent / "emotion_attributes" / "attributes.csv").exists():
            attributes = paper_dir.parent / "emotion_attributes"
        res.ratings_dir = str(resolve_attributes(attributes))
        rdms = build_rdms(load_ratings(res.ratings_dir), res.activations.emotions)
        keep = [res.activations.emotions.index(e) for e in rdms.emotions]
        result = searchlight(res.activations.activations[keep], rdms.rdms, rdms.names, fdr_method=fdr_method)
        res.tau, res.q, res.rank = result.table("tau"), result.table("q"), result.table("rank")
        res.num_layers = res.activations.layers or 12
        res.summary = summarize(result, res.num_layers, alpha)
    if (paper_dir / "masking_accuracy.csv").exists():
        path = paper_dir / "masking_accuracy.csv"
        masking = read_csv(path, "the paper's masking table (emotion, seed, attribute, kind, k, accuracy)",
                           ["emotion", "seed", "attribute", "kind", "k", "accuracy"])
        masking = _numeric_table(masking, path, ["seed", "k", "accuracy"])
        masking["k"] = masking["k"].astype(int)
        masking["seed"] = masking["seed"].astype(int)
        masking["draw"] = np.where(masking["kind"] == "random", 1, 0)
        if res.accuracy is not None:
            best = res.accuracy.set_index(["emotion", "seed"])["accuracy"]
            masking["unmasked"] = [best.get((e, s), np.nan) for e, s in zip(masking["emotion"], masking["seed"])]
        else:
            masking["unmasked"] = np.nan
        res.masking = masking
    res.sources["paper"] = str(paper_dir)
    return res


def comparison_tables(ours: Results, paper: Results, ours_total: int, paper_total: int) -> dict[str, pd.DataFrame]:
    """Side-by-side numbers: prompt accuracy per emotion; per attribute significant neurons (as a share
    of all neurons, since models differ in size) and the masking drop beyond random at matched k%."""
    out = {}
    if ours.accuracy is not None and paper.accuracy is not None:
        a = ours.accuracy.groupby("emotion")["accuracy"].mean().rename("ours")
        b = paper.accuracy.groupby("emotion")["accuracy"].mean().rename("paper")
        table = pd.concat([a, b], axis=1).dropna().reset_index()
        out["accuracy"] = table
    rows = {}
    for label, res, total in (("ours", ours, ours_total), ("paper", paper, paper_total)):
        if res.summary is not None:
            totals = res.summary[res.summary["layer"].astype(str) == "all"]
            for _, row in totals.iterrows():
                entry = rows.setdefault(row["attribute"], {})
                entry[f"{label}_significant_pct"] = 100 * row["n_significant"] / total
                entry[f"{label}_selective_pct"] = 100 * row["n_selective"] / total
    if ours.masking is not None and paper.masking is not None:
        ours_eff, paper_eff = masking_effects(ours.masking), masking_effects(paper.masking)
        paper_pct = {k: 100 * k / paper_total for k in paper_eff["k"].unique()}
        for k in sorted(ours_eff["k"].unique()):
            pct = 100 * k / ours_total
            near = min(paper_pct, key=lambda pk: abs(paper_pct[pk] - pct))
            for attribute, group in ours_eff[ours_eff["k"] == k].groupby("attribute"):
                entry = rows.setdefault(attribute, {})
                entry[f"ours_beyond_random_{pct:.0f}pct"] = 100 * group["beyond_random"].mean()
                ref = paper_eff[(paper_eff["k"] == near) & (paper_eff["attribute"] == attribute)]
                entry[f"paper_beyond_random_{paper_pct[near]:.1f}pct"] = 100 * ref["beyond_random"].mean()
    if rows:
        out["attributes"] = pd.DataFrame([{"attribute": a, **v} for a, v in rows.items()])
    return out
