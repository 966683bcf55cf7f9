from __future__ import annotations

import pytest

from workhorse import Backoff, ConfigurationError, Retry, WorkerSettings, Workhorse
from workhorse.settings import override_retry, retry_from_env


def test_environment_then_overrides() -> None:
    env = {"WORKHORSE_LEASE": "20", "WORKHORSE_CONCURRENCY": "4", "WORKHORSE_QUEUES": "a, b"}
    settings = WorkerSettings.from_env(env, concurrency=8)
    assert settings.lease == 20.0
    assert settings.concurrency == 8  # the override wins over the environment
    assert settings.queues == ("a", "b")


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="WORKHORSE_LEASE"):
        WorkerSettings.from_env({"WORKHORSE_LEASE": "soon"})


def test_heartbeat_must_be_shorter_than_the_lease() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat_interval"):
        WorkerSettings(lease=1, heartbeat_interval=2)


def test_replace_ignores_none() -> None:
    settings = WorkerSettings().replace(concurrency=3, lease=None)
    assert settings.concurrency == 3
    assert settings.lease == WorkerSettings().lease


def test_urls_lose_their_password_before_they_are_shown() -> None:
    from workhorse.backends import redact_url

    assert redact_url("postgresql://app:s3cret@db:5432/jobs") == "postgresql://app:***@db:5432/jobs"
    assert redact_url("sqlite:///jobs.db") == "sqlite:///jobs.db"


# -- the app-wide retry default ----------------------------------------------------------


def test_retry_defaults_come_from_the_environment() -> None:
    env = {
        "WORKHORSE_MAX_ATTEMPTS": "7",
        "WORKHORSE_BACKOFF_BASE": "0.5",
        "WORKHORSE_BACKOFF_FACTOR": "3",
        "WORKHORSE_BACKOFF_MAX": "60",
        "WORKHORSE_BACKOFF_JITTER": "",  # empty: unset
    }
    policy = retry_from_env(env)
    assert policy.max_attempts == 7
    assert policy.backoff == Backoff(base=0.5, factor=3, max=60, jitter=Backoff().jitter)
    assert retry_from_env({}) == Retry()


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("MAX_ATTEMPTS", "three", "is not a valid value"),
        ("MAX_ATTEMPTS", "0", "Retry.max_attempts must be at least 1, got 0"),
        ("BACKOFF_FACTOR", "0.5", "Backoff.factor must be a finite number at least 1, got 0.5"),
        ("BACKOFF_JITTER", "2", "Backoff.jitter must be a finite number between 0 and 1"),
        ("BACKOFF_MAX", "inf", "Backoff.max must be a finite number at least 0, got inf"),
    ],
)
def test_a_bad_retry_variable_is_named_in_the_error(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        retry_from_env({f"WORKHORSE_{name}": raw})
    text = str(raised.value)
    assert text.startswith(f"environment variable WORKHORSE_{name}={raw!r}"), text
    assert message in text


def test_override_retry_keeps_what_it_does_not_change() -> None:
    policy = Retry(max_attempts=4, give_up_on=(KeyError,), backoff_for={TimeoutError: Backoff(9)})
    changed = override_retry(policy, {"backoff_base": 5, "max_attempts": None}, str)
    assert (changed.max_attempts, changed.backoff.base) == (4, 5)
    assert changed.give_up_on == (KeyError,)
    assert changed.backoff_for == {TimeoutError: Backoff(9)}
    with pytest.raises(ConfigurationError, match=r"^--backoff-base: Backoff\.base"):
        override_retry(policy, {"backoff_base": -1}, lambda name: "--backoff-base")


def test_tasks_without_their_own_retry_use_the_apps() -> None:
    app_wide = Retry(max_attempts=6, backoff=Backoff(base=30, jitter=0))
    app = Workhorse("memory://", retry=app_wide)

    @app.task
    def plain() -> None: ...

    @app.task(retry=2)
    def twice() -> None: ...

    @app.task(retry=Retry(max_attempts=9))
    def own() -> None: ...

    assert plain.retry is app_wide
    assert plain.call().to_new_job().max_attempts == 6
    assert plain.retry.next_delay(ConnectionError(), attempt=1) == 30
    assert (twice.retry.max_attempts, twice.retry.backoff) == (2, app_wide.backoff)
    assert twice.call().to_new_job().max_attempts == 2
    assert own.retry == Retry(max_attempts=9)
    # Changed later (as `workhorse worker start --backoff-base` does): tasks follow.
    app.default_retry = Retry(max_attempts=1)
    assert plain.call().to_new_job().max_attempts == 1
    assert twice.retry.max_attempts == 2


def test_the_app_reads_the_environment_unless_code_sets_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKHORSE_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("WORKHORSE_BACKOFF_BASE", "2")
    from_env = Workhorse("memory://")
    from_code = Workhorse("memory://", retry=Retry(max_attempts=2))
    assert (from_env.default_retry.max_attempts, from_env.default_retry.backoff.base) == (5, 2)
    assert from_code.default_retry == Retry(max_attempts=2)
    monkeypatch.setenv("WORKHORSE_BACKOFF_FACTOR", "0")
    with pytest.raises(ConfigurationError, match="WORKHORSE_BACKOFF_FACTOR"):
        Workhorse("memory://")
