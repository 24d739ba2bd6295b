"""Step 4 as a stage: masks of the top-k neurons per attribute of a rank table, with random and
permuted-ranking baselines (``run_masks``), configured by one frozen ``MaskConfig``.

``gen_mask.py`` (``model-emotion masks``) turns flags into a ``MaskConfig`` and calls ``run_masks``;
a Python caller does the same with the same names. The masks file's ``_meta.json`` records the model
shape, the settings and, per mask, its attribute, k, kind and draw (mask metadata as data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from model_emotion.defaults import DEFAULT_MODEL
from model_emotion.errors import ToolkitError
from model_emotion.io import run_folder
from model_emotion.io.files import job_lock, read_meta, save_run_args, write_meta
from model_emotion.masking.masks import MASK_METHODS, RANDOM_METHODS
from model_emotion.stages import common
from model_emotion.stages.jobs import check_output_dir
from model_emotion.util.settings import Settings, setting

logger = logging.getLogger(__name__)

# Random draws per (attribute, k) at most, and the most bytes the masks of one file may take in memory
# (1000 draws x 14 attributes x 9 k of roberta-base's 36,864 int8 neurons would be 4.6 GB).
MAX_RANDOM = 1000
MASK_BYTES = 2 * 2**30
DEFAULT_THRESHOLDS = (500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000)


@dataclass(frozen=True)
class MaskConfig(Settings):
    """Everything a masks file depends on, each setting declared once; validated on construction."""

    csv_path: Path = setting(
        Path("neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv"),
        "rank table from rsa_searchlight.py (default %(default)s)",
        flags=("--CSV_Path", "--csv_path"),
    )
    pkl_file: Path = setting(
        Path("masks/RSA_14property_top_500_6000.pkl"),
        "output masks PKL (default %(default)s)",
        flags=("--PKL_File", "--pkl_file", "--output"),
    )
    mode: str | None = setting(
        None,
        "the RSA mode of the rank table (14 attributes or 3 spaces); when given, checked against the mode "
        "the table was made with (its _meta.json); the masks cover the table's columns either way",
        kind="str",
        choices=(None, "14Properties", "3Spaces"),
    )
    attribute_names: tuple[str, ...] | None = setting(
        None, "rank-table columns to mask (default: all of them)", kind="str", nargs="+"
    )
    mask_method: str = setting(
        "BINARY_MASK",
        "BINARY_MASK: masked neurons set to 0; FLOAT_MASK: scaled by uniform [0, 1) values",
        choices=tuple(MASK_METHODS),
    )
    thresholds: tuple[int, ...] = setting(
        DEFAULT_THRESHOLDS, "numbers k of neurons to mask (default %(default)s)", kind="count", nargs="+"
    )
    percent: tuple[float, ...] | None = setting(
        None, "k as percentages of all neurons instead of --thresholds (e.g. 4 8 16)", kind="float", nargs="+",
        low=1e-300, high=100,
    )  # fmt: skip
    num_random: int = setting(
        40,
        "random baseline draws per (attribute, k) (default %(default)s: random masks' accuracies are skewed, "
        "and with 20 or fewer draws the causal test's error was measured above 5%; global draws are shared "
        "by all attributes, so they cost one evaluation each)",
        kind="int",
        low=0,
        high=MAX_RANDOM,
    )
    selection: str | None = setting(
        None,
        "held_out: masks from the rank tables of the searchlight's seed folds (rsa_searchlight.py "
        "--selection_folds), one masks file per fold (NAME_fold{f}.pkl), each evaluated only on the "
        "seeds that did not select it; all: from the rank table of all seeds (the paper's choice: its "
        "prompts are the ones evaluated, so the selection is circular); default held_out when the rank "
        "table has folds, else all",
        kind="str",
        choices=(None, "held_out", "all"),
    )
    num_permuted: int | None = setting(
        None,
        "permuted-ranking baselines per (attribute, k): top k of the rankings the permutation test "
        "computed with shuffled emotion labels (from the rank table's _null.npz; default every one it "
        "keeps, 20 since 0.5, when it exists, else 0)",
        kind="int",
        low=0,
    )
    random_method: str = setting(
        "layer_matched",
        "layer_matched (default): same count per layer as the top-k mask; global: uniform over all",
        choices=RANDOM_METHODS,
    )
    seed: int = setting(0, "seed of the random masks (default %(default)s)", kind="seed")
    num_layers: int | None = setting(
        None,
        "layers of the model (default: from the rank table's _summary.csv beside it, else "
        "from --model's config, else 12 when the table has roberta-base's 36864 rows)",
        kind="count",
    )
    model: str = common.model()
    overwrite: bool = common.overwrite("replace an existing PKL")
    attributes_old: tuple[str, ...] | None = setting(
        None, "the list --attributes gave before 0.4 (compat)", kind="str", nargs="+", flags=("--attributes",),
        hidden=True,
    )  # fmt: skip


# roberta-base, the original code's only model: 12 layers x 3072 FFN neurons.
DEFAULT_MODEL_LAYERS, DEFAULT_MODEL_D_FFN = 12, 3072


def layers_from_summary(rank_csv: Path) -> int | None:
    from model_emotion.io.run_folder import rank_table_path

    summary = rank_table_path(rank_csv, "summary")
    if not summary.exists():
        return None
    from model_emotion.report.results import read_summary, summary_layers

    return summary_layers(read_summary(summary))


def layers_from_model(model: str, rows: int) -> int | None:
    """The layer count in ``model``'s config (a local folder, or a hub id already cached or reachable)."""
    import transformers
    from transformers import AutoConfig

    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        config = AutoConfig.from_pretrained(model)
    except Exception:  # noqa: BLE001 - offline or unknown: fall back to the row count
        return None
    finally:
        transformers.logging.set_verbosity(previous)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    width = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
    if not layers:
        return None
    if width and layers * width != rows:
        raise ToolkitError(
            f"the rank table has {rows} neurons, but --model {model} has {layers} x {width}; "
            f"pass the model the table was made from, or --num_layers"
        )
    return int(layers)


