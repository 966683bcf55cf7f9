"""The CLI on a PostgreSQL schema that does not exist (a typo in ``?schema=``): commands
that look into the store say so in one line and create nothing; ``migrate`` and
``worker start`` create it; every command (``serve`` included) fails at once, in one
line, on a server that does not answer."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

from cli._support import APP, WorkerProcess, cli_env, eventually, workhorse

from ._support import schema_exists

pytestmark = pytest.mark.postgres

READ_COMMANDS = [
    ["jobs", "list"],
    ["jobs", "show", "1"],
    ["jobs", "purge", "--state", "failed", "--yes"],
    ["queues"],
    ["worker", "status"],
    ["worker", "stop", "--all"],
    ["keys", "list"],
    ["workflows", "show", "1"],
    ["webhooks", "deliveries", "1"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
async def test_read_commands_refuse_a_schema_that_does_not_exist(
    store_url: str,
    pg_schema: str,
    admin: psycopg.AsyncConnection[TupleRow],
    tmp_path: Path,
    command: list[str],
) -> None:
    result = workhorse(*command, cwd=tmp_path, env=cli_env(store_url))

    assert result.code == 2, result.stderr
    line = result.error_line()
    assert f"no workhorse store: schema '{pg_schema}' does not exist in PostgreSQL at" in line
    assert not await schema_exists(admin, pg_schema)


async def test_schedules_of_a_schema_that_does_not_exist_show_no_ticks(
    store_url: str, pg_schema: str, admin: psycopg.AsyncConnection[TupleRow], tmp_path: Path
) -> None:
    env = cli_env(store_url)
    result = workhorse(
        "schedules", "--app", "tests.acceptance.feature_apps:schedules", cwd=tmp_path, env=env
    )

    assert result.code == 0, result.stderr
    assert "every-second" in result.stdout
    assert not await schema_exists(admin, pg_schema)


async def test_migrate_creates_the_schema(
    store_url: str, pg_schema: str, admin: psycopg.AsyncConnection[TupleRow], tmp_path: Path
) -> None:
    result = workhorse("migrate", cwd=tmp_path, env=cli_env(store_url))

    assert result.code == 0, result.stderr
    assert "applied 0001_initial" in result.stdout
    assert await schema_exists(admin, pg_schema)
    listed = workhorse("jobs", "list", cwd=tmp_path, env=cli_env(store_url))
    assert listed.code == 0, listed.stderr


async def test_a_worker_creates_the_schema(
    store_url: str, pg_schema: str, admin: psycopg.AsyncConnection[TupleRow], tmp_path: Path
) -> None:
    worker = WorkerProcess(APP, cwd=tmp_path, env=cli_env(store_url), log=tmp_path / "w.log")
    try:

        async def created() -> bool:
            return await schema_exists(admin, pg_schema)

        await eventually(created, timeout=30, what="the worker to create the schema")
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.output()
    finally:
        worker.kill()
