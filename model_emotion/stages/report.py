"""Step 6 as a stage: the report (``run_report``), configured by one frozen ``ReportConfig``: the
paper's figures, the summary and "what survives" tables, the human-side analyses and report.html, from a
results folder (steps 1-5), the paper's released data, or both.

``report.py`` (``model-emotion report``) turns flags into a ``ReportConfig`` and calls ``run_report``; a
Python caller does the same with the same names. Everything is written to a staging folder and moved into
``output_dir`` at the end, so a failure half-way leaves the folder as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from model_emotion.errors import ConfigError, ToolkitError
from model_emotion.rsa.fdr import FDR_METHODS
from model_emotion.stages.jobs import check_output_dir
from model_emotion.util.settings import Settings, setting

logger = logging.getLogger(__name__)

FORMATS = ("png", "pdf", "svg")
MAX_BOOT = 100_000  # the draws x 351 emotion pairs are held in memory; 100,000 draws take 280 MB


@dataclass(frozen=True)
class ReportConfig(Settings):
    """Everything the report depends on, each setting declared once; validated on construction."""

    results_dir: Path | None = setting(None, "folder holding the outputs of steps 1-5", kind="path")
    paper_dir: Path | None = setting(
        None, "the paper's released RoBERTa results (e.g. ../shared/data/paper_roberta)", kind="path"
    )
    control_dir: Path | None = setting(
        None,
        "results folder of a control run (get_active_neuron.py --control random_prompts, then "
        "rsa_searchlight.py): its counts, nulls and survivors beside this run's",
        kind="path",
    )
    output_dir: Path = setting(
        Path("report"), "where figures and tables go (default %(default)s)", flags=("--output_dir", "--output")
    )
    rank_csv: Path | None = setting(
        None,
        "rank table to use (default: the first found); with --paper_dir alone, a searchlight run on the "
        "paper's activations (e.g. the permutation test), whose tables then replace the recomputed ones",
        kind="path",
    )
    attributes: str | None = setting(
        None,
        "human ratings folder, for the RDM figure and the paper's RSA (default: env ME_ATTRIBUTES, "
        "beside --paper_dir, or the cached download)",
        kind="str",
        env="ME_ATTRIBUTES",
    )
    k: int | None = setting(None, "k of the drop matrix and the summary (default: the middle k)", kind="count")
    attribute: str = setting("valence", "attribute of the RDM figure (default %(default)s)")
    neuron: int | None = setting(
        None, "neuron of the RDM figure (default: best ranked for --attribute)", kind="int", low=0
    )
    fdr: str = setting(
        "paper", "FDR of the RSA recomputed in --paper_dir mode (default: the paper's own)", choices=FDR_METHODS
    )
    alpha: float = setting(0.01, "q threshold of significance (default %(default)s)", kind="probability")
    formats: tuple[str, ...] = setting(("png",), "figure formats (default png)", kind="str", choices=FORMATS, nargs="+")
    human_dir: Path | None = setting(
        None,
        "the paper's human data (similarity_judgments.csv, ..._by_participant.csv, "
        "rater_agreement.csv; e.g. ../shared/data/human_judgments): attribute importance, "
        "importance vs masking drop, rater agreement vs accuracy, model-level RSA",
        kind="path",
        env="ME_HUMAN_DIR",
    )
    n_boot: int = setting(
        1000,
        "bootstrap draws over participants for the importance CIs (default %(default)s; at most "
        "100000: the draws x 351 emotion pairs are held in memory, 100,000 draws take 280 MB)",
        kind="count",
        high=MAX_BOOT,
    )
    seed: int = setting(0, "seed of the bootstrap (default %(default)s)", kind="seed")

    def rules(self) -> None:
        if self.results_dir is None and self.paper_dir is None:
            raise ConfigError(
                "give --results_dir (outputs of steps 1-5) and/or --paper_dir (the paper's released data)"
            )


def run_report(config: ReportConfig) -> int:
    """Read the results, draw the figures, write the tables, summary.md and report.html into ``config.output_dir``."""
    from model_emotion.io.files import staged_dir
    from model_emotion.report.human import load_human
    from model_emotion.report.results import load_paper_results, load_results

    check_output_dir(config.output_dir, "--output_dir")
    paper = (
        load_paper_results(config.paper_dir, config.attributes, config.fdr, config.alpha) if config.paper_dir else None
    )
    ours = load_results(config.results_dir, config.rank_csv, alpha=config.alpha) if config.results_dir else None
    if paper is not None and ours is None and config.rank_csv is not None:
        from model_emotion.report.results import attach_searchlight

        attach_searchlight(paper, config.rank_csv)  # e.g. a permutation run on the paper's activations
    human = load_human(config.human_dir) if config.human_dir is not None else None
    for res in (ours, paper):
        if (
            config.k is not None
            and res is not None
            and res.masking is not None
            and config.k not in set(res.masking["k"])
        ):
            raise ToolkitError(
                f"--k {config.k} is not a k of the masked evaluation; it has {sorted(set(res.masking['k']))}"
            )
    # Everything is written to a staging folder and moved into --output_dir at the end, so a failure
    # half-way leaves the folder as it was.
    control = load_results(config.control_dir, alpha=config.alpha) if config.control_dir is not None else None
    if control is not None and control.null_counts is None:
        raise ToolkitError(
            f"--control_dir {config.control_dir}: no searchlight null counts (run {{stage:rsa}} "
            f"--test permutation on the control activations)"
        )
    with staged_dir(config.output_dir) as out:
        return _write_report(config, out, ours, paper, human, control)


def _searchlight_figures(res, out: Path, label: str, formats) -> list[Path]:
    from model_emotion.report import plots
    from model_emotion.report.plots import save

    written: list[Path] = []
    if res.tau is not None and res.q is not None and res.num_layers:
        written += save(
            plots.selectivity_heatmap(res.tau, res.q, res.num_layers, res.alpha),
            out / f"{label}selectivity_tau",
            formats,
        )
    if res.summary is not None:
        written += save(plots.selectivity_counts(res.summary), out / f"{label}selectivity_by_layer", formats)
    if res.null_counts is not None:
        for test, draws in res.null_draws.items():
            rows = res.null_counts[res.null_counts["test"] == test].set_index("attribute")["observed"]
            if len(rows):
                written += save(
                    plots.null_counts(draws, rows, list(res.rank.columns), test),
                    out / f"{label}null_counts_{test}",
                    formats,
                )
    return written


def _masking_figures(res, out: Path, config, label: str, summary, k) -> list[Path]:
    """Curves over k (several k) or a dot plot of the paired drops with their intervals (one k)."""
    from model_emotion.report import plots
    from model_emotion.report.plots import save

    formats = tuple(config.formats)
    total = (
        res.tau.shape[0] if res.tau is not None else (res.activations.activations.shape[2] if res.activations else None)
    )
    if k is None:
        from model_emotion.report.tables import summary_table

        summary, k = summary_table(res, config.k)
    written: list[Path] = []
    if res.masking["k"].nunique() > 1:
        written += save(plots.masking_curves(res.masking, total), out / f"{label}masking_accuracy_vs_k", formats)
    elif summary is not None and not summary.empty:
        written += save(plots.drop_dots(summary, k), out / f"{label}drop_beyond_baselines_k{k}", formats)
    written += save(plots.drop_matrix(res.masking, k), out / f"{label}drop_beyond_random_k{k}", formats)
    return written


def _chosen_neuron(res, config, n_total: int) -> int:
    """``--neuron``, else the attribute's top-ranked neuron, else neuron 0."""
    import numpy as np

    neuron = config.neuron
    if neuron is None and res.rank is not None and config.attribute in res.rank.columns:
        neuron = int(np.nanargmin(res.rank[config.attribute].to_numpy()))
    neuron = 0 if neuron is None else neuron
    if not 0 <= neuron < n_total:
        raise ToolkitError(f"--neuron {neuron} outside 0..{n_total - 1}")
    return neuron


