"""Reading a results folder into tidy tables (the report's numbers from them: ``tables``).

A results folder is whatever the stages wrote under one root; files are found by name anywhere
below it (the first match in sorted order wins, ``report.py`` flags pick others):

- ``goemotions_prompt_tuning_accuracy.csv`` (step 2): prompt accuracy per emotion and seed;
- ``activations.npz`` (step 2): neuron activations, for the per-neuron RDM figure;
- a rank table ``NAME.csv`` with ``NAME_tau.csv``, ``NAME_q_value.csv`` and ``NAME_summary.csv`` beside it (step 3);
- ``{emotion}-{seed}.json`` masked-evaluation results (step 5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model_emotion.errors import ToolkitError
from model_emotion.io.files import read_csv, read_json, read_meta
from model_emotion.io.run_folder import ACCURACY_CSV, rank_paths
from model_emotion.io.tensors import read_npz
from model_emotion.masking.records import MASK_KEY, accuracies_of, correct_of, is_accuracy, mask_info
from model_emotion.util.names import check_names, split_run_name

logger = logging.getLogger(__name__)


@dataclass
class Results:
    """Everything a report can draw from; any piece may be missing (None)."""

    accuracy: pd.DataFrame | None = None  # emotion, seed, accuracy
    tau: pd.DataFrame | None = None  # [neurons, attributes]
    q: pd.DataFrame | None = None
    rank: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None  # attribute, layer, n_significant, n_selective
    null_counts: pd.DataFrame | None = None  # attribute, test, observed, null_mean, null_p95, null_max, count_p
    test: str = "parametric"  # the searchlight's test; "q" holds the p-value that decided significance
    fwer: pd.DataFrame | None = None  # max-T adjusted p within each attribute [neurons, attributes]
    fwer_across: pd.DataFrame | None = None  # max-T adjusted p across all attributes (studentized by default)
    confounds: pd.DataFrame | None = None  # attribute, nuisance, tau, perm_p, perm_p_holm (rsa_searchlight --nuisance)
    reliability: pd.DataFrame | None = None  # the searchlight's _seed_reliability table
    null_draws: dict = field(default_factory=dict)  # test -> [B, attributes] significant counts per permutation
    masking: pd.DataFrame | None = None  # emotion, seed, attribute, kind, k, draw, accuracy, unmasked
    activations: object | None = None  # ActivationSet
    num_layers: int | None = None
    alpha: float = 0.01
    ratings_dir: str | None = None  # human ratings used, when known
    sources: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # the rank table's _meta.json: how the searchlight was run
    # the random masks do not depend on the attribute and each attribute's are other draws (the paper's
    # global draws, one per attribute and k): the causal step pools them as draws of one distribution
    pool_random: bool = False

    def missing(self) -> list[str]:
        names = {
            "accuracy": "prompt accuracy (goemotions_prompt_tuning_accuracy.csv)",
            "tau": "RSA tables (rank CSV with _tau/_q_value/_summary)",
            "masking": "masked-evaluation JSONs ({emotion}-{seed}.json)",
            "activations": "activations.npz",
        }
        return [text for key, text in names.items() if getattr(self, key) is None]


def summary_layers(summary: pd.DataFrame) -> int:
    """The layer count a searchlight summary covers (its rows per layer, 0-based, plus "all")."""
    layers = summary["layer"].astype(str)
    return int(layers[layers != "all"].astype(int).max()) + 1


def masking_from_json(files: list[Path]) -> pd.DataFrame:
    """Long table of masked accuracies from eval JSONs."""
    records = []
    for file in files:
        record = read_json(file, dict)
        emotion, seed = record.get("sentiment"), record.get("seed")
        if not isinstance(emotion, str) or not isinstance(seed, int) or isinstance(seed, bool):
            emotion, seed = split_run_name(file.stem)
            record = {**record, "sentiment": emotion, "seed": seed}
        records.append((record, str(file)))
    return _masking_rows(records)


def masking_from_records(records: list[dict]) -> pd.DataFrame:
    """Long table of masked accuracies from eval-result dicts (``sentiment``, ``seed``, ``accuracies``)."""
    return _masking_rows([(record, f"result of {record.get('sentiment')}-{record.get('seed')}") for record in records])


def _masking_rows(records: list[tuple[dict, str]]) -> pd.DataFrame:
    rows = []
    for record, file in records:
        emotion, seed = record["sentiment"], record["seed"]
        record_selection = record.get("selection")
        ablation = record.get("ablation")
        ablation = ablation.get("kind") if isinstance(ablation, dict) else None
        ablation = ablation if ablation in ("zero", "mean", "resample", "scale") else "zero"  # older: zero
        hits = correct_of(record, file)
        record = accuracies_of(record, file)
        unmasked = record.get("unmasked")
        if unmasked is not None and not is_accuracy(unmasked):
            raise ToolkitError(f"{file}: 'unmasked' is {unmasked!r}, not an accuracy in [0, 1]")
        for key, value in record.items():
            match = MASK_KEY.match(key)
            if not match:
                continue
            if not is_accuracy(value):
                raise ToolkitError(f"{file}: {key!r} is {value!r}, not an accuracy in [0, 1]")
            info = mask_info(key)
            rows.append(
                {
                    "emotion": emotion,
                    "seed": int(seed),
                    "attribute": info["attribute"],
                    "kind": info["kind"],
                    "k": info["k"],
                    "draw": info["draw"],
                    "accuracy": float(value),
                    "unmasked": unmasked,
                    # per-example correctness of this mask and of the unmasked prompt (None in older files)
                    "correct": hits.get(key),
                    "correct_unmasked": hits.get("unmasked"),
                    "selection": _selection_kind(record_selection),
                    "ablation": ablation,
                }
            )
    return pd.DataFrame(rows)


def _selection_kind(selection) -> str:
    """held_out, circular, or unrecorded (results written before 0.5 did not say)."""
    kind = selection.get("kind") if isinstance(selection, dict) else None
    return kind if kind in ("held_out", "circular") else "unrecorded"


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


def read_null_counts(path: Path) -> pd.DataFrame:
    """A searchlight's null counts: attribute, test, observed, null_mean, null_p95, null_max, count_p."""
    numeric = ["observed", "null_mean", "null_p95", "null_max", "count_p"]
    table = read_csv(path, "a searchlight null-count table", ["attribute", "test", *numeric])
    table = _numeric_table(table, path, numeric)
    if ((table["count_p"] <= 0) | (table["count_p"] > 1)).any():
        raise ToolkitError(f"{path}: count_p must be in (0, 1]")
    return table


