from __future__ import annotations

import pytest

from workhorse import ConfigurationError, WorkerSettings


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
