"""The JSON in which the PostgreSQL store sends a batch of outcomes."""

from __future__ import annotations

import json
import math

import pytest

from workhorse.backends.base import Outcome
from workhorse.backends.postgres.records import outcomes_json
from workhorse.jobs import JobError, JobState


def test_nulls_are_left_out_and_values_kept() -> None:
    done = Outcome(1, "t.1", JobState.COMPLETED, result='{"a": 1}', ttl=60)
    retry = Outcome(
        2,
        "t.2",
        JobState.SCHEDULED,
        error=JobError("ValueError", "boom", "Traceback ..."),
        retry_delay=1.5,
        progress=0.25,
        progress_message="a quarter",
    )
    assert json.loads(outcomes_json([done, retry])) == [
        {"id": 1, "token": "t.1", "state": "completed", "retry_delay": 0.0,
         "result": '{"a": 1}', "ttl": 60.0},
        {"id": 2, "token": "t.2", "state": "scheduled", "retry_delay": 1.5,
         "error_type": "ValueError", "error_message": "boom",
         "error_traceback": "Traceback ...", "progress": 0.25,
         "progress_message": "a quarter"},
    ]  # fmt: skip


def test_a_nul_character_is_refused_before_it_reaches_the_server() -> None:
    bad = Outcome(1, "t.1", JobState.FAILED, error=JobError("ValueError", "boom\x00"))
    with pytest.raises(ValueError, match="NUL"):
        outcomes_json([Outcome(2, "t.2", JobState.COMPLETED, result="null"), bad])


def test_the_six_characters_of_an_escaped_nul_are_plain_text() -> None:
    text = Outcome(1, "t.1", JobState.FAILED, error=JobError("ValueError", "a \\u0000 b"))
    (item,) = json.loads(outcomes_json([text]))
    assert item["error_message"] == "a \\u0000 b"


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_number_json_cannot_hold_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        outcomes_json([Outcome(1, "t.1", JobState.COMPLETED, result="null", progress=value)])
