"""Upgrading a store with webhook deliveries still waiting: the ones the version-4
trigger enqueued (URL and event in their arguments) are moved into their meta by
migration 6, and delivered as if the new trigger had made them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import psycopg
import pytest

from conftest import PG_URL, backend_url
from webhook_receiver import receiving
from workhorse import JobState, Workhorse
from workhorse.backends.postgres.statements import Statements
from workhorse.backends.sqlite.schema import apply_pending
from workhorse.webhooks.event import WEBHOOK_EVENT, WEBHOOK_FOR, WEBHOOK_URL

from ._support import FAST, job_in_state

BEFORE = 4
"""The last schema version whose trigger put the delivery in the job's arguments."""


def _old_sqlite_store(path: Path, url: str) -> None:
    """A SQLite store at version 4 with one ended job whose delivery waits."""
    conn = sqlite3.connect(path)
    try:
        apply_pending(conn, until=BEFORE)
        conn.execute(
            "INSERT INTO workhorse_jobs (task, queue, state, run_at, tenant, meta, created_at)"
            " VALUES ('tests.report', 'default', 'running', 0, 'acme', ?, 0)",
            (orjson.dumps({"webhook": url}).decode(),),
        )
        conn.execute("UPDATE workhorse_jobs SET state = 'completed', result = '42'")
        conn.commit()
    finally:
        conn.close()


def _old_postgres_store(schema: str, url: str) -> None:
    """A PostgreSQL schema at version 4 with one ended job whose delivery waits."""
    sql = Statements(schema)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql["migration_bootstrap"].encode(), prepare=False)
        for migration in sql.migrations():
            if migration.version <= BEFORE:
                conn.execute(migration.sql.encode(), prepare=False)
                conn.execute(
                    sql["migration_record"].encode(),
                    {"version": migration.version, "name": migration.name},
                )
        conn.execute(
            f'INSERT INTO "{schema}".workhorse_jobs (task, queue, state, run_at, tenant, meta)'
            " VALUES ('tests.report', 'default', 'running', now(), 'acme', %s)",
            (orjson.dumps({"webhook": url}).decode(),),
        )
        conn.execute(f"""UPDATE "{schema}".workhorse_jobs SET state = 'completed', result = '42'""")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_delivery_waiting_across_the_upgrade_is_delivered(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("pg_schema") if kind == "postgres" else None
    url = backend_url(kind, tmp_path, schema)
    with receiving() as receiver:
        if schema is None:
            _old_sqlite_store(tmp_path / "jobs.db", receiver.url)
        else:
            _old_postgres_store(schema, receiver.url)
        app = Workhorse(url, settings=FAST, auto_migrate=False)
        try:
            assert "0006_delivery_records_and_logouts" in await app.migrate()
            (delivery,) = await app.list_jobs(task="workhorse.webhook.deliver")
            assert (delivery.args, delivery.kwargs) == ([], {})
            assert delivery.meta[WEBHOOK_URL] == receiver.url
            assert delivery.meta[WEBHOOK_EVENT]["result"] == 42
            await app.webhooks.create_secret("acme")
            async with app.worker():
                await job_in_state(app, delivery.id, JobState.COMPLETED)
        finally:
            await app.aclose()
    (sent,) = receiver.requests
    event = orjson.loads(sent.body)
    assert (event["id"], event["tenant"], event["state"]) == (
        delivery.meta[WEBHOOK_FOR],
        "acme",
        "completed",
    )
    assert event["result"] == 42
