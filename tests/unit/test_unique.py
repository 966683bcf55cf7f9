"""``Unique``: its checks, the keys it makes, and its period windows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workhorse import JobState, Unique
from workhorse.jobs import LIVE_STATES
from workhorse.unique import as_unique, unique_fields


def test_the_default_holds_the_key_while_live() -> None:
    rule = Unique()
    assert rule.states == LIVE_STATES
    assert rule.on_duplicate == "return"
    assert rule.windowed("k") == "k"


def test_states_must_include_every_live_state() -> None:
    with pytest.raises(ValueError, match="missing blocked, running, scheduled"):
        Unique(states={JobState.QUEUED, JobState.COMPLETED})
    rule = Unique(states=[*LIVE_STATES, "completed"])
    assert rule.states == LIVE_STATES | {JobState.COMPLETED}
    with pytest.raises(ValueError, match="is not a valid JobState"):
        Unique(states=[*LIVE_STATES, "done"])


@pytest.mark.parametrize("period", [0, -1, float("inf"), float("nan"), timedelta(0)])
def test_a_period_must_be_positive(period: float | timedelta) -> None:
    with pytest.raises(ValueError, match="period"):
        Unique(period=period)


def test_on_duplicate_is_checked() -> None:
    with pytest.raises(ValueError, match="on_duplicate"):
        Unique(on_duplicate="ignore")  # type: ignore[arg-type]


def test_keys_come_from_the_arguments_or_a_function() -> None:
    by_hash = Unique()
    assert by_hash.key_for("t", (1, 2), {"b": 1, "a": 2}) == by_hash.key_for(
        "t", (1, 2), {"a": 2, "b": 1}
    )
    assert by_hash.key_for("t", (1,), {}) != by_hash.key_for("t", (2,), {})
    assert by_hash.key_for("t", (1,), {}).startswith("t:")
    named = Unique(key=lambda user, **_: f"user-{user}")
    assert named.key_for("digest", (7,), {"full": True}) == "digest:user-7"


def test_a_period_puts_the_window_in_the_key() -> None:
    hourly = Unique(period=timedelta(hours=1))
    assert hourly.windowed("k", now=7200.0) == "k@2"
    assert hourly.windowed("k", now=10799.9) == "k@2"
    assert hourly.windowed("k", now=10800.0) == "k@3"


def test_task_settings_become_rules() -> None:
    assert as_unique(False) is None
    assert as_unique(None) is None
    assert as_unique(True) == Unique()
    rule = Unique(on_duplicate="raise")
    assert as_unique(rule) is rule
    keyed = as_unique(lambda n: str(n))
    assert keyed is not None
    assert keyed.key_for("t", (3,), {}) == "t:3"


def test_an_explicit_key_wins_and_takes_the_window() -> None:
    assert unique_fields("t", None, "mine", (), {}).key == "mine"
    assert unique_fields("t", None, None, (), {}).key is None
    fields = unique_fields("t", Unique(period=1e12, on_duplicate="replace"), "mine", (), {})
    assert fields.key == "mine@0"
    assert fields.on_duplicate == "replace"