def _rdm_figure(res, out: Path, config, label: str) -> list[Path]:
    """One neuron's RDM beside the chosen attribute's."""
    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.download import resolve_attributes
    from model_emotion.report import plots
    from model_emotion.report.plots import save
    from model_emotion.rsa.searchlight import neuron_rdms

    try:
        ratings = load_ratings(resolve_attributes(config.attributes or res.ratings_dir))
    except ToolkitError as exc:
        logger.warning("no RDM figure: %s", exc)
        return []
    rdms = build_rdms(ratings, res.activations.emotions)
    if config.attribute not in rdms.names:
        raise ToolkitError(f"--attribute {config.attribute!r} unknown; choose one of {', '.join(rdms.names)}")
    n_total = res.activations.activations.shape[2]
    neuron = _chosen_neuron(res, config, n_total)
    tau = None
    if res.tau is not None and config.attribute in res.tau.columns:
        tau = float(res.tau[config.attribute].iloc[neuron])
    keep = [res.activations.emotions.index(e) for e in rdms.emotions]
    rdm = neuron_rdms(res.activations.activations[keep][:, :, [neuron]])[0]
    figure = plots.rdm_pair(
        rdm,
        rdms.rdms[rdms.names.index(config.attribute)],
        rdms.emotions,
        neuron,
        config.attribute,
        tau,
        d_ffn=n_total // res.num_layers if res.num_layers and n_total % res.num_layers == 0 else None,
    )
    return save(figure, out / f"{label}rdm_neuron{neuron}_{config.attribute}", tuple(config.formats))


