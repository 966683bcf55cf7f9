from __future__ import annotations

import pytest

from workhorse import Backoff, Retry, RetryLater


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(base=1, factor=2, max=10, jitter=0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_stays_within_its_spread() -> None:
    backoff = Backoff(base=10, factor=1, max=100, jitter=0.2)
    delays = {backoff.delay(1) for _ in range(200)}
    assert all(8 <= d <= 12 for d in delays)
    assert len(delays) > 100  # really spread, not one value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": -1}, "Backoff.base must be a finite number at least 0, got -1"),
        ({"factor": 0.5}, "Backoff.factor must be a finite number at least 1, got 0.5"),
        ({"jitter": 1.5}, "Backoff.jitter must be a finite number between 0 and 1, got 1.5"),
        ({"max": -2}, "Backoff.max must be a finite number at least 0, got -2"),
        ({"max": float("inf")}, "Backoff.max must be a finite number at least 0, got inf"),
        ({"base": float("nan")}, "Backoff.base must be a finite number at least 0, got nan"),
    ],
)
def test_backoff_rejects_nonsense_naming_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=r"^Backoff\.") as raised:
        Backoff(**kwargs)
    assert str(raised.value) == message


def test_retry_gives_up_after_max_attempts() -> None:
    policy = Retry(max_attempts=3, backoff=Backoff(base=1, jitter=0))
    assert policy.next_delay(Flaky(), attempt=1) == 1
    assert policy.next_delay(Flaky(), attempt=2) == 2
    assert policy.next_delay(Flaky(), attempt=3) is None


def test_per_job_max_attempts_overrides_the_policy() -> None:
    policy = Retry(max_attempts=2)
    assert policy.next_delay(Flaky(), attempt=2) is None
    assert policy.next_delay(Flaky(), attempt=2, max_attempts=5) is not None


def test_give_up_on_and_retry_on() -> None:
    policy = Retry(max_attempts=5, retry_on=(Flaky,), give_up_on=(Fatal,))
    assert policy.next_delay(Flaky(), attempt=1) is not None
    assert policy.next_delay(Fatal(), attempt=1) is None
    assert policy.next_delay(KeyError(), attempt=1) is None  # not in retry_on


def test_backoff_per_exception_type() -> None:
    policy = Retry(
        max_attempts=5,
        backoff=Backoff(base=1, jitter=0),
        backoff_for={TimeoutError: Backoff(base=30, jitter=0)},
    )
    assert policy.next_delay(TimeoutError(), attempt=1) == 30
    assert policy.next_delay(Flaky(), attempt=1) == 1


def test_retry_later_sets_its_own_delay_but_counts_attempts() -> None:
    policy = Retry(max_attempts=2)
    assert policy.next_delay(RetryLater(delay=42), attempt=1) == 42
    assert policy.next_delay(RetryLater(delay=42), attempt=2) is None


def test_retry_needs_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Retry(max_attempts=0)
