"""Every report figure, drawn from small simulated inputs, checked through its data and artists (not its
pixels): no text below 7 pt at the saved size, legends outside the data, signed quantities on a
diverging map centred at zero with symmetric limits, drops in points, neurons named L{layer}.{unit},
RDM orders named, shared axes where panels are compared, test accuracy with its n beside dev."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.text import Text
from scipy.spatial.distance import pdist

from model_emotion.report import plots

EMOTIONS = ["anger", "fear", "grief", "joy", "love", "pride"]
ATTRIBUTES = ["arousal", "valence", "self_related"]
DIVERGING = {"RdBu_r", "RdBu", "coolwarm", "bwr", "PuOr", "PuOr_r", "BrBG", "RdBu_r_r"}


def masking_table(ks=(20,), seeds=(1, 2)):
    rng = np.random.default_rng(0)
    rows = []
    for e in EMOTIONS:
        for s in seeds:
            unmasked = rng.uniform(0.7, 0.9)
            for a in ATTRIBUTES:
                for k in ks:
                    rows.append(
                        dict(
                            emotion=e,
                            seed=s,
                            attribute=a,
                            kind="top",
                            k=k,
                            draw=0,
                            unmasked=unmasked,
                            accuracy=unmasked - rng.uniform(0, 0.1),
                        )
                    )
                    for d in range(2):
                        rows.append(
                            dict(
                                emotion=e,
                                seed=s,
                                attribute=a,
                                kind="random",
                                k=k,
                                draw=d,
                                unmasked=unmasked,
                                accuracy=unmasked - rng.uniform(-0.02, 0.03),
                            )
                        )
    return pd.DataFrame(rows)


def accuracy_table(seeds=(1, 2), test=True):
    rng = np.random.default_rng(1)
    rows = [
        dict(emotion=e, seed=s, accuracy=rng.uniform(0.6, 0.9), test_accuracy=rng.uniform(0.5, 0.9), test_examples=n)
        for e, n in zip(EMOTIONS, [200, 80, 12, 150, 200, 40])
        for s in seeds
    ]
    table = pd.DataFrame(rows)
    return table if test else table.drop(columns=["test_accuracy", "test_examples"])


def summary_for_dots():
    rng = np.random.default_rng(2)
    drop = rng.normal(0.02, 0.02, len(ATTRIBUTES))
    return pd.DataFrame(
        dict(
            attribute=ATTRIBUTES,
            drop_beyond_random=drop,
            drop_ci_low=drop - 0.01,
            drop_ci_high=drop + 0.01,
            drop_beyond_permuted=drop / 2,
            permuted_ci_low=drop / 2 - 0.01,
            permuted_ci_high=drop / 2 + 0.01,
        )
    )


def selectivity_inputs(num_layers=3, d_ffn=8):
    rng = np.random.default_rng(3)
    tau = pd.DataFrame(rng.uniform(-0.4, 0.3, (num_layers * d_ffn, len(ATTRIBUTES))), columns=ATTRIBUTES)
    q = pd.DataFrame(rng.uniform(0, 0.05, tau.shape), columns=ATTRIBUTES)
    return tau, q, num_layers


def layer_summary(num_layers=3):
    rows = []
    for a in ATTRIBUTES:
        for layer in [*range(num_layers), "all"]:
            n = 10 * (ATTRIBUTES.index(a) + 1) if layer != "all" else 99
            rows.append(dict(attribute=a, layer=layer, n_significant=n, n_selective=n // 2))
    return pd.DataFrame(rows)


def rdm_inputs():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(len(EMOTIONS), 2))
    return pdist(points), pdist(points + rng.normal(0, 0.5, points.shape))


def figures():
    """(name, figure) for every figure the report draws."""
    tau, q, layers = selectivity_inputs()
    neuron_rdm, attribute_rdm = rdm_inputs()
    importance = pd.DataFrame(
        dict(
            attribute=ATTRIBUTES,
            tau=[0.1, 0.3, 0.2],
            ci_low=[0.0, 0.2, 0.1],
            ci_high=[0.2, 0.4, 0.3],
            q_value=[0.2, 0.001, 0.04],
        )
    )
    drops = pd.DataFrame(
        dict(attribute=ATTRIBUTES * 2, k=[20] * 3 + [40] * 3, drop_beyond_random=np.linspace(0, 0.05, 6))
    )
    correlations = pd.DataFrame(dict(k=[20, 40], spearman_rho=[0.5, -0.5], p_value=[0.6, 0.6]))
    per_emotion = pd.DataFrame(
        dict(emotion=EMOTIONS, kappa=np.linspace(0.1, 0.6, 6), prompt_accuracy=np.linspace(0.6, 0.9, 6))
    )
    agreement = pd.DataFrame(dict(measure=["kappa"], pearson_r=[0.4], pearson_p=[0.4], spearman_rho=[0.3]))
    model_rsa = pd.DataFrame(
        dict(
            target=["human_similarity"] * 3 + ["arousal"] * 3 + ["human_similarity"],
            scope=["0", "1", "2"] * 2 + ["all"],
            tau=[0.1, 0.2, 0.3, 0.0, 0.1, 0.05, 0.2],
        )
    )
    rng = np.random.default_rng(5)
    return [
        ("selectivity_tau", plots.selectivity_heatmap(tau, q, layers, 0.05)),
        ("selectivity_by_layer", plots.selectivity_counts(layer_summary())),
        ("masking_accuracy_vs_k", plots.masking_curves(masking_table(ks=(20, 40)), total_neurons=24)),
        ("drop_beyond_baselines", plots.drop_dots(summary_for_dots(), 20)),
        ("drop_beyond_random", plots.drop_matrix(masking_table(), 20)),
        ("rdm_neuron", plots.rdm_pair(neuron_rdm, attribute_rdm, EMOTIONS, 13, "valence", 0.31, d_ffn=8)),
        ("accuracy_per_emotion", plots.accuracy_bars(accuracy_table())),
        ("accuracy_vs_paper", plots.accuracy_bars(accuracy_table(seeds=(1,), test=False), accuracy_table())),
        ("attribute_importance", plots.attribute_importance(importance, 0.05)),
        ("importance_vs_drop", plots.importance_vs_drop(importance, drops, correlations)),
        ("agreement_vs_accuracy", plots.agreement_vs_accuracy(per_emotion, agreement)),
        ("model_rsa", plots.model_rsa(model_rsa)),
        (
            "null_counts",
            plots.null_counts(rng.poisson(5, (50, 3)), pd.Series([9, 2, 30], index=ATTRIBUTES), ATTRIBUTES, "max-T"),
        ),
    ]


@pytest.fixture(scope="module")
def drawn():
    out = {}
    for name, fig in figures():
        FigureCanvasAgg(fig).draw()  # lay out as when saved
        out[name] = fig
    return out


def texts(fig):
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and t.figure is not None]


def test_every_report_figure_is_checked(drawn):
    import inspect

    drawing = {
        name
        for name, fn in inspect.getmembers(plots, inspect.isfunction)
        if fn.__module__ == plots.__name__
        and not name.startswith("_")
        and name not in ("save", "neuron_label", "label_points")
    }
    used = {
        "selectivity_heatmap",
        "selectivity_counts",
        "masking_curves",
        "drop_dots",
        "drop_matrix",
        "rdm_pair",
        "accuracy_bars",
        "attribute_importance",
        "importance_vs_drop",
        "agreement_vs_accuracy",
        "model_rsa",
        "null_counts",
    }
    assert drawing == used, "a new figure function needs a case in figures()"


@pytest.mark.parametrize("name", [name for name, _ in figures()])
def test_no_text_below_7_pt(drawn, name):
    small = [(t.get_text()[:30], t.get_fontsize()) for t in texts(drawn[name]) if t.get_fontsize() < 7]
    assert not small, f"{name}: text below 7 pt: {small[:5]}"


@pytest.mark.parametrize("name", [name for name, _ in figures()])
def test_legends_sit_outside_the_data(drawn, name):
    fig = drawn[name]
    renderer = fig.canvas.get_renderer()
    for legend in fig.findobj(Legend):
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data() and not ax.get_label() == "<colorbar>":
                overlap = box.intersection(box, ax.get_window_extent(renderer))
                assert overlap is None or overlap.width * overlap.height < 1, f"{name}: legend over a panel's data"


def images(fig):
    return [im for im in fig.findobj(AxesImage)]


@pytest.mark.parametrize("name", ["drop_beyond_random", "selectivity_tau"])
def test_signed_quantities_on_a_diverging_map_centred_at_zero(drawn, name):
    for image in images(drawn[name]):
        low, high = image.get_clim()
        assert image.get_cmap().name in DIVERGING
        assert low == pytest.approx(-high) and high > 0
        data = np.ma.masked_invalid(image.get_array())
        assert np.abs(data).max() <= high + 1e-9  # nothing clipped


def test_drop_matrix_is_in_points_with_readable_cell_labels(drawn):
    fig = drawn["drop_beyond_random"]
    values = np.ma.masked_invalid(images(fig)[0].get_array())
    effects = masking_table().pipe(plots.masking_effects)
    expected = (
        100
        * effects[effects["k"] == 20]
        .pivot_table(index="emotion", columns="attribute", values="beyond_random")
        .to_numpy()
    )
    np.testing.assert_allclose(values.filled(np.nan), expected)
    colorbar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"][0]
    assert "points" in colorbar.get_ylabel()


@pytest.mark.parametrize("name", ["drop_beyond_baselines", "importance_vs_drop", "drop_beyond_random"])
def test_drops_are_labelled_in_points(drawn, name):
    labels = [t.get_text() for t in texts(drawn[name]) if "drop" in t.get_text() or "lost" in t.get_text()]
    axis_labels = [ax.get_xlabel() + ax.get_ylabel() for ax in drawn[name].axes]
    assert any("points" in label for label in axis_labels), (name, labels)


def test_one_k_is_a_dot_plot_of_paired_drops_with_intervals(drawn):
    ax = drawn["drop_beyond_baselines"].axes[0]
    summary = summary_for_dots().sort_values("drop_beyond_random")
    lines = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(lines) == 2  # beyond random and beyond permuted masks
    np.testing.assert_allclose(lines[0].get_xdata(), 100 * summary["drop_beyond_random"])
    assert [t.get_text() for t in ax.get_yticklabels()] == list(summary["attribute"])


def test_several_k_are_curves_on_one_y_scale(drawn):
    fig = drawn["masking_accuracy_vs_k"]
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.has_data()]
    assert len(panels) == len(ATTRIBUTES) + 1
    assert len({ax.get_ylim() for ax in panels}) == 1
    assert all(len(line.get_xdata()) == 2 for ax in panels for line in ax.lines if line.get_marker() in "os")


def test_small_multiples_of_counts_share_their_y_scale(drawn):
    panels = [ax for ax in drawn["selectivity_by_layer"].axes if ax.get_visible() and ax.has_data()]
    assert len(panels) == len(ATTRIBUTES) and len({ax.get_ylim() for ax in panels}) == 1


def test_neurons_are_named_by_layer_and_unit_and_the_rdm_order_is_named(drawn):
    fig = drawn["rdm_neuron"]
    words = " ".join(t.get_text() for t in texts(fig))
    assert "L1.5" in words  # flat neuron 13 with 8 units per layer
    assert "ordered by average-linkage clustering of the valence RDM" in words
    left, right = fig.axes[0], fig.axes[1]
    order = [t.get_text() for t in left.get_xticklabels()]
    assert order == [t.get_text() for t in right.get_xticklabels()] and sorted(order) == EMOTIONS
    layers = [ax.get_ylabel() for ax in drawn["selectivity_tau"].axes if ax.get_label() != "<colorbar>"]
    assert layers == ["L0", "L1", "L2"]


def test_accuracy_shows_test_with_its_n_beside_dev(drawn):
    fig = drawn["accuracy_per_emotion"]
    ax = fig.axes[0]
    table = accuracy_table()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("dev") for label in legend) and any(label.startswith("test") for label in legend)
    bars = [patch for patch in ax.patches]
    order = table.groupby("emotion")["accuracy"].mean().sort_values().index
    dev = table.groupby("emotion")["accuracy"].mean()[order].to_numpy()
    test = table.groupby("emotion")["test_accuracy"].mean()[order].to_numpy()
    widths = np.array([bar.get_width() for bar in bars])
    np.testing.assert_allclose(widths[: len(order)], dev)
    np.testing.assert_allclose(widths[len(order) :], test)
    words = [t.get_text() for t in texts(fig)]
    n = table.groupby("emotion")["test_examples"].mean()[order]
    assert [w for w in words if w.startswith("n = ")] == [f"n = {v:.0f}" for v in n]
    # without test accuracies (the paper's table): dev only, no n, the paper beside it
    legend = [t.get_text() for t in drawn["accuracy_vs_paper"].axes[0].get_legend().get_texts()]
    assert len(legend) == 2 and legend[1].startswith("paper")
    assert "1 seed" in drawn["accuracy_vs_paper"].axes[0].get_title()


def test_empty_counts_say_so_and_counts_have_whole_ticks():
    summary = layer_summary()
    summary[["n_significant", "n_selective"]] = 0
    fig = plots.selectivity_counts(summary)
    assert sum("no significant neurons" in t.get_text() for t in texts(fig)) == len(ATTRIBUTES)
    fig = plots.null_counts(np.zeros((50, 3), dtype=int), pd.Series([0, 0, 0], index=ATTRIBUTES), ATTRIBUTES, "max-T")
    FigureCanvasAgg(fig).draw()
    ticks = [tick for ax in fig.axes if ax.get_visible() for tick in ax.get_xticks()]
    assert ticks and all(float(tick).is_integer() for tick in ticks)


def test_drop_cells_never_read_minus_zero():
    table = masking_table()
    table.loc[table["kind"] == "top", "accuracy"] = table.loc[table["kind"] == "top", "unmasked"] + 0.001
    table.loc[table["kind"] == "random", "accuracy"] = table.loc[table["kind"] == "random", "unmasked"] - 0.0
    labels = [t.get_text() for t in plots.drop_matrix(table, 20).axes[0].texts]
    assert labels and "-0" not in labels and "0" in labels


def label_boxes(fig):
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for ax in fig.axes for t in ax.texts]
    return [(b.x0, b.y0, b.x1, b.y1) for b in boxes]


def collisions(boxes):
    def shared(a, b):
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    return sum(shared(a, b) > 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_point_labels_do_not_collide_where_there_is_room():
    """Crowded pairs of points (as rarely-separated emotions are): with labels placed right-above every
    point they collide; label_points finds each a free spot."""
    rng = np.random.default_rng(6)
    centres = rng.uniform(0, 1, (9, 2))
    xy = np.concatenate([centres, centres + rng.normal(0, 0.004, centres.shape)])  # 9 near-coincident pairs
    names = [f"emotion{i:02d}" for i in range(len(xy))]
    fig, ax = plots._figure(figsize=(5, 4.2))
    ax.scatter(xy[:, 0], xy[:, 1])
    naive_fig, naive_ax = plots._figure(figsize=(5, 4.2))
    naive_ax.scatter(xy[:, 0], xy[:, 1])
    for name, (x, y) in zip(names, xy):
        naive_ax.annotate(name, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    FigureCanvasAgg(naive_fig).draw()
    assert collisions(label_boxes(naive_fig)) >= 5
    plots.label_points(ax, xy[:, 0], xy[:, 1], names)
    FigureCanvasAgg(fig).draw()
    boxes = label_boxes(fig)
    assert len(boxes) == len(names) and collisions(boxes) == 0
    assert sorted(t.get_text() for t in ax.texts) == names