def read_null_draws(path: Path, attributes: list[str]) -> dict:
    """The per-permutation significant counts of a searchlight's ``_null.npz`` (no pickles), checked."""
    data = read_npz(path, "permutation-test file")
    try:
        names = [str(n) for n in data["attributes"]]
        draws = {key[len("counts_") :]: np.asarray(value) for key, value in data.items() if key.startswith("counts_")}
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolkitError(f"{path}: not a readable permutation-test file ({type(exc).__name__})") from None
    if names != attributes:
        raise ToolkitError(f"{path}: its attributes differ from the rank table's")
    for key, value in draws.items():
        if value.ndim != 2 or value.shape[1] != len(attributes) or value.dtype.kind not in "iu" or (value < 0).any():
            raise ToolkitError(f"{path}: counts_{key} is not a [permutations, {len(attributes)}] table of counts")
    return draws


def read_summary(path: Path) -> pd.DataFrame:
    """A searchlight summary: attribute, layer (integers and 'all'), n_significant, n_selective."""
    table = read_csv(
        path,
        "a searchlight summary (attribute, layer, n_significant, n_selective, n_neurons)",
        ["attribute", "layer", "n_significant", "n_selective"],
    )
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
    check_names(table.columns, "attribute", str(path))
    table = _numeric_table(table, path, table.columns)
    if (table < 1).any().any():
        raise ToolkitError(f"{path}: ranks must be 1 or more (1 = best)")
    return table


def _read_accuracy(acc_path: Path) -> pd.DataFrame:
    """The prompt accuracy table, each accuracy in [0, 1] and each example count a whole number."""
    table = read_csv(
        acc_path,
        "a prompt accuracy table (sentiment, random_seed, accuracy)",
        ["sentiment", "random_seed", "accuracy"],
    )
    optional = [c for c in ("test_accuracy", "dev_examples", "test_examples") if c in table.columns]
    table = _numeric_table(table, acc_path, ["random_seed", "accuracy", *optional])
    for column in ("accuracy", *optional):
        values = table[column].dropna()
        bad = ~values.between(0, 1) if "accuracy" in column else (values < 0) | (values % 1 != 0)
        if bad.any():
            raise ToolkitError(
                f"{acc_path}: column {column!r} holds {values[bad].iloc[0]!r}, not "
                + ("an accuracy in [0, 1]" if "accuracy" in column else "a count of examples")
            )
    return table.rename(columns={"sentiment": "emotion", "random_seed": "seed"})


