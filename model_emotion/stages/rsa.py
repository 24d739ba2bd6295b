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
from dataclasses import dataclass
from pathlib import Path

from model_emotion.errors import ToolkitError
from model_emotion.io import run_folder
from model_emotion.io.files import read_meta, save_run_args, write_csv, write_meta
from model_emotion.lm.device import resolve_device
from model_emotion.rsa.fdr import FDR_METHODS
from model_emotion.rsa.permutation import CORRECTIONS, MAX_PERMUTATIONS, STUDENTIZE, TAILS, TESTS
from model_emotion.rsa.searchlight import ALTERNATIVES, DISTANCES, METHODS, RANK_BY
from model_emotion.stages.jobs import check_output_dir
from model_emotion.util.settings import Settings, setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RSAConfig(Settings):
    """Everything the searchlight's tables depend on, each setting declared once (flags, checks and
    docs come from here). ``test`` None resolves to the protocol's (parametric under the paper
    protocol, else permutation)."""

    activations: Path = setting(
        Path("active_neuron_before_relu_csv/activations.npz"),
        "activations.npz or a folder of {emotion}-{seed}.csv (default %(default)s)",
    )
    attributes: str | None = setting(
        None,
        "human ratings folder (attributes.csv [+ rdms.csv, descriptions.csv]); default: env "
        "ME_ATTRIBUTES, else the paper's ratings downloaded once into the cache",
        kind="str",
        env="ME_ATTRIBUTES",
    )
    mode: str = setting(
        "14Properties",
        "one RDM per attribute, or per attribute group (Euclidean over the group)",
        choices=("14Properties", "3Spaces"),
    )
    method: str = setting("kendall_tau_b", "the statistic (default %(default)s, as R's cor.test)", choices=METHODS)
    distance: str = setting(
        "mean_abs",
        "neuron RDM: mean_abs = mean over seeds of |a_i - a_j| (the paper's); crossval = mean over pairs of "
        "distinct seeds of (a_is - a_js)(a_it - a_jt), unbiased by seed noise (needs 2 seeds per searchlight)",
        choices=DISTANCES,
    )
    fdr: str = setting(
        "bh",
        "FDR of the parametric p (and of the permutation p with --correction fdr): bh = "
        "Benjamini-Hochberg over all tests (scipy); paper = p * N / rank(p) as in the paper's R code",
        choices=FDR_METHODS,
    )
    protocol: str = setting(
        "toolkit",
        "paper: the paper's parametric test (the default --test under it); toolkit: the permutation test",
        choices=("toolkit", "paper"),
    )
    test: str | None = setting(
        None,
        "permutation: emotion-label randomisation test with family-wise error control (the "
        "default); parametric: the paper's test, which treats the emotion pairs as independent "
        "(invalid for RDMs: see the README)",
        kind="str",
        choices=(None,) + TESTS,
    )
    permutations: int = setting(
        1000, "permutations of the emotion labels (default %(default)s); p >= 1/(B+1)", kind="count",
        high=MAX_PERMUTATIONS,
    )  # fmt: skip
    perm_seed: int = setting(0, "seed of the permutations (default %(default)s)", kind="seed")
    correction: str | None = setting(
        None,
        "permutation test: maxt = max-T family-wise error within each attribute (default), "
        "maxt_global = over all attributes, fdr = --fdr on the permutation p",
        kind="str",
        choices=(None,) + CORRECTIONS,
    )
    tail: str = setting(
        "empirical",
        "permutation p beyond 1/(B+1): gpd = generalized Pareto fit to the max-T null's tail "
        "(FWER p), moments = Pearson III fit to each test's null (per-test p); default empirical",
        choices=TAILS,
    )
    studentize: str = setting(
        "across",
        "permutation test: which max-T corrections take each test's statistic standardized by the mean "
        "and SD of its own permutation null: across (default: the correction over all attributes, whose "
        "null spreads differ), both (within each attribute too), none (raw max-T everywhere)",
        choices=STUDENTIZE,
    )
    rank_by: str = setting(
        "statistic",
        "rank neurons (the rank table, so the masks) on the statistic (default) or on its studentized "
        "value (permutation test only)",
        choices=RANK_BY,
    )
    alternative: str = setting(
        "greater", "alternative hypothesis of the p-values (the paper: greater)", choices=ALTERNATIVES
    )
    alpha: float = setting(
        0.01,
        "significance level: FDR q < alpha, or adjusted permutation p <= alpha (the paper: 0.01)",
        kind="probability",
    )
    seed_normalization: str = setting(
        "none",
        "per-seed normalisation before the RDMs are averaged over seeds: none (the paper's), "
        "zscore (each neuron of each seed over the emotions), scale (each seed to equal distance mass)",
        choices=("none", "zscore", "scale"),
    )
    seed_diagnostics: bool = setting(
        False,
        "also write _seed_reliability.csv (split-half agreement of the neuron statistics beside its "
        "null with the attribute's emotions relabelled for both halves, p and Holm across attributes) and "
        "_seed_influence.csv (distance share, leave-one-seed-out and single-seed counts)",
    )
    splits: int = setting(
        5, "random half splits of the seeds for --seed_diagnostics, besides odd/even (default %(default)s)",
        kind="count",
    )  # fmt: skip
    relabellings: int = setting(
        500,
        "--seed_diagnostics: relabellings of the attributes' emotions (both seed halves at once) in the "
        "null of the split-half reliability (default %(default)s; at least attributes / 0.05 - 1, so that "
        "Holm across the attributes can reach 0.05)",
        kind="count",
        high=MAX_PERMUTATIONS,
    )
    leave_one_out: bool = setting(
        False, "--seed_diagnostics: also each seed's agreement with all the others (leave one seed out)"
    )
    diagnostic_permutations: int = setting(
        100,
        "permutations of each searchlight of --seed_diagnostics under the permutation test "
        "(default %(default)s: about 40 searchlights on 2 cores)",
        kind="count",
        high=MAX_PERMUTATIONS,
    )
    attribute_names: tuple[str, ...] | None = setting(
        None, "use only these attributes (or spaces in 3Spaces mode)", kind="str", nargs="+"
    )
    groups: tuple[str, ...] | None = setting(
        None, "3Spaces groups as NAME=attr1,attr2 (default: descriptions.csv)", kind="str", nargs="+"
    )
    num_layers: int | None = setting(
        None, "layers of the model, for the per-layer summary (default: from the npz)", kind="count"
    )
    output: Path = setting(
        Path("neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv"),
        "rank table CSV; the other tables go beside it (default %(default)s)",
    )
    device: str | None = setting(
        None, "torch device (cpu, cuda, cuda:1); default: cuda if available, else cpu", kind="str", env="ME_DEVICE"
    )
    selection_folds: int | None = setting(
        None,
        "seed folds for held-out mask selection: per fold, a rank table from the searchlight on the "
        "other folds' seeds (_fold{f}.csv beside the rank table), so that the masks that gen_mask.py "
        "makes from it are evaluated on prompts that did not select them; 0 = none; default 2 under the "
        "toolkit protocol when there are at least 2 seeds, 0 under the paper's (its selection is circular)",
        kind="int",
        low=0,
    )
    nuisance: tuple[str, ...] | None = setting(
        None,
        "nuisance model RDMs tested beside the attributes with the same permutations: instability "
        "(per-emotion prompt instability across seeds), frequency and length (log training frequency and "
        "mean text length, from --nuisance_data), or a CSV in the attributes' long format; writes "
        "_nuisance_summary, _nuisance_maxt_survivors and _nuisance_confounds (attribute x nuisance Mantel)",
        kind="str",
        nargs="+",
    )
    nuisance_data: str | None = setting(
        None, "GoEmotions folder for --nuisance frequency/length (default: env ME_DATA_DIR, else the hub)", kind="str",
        env="ME_DATA_DIR",
    )  # fmt: skip
    overwrite: bool = setting(False, "replace existing tables")

    def rules(self) -> None:
        if self.test is None:
            object.__setattr__(self, "test", "parametric" if self.protocol == "paper" else "permutation")

    def folds_for(self, n_seeds: int) -> int:
        """The seed folds of held-out selection for ``n_seeds`` seeds (the default resolved)."""
        folds = self.selection_folds
        if folds is None:
            folds = 2 if self.protocol == "toolkit" and n_seeds >= 2 else 0
        if folds == 1 or folds > n_seeds:
            raise ToolkitError(
                f"{{--selection_folds}} {folds}: held-out selection needs 0 or 2..{n_seeds} folds of the {n_seeds} seed(s)"
            )
        if self.distance == "crossval" and folds and n_seeds - -(-n_seeds // folds) < 2:
            raise ToolkitError(
                f"{{--distance}} crossval needs 2 seeds in every fold's selection; {n_seeds} seeds in {folds} folds "
                "leave fewer: pass more seeds or {--selection_folds} 0"
            )
        if self.distance == "crossval" and self.seed_diagnostics and self.leave_one_out:
            raise ToolkitError("{--distance} crossval cannot rank on one seed: drop {--leave_one_out}")
        return folds


# The settings that change the tables: a finished run made with other values is recomputed.
RESULT_SETTINGS = (
    "mode",
    "method",
    "distance",
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
    "studentize",
    "rank_by",
    "seed_normalization",
    "seed_diagnostics",
    "splits",
    "relabellings",
    "leave_one_out",
    "diagnostic_permutations",
    "selection_folds",
    "distance",
    "nuisance",
)


def run_rsa(config: RSAConfig) -> int:
    """Write the rank table and the tables beside it (skipped when they exist and were made from these
    activations and settings)."""
    from model_emotion.io.files import job_lock

    with job_lock(config.output):  # one run per output: a second one stops at once
        return _run(config)


def _run(config: RSAConfig) -> int:
    from model_emotion.data.ratings import build_rdms, load_ratings, parse_groups
    from model_emotion.io.activations import load_activations
    from model_emotion.io.download import resolve_attributes
    from model_emotion.rsa.searchlight import searchlight, summarize
    from model_emotion.rsa.seeds import half_splits, normalize_seeds, reliability_null_check

    paths = run_folder.rank_paths(config.output)
    current = config.to_dict()
    record = run_folder.made_from({"activations": config.activations}, {k: current[k] for k in RESULT_SETTINGS})
    if (
        paths["rank"].exists()
        and not config.overwrite
        and run_folder.is_current(paths["rank"], run_folder.read_record(paths["rank"]), record)
    ):
        return 0
    check_output_dir(paths["rank"].parent, "{--output}'s folder")  # before any work
    data = load_activations(config.activations)
    ratings = load_ratings(resolve_attributes(config.attributes))
    rdms = build_rdms(ratings, data.emotions, config.mode, config.attribute_names, parse_groups(config.groups))
    keep = [data.emotions.index(e) for e in rdms.emotions]
    num_layers = config.num_layers or data.layers
    if num_layers is None:
        raise ToolkitError(f"{config.activations} does not say how many layers the model has; pass --num_layers")
    if config.seed_diagnostics:  # enough seeds and relabellings? (before any work)
        half_splits(len(data.seeds), config.splits)
        reliability_null_check(config.relabellings, len(rdms.names))
    folds = config.folds_for(len(data.seeds))
    nuisance = load_nuisance(config, data.activations[keep], rdms.emotions)  # bad input stops before any work
    start = time.perf_counter()
    device = resolve_device(config.device)
    acts = normalize_seeds(data.activations[keep], config.seed_normalization)
    result = searchlight(
        acts, rdms.rdms, rdms.names, alpha=config.alpha, rank=config.rank_by, **searchlight_settings(config, device)
    )
    elapsed = time.perf_counter() - start
    logger.info(
        "searchlight (%s test): %.2f s for %d neurons x %d attributes",
        config.test, elapsed, result.tau.shape[0], len(result.names),
    )  # fmt: skip
    summary = summarize(result, num_layers, config.alpha)
    write_tables(config, paths, result, summary)
    write_seed_diagnostics(config, paths, acts, list(data.seeds), rdms, device)
    write_nuisance_tables(config, paths, acts, rdms, nuisance, num_layers, device)
    write_fold_tables(config, paths["rank"], acts, list(data.seeds), rdms, folds, device)
    write_csv(paths["rank"], result.table("rank"))  # last: its presence marks a finished run
    save_run_args(paths["rank"].parent, config.to_dict(), paths["rank"].stem)
    shape = {"num_layers": num_layers, "d_ffn": data.d_ffn, "num_neurons": int(result.tau.shape[0])}
    write_rank_meta(config, paths["rank"], shape, rdms, list(data.seeds), result, record)
    log_counts(summary, result)
    extra = ", permutation p, FWER p, null counts" if result.perm is not None else ""
    logger.info("wrote %s (+ tau, p, q, summary%s)", paths["rank"], extra)
    return 0


def write_tables(config: RSAConfig, paths: dict[str, Path], result, summary) -> None:
    """The tau, p, q and summary tables (and the permutation tables of a permutation run)."""
    write_csv(paths["tau"], result.table("tau"))
    write_csv(paths["p"], result.table("p"))
    write_csv(paths["q"], result.table("q"))
    if result.perm is not None:
        write_permutation_tables(paths, result)
    else:
        for key in run_folder.PERMUTATION_TABLES:  # a parametric rerun leaves no stale permutation tables
            paths[key].unlink(missing_ok=True)
    write_csv(paths["summary"], summary)


def load_nuisance(config: RSAConfig, activations, emotions: list[str]):
    """--nuisance: (names, [nuisances, pairs]) or None."""
    if not config.nuisance:
        return None
    from model_emotion.rsa.nuisance import nuisance_rdms

    data = None
    if {"frequency", "length"} & set(config.nuisance):
        from model_emotion.data.goemotions import load_goemotions

        data = load_goemotions(config.nuisance_data, splits=("train",))
    return nuisance_rdms(config.nuisance, activations, emotions, data)


def write_nuisance_tables(config: RSAConfig, paths: dict[str, Path], acts, rdms, nuisance, num_layers, device) -> None:
    """The nuisance RDMs' searchlight (the run's test, the same permutations) and the attribute x
    nuisance confound table; without --nuisance, old nuisance tables are removed."""
    if nuisance is None:
        for key in run_folder.NUISANCE_TABLES:
            paths[key].unlink(missing_ok=True)
        return
    from model_emotion.rsa.nuisance import confounds
    from model_emotion.rsa.searchlight import searchlight, summarize

    names, matrix = nuisance
    result = searchlight(acts, matrix, names, alpha=config.alpha, **searchlight_settings(config, device))
    write_csv(paths["nuisance_summary"], summarize(result, num_layers, config.alpha))
    if result.perm is not None:
        write_csv(paths["nuisance_survivors"], result.perm.survivors())
    else:
        paths["nuisance_survivors"].unlink(missing_ok=True)
    table = confounds(
        rdms.rdms, rdms.names, matrix, names, permutations=max(config.permutations, 1000), seed=config.perm_seed
    )
    write_csv(paths["nuisance_confounds"], table)
    logger.info(
        "nuisance RDMs %s: tested beside the attributes (%s)", ", ".join(names), paths["nuisance_confounds"].name
    )


def searchlight_settings(config: RSAConfig, device, **overrides) -> dict:
    """The run's keyword arguments of ``rsa.searchlight`` (all but alpha and the ranking), so that every
    searchlight of a run (attributes, nuisances, seed diagnostics) tests the same way."""
    settings = dict(
        method=config.method, fdr_method=config.fdr, alternative=config.alternative, device=device, test=config.test,
        permutations=config.permutations, perm_seed=config.perm_seed, correction=config.correction,
        tail=config.tail, studentize=config.studentize, distance=config.distance,
    )  # fmt: skip
    return {**settings, **overrides}


def fold_seeds(seeds: list[int], folds: int) -> list[tuple[list[int], list[int]]]:
    """Per fold f: (the seeds that select its masks, the seeds they are evaluated on = fold f).
    Seeds go to folds by position in turn (1st, 3rd, ... to fold 1 of 2)."""
    out = []
    for f in range(folds):
        evaluate = [s for i, s in enumerate(seeds) if i % folds == f]
        out.append(([s for s in seeds if s not in evaluate], evaluate))
    return out


def write_fold_tables(config: RSAConfig, rank: Path, acts, seeds: list[int], rdms, folds: int, device) -> None:
    """Held-out selection: per fold, the rank table of the searchlight on the other folds' seeds
    (ranked by the same statistic; the parametric test, since only the ranking is used, or under
    ``--rank_by studentized`` the permutation test with --diagnostic_permutations draws for the
    moments that standardize the statistic), with the
    seeds that selected it and those it may be evaluated on in its _meta.json. Old fold tables of
    another fold count are removed."""
    from model_emotion.rsa.searchlight import searchlight

    for old in rank.parent.glob(f"{rank.stem}_fold*.csv"):
        old.unlink()
        old.with_name(old.stem + "_meta.json").unlink(missing_ok=True)
    studentized = config.rank_by == "studentized"  # then the folds need the permutation null's moments
    extra = (
        dict(test="permutation", permutations=config.diagnostic_permutations, rank="studentized") if studentized else {}
    )
    for f, (select, evaluate) in enumerate(fold_seeds(seeds, folds), start=1):
        positions = [seeds.index(s) for s in select]
        result = searchlight(
            acts[:, positions], rdms.rdms, rdms.names, config.method, config.fdr, config.alternative, device,
            distance=config.distance, perm_seed=config.perm_seed, alpha=max(config.alpha, 1.0 / (config.diagnostic_permutations + 1)), **extra,
        )  # fmt: skip
        path = fold_table_path(rank, f)
        write_csv(path, result.table("rank"))
        write_meta(
            path, fold=f, folds=folds, select_seeds=select, evaluate_seeds=evaluate, method=config.method,
            rank_by=config.rank_by, permutations=config.diagnostic_permutations if studentized else None,
        )  # fmt: skip
        logger.info("fold %d of %d: ranked on seeds %s, for evaluating seeds %s", f, folds, select, evaluate)


def fold_table_path(rank: Path, fold: int) -> Path:
    return rank.with_name(f"{rank.stem}_fold{fold}.csv")


def write_seed_diagnostics(config: RSAConfig, paths: dict[str, Path], acts, seeds: list, rdms, device) -> None:
    """--seed_diagnostics: split-half reliability and seed influence (else their old tables removed)."""
    from model_emotion.rsa.seeds import seed_influence, seed_reliability

    if not config.seed_diagnostics:
        for key in ("seed_reliability", "seed_influence"):
            paths[key].unlink(missing_ok=True)
        return
    settings = searchlight_settings(config, device, permutations=config.diagnostic_permutations)
    reliability = seed_reliability(
        acts, rdms.rdms, rdms.names, config.splits, config.perm_seed, relabellings=config.relabellings,
        leave_one_out=config.leave_one_out, method=config.method, device=device, distance=config.distance,
    )  # fmt: skip
    write_csv(paths["seed_reliability"], reliability)
    write_csv(paths["seed_influence"], seed_influence(acts, seeds, rdms.rdms, rdms.names, config.alpha, **settings))


def write_rank_meta(config: RSAConfig, rank: Path, shape: dict, rdms, seeds: list, result, record: dict) -> None:
    source_meta = read_meta(config.activations) if config.activations.is_file() else {}
    perm = result.perm is not None
    write_meta(
        rank,
        **shape,
        alpha=config.alpha,
        method=config.method,
        distance=config.distance,
        fdr=config.fdr,
        alternative=config.alternative,
        mode=config.mode,
        attributes=list(rdms.names),
        emotions=list(rdms.emotions),
        seeds=seeds,
        model=source_meta.get("model"),
        model_type=source_meta.get("model_type"),
        protocol=source_meta.get("protocol"),
        prompt_mode=source_meta.get("prompt_mode"),
        test=config.test,
        correction=result.perm.correction if perm else "fdr",
        permutations=config.permutations if perm else None,
        perm_seed=config.perm_seed if perm else None,
        tail=config.tail if perm else None,
        studentize=config.studentize if perm else None,
        rank_by=config.rank_by,
        seed_normalization=config.seed_normalization,
        selection_folds=[
            {"fold": f, "select_seeds": sel, "evaluate_seeds": ev}
            for f, (sel, ev) in enumerate(fold_seeds(seeds, config.folds_for(len(seeds))), start=1)
        ],
        made_from=run_folder.with_output(record, rank),
    )


def log_counts(summary, result) -> None:
    """One log line per attribute: its significant and selective neurons, beside their null."""
    import pandas as pd

    nulls = {}
    if result.perm is not None:
        counts = result.perm.null_counts
        nulls = {row["attribute"]: row for _, row in counts[counts["test"].str.startswith("permutation")].iterrows()}
    for _, row in summary[summary["layer"] == "all"].iterrows():
        null = nulls.get(row["attribute"])
        beside = ""
        if null is not None:
            count_p = "" if pd.isna(null["count_p"]) else f", count p {null['count_p']:.3g}"
            beside = f"  (null mean {null['null_mean']:.1f}, p95 {null['null_p95']:.0f}{count_p})"
        logger.info(
            "%-18s significant %6d  selective %6d%s", row["attribute"], row["n_significant"], row["n_selective"], beside
        )


def write_permutation_tables(paths: dict[str, Path], result) -> None:
    """The permutation test's tables beside the rank table, and its null distributions (npz)."""
    import numpy as np
    import pandas as pd

    from model_emotion.io.files import atomic_path, write_csv

    perm = result.perm
    for key in ("perm_p", "fwer_p", "fwer_global_p"):
        write_csv(paths[key], pd.DataFrame(getattr(perm, key), columns=result.names))
    write_csv(paths["zstat"], pd.DataFrame(perm.z, columns=result.names))
    write_csv(paths["maxt_survivors"], perm.survivors())
    if perm.tail_fits:
        write_csv(paths["tail_fits"], pd.DataFrame(perm.tail_fits))
    else:
        paths["tail_fits"].unlink(missing_ok=True)
    write_csv(paths["null_counts"], perm.null_counts)
    with atomic_path(paths["null"]) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                attributes=np.array(result.names),
                null_max=perm.null_max,
                null_max_studentized=perm.null_max_z,
                permutations=perm.permutations,
                permuted_stat=perm.permuted_stat,
                **{f"counts_{k}": v for k, v in perm.count_draws.items()},
            )
