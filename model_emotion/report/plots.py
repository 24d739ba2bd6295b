"""The report's figures. Signed quantities (drops beyond random, Kendall's tau) sit on a diverging map
centred at zero with symmetric limits; unsigned ones on a perceptually uniform map (viridis). Lines
differ by marker and style, not colour alone. Drops are in points of accuracy, neurons are named
``L{layer}.{unit}`` with layers from 0 (nearest the input), no text is below 7 pt at the saved size, and
legends sit outside the data (``tests/test_figures.py`` checks these on every figure).

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so importing this module
sets no backend: in a notebook the returned figure shows inline, and ``save`` writes it to files.
Single-panel figures also draw into a given ``ax=``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.spatial.distance import squareform

from model_emotion.report.tables import masking_effects, mean_ci

logger = logging.getLogger(__name__)


def save(fig: Figure | None, path: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``path.{format}`` for each format; nothing for None (a figure with no data)."""
    written = []
    if fig is None:
        return written
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=150, bbox_inches="tight")
        written.append(target)
    return written


def _figure(rows: int = 1, cols: int = 1, figsize=(6, 4), **kwargs):
    """A standalone Figure and its axes (no pyplot state, no backend chosen)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, **kwargs)


def _single(ax, figsize):
    """The figure and axes to draw a single-panel plot into: ``ax``'s, or a new figure's."""
    if ax is not None:
        return ax.figure, ax
    return _figure(figsize=figsize)


def selectivity_heatmap(tau: pd.DataFrame, q: pd.DataFrame, num_layers: int, alpha: float):
    """Kendall's tau of significant neurons (q < alpha), one panel per layer (``L0`` nearest the input):
    attributes x units, on a diverging map centred at zero with symmetric limits (tau is signed)."""
    names = list(tau.columns)
    values = np.where(np.nan_to_num(q.to_numpy(), nan=1.0) < alpha, tau.to_numpy(), np.nan)  # [neurons, attributes]
    d_ffn = values.shape[0] // num_layers
    finite = values[np.isfinite(values)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    # 7 pt attribute names need about 0.11 in per row; a small gap between the layers' panels
    fig, axes = _figure(
        num_layers, 1, figsize=(12, num_layers * (0.12 * len(names) + 0.15) + 1.6), sharex=True, squeeze=False
    )
    image = None
    for layer in range(num_layers):
        ax = axes[layer, 0]
        block = values[layer * d_ffn : (layer + 1) * d_ffn].T  # [attributes, d_ffn]
        ax.set_facecolor("#f2f2f2")  # not significant: light grey, apart from tau near 0 (white)
        image = ax.imshow(block, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=7)
        ax.set_ylabel(f"L{layer}", rotation=0, ha="right", va="center", fontsize=9, labelpad=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[-1, 0].set_xlabel(f"FFN unit within the layer (0..{d_ffn - 1}); neuron L{{layer}}.{{unit}}")
    fig.suptitle(
        f"Attribute-selective neurons: Kendall's tau of neurons significant at q < {alpha:g} (grey = not significant)"
    )
    if image is not None:
        fig.colorbar(
            image, ax=axes[:, 0].tolist(), fraction=0.02, pad=0.01, label="Kendall's tau (neuron RDM vs attribute RDM)"
        )
    return fig


def selectivity_counts(summary: pd.DataFrame):
    """Significant and selective neurons per layer (0 = nearest the input, as in the tables and in
    ``L{layer}.{unit}``), one small panel per attribute, all on one y scale so panels compare; the
    selective neurons are a subset of the significant ones, drawn over them."""
    per_layer = summary[summary["layer"].astype(str) != "all"].copy()
    per_layer["layer"] = per_layer["layer"].astype(int)
    names = list(dict.fromkeys(per_layer["attribute"]))
    cols = min(5, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = _figure(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False, sharey=True)
    top = max(1, int(per_layer["n_significant"].max()))
    for ax, name in zip(axes.flat, names):
        part = per_layer[per_layer["attribute"] == name]
        ax.bar(part["layer"], part["n_significant"], color="#5b5b5b", label="significant")
        ax.bar(
            part["layer"],
            part["n_selective"],
            color="#e8b64c",
            hatch="//",
            edgecolor="black",
            linewidth=0.3,
            label="of which selective (one attribute only)",
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
        ax.set_ylim(0, top * 1.08)
        ax.set_xticks(sorted(per_layer["layer"].unique()))
        ax.tick_params(labelsize=7)
    if not per_layer["n_significant"].any():  # say so, rather than leave empty axes
        for ax in list(axes.flat)[: len(names)]:
            ax.text(0.5, 0.5, "no significant neurons", ha="center", va="center", fontsize=8, transform=ax.transAxes)
    for ax in axes[:, 0]:
        ax.set_ylabel("neurons", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", fontsize=8, frameon=False)
    fig.suptitle(
        "Neurons significantly tuned to each attribute, by layer (one y scale; selective drawn over significant)"
    )
    fig.tight_layout()
    return fig


def _ci_series(effects: pd.DataFrame, column: str, masking: pd.DataFrame | None = None):
    """Mean and 95% CI over seeds of the per-seed means (over emotions); over emotions when one seed."""
    ks = sorted(effects["k"].unique())
    means, halves = [], []
    seeds = effects["seed"].nunique()
    for k in ks:
        part = effects[effects["k"] == k]
        unit = part.groupby("seed")[column].mean() if seeds > 1 else part[column]
        mean, half = mean_ci(unit.to_numpy())
        means.append(mean)
        halves.append(half)
    return np.array(ks), np.array(means), np.array(halves), ("seeds" if seeds > 1 else "emotions")


def masking_curves(masking: pd.DataFrame, total_neurons: int | None = None):
    """Accuracy after masking the top-k neurons of each attribute vs k random neurons."""
    effects = masking_effects(masking)
    names = sorted(effects["attribute"].unique())
    panels = names + ["mean over attributes"]
    cols = min(5, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = _figure(rows, cols, figsize=(3.1 * cols, 2.6 * rows), squeeze=False, sharey=True)
    unit = None
    for ax, name in zip(axes.flat, panels):
        part = effects if name == panels[-1] else effects[effects["attribute"] == name]
        if name == panels[-1]:
            part = part.groupby(["emotion", "seed", "k"], as_index=False)[["top", "random", "unmasked"]].mean()
        for column, style, label in (
            ("top", dict(color="black", marker="o", linestyle="-"), "top-k (attribute)"),
            ("random", dict(color="#1f77b4", marker="s", linestyle="--"), "random k (mean of draws)"),
        ):
            ks, mean, half, unit = _ci_series(part, column)
            x = ks / total_neurons * 100 if total_neurons else ks
            ax.errorbar(x, mean, yerr=np.nan_to_num(half), capsize=2, label=label, **style)
        ax.axhline(part["unmasked"].mean(), color="grey", linewidth=0.8, linestyle=":", label="unmasked")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("masked neurons (% of all)" if total_neurons else "masked neurons k", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"Prompt accuracy after masking (mean over emotions and seeds; error bars: 95% CI over {unit})")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    # the legend in the band between the title and the panels: outside every panel's data
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=3, fontsize=8, frameon=False)
    return fig


def drop_dots(summary: pd.DataFrame, k: int, ax=None):
    """One k: each attribute's accuracy lost beyond random masks (and beyond permuted-ranking masks when
    measured), in points, with its 95% interval; the paired comparison the summary tests."""
    table = summary.dropna(subset=["drop_beyond_random"]).sort_values("drop_beyond_random")
    fig, ax = _single(ax, (7.5, 0.32 * len(table) + 1.8))
    y = np.arange(len(table))
    series = [("drop_beyond_random", "drop_ci_low", "drop_ci_high", "beyond random masks", "#b2182b", 0.0)]
    if "drop_beyond_permuted" in table and table["drop_beyond_permuted"].notna().any():
        series.append(
            (
                "drop_beyond_permuted",
                "permuted_ci_low",
                "permuted_ci_high",
                "beyond permuted-ranking masks",
                "#2166ac",
                0.25,
            )
        )
    for value, low, high, label, color, shift in series:
        v = 100 * table[value].to_numpy()
        err = [v - 100 * table[low].to_numpy(), 100 * table[high].to_numpy() - v] if low in table else None
        ax.errorbar(v, y + shift, xerr=err, fmt="o", color=color, ms=5, capsize=2, label=label)
    ax.axvline(0, color="#444", lw=0.8)
    ax.set_yticks(y + (0.125 if len(series) > 1 else 0))
    ax.set_yticklabels(table["attribute"], fontsize=8)
    ax.set_xlabel("accuracy lost by masking the attribute's top neurons (points, 95% interval)")
    ax.set_title(f"Masking the top {k} neurons of each attribute: the drop beyond its baselines", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def drop_matrix(masking: pd.DataFrame, k: int, ax=None):
    """Emotion x attribute: accuracy lost beyond random masking at k (random acc - top-k acc)."""
    effects = masking_effects(masking)
    at_k = effects[effects["k"] == k]
    matrix = at_k.pivot_table(index="emotion", columns="attribute", values="beyond_random", aggfunc="mean")
    fig, ax = _single(ax, (0.55 * matrix.shape[1] + 3, 0.32 * matrix.shape[0] + 2))
    values = matrix.to_numpy() * 100
    # A signed quantity: a diverging map centred at zero with symmetric limits (white = no drop beyond random).
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_xticklabels(matrix.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_yticklabels(matrix.index, fontsize=8)
    if values.size <= 600:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                strong = abs(v) > 0.6 * limit
                ax.text(
                    j,
                    i,
                    f"{v:.0f}" if round(v) else "0",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if strong else "black",
                )
    fig.colorbar(image, ax=ax, label="accuracy drop beyond random (points)")
    ax.set_title(f"Accuracy lost by masking each attribute's top {k} neurons, beyond k random neurons")
    fig.tight_layout()
    return fig


def neuron_label(neuron: int, d_ffn: int | None) -> str:
    """``L{layer}.{unit}`` for a flat neuron index (layer-major), or the flat index without the width."""
    return f"L{neuron // d_ffn}.{neuron % d_ffn}" if d_ffn else f"neuron {neuron}"


def rdm_pair(
    neuron_rdm: np.ndarray,
    attribute_rdm: np.ndarray,
    emotions: list[str],
    neuron: int,
    attribute: str,
    tau: float | None,
    ax=None,
    d_ffn: int | None = None,
):
    """A neuron's RDM beside an attribute's RDM, both as percentiles of distance (the paper's display),
    emotions ordered by average-linkage clustering of the attribute's RDM (the same order in both)."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    n = len(emotions)
    order = leaves_list(linkage(np.asarray(attribute_rdm, dtype=float), method="average"))
    names = [emotions[i] for i in order]
    label = neuron_label(neuron, d_ffn)

    def square(vector):  # pair_index order is scipy's condensed order
        return squareform(pd.Series(vector).rank(pct=True).to_numpy())[np.ix_(order, order)]

    fig, axes = _figure(1, 2, figsize=(12, 5.6))
    for ax, matrix, title in (
        (axes[0], square(neuron_rdm), label),
        (axes[1], square(attribute_rdm), attribute),
    ):
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(n))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_yticks(range(n))
        ax.set_yticklabels(names, fontsize=7)
        ax.set_title(f"RDM: {title}", fontsize=10)
    fig.colorbar(image, ax=axes.tolist(), fraction=0.025, label="percentile of distance")
    suffix = f" (Kendall's tau = {tau:.3f})" if tau is not None and np.isfinite(tau) else ""
    fig.suptitle(
        f"Representational dissimilarity of emotions: {label} vs {attribute}{suffix}\n"
        f"emotions ordered by average-linkage clustering of the {attribute} RDM",
        fontsize=10,
    )
    return fig