def draw(res, out: Path, config, label: str, reference=None, summary=None, k: int | None = None) -> list[Path]:
    """Every figure the results allow; logs what cannot be drawn and why. ``summary`` and ``k``: the
    run's summary table and its k (``tables.summary_table``), computed once by the caller."""
    from model_emotion.report import plots
    from model_emotion.report.plots import save

    formats = tuple(config.formats)
    written: list[Path] = []
    if res.accuracy is not None:
        written += save(plots.accuracy_bars(res.accuracy, reference), out / f"{label}accuracy_per_emotion", formats)
    written += _searchlight_figures(res, out, label, formats)
    if res.masking is not None:
        written += _masking_figures(res, out, config, label, summary, k)
    if res.activations is not None:
        written += _rdm_figure(res, out, config, label)
    return written


def _fmt_p(p: float) -> str:
    return "n/a" if p != p else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def _importance_section(data, rdms, config, out: Path) -> tuple[object, list[Path], list[str]]:
    """Attribute importance: the human similarity RDM against each attribute's RDM."""
    from model_emotion.io.files import write_csv
    from model_emotion.report import human as hm
    from model_emotion.report import plots
    from model_emotion.report.plots import save
    from model_emotion.report.tables import to_markdown

    importance = hm.attribute_importance(data, rdms, config.n_boot, config.seed)
    write_csv(out / "attribute_importance.csv", importance)
    written = save(plots.attribute_importance(importance, config.alpha), out / "attribute_importance", config.formats)
    ranked = importance.sort_values("tau", ascending=False)
    n_sig = int((importance["perm_p_holm"] < config.alpha).sum())
    n_par = int((importance["q_value"] < config.alpha).sum())
    boot = importance["bootstrap"].iloc[0] or "none"
    text = [
        f"## Human side: attribute importance ({data.source})\n",
        f"Kendall's tau-b of the human similarity RDM ({len(rdms.emotions)} emotions) with each attribute's RDM. "
        f"By the emotion-label permutation test (one-sided, Holm across the {len(importance)} attributes), "
        f"{n_sig} of {len(importance)} attributes are significant at {config.alpha:g} (the paper's test, which "
        f"treats the emotion pairs as independent, with BH: {n_par}). 95% percentile intervals from the "
        f"bootstrap over {boot.replace('+', ' and ')} ({config.n_boot} draws). Most important: "
        + ", ".join(f"{r.attribute} ({r.tau:.3f})" for r in ranked.head(3).itertuples())
        + "; least: "
        + ", ".join(f"{r.attribute} ({r.tau:.3f})" for r in ranked.tail(3).itertuples())
        + ".\n",
        to_markdown(importance),
    ]
    return importance, written, text