def _find_rank_table(root: Path) -> Path | None:
    """The first searchlight rank table under ``root`` (the one whose ``_tau.csv`` lies beside it)."""
    for tau_path in sorted(root.rglob("*_tau.csv")):
        candidate = tau_path.with_name(tau_path.name[: -len("_tau.csv")] + ".csv")
        if candidate.exists():
            return candidate
    return None


def _neuron_table(res: Results, rank_path: Path, path: Path) -> pd.DataFrame | None:
    """A table beside the rank table with its rows and columns (tau, q, FWER p), or None."""
    if not path.exists():
        return None
    table = read_csv(path, f"a searchlight {path.stem[len(rank_path.stem) + 1 :]} table (one row per neuron)")
    if len(table) != len(res.rank) or list(table.columns) != list(res.rank.columns):
        raise ToolkitError(f"{path} does not match {rank_path} (rows or columns differ)")
    return _numeric_table(table, path, table.columns)


def _recorded_alpha(args_path: Path, alpha: float) -> float:
    recorded = read_json(args_path, dict).get("args")
    value = recorded.get("alpha", alpha) if isinstance(recorded, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise ToolkitError(f"{args_path}: no valid 'args.alpha' (a q threshold in (0, 1)); the file is corrupt")
    return float(value)


def _read_searchlight(res: Results, rank_path: Path) -> None:
    """The rank table and the tables beside it into ``res`` (tau, q or max-T p, nulls, summary, alpha)."""
    res.rank = read_rank_table(rank_path)
    meta = read_meta(rank_path)  # the layer count travels with the table
    if meta.get("num_neurons") not in (None, len(res.rank)):
        raise ToolkitError(f"{rank_path} has {len(res.rank)} neurons but its _meta.json says {meta['num_neurons']}")
    if res.num_layers is None:
        res.num_layers = meta.get("num_layers")
    paths = rank_paths(rank_path)
    res.tau, res.q = _neuron_table(res, rank_path, paths["tau"]), _neuron_table(res, rank_path, paths["q"])
    res.fwer = _neuron_table(res, rank_path, paths["fwer_p"])
    res.fwer_across = _neuron_table(res, rank_path, paths["fwer_global_p"])
    if meta.get("test") == "permutation" and meta.get("correction") in ("maxt", "maxt_global"):
        # significance in the figures follows the run's test: the max-T adjusted p, not the parametric q
        adjusted = res.fwer if meta["correction"] == "maxt" else res.fwer_across
        if adjusted is not None:
            res.q, res.test = adjusted, "permutation"
    if paths["null_counts"].exists():
        res.null_counts = read_null_counts(paths["null_counts"])
    if paths["seed_reliability"].exists():
        path = paths["seed_reliability"]
        table = read_csv(path, "a seed reliability table", ["split", "attribute", "spearman", "spearman_chance"])
        numeric = ["spearman", "spearman_chance"] + [c for c in ("spearman_p", "spearman_p_holm") if c in table]
        res.reliability = _numeric_table(table, path, numeric)
    if paths["nuisance_confounds"].exists():
        path = paths["nuisance_confounds"]
        table = read_csv(path, "a nuisance confound table", ["attribute", "nuisance", "tau", "perm_p", "perm_p_holm"])
        res.confounds = _numeric_table(table, path, ["tau", "perm_p", "perm_p_holm"])
    if paths["null"].exists():
        res.null_draws = read_null_draws(paths["null"], list(res.rank.columns))
    if paths["summary"].exists():
        res.summary = read_summary(paths["summary"])
    if res.summary is not None:
        from_summary = summary_layers(res.summary)
        if res.num_layers is not None and meta.get("num_layers") and meta["num_layers"] != from_summary:
            raise ToolkitError(
                f"{rank_path}: its _meta.json says {meta['num_layers']} layers, its _summary.csv {from_summary}"
            )
        res.num_layers = res.num_layers or from_summary
    args_path = Path(f"{rank_path.with_suffix('')}_args.json")
    if args_path.exists():
        res.alpha = _recorded_alpha(args_path, res.alpha)
    res.sources["rank"] = str(rank_path)
    res.meta = meta


def attach_searchlight(res: Results, rank_csv: str | Path) -> Results:
    """A searchlight run's tables (rank table, tau, q or max-T p, null counts, reliability) in ``res``,
    e.g. a permutation run on the paper's activations beside the paper's released masking results."""
    rank_path = Path(rank_csv)
    if not rank_path.is_file():
        raise ToolkitError(f"{{--rank_csv}} {rank_path} is not a file (a rank table from {{stage:rsa}})")
    expected = res.tau.shape[0] if res.tau is not None else None
    _read_searchlight(res, rank_path)
    if expected is not None and len(res.rank) != expected:
        raise ToolkitError(f"{rank_path} has {len(res.rank)} neurons, the results it is read beside have {expected}")
    return res


def load_results(
    root: str | Path, rank_csv: str | Path | None = None, num_layers: int | None = None, alpha: float = 0.01
) -> Results:
    from model_emotion.io.activations import load_activations

    root = Path(root)
    if not root.is_dir():
        raise ToolkitError(f"{{--results_dir}} {root} is not a folder")
    res = Results(num_layers=num_layers, alpha=alpha)
    acc_path = _first(root, ACCURACY_CSV)
    if acc_path:
        res.accuracy = _read_accuracy(acc_path)
        res.sources["accuracy"] = str(acc_path)
    rank_path = Path(rank_csv) if rank_csv else _find_rank_table(root)
    if rank_path is not None and rank_path.exists():
        _read_searchlight(res, rank_path)
    json_files = [p for p in sorted(root.rglob("*.json")) if split_run_name(p.stem)]
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
        raise ToolkitError(
            f"{root} holds no results: expected goemotions_prompt_tuning_accuracy.csv, a rank table with "
            f"_tau/_q_value/_summary tables, activations.npz or {{emotion}}-{{seed}}.json eval results"
        )
    return res


def load_paper_results(
    paper_dir: str | Path, attributes: str | Path | None, fdr_method: str = "paper", alpha: float = 0.01
) -> Results:
    """The paper's released RoBERTa results in the same form (its searchlight recomputed from its
    activations, which reproduces its ``neurons_rank.csv``; see benchmarks/rsa_reproduce.py)."""
    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.activations import load_activations
    from model_emotion.io.download import resolve_attributes
    from model_emotion.rsa.searchlight import searchlight, summarize

    paper_dir = Path(paper_dir)
    needed = ["activations.npz", "prompt_tuning_accuracy.csv", "masking_accuracy.csv"]
    missing = [name for name in needed if not (paper_dir / name).exists()]
    if len(missing) == len(needed):
        raise ToolkitError(f"{{--paper_dir}} {paper_dir} holds none of {', '.join(needed)}")
    res = Results(alpha=alpha)
    if (paper_dir / "prompt_tuning_accuracy.csv").exists():
        path = paper_dir / "prompt_tuning_accuracy.csv"
        table = read_csv(
            path,
            "the paper's accuracy table (sentiment, random_seed, accuracy)",
            ["sentiment", "random_seed", "accuracy"],
        )
        res.accuracy = _numeric_table(table, path, ["random_seed", "accuracy"]).rename(
            columns={"sentiment": "emotion", "random_seed": "seed"}
        )
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
        masking = read_csv(
            path,
            "the paper's masking table (emotion, seed, attribute, kind, k, accuracy)",
            ["emotion", "seed", "attribute", "kind", "k", "accuracy"],
        )
        masking = _numeric_table(masking, path, ["seed", "k", "accuracy"])
        masking["k"] = masking["k"].astype(int)
        masking["seed"] = masking["seed"].astype(int)
        masking["draw"] = np.where(masking["kind"] == "random", 1, 0)
        if res.accuracy is not None:
            best = res.accuracy.set_index(["emotion", "seed"])["accuracy"]
            masking["unmasked"] = [best.get((e, s), np.nan) for e, s in zip(masking["emotion"], masking["seed"])]
        else:
            masking["unmasked"] = np.nan
        masking["selection"] = "circular"  # the paper ranked on the prompts it evaluated
        masking["ablation"] = "zero"
        res.masking = masking
        res.pool_random = True  # Model_Emotion's gen_random_mask: randperm over all neurons, per attribute and k
    res.sources["paper"] = str(paper_dir)
    return res
