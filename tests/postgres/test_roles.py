"""Least privilege: an application role with USAGE on the schema and DML on its tables
enqueues and works on a migrated schema, with the default ``auto_migrate=True``; where a
migration is pending, it gets an error that says what to do, and leaves no connection
behind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse import Workhorse
from workhorse.backends.postgres import PostgresBackend
from workhorse.errors import ConfigurationError

from ._support import eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
async def app_role(admin: psycopg.AsyncConnection[TupleRow]) -> AsyncIterator[str]:
    """A login role with no privileges yet, dropped after the test."""
    role = f"wh_app_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
            [role],
        )
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')


def _as(role: str, url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


async def _grant_usage(admin: psycopg.AsyncConnection[TupleRow], schema: str, role: str) -> None:
    await admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    await admin.execute(
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
    )
    await admin.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')


async def _sessions(admin: psycopg.AsyncConnection[TupleRow], role: str) -> int:
    cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role])
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_a_dml_role_enqueues_and_works_on_a_migrated_schema(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], app_role: str, pg_url: str
) -> None:
    await _grant_usage(admin, pg.schema, app_role)
    app = Workhorse(_as(app_role, pg_url))
    assert app.auto_migrate

    @app.task(name="roles.double")
    async def double(n: int) -> int:
        return 2 * n

    try:
        job = await double.enqueue(21)
        assert job.created
        async with app.worker(concurrency=1, poll_interval=0.05):
            assert await job.result(timeout=10) == 42
    finally:
        await app.aclose()
    record = await pg.job_get(job_id=job.id)
    assert record is not None
    assert record.attempt == 1


async def test_a_role_that_may_not_migrate_is_told_what_to_do_and_leaks_nothing(
    admin: psycopg.AsyncConnection[TupleRow], app_role: str, pg_schema: str, pg_url: str
) -> None:
    await admin.execute(f'CREATE SCHEMA "{pg_schema}"')  # empty: every migration pending
    await _grant_usage(admin, pg_schema, app_role)
    app = Workhorse(_as(app_role, pg_url))

    @app.task(name="roles.noop")
    async def noop() -> None:
        return None

    try:
        with pytest.raises(ConfigurationError, match="workhorse migrate") as caught:
            await noop.enqueue()
        assert "0001_initial" in str(caught.value)
        assert "permission denied" in str(caught.value)

        async def closed() -> bool:
            return await _sessions(admin, app_role) == 0

        await eventually(closed, what="the failed store's connections to close")
    finally:
        await app.aclose()