def _importance_vs_drop(importance, res, out: Path, config, label: str, title: str):
    from model_emotion.io.files import write_csv
    from model_emotion.report import human as hm
    from model_emotion.report import plots
    from model_emotion.report.plots import save
    from model_emotion.report.tables import masking_effects, to_markdown

    drops = hm.drop_beyond_random(masking_effects(res.masking))
    correlations = hm.importance_vs_drop(importance, drops)
    write_csv(out / f"{label}importance_vs_drop.csv", correlations)
    write_csv(out / f"{label}drop_beyond_random_by_attribute.csv", drops)
    written = save(
        plots.importance_vs_drop(importance, drops, correlations), out / f"{label}importance_vs_drop", config.formats
    )
    valid = correlations.dropna(subset=["spearman_rho"])
    positive = int((valid["spearman_rho"] > 0).sum())
    significant = int((valid["p_value"] < 0.05).sum())
    verdict = (
        "supports the paper's claim at every k"
        if len(valid) and significant == len(valid)
        else f"supports the paper's claim at {significant} of {len(valid)} k only (p-values not corrected "
        f"for testing several k)"
        if significant
        else "does not support the paper's claim (no k with one-sided p < 0.05)"
    )
    text = [
        f"## Human side: importance vs masking drop ({title})\n",
        f"Spearman's rho across attributes between importance and drop beyond random (mean random-mask "
        f"accuracy minus mean top-k accuracy), one-sided p: positive at {positive} of {len(valid)} k, "
        f"p < 0.05 at {significant}. This {verdict}.\n",
        to_markdown(correlations),
    ]
    return written, text


def _agreement_section(data, res, out: Path, config, label: str, title: str):
    from model_emotion.io.files import write_csv
    from model_emotion.report import human as hm
    from model_emotion.report import plots
    from model_emotion.report.plots import save
    from model_emotion.report.tables import to_markdown

    per_emotion, agreement = hm.agreement_vs_accuracy(data.agreement, res.accuracy)
    if not len(agreement):
        return [], []
    write_csv(out / f"{label}agreement_vs_accuracy.csv", agreement)
    write_csv(out / f"{label}agreement_vs_accuracy_per_emotion.csv", per_emotion)
    written = save(
        plots.agreement_vs_accuracy(per_emotion, agreement), out / f"{label}agreement_vs_accuracy", config.formats
    )
    text = [
        f"## Human side: rater agreement vs prompt accuracy ({title})\n",
        " ".join(
            f"{r.measure}: Pearson r = {r.pearson_r:.3f} (p = {_fmt_p(r.pearson_p)}), Spearman "
            f"rho = {r.spearman_rho:.3f} over {r.n_emotions} emotions."
            for r in agreement.itertuples()
        )
        + "\n",
        to_markdown(agreement),
    ]
    return written, text


def _interval_text(row) -> str:
    """The bootstrap interval and the noise ceiling of one model-RSA row, in words."""
    import pandas as pd

    parts = []
    if "ci_low" in row and pd.notna(row["ci_low"]):
        parts.append(
            f"95% interval {row['ci_low']:.3f} to {row['ci_high']:.3f}, bootstrap over emotions and participants"
        )
    if "noise_ceiling_low" in row and pd.notna(row["noise_ceiling_low"]):
        parts.append(
            f"noise ceiling {row['noise_ceiling_low']:.3f} to {row['noise_ceiling_high']:.3f} (leave one participant out)"
        )
    return "; ".join(parts) or "no interval"


def _model_rsa_section(data, rdms, res, out: Path, config, label: str, title: str):
    from model_emotion.io.files import write_csv
    from model_emotion.report import human as hm
    from model_emotion.report import plots
    from model_emotion.report.plots import save

    acts = res.activations
    table = hm.model_rsa(
        acts.activations,
        acts.emotions,
        res.num_layers or acts.layers,
        data,
        rdms,
        n_boot=config.n_boot,
        seed=config.seed,
    )
    write_csv(out / f"{label}model_rsa.csv", table)
    written = save(plots.model_rsa(table), out / f"{label}model_rsa", config.formats)
    human_rows = table[table["target"] == "human_similarity"]
    whole = human_rows[human_rows["scope"] == "all"].iloc[0]
    layers = human_rows[human_rows["scope"] != "all"]
    best = layers.loc[layers["tau"].idxmax()] if len(layers) else whole
    text = [
        f"## Human side: model-level RSA ({title})\n",
        f"The correlation-distance RDM of the seed-averaged activation patterns (all neurons) against the "
        f"human similarity RDM: tau = {whole['tau']:.3f} (emotion-label permutation p = "
        f"{_fmt_p(whole['perm_p'])}; the parametric one-sided p, which treats the emotion pairs as "
        f"independent, is {_fmt_p(whole['p_value'])}; {_interval_text(whole)}). Most human-like layer: "
        f"{best['scope'] if best['scope'] == 'all' else int(best['scope']) + 1} "
        f"(tau = {best['tau']:.3f}, permutation p = {_fmt_p(best['perm_p'])}). Full table: "
        f"{label}model_rsa.csv.\n",
    ]
    return written, text


