"""The ticks of cron and interval triggers, DST transitions of America/New_York in 2026
included (spring forward on 2026-03-08 at 02:00, fall back on 2026-11-01 at 02:00)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workhorse.scheduling.cron import CronTrigger, IntervalTrigger, next_tick, ticks_between

NY = ZoneInfo("America/New_York")


def day_ticks(expression: str, year: int, month: int, day: int) -> list[datetime]:
    """The ticks of ``expression`` (New York time) during that local day."""
    start = datetime(year, month, day, tzinfo=NY)
    end = datetime(year, month, day + 1, tzinfo=NY)
    trigger = CronTrigger(expression, "America/New_York")
    return ticks_between(
        trigger, start - timedelta(microseconds=1), end - timedelta(microseconds=1)
    )


def local(moment: datetime) -> str:
    return moment.astimezone(NY).strftime("%H:%M %Z")


def test_a_time_in_the_spring_gap_fires_once_shifted_forward() -> None:
    ticks = day_ticks("30 2 * * *", 2026, 3, 8)
    assert [local(t) for t in ticks] == ["03:30 EDT"]
    assert ticks[0] == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_the_days_around_the_gap_fire_at_their_own_time() -> None:
    assert [local(t) for t in day_ticks("30 2 * * *", 2026, 3, 7)] == ["02:30 EST"]
    assert [local(t) for t in day_ticks("30 2 * * *", 2026, 3, 9)] == ["02:30 EDT"]


def test_a_repeated_time_fires_once_at_its_first_occurrence() -> None:
    ticks = day_ticks("30 1 * * *", 2026, 11, 1)
    assert [local(t) for t in ticks] == ["01:30 EDT"]
    assert ticks[0] == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_a_fixed_hour_schedule_runs_in_the_first_pass_of_the_repeated_hour_only() -> None:
    ticks = day_ticks("*/20 1 * * *", 2026, 11, 1)
    assert [local(t) for t in ticks] == ["01:00 EDT", "01:20 EDT", "01:40 EDT"]


@pytest.mark.parametrize(("day", "hours"), [((2026, 3, 8), 23), ((2026, 11, 1), 25)])
def test_hourly_schedules_neither_skip_nor_double_an_hour(
    day: tuple[int, int, int], hours: int
) -> None:
    ticks = day_ticks("0 * * * *", *day)
    assert len(ticks) == hours  # one per real hour of that day
    gaps = {later - earlier for earlier, later in itertools.pairwise(ticks)}
    assert gaps == {timedelta(hours=1)}


@pytest.mark.parametrize("day", [(2026, 3, 8), (2026, 11, 1)])
def test_every_quarter_hour_stays_a_quarter_hour_apart(day: tuple[int, int, int]) -> None:
    ticks = day_ticks("*/15 * * * *", *day)
    gaps = {later - earlier for earlier, later in itertools.pairwise(ticks)}
    assert gaps == {timedelta(minutes=15)}


def test_a_half_past_schedule_does_not_double_on_the_shifted_gap_time() -> None:
    ticks = day_ticks("30 * * * *", 2026, 3, 8)
    assert [local(t) for t in ticks[:3]] == ["00:30 EST", "01:30 EST", "03:30 EDT"]
    assert len(ticks) == len(set(ticks)) == 23


def test_ticks_asked_from_inside_the_transition_are_the_same() -> None:
    trigger = CronTrigger("30 * * * *", "America/New_York")
    whole_day = day_ticks("30 * * * *", 2026, 11, 1)
    # Asked from every minute of the repeated hour, the next tick is the next of the day.
    moment = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    while moment < datetime(2026, 11, 1, 9, 0, tzinfo=UTC):
        expected = next(t for t in whole_day if t > moment)
        assert next_tick(trigger, moment) == expected, moment
        moment += timedelta(minutes=7)


def test_a_utc_schedule_ignores_dst() -> None:
    trigger = CronTrigger("0 12 * * *")
    after = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
    assert next_tick(trigger, after) == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_aliases_are_cron_expressions() -> None:
    trigger = CronTrigger("@daily", "America/New_York")
    after = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert local(next_tick(trigger, after) or after) == "00:00 EST"


def test_an_expression_that_never_matches_has_no_next_tick() -> None:
    assert next_tick(CronTrigger("0 0 30 2 *"), datetime(2026, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("expression", "tz", "message"),
    [
        ("* * * *", "UTC", "five fields"),
        ("* * * * * *", "UTC", "five fields"),
        ("61 * * * *", "UTC", "invalid cron expression"),
        ("0 3 * * *", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_triggers_are_refused(expression: str, tz: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronTrigger(expression, tz)


def test_intervals_fire_on_multiples_of_the_period_since_the_epoch() -> None:
    trigger = IntervalTrigger(timedelta(seconds=10))
    after = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    ticks = ticks_between(trigger, after, after + timedelta(seconds=30))
    assert [t.second for t in ticks] == [10, 20, 30]
    assert next_tick(trigger, datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 0, 20, tzinfo=UTC
    )


def test_an_interval_shorter_than_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        IntervalTrigger(timedelta(milliseconds=500))


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_tick(IntervalTrigger(timedelta(seconds=1)), datetime(2026, 1, 1))


def test_describe() -> None:
    assert CronTrigger("0 3 * * *", "Europe/Paris").describe() == "0 3 * * * Europe/Paris"
    assert IntervalTrigger(timedelta(minutes=5)).describe() == "every 5m"
    assert IntervalTrigger(timedelta(seconds=90)).describe() == "every 90s"