def infer_layers(rank_csv: Path, rows: int, model: str) -> int:
    """Layers of the ranked model: the summary beside the table, the model's config, or roberta-base's shape."""
    for found in (layers_from_summary(rank_csv), layers_from_model(model, rows)):
        if found:
            return found
    if model == DEFAULT_MODEL and rows == DEFAULT_MODEL_LAYERS * DEFAULT_MODEL_D_FFN:
        logger.info("%s: %d rows = roberta-base's 12 x 3072 neurons (config not readable offline)", rank_csv, rows)
        return DEFAULT_MODEL_LAYERS
    raise ToolkitError(
        f"cannot tell the model's layer count for {rank_csv} ({rows} neurons): no _summary.csv beside "
        f"it and --model {model}'s config is not readable; pass --num_layers or --model"
    )


def run_masks(config: MaskConfig) -> int:
    """Write the masks file (skipped when it exists and was made from this rank table)."""
    with job_lock(config.pkl_file):  # one run per output: a second one stops at once
        return _run(config)


def _run(config: MaskConfig) -> int:
    from model_emotion.masking.masks import ks_from_percent, save_masks
    from model_emotion.report.results import read_rank_table

    if not config.csv_path.is_file():
        raise ToolkitError(f"rank table not found: {config.csv_path} (run {{stage:rsa}} first)")
    # everything the masks depend on besides the rank table (not where they are written, nor --overwrite)
    settings = {
        k: v for k, v in config.to_dict().items() if k not in ("csv_path", "pkl_file", "overwrite", "mode", "model")
    }
    fold_inputs = {
        p.stem[len(config.csv_path.stem) + 1 :]: p
        for p in sorted(config.csv_path.parent.glob(f"{config.csv_path.stem}_fold*.csv"))
    }
    record = run_folder.made_from({"rank_table": config.csv_path, **fold_inputs}, settings)
    written = read_meta(config.pkl_file) if config.pkl_file.exists() else {}
    folds_there = all(
        config.pkl_file.with_name(str(f.get("file"))).is_file()
        for f in written.get("folds") or []
        if isinstance(f, dict)
    )
    if (
        config.pkl_file.exists()
        and not config.overwrite
        and folds_there
        and run_folder.is_current(config.pkl_file, run_folder.read_record(config.pkl_file), record, "regenerating")
    ):
        return 0
    check_output_dir(config.pkl_file.parent, "{--pkl_file}'s folder")
    ranks = read_rank_table(config.csv_path)
    if config.attributes_old:
        logger.warning("--attributes (a list of columns) is now --attribute_names in gen_mask.py")
    attributes = config.attribute_names or config.attributes_old or list(ranks.columns)
    rank_meta = read_meta(config.csv_path)
    num_layers = checked_layers(config, ranks, rank_meta)
    thresholds = ks_from_percent(len(ranks), config.percent) if config.percent else config.thresholds
    too_big = [k for k in thresholds if k > len(ranks)]
    if too_big:
        raise ToolkitError(f"thresholds {too_big} exceed the {len(ranks)} neurons of {config.csv_path}")
    check_mask_bytes(config, len(attributes), len(thresholds), len(ranks))
    num_permuted, permuted = permuted_baselines(config, ranks)
    folds = fold_tables(config, rank_meta)
    masks = _generate(config, ranks, attributes, thresholds, num_layers, permuted)
    save_masks(config.pkl_file, masks)
    for fold in folds:
        fold_ranks = read_rank_table(fold["table"])
        if list(fold_ranks.columns) != list(ranks.columns) or len(fold_ranks) != len(ranks):
            raise ToolkitError(
                f"{fold['table']} does not match {config.csv_path} (rows or columns); rerun {{stage:rsa}}"
            )
        save_masks(fold["path"], _generate(config, fold_ranks, attributes, thresholds, num_layers, permuted))
    save_run_args(config.pkl_file.parent, config.to_dict(), config.pkl_file.stem)
    shape = {"num_layers": num_layers, "d_ffn": len(ranks) // num_layers, "num_neurons": len(ranks)}
    write_masks_meta(config, masks, rank_meta, shape, thresholds, num_permuted, attributes, record, folds=folds)
    logger.info(
        "wrote %d masks (%d attributes x k in %s, %d random draws and %d permuted rankings each, %s) to %s%s",
        len(masks), len(attributes), thresholds, config.num_random, num_permuted, config.random_method, config.pkl_file,
        f" and one file per fold ({len(folds)}: held-out selection)" if folds else " (selection: all seeds)",
    )  # fmt: skip
    return 0


def check_mask_bytes(config: MaskConfig, attributes: int, ks: int, neurons: int) -> None:
    """Refuse a masks file that would not fit ``MASK_BYTES`` in memory, before building it."""
    per_mask = neurons * (1 if config.mask_method in ("BINARY_MASK", "1") else 4)
    count = attributes * ks * (1 + config.num_random + (20 if config.num_permuted is None else config.num_permuted))
    if count * per_mask > MASK_BYTES:
        raise ToolkitError(
            f"{count} masks of {neurons} neurons take {count * per_mask / 2**30:.1f} GiB, above the "
            f"{MASK_BYTES / 2**30:.0f} GiB a masks file may hold: lower --num_random ({config.num_random}) or "
            f"the number of k ({ks}), or mask fewer attributes"
        )


def _generate(config: MaskConfig, ranks, attributes, thresholds, num_layers, permuted):
    from model_emotion.masking.masks import generate_masks

    return generate_masks(
        ranks,
        attributes,
        thresholds,
        num_layers,
        mask_method=config.mask_method,
        num_random=config.num_random,
        random_method=config.random_method,
        seed=config.seed,
        permuted_ranks=permuted,
    )


def fold_tables(config: MaskConfig, rank_meta: dict) -> list[dict]:
    """The seed folds of held-out selection (from the rank table's _meta.json and its _fold tables):
    per fold its table, its masks file, the seeds that selected it and those it may be evaluated on."""
    listed = rank_meta.get("selection_folds") or []
    selection = config.selection or ("held_out" if listed else "all")
    if selection == "all":
        if listed or config.selection is None:
            logger.info(
                "selection: the rank table of all seeds (circular: the masks are evaluated on the prompts that ranked them)"
            )
        return []
    if not listed:
        raise ToolkitError(
            f"--selection held_out needs the seed folds of {config.csv_path} (rerun {{stage:rsa}} with "
            f"--selection_folds 2 on activations of at least 2 seeds)"
        )
    folds = []
    for entry in listed:
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("fold"), int)
            and all(
                isinstance(entry.get(k), list) and all(isinstance(s, int) for s in entry[k])
                for k in ("select_seeds", "evaluate_seeds")
            )
        )
        if not ok or not entry["evaluate_seeds"] or not entry["select_seeds"]:
            raise ToolkitError(f"{config.csv_path}'s _meta.json has a malformed selection fold: {str(entry)[:120]}")
        table = config.csv_path.with_name(f"{config.csv_path.stem}_fold{entry['fold']}.csv")
        if not table.is_file():
            raise ToolkitError(f"fold table {table} is missing; rerun {{stage:rsa}}")
        path = config.pkl_file.with_name(f"{config.pkl_file.stem}_fold{entry['fold']}{config.pkl_file.suffix}")
        folds.append(
            {**{k: entry[k] for k in ("fold", "select_seeds", "evaluate_seeds")}, "table": table, "path": path}
        )
    return folds