def accuracy_bars(accuracy: pd.DataFrame, reference: pd.DataFrame | None = None, ax=None):
    """Prompt accuracy per emotion (mean over seeds, with the range when there are several): best-epoch
    dev accuracy and, when recorded, test accuracy with the number of test examples beside each
    emotion (a few dozen for the rarest emotions: their accuracies are coarse); optionally the
    reference's (the paper's) dev accuracy beside them."""
    has_test = "test_accuracy" in accuracy.columns and accuracy["test_accuracy"].notna().any()
    grouped = accuracy.groupby("emotion")
    ours = grouped["accuracy"].agg(["mean", "count"]).sort_values("mean")  # emotions in order of dev accuracy
    bars = [("accuracy", "dev (best epoch; biased upwards by that choice)", "#9e9e9e", None)]
    if has_test:
        bars.append(("test_accuracy", "test (prompt of the best dev epoch)", "white", "////"))
    if reference is not None:
        bars.append(("reference", "paper RoBERTa-base, dev (mean over seeds)", "white", ".."))
    height = 0.8 / len(bars)
    fig, ax = _single(ax, (8, 0.22 * len(bars) * len(ours) + 1.8))
    y = np.arange(len(ours))
    seeds = int(ours["count"].max())
    for i, (column, label, color, hatch) in enumerate(bars):
        if column == "reference":
            values = reference.groupby("emotion")["accuracy"].mean().reindex(ours.index)
            err = None
        else:
            stats = grouped[column].agg(["mean", "min", "max"]).reindex(ours.index)
            values = stats["mean"]
            err = [values - stats["min"], stats["max"] - values] if seeds > 1 else None
        ax.barh(
            y + (i - (len(bars) - 1) / 2) * height,
            values,
            xerr=err,
            height=height,
            color=color,
            hatch=hatch,
            edgecolor="black",
            linewidth=0.4,
            label=label,
        )
    ax.set_yticks(y)
    ax.set_yticklabels(ours.index, fontsize=8)
    if has_test and "test_examples" in accuracy.columns and accuracy["test_examples"].notna().any():
        n = grouped["test_examples"].mean().reindex(ours.index)
        right = ax.secondary_yaxis("right")
        right.set_yticks(y)
        right.set_yticklabels([f"n = {v:.0f}" if np.isfinite(v) else "n = ?" for v in n], fontsize=7)
        right.tick_params(length=0)
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("accuracy (balanced binary task; chance = 0.5)")
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(-0.6, len(ours) - 0.4)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False, ncol=1)
    spread = f"mean and min-max over {seeds} seeds" if seeds > 1 else "1 seed"
    ax.set_title(
        f"Soft-prompt accuracy per emotion ({spread}" + ("; n: test examples" if has_test else "") + ")",
        fontsize=10,
        pad=12 + 11 * len(bars),
    )
    fig.tight_layout()
    return fig


