"""Step 3 as a stage: the per-neuron RSA searchlight against human attribute RDMs (``run_rsa``),
configured by one frozen ``RSAConfig`` that owns its defaults and cross-setting rules (the test
follows the protocol unless given; the paper protocol's test is the parametric one).

``rsa_searchlight.py`` (``model-emotion rsa``) turns flags into an ``RSAConfig`` and calls
``run_rsa``; a Python caller does the same with the same names. The tables it writes beside the
rank table are named by ``run_folder.rank_paths``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import cli
from ..errors import ConfigError, ToolkitError

logger = logging.getLogger(__name__)

CHOICES = {
    "mode": ("14Properties", "3Spaces"),
    "method": ("kendall_tau_b", "kendall_tau_a", "spearman"),
    "fdr": ("bh", "paper"),
    "protocol": ("toolkit", "paper"),
    "test": ("permutation", "parametric"),
    "correction": (None, "maxt", "maxt_global", "fdr"),
    "tail": ("empirical", "gpd", "moments"),
    "alternative": ("greater", "two-sided", "less"),
    "seed_normalization": ("none", "zscore", "scale"),
}


@dataclass(frozen=True)
class RSAConfig:
    """Everything the searchlight's tables depend on. Validated on construction; ``test`` None
    resolves to the protocol's (parametric under the paper protocol, else permutation)."""

    activations: Path = Path("active_neuron_before_relu_csv/activations.npz")
    attributes: str | None = None  # ratings folder; None: the paper's, downloaded once
    mode: str = "14Properties"
    method: str = "kendall_tau_b"
    fdr: str = "bh"
    protocol: str = "toolkit"
    test: str | None = None
    permutations: int = 1000
    perm_seed: int = 0
    correction: str | None = None
    tail: str = "empirical"
    alternative: str = "greater"
    alpha: float = 0.01
    seed_normalization: str = "none"
    seed_diagnostics: bool = False
    splits: int = 5
    diagnostic_permutations: int = 100
    attribute_names: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    num_layers: int | None = None
    output: Path = Path("neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv")
    device: str | None = None
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "activations", Path(self.activations))
        object.__setattr__(self, "output", Path(self.output))
        for name in ("attribute_names", "groups"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.test is None:
            object.__setattr__(self, "test", "parametric" if self.protocol == "paper" else "permutation")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise ConfigError(f"{{--{name}}} {getattr(self, name)!r} unknown; choose one of {shown}")
        for name in ("permutations", "splits", "diagnostic_permutations"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= cli.MAX_COUNT:
                raise ConfigError(f"{{--{name}}} {value!r} must be an integer in 1..{cli.MAX_COUNT}")
        if not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ConfigError(f"{{--alpha}} {self.alpha!r} must be in (0, 1)")
        if self.num_layers is not None and (not isinstance(self.num_layers, int) or self.num_layers < 1):
            raise ConfigError(f"{{--num_layers}} {self.num_layers!r} must be a positive integer")

    def to_dict(self) -> dict:
        values = asdict(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }

    @classmethod
    def from_dict(cls, values: dict) -> RSAConfig:
        if not isinstance(values, dict):
            raise ToolkitError("a searchlight config must be a JSON object")
        try:
            return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:
            raise ToolkitError(f"not a searchlight config ({exc})") from None


# The settings that change the tables: a finished run made with other values is recomputed.
RESULT_SETTINGS = (
    "mode",
    "method",
    "fdr",
    "alternative",
    "alpha",
    "attribute_names",
    "groups",
    "test",
    "permutations",
    "perm_seed",
    "correction",
    "tail",
    "seed_normalization",
    "seed_diagnostics",
    "splits",
    "diagnostic_permutations",
)


def run_rsa(config: RSAConfig) -> int:
    """Write the rank table and the tables beside it (skipped when they exist and were made from these
    activations and settings)."""
    from model_emotion.io import job_lock

    with job_lock(config.output):  # one run per output: a second one stops at once
        return _run(config)


def _run(config: RSAConfig) -> int:
    from model_emotion import run_folder
    from model_emotion.activation_files import load_activations
    from model_emotion.attributes import build_rdms, load_ratings, parse_groups
    from model_emotion.download import resolve_attributes
    from model_emotion.io import read_meta, save_run_args, write_csv, write_meta
    from model_emotion.rsa import searchlight, summarize

    paths = run_folder.rank_paths(config.output)
    source = Path(config.activations)
    current = config.to_dict()
    record = run_folder.made_from({"activations": source}, {name: current[name] for name in RESULT_SETTINGS})
    if (
        paths["rank"].exists()
        and not config.overwrite
        and run_folder.is_current(paths["rank"], run_folder.read_record(paths["rank"]), record)
    ):
        return 0
    cli.check_output_dir(paths["rank"].parent, "{--output}'s folder")  # before any work
    data = load_activations(config.activations)
    ratings = load_ratings(resolve_attributes(config.attributes))
    rdms = build_rdms(ratings, data.emotions, config.mode, config.attribute_names, parse_groups(config.groups))
    keep = [data.emotions.index(e) for e in rdms.emotions]
    source_meta = read_meta(source) if source.is_file() else {}
    num_layers = config.num_layers or data.layers
    if num_layers is None:
        raise ToolkitError(f"{config.activations} does not say how many layers the model has; pass --num_layers")

    from model_emotion.seeds import half_splits, normalize_seeds, seed_influence, seed_reliability

    if config.seed_diagnostics:
        half_splits(len(data.seeds), config.splits)  # enough seeds? (before any work)
    start = time.perf_counter()
    device = cli.resolve_device(config.device)
    acts = normalize_seeds(data.activations[keep], config.seed_normalization)
    result = searchlight(
        acts,
        rdms.rdms,
        rdms.names,
        config.method,
        config.fdr,
        config.alternative,
        device,
        test=config.test,
        permutations=config.permutations,
        perm_seed=config.perm_seed,
        alpha=config.alpha,
        correction=config.correction,
        tail=config.tail,
    )
    logger.info(
        "searchlight (%s test): %.2f s for %d neurons x %d attributes",
        config.test,
        time.perf_counter() - start,
        result.tau.shape[0],
        len(result.names),
    )
    summary = summarize(result, num_layers, config.alpha)
    write_csv(paths["tau"], result.table("tau"))
    write_csv(paths["p"], result.table("p"))
    write_csv(paths["q"], result.table("q"))
    if result.perm is not None:
        write_permutation_tables(paths, result)
    else:
        for key in run_folder.PERMUTATION_TABLES:  # a parametric rerun leaves no stale permutation tables
            paths[key].unlink(missing_ok=True)
    if config.seed_diagnostics:
        settings = dict(
            method=config.method,
            fdr_method=config.fdr,
            alternative=config.alternative,
            device=device,
            test=config.test,
            permutations=config.diagnostic_permutations,
            perm_seed=config.perm_seed,
            correction=config.correction,
            tail=config.tail,
        )
        write_csv(
            paths["seed_reliability"],
            seed_reliability(acts, rdms.rdms, rdms.names, config.alpha, config.splits, config.perm_seed, **settings),
        )
        write_csv(
            paths["seed_influence"],
            seed_influence(acts, list(data.seeds), rdms.rdms, rdms.names, config.alpha, **settings),
        )
    else:
        for key in ("seed_reliability", "seed_influence"):
            paths[key].unlink(missing_ok=True)
    write_csv(paths["summary"], summary)
    write_csv(paths["rank"], result.table("rank"))  # last: its presence marks a finished run
    save_run_args(paths["rank"].parent, config.to_dict(), paths["rank"].stem)
    write_meta(
        paths["rank"],
        num_layers=num_layers,
        d_ffn=data.d_ffn,
        num_neurons=int(result.tau.shape[0]),
        alpha=config.alpha,
        method=config.method,
        fdr=config.fdr,
        alternative=config.alternative,
        mode=config.mode,
        attributes=list(rdms.names),
        emotions=list(rdms.emotions),
        seeds=list(data.seeds),
        model=source_meta.get("model"),
        model_type=source_meta.get("model_type"),
        protocol=source_meta.get("protocol"),
        prompt_mode=source_meta.get("prompt_mode"),
        test=config.test,
        correction=result.perm.correction if result.perm is not None else "fdr",
        permutations=config.permutations if result.perm is not None else None,
        perm_seed=config.perm_seed if result.perm is not None else None,
        tail=config.tail if result.perm is not None else None,
        seed_normalization=config.seed_normalization,
        made_from=run_folder.with_output(record, paths["rank"]),
    )
    totals = summary[summary["layer"] == "all"]
    nulls = {}
    if result.perm is not None:
        counts = result.perm.null_counts
        nulls = {row["attribute"]: row for _, row in counts[counts["test"].str.startswith("permutation")].iterrows()}
    for _, row in totals.iterrows():
        null = nulls.get(row["attribute"])
        beside = (
            ""
            if null is None
            else f"  (null mean {null['null_mean']:.1f}, p95 {null['null_p95']:.0f}, count p {null['count_p']:.3g})"
        )
        logger.info(
            "%-18s significant %6d  selective %6d%s", row["attribute"], row["n_significant"], row["n_selective"], beside
        )
    logger.info(
        "wrote %s (+ tau, p, q, summary%s)",
        paths["rank"],
        ", permutation p, FWER p, null counts" if result.perm is not None else "",
    )
    return 0


def write_permutation_tables(paths: dict[str, Path], result) -> None:
    """The permutation test's tables beside the rank table, and its null distributions (npz)."""
    import numpy as np
    import pandas as pd

    from model_emotion.io import atomic_path, write_csv

    perm = result.perm
    for key in ("perm_p", "fwer_p", "fwer_global_p"):
        write_csv(paths[key], pd.DataFrame(getattr(perm, key), columns=result.names))
    write_csv(paths["null_counts"], perm.null_counts)
    with atomic_path(paths["null"]) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                attributes=np.array(result.names),
                null_max=perm.null_max,
                permutations=perm.permutations,
                permuted_stat=perm.permuted_stat,
                **{f"counts_{k}": v for k, v in perm.count_draws.items()},
            )
