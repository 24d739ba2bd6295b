"""The human side of the paper: attribute importance, importance vs masking drop, rater agreement,
model-level RSA, each checked against an independent computation (scipy on the shared data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error, run_script
from scipy import stats
from test_report import EMOS, make_results

from model_emotion.data.ratings import build_rdms, load_ratings, pair_index
from model_emotion.errors import ToolkitError
from model_emotion.report import human as hm


@pytest.fixture(scope="module")
def paper_human(shared):
    data = hm.load_human(shared / "human_judgments")
    rdms = build_rdms(
        load_ratings(shared / "emotion_attributes"),
        sorted(set(data.similarity["emotion_a"]) | set(data.similarity["emotion_b"])),
    )
    return data, rdms


def test_attribute_importance_equals_scipy_per_attribute(paper_human):
    data, rdms = paper_human
    table = hm.attribute_importance(data, rdms, n_boot=50, seed=1)
    lookup = {
        frozenset((a, b)): v
        for a, b, v in data.similarity[["emotion_a", "emotion_b", "dissimilarity"]].itertuples(index=False)
    }
    rows, cols = pair_index(len(rdms.emotions))
    human = np.array([lookup[frozenset((rdms.emotions[i], rdms.emotions[j]))] for i, j in zip(rows, cols)])
    for a, name in enumerate(rdms.names):
        want = stats.kendalltau(human, rdms.rdms[a], alternative="greater")  # 351 pairs: normal approximation
        got = table.set_index("attribute").loc[name]
        assert got["tau"] == pytest.approx(want.statistic, abs=1e-12)
        assert got["p_value"] == pytest.approx(want.pvalue, rel=1e-8)
    assert np.allclose(table["q_value"], stats.false_discovery_control(table["p_value"]))
    assert (table["ci_low"] <= table["tau"] + 1e-9).all() and (table["tau"] <= table["ci_high"] + 1e-9).all()
    again = hm.attribute_importance(data, rdms, n_boot=50, seed=1)
    pd.testing.assert_frame_equal(table, again)
    assert list(table.columns) == [
        "attribute", "tau", "p_value", "q_value", "perm_p", "perm_p_holm", "ci_low", "ci_high", "bootstrap",
    ]  # fmt: skip
    assert set(table["bootstrap"]) == {"emotions+participants"}
    # the permutation p by brute force: scipy over the same 10,000 permutations, for valence
    from model_emotion.rsa.permutation import draw_permutations, pair_permutations

    a = rdms.names.index("valence")
    index = pair_permutations(draw_permutations(len(rdms.emotions), 10000, 1))
    observed = stats.kendalltau(human, rdms.rdms[a]).statistic
    null = np.array([stats.kendalltau(human, rdms.rdms[a][i]).statistic for i in index[:2000]])
    got = table.set_index("attribute").loc["valence"]
    assert got["perm_p"] <= 1 / 10001 + 1e-12 and (null >= observed).sum() == 0  # valence beats every order
    from model_emotion.rsa.fdr import holm

    assert np.allclose(table["perm_p_holm"], holm(table["perm_p"].to_numpy()))
    # Valence and the happy face are what humans use most; arousal barely (the paper's own finding).
    top = set(table.sort_values("tau", ascending=False)["attribute"].head(2))
    assert top == {"valence", "happy-face"}


def test_importance_vs_drop_is_spearman_across_attributes():
    importance = pd.DataFrame({"attribute": list("abcde"), "tau": [0.1, 0.5, 0.3, 0.2, 0.4]})
    effects = pd.DataFrame(
        {
            "emotion": ["x"] * 10,
            "seed": [1] * 10,
            "attribute": list("abcde") * 2,
            "k": [5] * 5 + [9] * 5,
            "top": [0.7, 0.5, 0.6, 0.7, 0.55, 0.8, 0.8, 0.7, 0.6, 0.9],
            "random": [0.8] * 10,
        }
    )
    drops = hm.drop_beyond_random(effects)
    table = hm.importance_vs_drop(importance, drops)
    for k, part in drops.groupby("k"):
        merged = part.merge(importance, on="attribute")
        want = stats.spearmanr(merged["tau"], merged["drop_beyond_random"], alternative="greater")
        row = table[table["k"] == k].iloc[0]
        assert row["spearman_rho"] == pytest.approx(want.statistic)
        assert row["p_value"] == pytest.approx(want.pvalue)
        assert row["n_attributes"] == 5
    assert drops[(drops["k"] == 5) & (drops["attribute"] == "b")]["drop_beyond_random"].iloc[0] == pytest.approx(0.3)


@pytest.mark.slow
def test_model_rsa_against_a_hand_computed_rdm(paper_human, shared):
    data, rdms = paper_human
    from model_emotion.io.activations import load_activations

    acts = load_activations(shared / "paper_roberta" / "activations.npz")
    table = hm.model_rsa(acts.activations, acts.emotions, 12, data, rdms)
    assert set(table["scope"]) == {"all"} | {str(i) for i in range(12)}
    patterns = acts.activations[:, :, 3072 * 5 : 3072 * 6].mean(axis=1).astype(float)  # layer 6
    rows, cols = pair_index(len(acts.emotions))
    model = np.array([1 - np.corrcoef(patterns[i], patterns[j])[0, 1] for i, j in zip(rows, cols)])
    lookup = {
        frozenset((a, b)): v
        for a, b, v in data.similarity[["emotion_a", "emotion_b", "dissimilarity"]].itertuples(index=False)
    }
    human = np.array([lookup[frozenset((acts.emotions[i], acts.emotions[j]))] for i, j in zip(rows, cols)])
    want = stats.kendalltau(model, human, alternative="greater")
    got = table[(table["scope"] == "5") & (table["target"] == "human_similarity")].iloc[0]
    assert got["tau"] == pytest.approx(want.statistic, abs=1e-9)
    # the permutation p by brute force: scipy over the same 1000 emotion permutations of the human RDM
    from model_emotion.rsa.permutation import draw_permutations, pair_permutations

    index = pair_permutations(draw_permutations(len(acts.emotions), 1000, 0))
    null = np.array([stats.kendalltau(model, human[i]).statistic for i in index])
    assert got["perm_p"] == pytest.approx((1 + (null >= want.statistic - 1e-12).sum()) / 1001)


def test_agreement_vs_accuracy(paper_human, shared):
    data, _ = paper_human
    accuracy = pd.read_csv(shared / "paper_roberta" / "prompt_tuning_accuracy.csv").rename(
        columns={"sentiment": "emotion", "random_seed": "seed"}
    )
    per_emotion, table = hm.agreement_vs_accuracy(data.agreement, accuracy)
    assert len(per_emotion) == 27
    # The released paper_prompt_accuracy is the mean of the released per-seed accuracies.
    assert np.allclose(per_emotion["prompt_accuracy"], per_emotion["paper_prompt_accuracy"], atol=1e-6)
    kappa = table.set_index("measure").loc["cohens_kappa"]
    assert kappa["pearson_r"] == pytest.approx(
        stats.pearsonr(per_emotion["cohens_kappa"], per_emotion["prompt_accuracy"])[0]
    )


@pytest.mark.slow
def test_report_human_side_on_a_results_folder(tmp_path, shared):
    root = make_results(tmp_path / "res")
    human = tmp_path / "human"
    human.mkdir()
    rows, cols = pair_index(len(EMOS))
    rng = np.random.default_rng(2)
    pd.DataFrame(
        {
            "emotion_a": [EMOS[i] for i in rows],
            "emotion_b": [EMOS[j] for j in cols],
            "dissimilarity": rng.uniform(1, 9, len(rows)),
        }
    ).to_csv(human / "similarity_judgments.csv", index=False)
    pd.DataFrame({"emotion": EMOS, "cohens_kappa": rng.uniform(0.2, 0.6, 6)}).to_csv(
        human / "rater_agreement.csv", index=False
    )
    out = tmp_path / "report"
    proc = run_script(
        "report.py",
        "--results_dir",
        str(root),
        "--output_dir",
        str(out),
        "--human_dir",
        str(human),
        "--attributes",
        str(shared / "emotion_attributes"),
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "attribute_importance.csv",
        "importance_vs_drop.csv",
        "agreement_vs_accuracy.csv",
        "model_rsa.csv",
        "attribute_importance.png",
        "importance_vs_drop.png",
        "model_rsa.png",
    ):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "importance_vs_drop.csv")
    assert list(table.columns) == ["k", "spearman_rho", "p_value", "kendall_tau", "n_attributes"]
    assert sorted(table["k"]) == [2, 4]
    text = (out / "summary.md").read_text()
    assert "importance vs masking drop" in text and "model-level RSA" in text
    # Bad human input: one line, exit 2, nothing half-written.
    (human / "similarity_judgments.csv").write_text("emotion_a,emotion_b,dissimilarity\nanger,fear,inf\n")
    bad = run_script(
        "report.py",
        "--results_dir",
        str(root),
        "--output_dir",
        str(tmp_path / "r2"),
        "--human_dir",
        str(human),
        "--attributes",
        str(shared / "emotion_attributes"),
    )
    assert "not a finite number" in one_line_error(bad)


def test_load_human_refuses_bad_files(tmp_path):
    with pytest.raises(ToolkitError, match="no similarity_judgments.csv"):
        hm.load_human(tmp_path)
    (tmp_path / "similarity_judgments.csv").write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(ToolkitError):
        hm.load_human(tmp_path)
    (tmp_path / "similarity_judgments.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ToolkitError, match="no column"):
        hm.load_human(tmp_path)


@pytest.mark.slow
def test_report_html_embeds_every_figure_and_table(tmp_path, shared):
    """report.html is one self-contained page: each PNG figure embedded once, each summary table present."""
    import base64
    from html.parser import HTMLParser

    root = make_results(tmp_path / "res")
    out = tmp_path / "report"
    assert (
        run_script(
            "report.py",
            "--results_dir",
            str(root),
            "--output_dir",
            str(out),
            "--attributes",
            str(shared / "emotion_attributes"),
            "--formats",
            "png",
            "svg",
        ).returncode
        == 0
    )

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.tables, self.svgs, self.links = [], 0, 0, []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                self.images.append(attrs["src"])
            elif tag == "table":
                self.tables += 1
            elif tag == "svg":
                self.svgs += 1
            elif tag in ("link", "script") or (tag == "img" and not attrs["src"].startswith("data:")):
                self.links.append(tag)

    page = Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(page.images) == len(pngs) >= 5 and page.svgs == 0  # PNG preferred, each figure once
    embedded = sorted(base64.b64decode(src.split(",", 1)[1]) for src in page.images)
    assert embedded == sorted((out / name).read_bytes() for name in pngs)
    rules = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("|---")]
    assert page.tables == len(rules) >= 1
    assert not page.links  # nothing fetched from elsewhere
    assert "Configuration and versions" in (out / "report.html").read_text()


def test_markdown_text_is_escaped():
    from model_emotion.report.html import markdown_to_html

    rendered = markdown_to_html("## <script>x</script>\n\n| a | <b> |\n|---|---|\n| 1 | 2 |\n")
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered and "<table>" in rendered


def test_bootstrap_pairs_are_the_resampled_rdm_without_self_pairs():
    rng = np.random.default_rng(4)
    n = 7
    values = rng.normal(size=n * (n - 1) // 2)
    square = np.zeros((n, n))
    rows, cols = pair_index(n)
    square[rows, cols] = square[cols, rows] = values
    for seed in range(5):
        draw = np.random.default_rng(seed).integers(0, n, size=n)
        pairs = hm.bootstrap_pairs(n, np.random.default_rng(seed))
        by_hand = [square[draw[i], draw[j]] for i, j in zip(rows, cols) if draw[i] != draw[j]]
        assert np.allclose(values[pairs], by_hand)


def test_dual_bootstrap_interval_is_wider_than_participants_alone(paper_human):
    """Resampling the emotions as well as the participants widens the interval: the 27 emotions are a
    sample too (valence: the participants-only interval was 0.565-0.600)."""
    data, rdms = paper_human
    people = hm.participant_rdms(data, rdms.emotions)
    a = rdms.names.index("valence")
    target = people.mean(axis=0)
    both = hm.dual_bootstrap(target, people, rdms.rdms[[a]], 300, 0)[:, 0]
    rng = np.random.default_rng(0)
    only_people = [
        stats.kendalltau(people[rng.integers(0, len(people), len(people))].mean(0), rdms.rdms[a]).statistic
        for _ in range(300)
    ]
    width = lambda v: np.subtract(*np.percentile(v, [97.5, 2.5]))  # noqa: E731
    assert width(both) > 2 * width(only_people)
    assert np.percentile(both, 2.5) < stats.kendalltau(target, rdms.rdms[a]).statistic < np.percentile(both, 97.5)


def test_noise_ceiling_equals_rsatoolbox(paper_human):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling

    data, rdms = paper_human
    emotions = rdms.emotions[:12]  # a smaller shared fixture: 12 emotions, 61 participants
    people = hm.participant_rdms(data, emotions)
    theirs = rsatoolbox.rdm.RDMs(people, rdm_descriptors={"index": np.arange(len(people))})
    for ours, method in (("kendall_tau_b", "tau-b"), ("spearman", "spearman")):
        low, high = hm.noise_ceiling(people, ours)
        want_low, want_high = boot_noise_ceiling(theirs, method=method)
        assert low == pytest.approx(want_low, abs=1e-6) and high == pytest.approx(want_high, abs=1e-6)
        assert low < high
    with pytest.raises(ToolkitError, match="at least 2 participants"):
        hm.noise_ceiling(people[:1])