def attribute_importance(table: pd.DataFrame, alpha: float, ax=None):
    """Kendall's tau of the human similarity RDM with each attribute's RDM, bootstrap CI over participants."""
    table = table.sort_values("tau")
    fig, ax = _single(ax, (7, 0.3 * len(table) + 1.5))
    y = np.arange(len(table))
    has_ci = table["ci_low"].notna().all()
    err = [table["tau"] - table["ci_low"], table["ci_high"] - table["tau"]] if has_ci else None
    significant = table["perm_p_holm"].to_numpy() < alpha if "perm_p_holm" in table else table["q_value"] < alpha
    ax.barh(y, table["tau"], xerr=err, color=np.where(significant, "#2b2b2b", "#bdbdbd"), height=0.7)
    ax.set_yticks(y)
    ax.set_yticklabels(table["attribute"], fontsize=8)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(
        "Kendall's tau-b: human similarity RDM vs attribute RDM"
        + (" (95% bootstrap interval over emotions and participants)" if has_ci else "")
    )
    test = "permutation p, Holm" if "perm_p_holm" in table else "q, BH"
    ax.set_title(f"Attribute importance in human mental space (dark: {test} < {alpha:g})")
    fig.tight_layout()
    return fig


def importance_vs_drop(importance: pd.DataFrame, drops: pd.DataFrame, correlations: pd.DataFrame):
    """Drop beyond random against attribute importance, one labelled panel per k."""
    ks = sorted(drops["k"].unique())
    cols = min(3, len(ks))
    rows = int(np.ceil(len(ks) / cols))
    fig, axes = _figure(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    merged = drops.merge(importance[["attribute", "tau"]], on="attribute")
    for ax, k in zip(axes.flat, ks):
        part = merged[merged["k"] == k]
        ax.scatter(part["tau"], 100 * part["drop_beyond_random"], color="#2b2b2b", s=14)
        stat = correlations[correlations["k"] == k]
        label = ""
        if len(stat) and np.isfinite(stat["spearman_rho"].iloc[0]):
            label = f"  rho = {stat['spearman_rho'].iloc[0]:.2f} (p = {stat['p_value'].iloc[0]:.2g})"
        ax.set_title(f"k = {k}{label}", fontsize=9)
        ax.axhline(0, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xlabel("attribute importance (tau with human RDM)", fontsize=8)
        ax.set_ylabel("drop beyond random (points)", fontsize=8)
    for ax in list(axes.flat)[len(ks) :]:
        ax.set_visible(False)
    fig.suptitle("Do the neurons of attributes that matter more to humans matter more to the model?")
    fig.tight_layout()
    for ax, k in zip(axes.flat, ks):  # after the layout: labels placed where they will be drawn
        part = merged[merged["k"] == k]
        label_points(ax, part["tau"], 100 * part["drop_beyond_random"], part["attribute"])
    return fig


def agreement_vs_accuracy(per_emotion: pd.DataFrame, correlations: pd.DataFrame):
    """Prompt accuracy per emotion against each rater-agreement measure, labelled by emotion."""
    measures = list(correlations["measure"]) if len(correlations) else []
    if not measures:
        return None
    fig, axes = _figure(1, len(measures), figsize=(5 * len(measures), 4.2), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        ax.scatter(per_emotion[measure], per_emotion["prompt_accuracy"], color="#2b2b2b", s=12)
        stat = correlations[correlations["measure"] == measure].iloc[0]
        ax.set_title(
            f"{measure}: r = {stat['pearson_r']:.2f} (p = {stat['pearson_p']:.2g}), rho = {stat['spearman_rho']:.2f}",
            fontsize=8,
        )
        ax.set_xlabel(measure.replace("_", " "))
        ax.set_ylabel("prompt accuracy (mean over seeds)")
    fig.suptitle("GoEmotions rater agreement vs soft-prompt accuracy per emotion")
    fig.tight_layout()
    for ax, measure in zip(axes[0], measures):  # after the layout: labels placed where they will be drawn
        label_points(ax, per_emotion[measure], per_emotion["prompt_accuracy"], per_emotion["emotion"])
    return fig


# Where a point's label may go, in points from the point: right-above first, then the other corners and sides.
LABEL_SPOTS = [
    ((3, 3), "left", "bottom"),
    ((3, -3), "left", "top"),
    ((-3, 3), "right", "bottom"),
    ((-3, -3), "right", "top"),
    ((0, 5), "center", "bottom"),
    ((0, -5), "center", "top"),
    ((5, 0), "left", "center"),
    ((-5, 0), "right", "center"),
    # farther out, where the near ones are taken (a crowded cluster)
    ((3, 12), "left", "bottom"),
    ((3, -12), "left", "top"),
    ((-3, 12), "right", "bottom"),
    ((-3, -12), "right", "top"),
]


def label_points(ax, xs, ys, labels, fontsize: float = 7) -> None:
    """Label each point at the first of ``LABEL_SPOTS`` that overlaps no label placed so far, no other
    point and nothing outside the axes (else at the least overlapping one): labels do not collide where
    there is room. Call it after the figure's layout is final (positions are measured in pixels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)  # text extents need a renderer; saving and notebooks work as before
    renderer = fig.canvas.get_renderer()
    xs, ys, labels = np.asarray(xs, float), np.asarray(ys, float), [str(v) for v in labels]
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits the pixel positions depend on
    points = ax.transData.transform(np.column_stack([xs, ys]))
    markers = [(x - 2.5, y - 2.5, x + 2.5, y + 2.5) for x, y in points]  # in pixels
    placed: list[tuple] = []
    inside = ax.get_window_extent(renderer)
    frame = (inside.x0, inside.y0, inside.x1, inside.y1)

    def shared(a, b) -> float:
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    for i in np.argsort(-points[:, 1]):  # top to bottom
        best = None
        for offset, ha, va in LABEL_SPOTS:
            text = ax.annotate(
                labels[i], (xs[i], ys[i]), xytext=offset, textcoords="offset points", ha=ha, va=va, fontsize=fontsize
            )
            extent = text.get_window_extent(renderer)
            box = (extent.x0, extent.y0, extent.x1, extent.y1)
            others = placed + [m for j, m in enumerate(markers) if j != i]
            area = (box[2] - box[0]) * (box[3] - box[1])
            cost = sum(shared(box, other) for other in others) + (area - shared(box, frame))  # + outside the axes
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        placed.append(best[2])


def model_rsa(table: pd.DataFrame, ax=None):
    """Kendall's tau of the activation-pattern RDM with the human and attribute RDMs, per layer."""
    layers = table[table["scope"] != "all"]
    if layers.empty:
        return None
    fig, ax = _single(ax, (10.5, 4.5))
    markers = "osD^v<>px*h+"
    for i, (target, part) in enumerate(layers.groupby("target", sort=False)):
        human = target == "human_similarity"
        ax.plot(
            part["scope"].astype(int),
            part["tau"],
            marker=markers[i % len(markers)],
            color="black" if human else "#9e9e9e",
            linewidth=2.2 if human else 0.8,
            markersize=4,
            linestyle="-" if human else ":",
            label=target,
        )
        if human and "ci_low" in part and part["ci_low"].notna().all():
            ax.fill_between(part["scope"].astype(int), part["ci_low"], part["ci_high"], color="black", alpha=0.12)
    human_rows = layers[layers["target"] == "human_similarity"]
    if "noise_ceiling_low" in human_rows and human_rows["noise_ceiling_low"].notna().any():
        low, high = human_rows["noise_ceiling_low"].iloc[0], human_rows["noise_ceiling_high"].iloc[0]
        ax.axhspan(low, high, color="#c0392b", alpha=0.15, label="human noise ceiling")
    ax.set_xlabel("layer (0 = nearest the input)")
    ax.set_ylabel("Kendall's tau-b with the model RDM")
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # outside the data
    ax.set_title("Which layer's emotion geometry is most human-like? (correlation-distance RDM of all neurons)")
    fig.tight_layout()
    return fig


def null_counts(draws: np.ndarray, observed: pd.Series, names: list[str], test: str):
    """Each attribute's observed count of significant neurons against its distribution under emotion-label
    permutations (small multiples, one histogram per attribute; each panel its own x scale, as the
    comparison is within a panel: the red line against its grey null)."""
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    fig, axes = _figure(rows, cols, figsize=(2.6 * cols, 2.1 * rows), squeeze=False, sharex=False)
    fig.set_layout_engine("constrained")  # titles clear of the ticks of the row above
    for i, name in enumerate(names):
        ax = axes[i // cols][i % cols]
        ax.hist(draws[:, i], bins=30, color="#8c8c8c")
        if i % cols == 0:
            ax.set_ylabel("permutations", fontsize=8)
        ax.axvline(float(observed.get(name, np.nan)), color="#c0392b", linewidth=2)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # counts of neurons
    for j in range(len(names), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.supxlabel(f"significant neurons ({test}); grey: under label permutations, red: observed", fontsize=9)
    return fig
