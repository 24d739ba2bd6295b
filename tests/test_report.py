"""Step 6: the report on a small synthetic results folder, and the ratings download (local server only)."""

import http.server
import json
import threading
from functools import partial

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error, run_script
from scipy import stats

from model_emotion.commands import report
from model_emotion.errors import ToolkitError
from model_emotion.io.activations import ActivationSet, save_npz
from model_emotion.io.download import SOURCE_FILES, fetch_paper_attributes, resolve_attributes

EMOS = ["anger", "fear", "joy", "love", "pride", "sadness"]
ATTRS = ["arousal", "valence"]


def make_results(root, with_masking=True, with_rsa=True):
    """Six emotions, two seeds, 2 layers x 10 neurons; masking at k = 2 and 4 with two random draws."""
    rng = np.random.default_rng(0)
    acts_dir = root / "acts"
    acts_dir.mkdir(parents=True)
    acts = rng.random((6, 2, 20)).astype(np.float32)
    save_npz(acts_dir / "activations.npz", ActivationSet(acts, EMOS, [1, 3], 2, 10))
    pd.DataFrame(
        {"sentiment": EMOS * 2, "random_seed": [1] * 6 + [3] * 6, "accuracy": rng.uniform(0.6, 0.9, 12)}
    ).to_csv(acts_dir / "goemotions_prompt_tuning_accuracy.csv", index=False)
    if with_rsa:
        rank_dir = root / "neuron_rank"
        rank_dir.mkdir()
        tau = pd.DataFrame(rng.uniform(-0.2, 0.5, (20, 2)), columns=ATTRS)
        q = pd.DataFrame(rng.uniform(0, 0.05, (20, 2)), columns=ATTRS)
        tau.to_csv(rank_dir / "r_tau.csv", index=False)
        q.to_csv(rank_dir / "r_q_value.csv", index=False)
        tau.rank(ascending=False).to_csv(rank_dir / "r.csv", index=False)
        summary = [
            {"attribute": a, "layer": layer, "n_significant": 3 + i, "n_selective": 1, "n_neurons": 10}
            for i, a in enumerate(ATTRS)
            for layer in ("0", "1")
        ]
        summary += [
            {"attribute": a, "layer": "all", "n_significant": 2 * (3 + i), "n_selective": 2, "n_neurons": 20}
            for i, a in enumerate(ATTRS)
        ]
        pd.DataFrame(summary).to_csv(rank_dir / "r_summary.csv", index=False)
    if with_masking:
        out = root / "eval"
        out.mkdir()
        for e in EMOS:
            for s in (1, 3):
                record = {"sentiment": e, "seed": s, "best": 0.8, "unmasked": 0.8}
                for a in ATTRS:
                    for k in (2, 4):
                        record[f"{a}_top{k}"] = float(rng.uniform(0.5, 0.8))
                        record[f"{a}_top{k}_random"] = float(rng.uniform(0.6, 0.8))
                        record[f"{a}_top{k}_random_2"] = float(rng.uniform(0.6, 0.8))
                (out / f"{e}-{s}.json").write_text(json.dumps(record))
    return root


