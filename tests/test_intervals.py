"""Per-example results in eval JSONs: read back into the summary, and refused when they contradict the
accuracies they sit beside. (The causal step's intervals themselves: tests/test_causal.py.)"""

import json

import numpy as np
import pytest

from model_emotion.errors import ToolkitError
from model_emotion.masking.records import correct_of, encode_correct
from model_emotion.report.results import Results, masking_from_json
from model_emotion.report.tables import summary_table


def eval_record(emotion, seed, hits: dict, per_batch=None):
    from model_emotion.lm.inference import mean_accuracy

    return {
        "sentiment": emotion,
        "seed": seed,
        "n_examples": len(next(iter(hits.values()))),
        "accuracies": {k: mean_accuracy(np.array(v), per_batch) for k, v in hits.items()},
        "correct": {k: encode_correct(v) for k, v in hits.items()},
        "provenance": {"settings": {"per_batch": per_batch}},
    }


def test_per_example_results_round_trip_and_feed_the_summary(tmp_path):
    rng = np.random.default_rng(3)
    files = []
    for e in ("anger", "fear", "joy"):
        for s in (1, 2):
            n = 50
            hits = {
                "unmasked": rng.random(n) < 0.8,
                "valence_top5": rng.random(n) < 0.6,
                "valence_top5_random": rng.random(n) < 0.78,
                "valence_top5_random_2": rng.random(n) < 0.78,
            }
            path = tmp_path / f"{e}-{s}.json"
            path.write_text(json.dumps(eval_record(e, s, hits, per_batch=16 if s == 2 else None)))
            files.append(path)
    masking = masking_from_json(files)
    assert masking["correct"].map(len).eq(50).all()
    table, k = summary_table(Results(masking=masking), None)
    row = table.set_index("attribute").loc["valence"]
    assert k == 5 and row["ci_over"] == "emotions+draws" and row["n_random_draws"] == 2
    assert row["drop_ci_low"] < row["drop_beyond_random"] < row["drop_ci_high"]
    assert row["top_ci_low"] < row["top_drop"] < row["top_ci_high"]
    assert row["min_detectable_drop"] > 0 and row["selection"] == "unrecorded"
    # the intervals come from the prompts' accuracies (example noise is inside them, counted once):
    # the same files without the per-example key give the same table
    for path in files:
        record = json.loads(path.read_text())
        del record["correct"]
        path.write_text(json.dumps(record))
    again = summary_table(Results(masking=masking_from_json(files)), None)[0].set_index("attribute").loc["valence"]
    assert again.drop("ci_over").equals(row.drop("ci_over"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["correct"].update(unmasked="01x1"), "string of 0 and 1"),
        (lambda r: r["correct"].update(valence_top5="0101"), "has 4 examples, not 6"),
        (lambda r: r["accuracies"].update(unmasked=0.123), "gives accuracy"),
        (lambda r: r.update(correct=["0"]), "not an object"),
        (lambda r: r.update(n_examples=7), "n_examples is 7"),
    ],
)
def test_contradicting_per_example_results_are_refused(edit, message):
    record = eval_record("anger", 1, {"unmasked": [1, 0, 1, 1, 0, 1], "valence_top5": [0, 0, 1, 1, 0, 1]})
    assert correct_of(record)["valence_top5"].tolist() == [False, False, True, True, False, True]
    edit(record)
    with pytest.raises(ToolkitError, match=message):
        correct_of(record)
