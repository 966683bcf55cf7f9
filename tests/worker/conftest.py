"""Fixtures of the worker tests: an app on every store, fast worker settings, and helpers
that wait on the store (with a deadline) instead of sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import backend_url
from workhorse import Workhorse

from ._support import FAST


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Workhorse]:
    """An app on a fresh store of every kind in turn, with fast worker settings."""
    application = Workhorse(store_url, settings=FAST)
    try:
        yield application
    finally:
        await application.aclose()


@pytest.fixture(params=["memory", "sqlite"])
async def local_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Workhorse]:
    """An app on memory:// and on a SQLite file, for tests of the worker's own logic
    (retry policy, timeouts, the event loop), where PostgreSQL would add only time."""
    application = Workhorse(backend_url(request.param, tmp_path), settings=FAST)
    try:
        yield application
    finally:
        await application.aclose()


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[Workhorse]:
    """An app on a real SQLite file, for tests whose subject does not depend on the store
    (process pools, timeouts of threads) or that need raw SQL."""
    application = Workhorse(f"sqlite:///{tmp_path / 'jobs.db'}", settings=FAST)
    try:
        yield application
    finally:
        await application.aclose()
