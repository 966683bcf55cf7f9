"""Fixtures of the SQLite tests: a database file in the test's folder and a connected,
migrated store on it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from workhorse.backends.sqlite import SQLiteBackend


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's database file lives."""
    return tmp_path / "jobs.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    """The store URL of ``db_path``."""
    return f"sqlite:///{db_path}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SQLiteBackend]:
    """A connected, migrated store."""
    backend = SQLiteBackend(db_url)
    await backend.connect()
    await backend.migrate()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def raw(db_path: Path, store: SQLiteBackend) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the store's file, as another process would have."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    try:
        yield conn
    finally:
        conn.close()