def human_side(data, results: list, config, out: Path, both: bool) -> tuple[list[Path], list[str]]:
    """The paper's human-side analyses for each results set; returns figures and summary.md sections."""
    from model_emotion.data.ratings import build_rdms, load_ratings
    from model_emotion.io.download import resolve_attributes

    emotions = sorted(set(data.similarity["emotion_a"]) | set(data.similarity["emotion_b"]))
    ratings_dir = config.attributes or next((r.ratings_dir for _, r in results if r.ratings_dir), None)
    rdms = build_rdms(load_ratings(resolve_attributes(ratings_dir)), emotions)
    importance, written, text = _importance_section(data, rdms, config, out)
    for prefix, res in results:
        title = "the paper's released data" if prefix else "this run"
        label = prefix if both else ""
        parts = []
        if res.masking is not None:
            parts.append(_importance_vs_drop(importance, res, out, config, label, title))
        if res.accuracy is not None and data.agreement is not None:
            parts.append(_agreement_section(data, res, out, config, label, title))
        if res.activations is not None:
            parts.append(_model_rsa_section(data, rdms, res, out, config, label, title))
        for figures, section in parts:
            written += figures
            text += section
    return written, text


def null_count_section(title: str, counts) -> str:
    """Every significant-neuron count beside its null (what emotion-label permutations give), in words."""
    from model_emotion.report.tables import to_markdown

    lines = [
        f"## {title}: significant neurons beside their null\n",
        "`observed` is the number of significant neurons; `null_mean`, `null_p95` and `null_max` are what the "
        "same test finds when the emotion labels are permuted (no emotion knowledge aligned with the attributes); "
        "`count_p` is the share of permutations with at least the observed count, (1 + #) / (1 + B).\n",
    ]
    for test, part in counts.groupby("test", sort=False):
        attrs = part[part["attribute"] != "all"]
        above = attrs[attrs["count_p"] < 0.05]["attribute"].tolist()
        kind = (
            "the parametric test (pairs treated as independent)"
            if test.startswith("parametric")
            else "the permutation test (" + test.split("_", 1)[1].replace("maxt", "max-T") + ")"
        )
        lines.append(
            f"Under {kind}, {len(above)} of {len(attrs)} attributes have more significant neurons than "
            f"95% of label permutations" + (f": {', '.join(above)}." if above else ".") + "\n"
        )
    lines.append(to_markdown(counts))
    return "\n".join(lines)


def control_comparison(ours, control):
    """Per attribute: significant neurons, nulls and max-T survivors of the trained run beside the control's."""
    import pandas as pd

    from model_emotion.report.survival import survival_table

    def table(res):
        return survival_table(res.null_counts, res.fwer, None, None, res.alpha).set_index("attribute")

    trained, random = table(ours), table(control)
    names = [a for a in trained.index if a in random.index]
    rows = []
    for name in names:
        t, c = trained.loc[name], random.loc[name]
        rows.append(
            {
                "attribute": name,
                "trained_significant": t["significant"],
                "control_significant": c["significant"],
                "control_share": (c["significant"] / t["significant"]) if t["significant"] else float("nan"),
                "trained_count_p": t["count_p"],
                "control_count_p": c["count_p"],
                "trained_fwer_survivors": t["fwer_survivors"],
                "control_fwer_survivors": c["fwer_survivors"],
            }
        )
    return pd.DataFrame(rows)


def control_section(table) -> str:
    from model_emotion.report.tables import to_markdown

    total_t, total_c = table["trained_significant"].sum(), table["control_significant"].sum()
    share = f"{100 * total_c / total_t:.0f}%" if total_t else "n/a"
    return (
        "## Trained prompts beside untrained control prompts\n\n"
        "Untrained control prompts (get_active_neuron.py --control: random_prompts keep the trained prompt's norms "
        "per position, so they are not a clean null; vocab_prompts keep nothing of it) "
        f"give {int(total_c)} significant neuron x attribute pairs under the "
        f"parametric test, {share} of the trained prompts' {int(total_t)}; max-T survivors: "
        f"{int(table['control_fwer_survivors'].sum())} control against {int(table['trained_fwer_survivors'].sum())} "
        "trained. A count that untrained prompts reach is not evidence of learned emotion knowledge.\n\n"
        + to_markdown(table)
    )


