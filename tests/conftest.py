"""Shared fixtures: a backend per store (memory, a real SQLite file, a real PostgreSQL
schema), and the PostgreSQL availability rule (skip on a laptop, fail under CI=true)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from workhorse.backends import Backend, open_backend

PG_URL = os.environ.get("WORKHORSE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKEND_KINDS = ("memory", "sqlite", "postgres")


def _pg_reachable() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - dev extra always has it
        return f"psycopg missing: {exc}"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} unreachable: {exc}"
    return None


_PG_PROBLEM: str | bool | None = False  # False: not probed yet


def require_postgres() -> None:
    """Skip the calling test without PostgreSQL, or fail when running under CI."""
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_reachable()
    if isinstance(_PG_PROBLEM, str):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {_PG_PROBLEM}")
        pytest.skip(_PG_PROBLEM)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name, dropped after the test."""
    require_postgres()
    import psycopg

    name = f"wh_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def backend_url(kind: str, tmp_path: Path, pg_schema_name: str | None = None) -> str:
    """The URL of a fresh store of ``kind``."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    assert pg_schema_name is not None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={pg_schema_name}"


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        require_postgres()
    return kind


@pytest.fixture
def store_url(backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL for a fresh, empty store of every kind in turn."""
    schema = request.getfixturevalue("pg_schema") if backend_kind == "postgres" else None
    return backend_url(backend_kind, tmp_path, schema)


@pytest.fixture
async def backend(store_url: str) -> AsyncIterator[Backend]:
    """A connected, migrated backend of every kind in turn (the conformance fixture)."""
    store = open_backend(store_url)
    await store.connect()
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()