def checked_layers(config: MaskConfig, ranks, rank_meta: dict) -> int:
    """The model's layer count for this rank table, after checking that its records agree."""
    # A rank table holds exactly the columns of its RSA mode (attributes or spaces): --mode selects
    # nothing, but a mode that contradicts the one the table was made with is a mistake worth stopping.
    if config.mode is not None and rank_meta.get("mode") not in (None, config.mode):
        raise ToolkitError(
            f"--mode {config.mode} but {config.csv_path} was made with --mode {rank_meta['mode']} (its _meta.json)"
        )
    if rank_meta.get("num_neurons") not in (None, len(ranks)):
        raise ToolkitError(
            f"{config.csv_path} has {len(ranks)} neurons but its _meta.json says {rank_meta['num_neurons']}; "
            f"rerun {{stage:rsa}} or remove the meta file"
        )
    from_summary = layers_from_summary(config.csv_path)
    if rank_meta.get("num_layers") and from_summary and rank_meta["num_layers"] != from_summary:
        raise ToolkitError(
            f"{config.csv_path}: its _meta.json says {rank_meta['num_layers']} layers, its _summary.csv {from_summary}; "
            f"rerun {{stage:rsa}}"
        )
    return config.num_layers or rank_meta.get("num_layers") or infer_layers(config.csv_path, len(ranks), config.model)


