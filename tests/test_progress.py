"""The progress lines of long stages: jobs done of total, time so far and an estimate of the time left."""

import logging

import pytest

from model_emotion.stages.jobs import run_jobs
from model_emotion.util.progress import Progress, format_duration


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0 s"), (44.6, "45 s"), (60, "1 min 00 s"), (125, "2 min 05 s"), (3599, "59 min 59 s"), (3780, "1 h 03 min")],
)
def test_durations_read_as_a_person_would_say_them(seconds, text):
    assert format_duration(seconds) == text


def test_the_estimate_is_the_mean_time_per_unit_times_the_units_left():
    now = [100.0]
    progress = Progress("prompt tuning", 4, clock=lambda: now[0])
    now[0] += 30
    assert progress.step("joy-1") == "prompt tuning 1/4 done (joy-1), 30 s elapsed, about 1 min 30 s left"
    now[0] += 10  # 40 s for 2: 20 s each, 2 left
    assert progress.step("fear-1", failed=True) == (
        "prompt tuning 2/4 done (fear-1, failed), 1 failed, 40 s elapsed, about 40 s left"
    )
    now[0] += 20
    progress.step()
    # the last one says no estimate: nothing is left
    now[0] += 20
    assert progress.step("sadness-1") == "prompt tuning 4/4 done (sadness-1), 1 failed, 1 min 20 s elapsed"


def test_run_jobs_logs_one_line_per_job_in_order_with_failures_counted(caplog):
    def run_one(emotion, seed):
        if emotion == "fear":
            raise ValueError("broken checkpoint")

    with caplog.at_level(logging.INFO):
        status = run_jobs([("joy", 1), ("fear", 1), ("anger", 2)], run_one, "masked evaluation")
    assert status == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "model_emotion.util.progress"]
    assert [line.split(" elapsed")[0].rsplit(", ", 1)[0] for line in lines] == [
        "masked evaluation 1/3 done (joy-1)",
        "masked evaluation 2/3 done (fear-1, failed), 1 failed",
        "masked evaluation 3/3 done (anger-2), 1 failed",
    ]
    assert "left" in lines[0] and "left" not in lines[-1]