def run_overview(res) -> dict:
    """What was run, in a few lines, from the run's own records (only what applies and is known)."""
    meta, out = res.meta or {}, {}
    if meta.get("model"):
        out["model"] = meta["model"] + (f" ({meta['model_type']})" if meta.get("model_type") else "")
    if meta.get("protocol"):
        out["protocol"] = meta["protocol"]
    emotions, seeds = meta.get("emotions"), meta.get("seeds")
    if res.activations is not None:
        emotions, seeds = res.activations.emotions, res.activations.seeds
    if emotions and seeds:
        seed_word = "seed" if len(seeds) == 1 else "seeds"
        out["prompts"] = (
            f"{len(emotions)} emotions x {len(seeds)} {seed_word} ({seed_word} {', '.join(map(str, seeds))})"
        )
    if res.rank is not None:
        layers = res.num_layers
        out["neurons"] = f"{len(res.rank)}" + (f" ({layers} layers x {len(res.rank) // layers})" if layers else "")
    if meta.get("test") == "permutation":
        out["test"] = (
            f"emotion-label permutation test, {meta.get('permutations')} permutations (seed {meta.get('perm_seed')}), "
            f"{meta.get('correction')} family-wise correction, alpha {meta.get('alpha', res.alpha)}; the paper's "
            f"parametric test ({meta.get('fdr', 'bh')}) beside it with its null"
        )
    elif meta.get("test") or res.tau is not None:
        out["test"] = (
            f"the paper's parametric test, {meta.get('fdr', 'bh')} over neurons, alpha {meta.get('alpha', res.alpha)}"
        )
    if res.masking is not None:
        m = res.masking
        draws = {
            kind: int(m[m["kind"] == kind]["draw"].nunique())
            for kind in ("random", "permuted")
            if (m["kind"] == kind).any()
        }
        out["masks"] = f"top k = {', '.join(map(str, sorted(set(m['k']))))} per attribute; " + ", ".join(
            f"{n} {kind} draw(s)" for kind, n in draws.items()
        )
        prompts = m[["emotion", "seed"]].drop_duplicates()
        examples = sorted({len(c) for c in m["correct"] if c is not None}) if "correct" in m else []
        sizes = (
            f", {examples[0]} examples each"
            if len(examples) == 1
            else f", {examples[0]} to {examples[-1]} examples each (the rarer emotions' balanced sets are smaller)"
            if examples
            else ""
        )
        out["masked evaluation"] = f"{len(prompts)} prompts{sizes}"
    return out


def _survival_section(res, table, out: Path, prefix: str, label: str) -> tuple[str, str]:
    """survival.csv; returns the verdict sentence and the 'what survives' section."""
    from model_emotion.io.files import write_csv
    from model_emotion.report.survival import survival_sentences, survival_table
    from model_emotion.report.tables import md_escape, to_markdown

    title = "Paper (RoBERTa-base, released data)" if label else "This run"
    survival = survival_table(
        res.null_counts, res.fwer, res.reliability, table if not table.empty else None, res.alpha, res.fwer_across,
        res.confounds,
    )  # fmt: skip
    write_csv(out / f"{prefix}survival.csv", survival)
    sentences = " ".join(survival_sentences(survival, res.alpha))
    verdict = ("On the paper's released data: " if label else "") + sentences
    # the verdicts as sentences under the table (a column of sentences makes every row a page tall)
    verdicts = "\n".join(
        f"- {md_escape(row.attribute)}: {md_escape(row.verdict)}" for row in survival.itertuples(index=False)
    )
    section = (
        f"## {title}: what survives\n\n"
        + sentences
        + "\n\n"
        + to_markdown(survival.drop(columns=["verdict"]))
        + "\nVerdict per attribute:\n\n"
        + verdicts
        + "\n"
    )
    return verdict, section


def _untested_verdict(res, table, label: str) -> str:
    from model_emotion.report.survival import survival_sentences, survival_table

    untested = survival_table(None, None, None, table, res.alpha)
    return (
        ("On the paper's released data: " if label else "")
        + "The counts of significant neurons were not tested against a permutation null (the searchlight "
        "ran the parametric test only; rerun it with --test permutation). "
        + " ".join(survival_sentences(untested, res.alpha))
    )