def permuted_baselines(config: MaskConfig, ranks):
    """(draws, [draws, neurons, columns] rankings or None) of the permuted-ranking baselines."""
    from model_emotion.masking.masks import load_permuted_ranks

    null_npz = run_folder.rank_table_path(config.csv_path, "null")
    num_permuted = config.num_permuted
    if num_permuted is None:
        if not null_npz.is_file():
            return 0, None
        permuted = load_permuted_ranks(null_npz, ranks, None)  # every kept one (20 since 0.5, 3 before)
        return len(permuted), permuted
    if num_permuted and not null_npz.is_file():
        raise ToolkitError(f"--num_permuted {config.num_permuted} needs {null_npz} ({{stage:rsa}} --test permutation)")
    return num_permuted, load_permuted_ranks(null_npz, ranks, num_permuted) if num_permuted else None


def write_masks_meta(
    config: MaskConfig, masks, rank_meta, shape, thresholds, num_permuted, attributes, record, *, folds
):
    from model_emotion.io.files import file_digest
    from model_emotion.masking.records import mask_info

    fold_entries = []
    for fold in folds:
        entry = {k: fold[k] for k in ("fold", "select_seeds", "evaluate_seeds")}
        entry.update(file=fold["path"].name, sha256=file_digest(fold["path"]))
        write_meta(fold["path"], **shape, selection="held_out", **entry, rank_table=fold["table"].name)
        fold_entries.append(entry)

    write_meta(
        config.pkl_file,
        **shape,
        model=rank_meta.get("model"),
        model_type=rank_meta.get("model_type"),
        protocol=rank_meta.get("protocol"),
        thresholds=list(thresholds),
        mask_method=config.mask_method,
        random_method=config.random_method,
        num_random=config.num_random,
        num_permuted=num_permuted,
        seed=config.seed,
        attributes=list(attributes),
        masks=[mask_info(name) for name in masks],  # each mask's metadata as data
        selection="held_out" if folds else "all",
        seeds=rank_meta.get("seeds"),
        folds=fold_entries,
        made_from=run_folder.with_output(record, config.pkl_file),
    )
