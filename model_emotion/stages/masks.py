"""Step 4 as a stage: masks of the top-k neurons per attribute of a rank table, with random and
permuted-ranking baselines (``run_masks``), configured by one frozen ``MaskConfig``.

``gen_mask.py`` (``model-emotion masks``) turns flags into a ``MaskConfig`` and calls ``run_masks``;
a Python caller does the same with the same names. The masks file's ``_meta.json`` records the model
shape, the settings and, per mask, its attribute, k, kind and draw (mask metadata as data).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import cli
from ..errors import ConfigError, ToolkitError
from ..io import job_lock

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = (500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000)
MASK_METHODS = ("BINARY_MASK", "FLOAT_MASK", "1", "2")
RANDOM_METHODS = ("global", "layer_matched")
MODES = (None, "14Properties", "3Spaces")


@dataclass(frozen=True)
class MaskConfig:
    """Everything a masks file depends on. Validated on construction."""

    csv_path: Path = Path("neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv")
    pkl_file: Path = Path("masks/RSA_14property_top_500_6000.pkl")
    mode: str | None = None  # checked against the rank table's mode when given
    attribute_names: tuple[str, ...] | None = None  # columns to mask; None: all
    mask_method: str = "BINARY_MASK"
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    percent: tuple[float, ...] | None = None  # k as shares of all neurons, instead of thresholds
    num_random: int = 3
    num_permuted: int | None = None  # None: 3 when the searchlight kept permuted rankings, else 0
    random_method: str = "layer_matched"
    seed: int = 0
    num_layers: int | None = None
    model: str = cli.DEFAULT_MODEL
    overwrite: bool = False
    attributes_old: tuple[str, ...] | None = None  # the list --attributes gave before 0.4

    def __post_init__(self):
        object.__setattr__(self, "csv_path", Path(self.csv_path))
        object.__setattr__(self, "pkl_file", Path(self.pkl_file))
        for name in ("attribute_names", "thresholds", "percent", "attributes_old"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        for name, value, allowed in (
            ("mode", self.mode, MODES),
            ("mask_method", self.mask_method, MASK_METHODS),
            ("random_method", self.random_method, RANDOM_METHODS),
        ):
            if value not in allowed:
                raise ConfigError(f"{{--{name}}} {value!r} unknown; choose one of {', '.join(a for a in allowed if a)}")
        if not self.thresholds or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.thresholds):
            raise ConfigError(f"{{--thresholds}} {list(self.thresholds)} must be positive integers")
        if self.percent is not None and any(not 0 < p <= 100 for p in self.percent):
            raise ConfigError(f"{{--percent}} {list(self.percent)} must be percentages in (0, 100]")
        for name in ("num_random", "num_permuted", "seed", "num_layers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError(f"{{--{name}}} {value!r} must be a non-negative integer")
        if self.num_layers == 0:
            raise ConfigError("{--num_layers} must be at least 1")

    def to_dict(self) -> dict:
        values = asdict(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }

    @classmethod
    def from_dict(cls, values: dict) -> MaskConfig:
        if not isinstance(values, dict):
            raise ToolkitError("a mask config must be a JSON object")
        try:
            return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:
            raise ToolkitError(f"not a mask config ({exc})") from None


# roberta-base, the original code's only model: 12 layers x 3072 FFN neurons.
DEFAULT_MODEL_LAYERS, DEFAULT_MODEL_D_FFN = 12, 3072


def layers_from_summary(rank_csv: Path) -> int | None:
    from model_emotion.run_folder import rank_table_path

    summary = rank_table_path(rank_csv, "summary")
    if not summary.exists():
        return None
    from model_emotion.results import read_summary, summary_layers

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
    if model == cli.DEFAULT_MODEL and rows == DEFAULT_MODEL_LAYERS * DEFAULT_MODEL_D_FFN:
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
    from model_emotion import run_folder
    from model_emotion.io import read_meta, save_run_args, write_meta
    from model_emotion.masks import generate_masks, save_masks
    from model_emotion.results import mask_info, read_rank_table

    if not config.csv_path.is_file():
        raise ToolkitError(f"rank table not found: {config.csv_path} (run {{stage:rsa}} first)")
    # everything the masks depend on besides the rank table (not where they are written, nor --overwrite)
    settings = {
        k: v for k, v in config.to_dict().items() if k not in ("csv_path", "pkl_file", "overwrite", "mode", "model")
    }
    record = run_folder.made_from({"rank_table": config.csv_path}, settings)
    if (
        config.pkl_file.exists()
        and not config.overwrite
        and run_folder.is_current(config.pkl_file, run_folder.read_record(config.pkl_file), record, "regenerating")
    ):
        return 0
    cli.check_output_dir(config.pkl_file.parent, "{--pkl_file}'s folder")
    ranks = read_rank_table(config.csv_path)
    if config.attributes_old:
        logger.warning("--attributes (a list of columns) is now --attribute_names in gen_mask.py")
    attributes = config.attribute_names or config.attributes_old or list(ranks.columns)
    rank_meta = read_meta(config.csv_path)
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
    num_layers = (
        config.num_layers or rank_meta.get("num_layers") or infer_layers(config.csv_path, len(ranks), config.model)
    )
    if config.percent:
        thresholds = [max(1, round(len(ranks) * p / 100)) for p in config.percent]
    else:
        thresholds = config.thresholds
    too_big = [k for k in thresholds if k > len(ranks)]
    if too_big:
        raise ToolkitError(f"thresholds {too_big} exceed the {len(ranks)} neurons of {config.csv_path}")
    from model_emotion.masks import load_permuted_ranks

    null_npz = run_folder.rank_table_path(config.csv_path, "null")
    num_permuted = config.num_permuted
    if num_permuted is None:
        num_permuted = 3 if null_npz.is_file() else 0
    elif num_permuted and not null_npz.is_file():
        raise ToolkitError(f"--num_permuted {config.num_permuted} needs {null_npz} ({{stage:rsa}} --test permutation)")
    permuted = load_permuted_ranks(null_npz, ranks, num_permuted) if num_permuted else None
    masks = generate_masks(
        ranks,
        attributes,
        thresholds,
        num_layers,
        config.mask_method,
        config.num_random,
        config.random_method,
        config.seed,
        permuted,
    )
    save_masks(config.pkl_file, masks)
    save_run_args(config.pkl_file.parent, config.to_dict(), config.pkl_file.stem)
    write_meta(
        config.pkl_file,
        num_layers=num_layers,
        d_ffn=len(ranks) // num_layers,
        num_neurons=len(ranks),
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
        made_from=run_folder.with_output(record, config.pkl_file),
    )
    logger.info(
        "wrote %d masks (%d attributes x k in %s, %d random draws and %d permuted rankings each, %s) to %s",
        len(masks),
        len(attributes),
        thresholds,
        config.num_random,
        num_permuted,
        config.random_method,
        config.pkl_file,
    )
    return 0