def _results_sections(config, out: Path, label: str, res, ours, paper):
    """One results set's figures, summary, null counts and survival; returns (figures, sections, verdict)."""
    from model_emotion.io.files import write_csv
    from model_emotion.report.tables import summary_table, to_markdown

    prefix = label if ours is not None else ""  # file names get a prefix only when both are drawn
    if label == "" or ours is None:
        missing = res.missing()
        if missing:
            logger.warning(
                "%s: missing %s; drawing what is there", config.results_dir or config.paper_dir, "; ".join(missing)
            )
    reference = paper.accuracy if (label == "" and paper is not None) else None
    table, k = summary_table(res, config.k)  # once: the summary files and the figures use it
    written = draw(res, out, config, prefix, reference, table, k)
    title = "Paper (RoBERTa-base, released data)" if label else "This run"
    markdown, verdict = [], None
    if not table.empty:
        write_csv(out / f"{prefix}summary.csv", table)
        markdown.append(
            f"## {title}: summary per attribute" + (f" (k = {k})" if k else "") + "\n\n" + to_markdown(table)
        )
    if res.null_counts is not None:
        markdown.append(null_count_section(title, res.null_counts))
    if res.null_counts is not None or res.fwer is not None:
        verdict, section = _survival_section(res, table, out, prefix, label)
        markdown.append(section)
    elif not table.empty:
        verdict = _untested_verdict(res, table, label)
    return written, markdown, verdict


def _write_html(config, out: Path, markdown: list[str], written, overview, verdict) -> None:
    from model_emotion.io.files import read_json, save_run_args, write_text
    from model_emotion.report.html import build_report_html

    record = read_json(save_run_args(out, config.to_dict(), "report"), dict)
    sources = " + ".join(str(p) for p in (config.results_dir, config.paper_dir) if p is not None)
    write_text(
        out / "report.html",
        build_report_html(
            f"Model Emotion report: {sources}",
            "\n".join(markdown),
            written,
            {key: record[key] for key in ("argv", "versions", "time") if key in record},  # only what applied
            overview=overview,
            verdict=verdict,
        ),
    )


def _write_report(config, out: Path, ours, paper, human, control=None) -> int:
    from model_emotion.io.files import write_csv, write_text
    from model_emotion.report.tables import comparison_tables, md_escape, to_markdown

    written, markdown, verdict = [], [], []
    for label, res in (("", ours), ("paper_", paper)):
        if res is not None:
            figures, sections, sentence = _results_sections(config, out, label, res, ours, paper)
            written += figures
            markdown += sections
            if sentence and not verdict:
                verdict = [sentence]
    if ours is not None and paper is not None:
        ours_total = ours.tau.shape[0] if ours.tau is not None else 0
        paper_total = paper.tau.shape[0] if paper.tau is not None else 0
        for name, table in comparison_tables(ours, paper, ours_total or 1, paper_total or 1).items():
            write_csv(out / f"comparison_{name}.csv", table)
            markdown.append(f"## Comparison with the paper: {name}\n\n" + to_markdown(table))
    if human is not None:
        both = ours is not None and paper is not None
        results = [(p, r) for p, r in (("", ours), ("paper_", paper)) if r is not None]
        human_written, human_markdown = human_side(human, results, config, out, both=both)
        written += human_written
        markdown += human_markdown
    if ours is not None and control is not None:
        table = control_comparison(ours, control)
        write_csv(out / "control_comparison.csv", table)
        markdown.append(control_section(table))
    overview = run_overview(ours if ours is not None else paper)
    head = []  # summary.md starts with what was run and the verdict, as report.html does
    if overview:
        head.append("## What was run\n\n" + "\n".join(f"- {k}: {md_escape(v)}" for k, v in overview.items()) + "\n")
    if verdict:
        head.append("## Verdict\n\n" + "\n\n".join(verdict) + "\n")
    if markdown:
        write_text(out / "summary.md", "\n".join(head + markdown))
    _write_html(config, out, markdown, written, overview, verdict)
    logger.info("report in %s: %d figures, summary.md, report.html", config.output_dir, len(written))
    return 0