def test_report_draws_everything_and_summary_matches_hand_computation(tmp_path, shared):
    root = make_results(tmp_path / "results")
    out = tmp_path / "report"
    assert (
        report.main(
            [
                "--results_dir",
                str(root),
                "--output_dir",
                str(out),
                "--attributes",
                str(shared / "emotion_attributes"),
                "--k",
                "4",
                "--formats",
                "png",
                "pdf",
            ]
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    for stem in (
        "accuracy_per_emotion",
        "selectivity_tau",
        "selectivity_by_layer",
        "masking_accuracy_vs_k",
        "drop_beyond_random_k4",
    ):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    assert any(n.startswith("rdm_neuron") for n in names)
    assert {"summary.csv", "summary.md", "report_args.json"} <= names
    summary = pd.read_csv(out / "summary.csv").set_index("attribute")
    # Hand computation from the JSON files.
    tops, rands = [], []
    for e in EMOS:
        for s in (1, 3):
            record = json.loads((root / "eval" / f"{e}-{s}.json").read_text())
            tops.append(record["valence_top4"])
            rands.append((record["valence_top4_random"] + record["valence_top4_random_2"]) / 2)
    tops, rands = np.array(tops), np.array(rands)
    row = summary.loc["valence"]
    assert row["n_significant"] == 8 and row["n_selective"] == 2 and row["k"] == 4
    assert row["top_drop"] == pytest.approx((0.8 - tops).mean())
    assert row["random_drop"] == pytest.approx((0.8 - rands).mean())
    assert row["drop_beyond_random"] == pytest.approx((rands - tops).mean())
    assert row["n_pairs"] == 12 and row["n_random_draws"] == 2
    # the two-way (emotion x draw) clustered test, by hand: x = random draw minus top per prompt and draw
    cells = []
    for e in EMOS:
        for s in (1, 3):
            record = json.loads((root / "eval" / f"{e}-{s}.json").read_text())
            for d in ("valence_top4_random", "valence_top4_random_2"):
                cells.append((e, d, record[d] - record["valence_top4"]))
    x = np.array([c[2] for c in cells])
    r = x - x.mean()

    def v(key):
        groups = {}
        for c, ri in zip(cells, r):
            groups[key(c)] = groups.get(key(c), 0.0) + ri
        g = len(groups)
        return sum(t * t for t in groups.values()) / len(x) ** 2 * g / (g - 1)

    variance = v(lambda c: c[0]) + v(lambda c: c[1]) - v(lambda c: (c[0], c[1]))
    assert row["drop_se"] == pytest.approx(np.sqrt(variance))
    assert row["p_random"] == pytest.approx(stats.t.sf(x.mean() / np.sqrt(variance), 1))  # df = min(6, 2) - 1


def test_report_with_missing_pieces_says_what_is_missing(tmp_path, shared):
    root = make_results(tmp_path / "results", with_masking=False, with_rsa=False)
    proc = run_script(
        "report.py",
        "--results_dir",
        str(root),
        "--output_dir",
        str(tmp_path / "out"),
        "--attributes",
        str(shared / "emotion_attributes"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "missing RSA tables" in proc.stderr and "masked-evaluation JSONs" in proc.stderr
    assert (tmp_path / "out" / "accuracy_per_emotion.png").exists()


def test_empty_results_fail_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "holds no results" in one_line_error(
        run_script("report.py", "--results_dir", str(tmp_path / "empty"), "--output_dir", str(tmp_path / "out"))
    )
    assert "give --results_dir" in one_line_error(run_script("report.py", "--output_dir", str(tmp_path / "out")))


@pytest.mark.slow
def test_paper_mode_redraws_from_released_data(tmp_path, shared):
    out = tmp_path / "paper"
    assert report.main(["--paper_dir", str(shared / "paper_roberta"), "--output_dir", str(out), "--k", "4000"]) == 0
    summary = pd.read_csv(out / "summary.csv").set_index("attribute")
    masking = pd.read_csv(shared / "paper_roberta" / "masking_accuracy.csv")
    at = masking[masking["k"] == 4000]
    top = at[(at["kind"] == "top") & (at["attribute"] == "valence")].set_index(["emotion", "seed"])["accuracy"]
    # the release's random draws (one per attribute, all global) pooled: 14 draws of one distribution
    random = at[at["kind"] == "random"].groupby(["emotion", "seed"])["accuracy"].mean()
    assert summary.loc["valence", "drop_beyond_random"] == pytest.approx((random - top).mean())
    assert summary.loc["valence", "n_random_draws"] == 14 and summary.loc["valence", "selection"] == "circular"
    assert (out / "selectivity_tau.png").exists() and (out / "masking_accuracy_vs_k.png").exists()


@pytest.fixture
def local_release(tmp_path, shared):
    """The paper's source files in their original layout, served on 127.0.0.1 only."""
    src = shared / "emotion_attributes"
    order = [
        "realization",
        "surprise",
        "admiration",
        "gratitude",
        "optimism",
        "approval",
        "pride",
        "excitement",
        "joy",
        "love",
        "amusement",
        "caring",
        "relief",
        "curiosity",
        "desire",
        "disgust",
        "disapproval",
        "anger",
        "annoyance",
        "confusion",
        "fear",
        "disappointment",
        "grief",
        "sadness",
        "nervousness",
        "embarrassment",
        "remorse",
    ]
    scores = pd.read_csv(src / "attributes.csv").set_index("emotion").loc[order]
    rdms = pd.read_csv(src / "rdms.csv")
    lookup = {frozenset((a, b)): i for i, (a, b) in enumerate(zip(rdms["emotion_a"], rdms["emotion_b"]))}
    pairs = [frozenset((order[i], order[j])) for j in range(27) for i in range(j + 1, 27)]
    dist = rdms.drop(columns=["emotion_a", "emotion_b"]).iloc[[lookup[p] for p in pairs]]
    site = tmp_path / "site"
    for rel in SOURCE_FILES.values():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(site / SOURCE_FILES["scores"], index=False)
    dist.to_csv(site / SOURCE_FILES["distances"], index=False)
    (site / SOURCE_FILES["emotions"]).write_text("\n".join(order) + "\n")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", src
    server.shutdown()


def test_download_converts_the_release_into_the_ratings_layout(tmp_path, local_release, monkeypatch):
    url, src = local_release
    dest = fetch_paper_attributes(tmp_path / "cache" / "emotion_attributes", base_url=url)
    got = pd.read_csv(dest / "attributes.csv")
    want = pd.read_csv(src / "attributes.csv")
    assert list(got["emotion"]) == list(want["emotion"])
    assert np.allclose(got.drop(columns="emotion"), want.drop(columns="emotion"), atol=1e-6)
    got_rdms, want_rdms = pd.read_csv(dest / "rdms.csv"), pd.read_csv(src / "rdms.csv")
    assert list(zip(got_rdms["emotion_a"], got_rdms["emotion_b"])) == list(
        zip(want_rdms["emotion_a"], want_rdms["emotion_b"])
    )
    assert np.allclose(got_rdms.iloc[:, 2:], want_rdms.iloc[:, 2:])
    # resolve_attributes: downloads once into $ME_CACHE, then reuses the cache.
    monkeypatch.setenv("ME_CACHE", str(tmp_path / "cache2"))
    monkeypatch.setenv("ME_ATTRIBUTES_URL", url)
    monkeypatch.delenv("ME_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    first = resolve_attributes(None)
    assert (first / "attributes.csv").exists()
    monkeypatch.setenv("ME_ATTRIBUTES_URL", "http://127.0.0.1:9/")  # nothing listens: the cache must be used
    assert resolve_attributes(None) == first


def test_download_failure_and_offline_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ToolkitError, match="pass attributes DIR or set ME_ATTRIBUTES") as caught:
        fetch_paper_attributes(tmp_path / "x", base_url="http://127.0.0.1:9/", timeout=2)
    # The library names the setting; the command line names its flag.
    assert "pass --attributes DIR or set ME_ATTRIBUTES" in caught.value.for_cli()
    monkeypatch.setenv("ME_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("ME_OFFLINE", "1")
    with pytest.raises(ToolkitError, match="offline"):
        resolve_attributes(None)
