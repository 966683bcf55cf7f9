"""Reading ``sqlite:///`` URLs and options."""

from __future__ import annotations

from typing import Any

import pytest

from workhorse.backends import open_backend
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.config import SQLiteSettings, parse_settings
from workhorse.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///jobs.db", "jobs.db"),
        ("sqlite:///data/jobs.db", "data/jobs.db"),
        ("sqlite:////var/lib/app/jobs.db", "/var/lib/app/jobs.db"),
        ("SQLITE:///jobs.db", "jobs.db"),
        ("sqlite:///my%20jobs.db", "my jobs.db"),
    ],
)
def test_paths(url: str, path: str) -> None:
    assert parse_settings(url, {}).path == path


def test_defaults() -> None:
    assert parse_settings("sqlite:///jobs.db", {}) == SQLiteSettings(
        path="jobs.db",
        synchronous="FULL",
        busy_timeout=5.0,
        lock_timeout=120.0,
        watch_interval=0.01,
    )


def test_options_from_the_url() -> None:
    settings = parse_settings("sqlite:///jobs.db?synchronous=normal&busy_timeout=0.5", {})
    assert (settings.synchronous, settings.busy_timeout) == ("NORMAL", 0.5)


def test_keyword_options_win_over_the_url() -> None:
    settings = parse_settings(
        "sqlite:///jobs.db?synchronous=normal",
        {"synchronous": "FULL", "lock_timeout": 3, "watch_interval": "0.01"},
    )
    assert (settings.synchronous, settings.lock_timeout, settings.watch_interval) == (
        "FULL",
        3.0,
        0.01,
    )


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("sqlite://", {}, "no database file"),
        ("sqlite:///", {}, "no database file"),
        ("sqlite:///:memory:", {}, "memory://"),
        ("sqlite:///folder/", {}, "no database file"),
        ("sqlite://host/jobs.db", {}, "no host"),
        ("postgresql:///jobs.db", {}, "not a SQLite URL"),
        ("sqlite:///jobs.db?synchronous=off", {}, "synchronous"),
        ("sqlite:///jobs.db?busy_timeout=soon", {}, "busy_timeout"),
        ("sqlite:///jobs.db?busy_timeout=-1", {}, "busy_timeout"),
        ("sqlite:///jobs.db?lock_timeout=nan", {}, "lock_timeout"),
        ("sqlite:///jobs.db?watch_interval=0", {}, "watch_interval"),
        ("sqlite:///jobs.db?journal_mode=delete", {}, "journal_mode"),
        ("sqlite:///jobs.db", {"pool_size": 4}, "pool_size"),
    ],
)
def test_bad_urls_and_options(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_settings(url, options)


def test_open_backend_builds_a_sqlite_store() -> None:
    store = open_backend("sqlite:///jobs.db?synchronous=normal", busy_timeout=2)
    assert isinstance(store, SQLiteBackend)
    assert store.url == "sqlite:///jobs.db?synchronous=normal"
    assert store.settings.synchronous == "NORMAL"
    assert store.settings.busy_timeout == 2.0
    assert store.capabilities.change_feed is True
    assert store.capabilities.transactional_enqueue is False
    assert store.capabilities.shared_across_processes is True
