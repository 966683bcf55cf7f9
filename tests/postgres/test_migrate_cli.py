"""``workhorse migrate`` on PostgreSQL as a real subprocess: printing the SQL touches
nothing, honours the app's backend options, and ``--from-version`` prints exactly what a
database at that version still needs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

from cli._support import cli_env, workhorse
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.statements import Statements

from ._support import schema_exists
from .test_schema import catalog

pytestmark = pytest.mark.postgres


async def test_print_writes_the_schema_without_touching_the_database(
    store_url: str, pg_schema: str, admin: psycopg.AsyncConnection[TupleRow], tmp_path: Path
) -> None:
    result = workhorse("migrate", "--print", cwd=tmp_path, env=cli_env(store_url))

    assert result.code == 0, result.stderr
    assert f'CREATE TABLE "{pg_schema}".workhorse_jobs' in result.stdout
    assert "-- 0001_initial" in result.stdout
    assert not await schema_exists(admin, pg_schema)


async def test_print_uses_the_apps_backend_options(
    store_url: str, pg_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "optioned.py").write_text(
        textwrap.dedent(
            f"""
            from workhorse import Workhorse

            app = Workhorse(
                "postgresql://postgres@127.0.0.1/test",
                backend_options={{"schema": "{pg_schema}_opt"}},
            )
            """
        )
    )
    result = workhorse("migrate", "--print", "--app", "optioned:app", cwd=tmp_path, env=cli_env())

    assert result.code == 0, result.stderr
    assert f'"{pg_schema}_opt".workhorse_jobs' in result.stdout
    assert '"workhorse".' not in result.stdout


async def test_print_from_a_version_brings_that_database_up_to_date(
    pg: PostgresBackend,
    store_url: str,
    pg_schema: str,
    admin: psycopg.AsyncConnection[TupleRow],
    tmp_path: Path,
) -> None:
    other = f"{pg_schema}_v2"
    sql = Statements(other)
    try:
        # A database that a team migrated by hand up to version 2.
        await admin.execute(sql["migration_bootstrap"].encode())
        for migration in sql.migrations()[:2]:
            await admin.execute(migration.sql.encode())
            await admin.execute(
                sql["migration_record"], {"version": migration.version, "name": migration.name}
            )
        env = cli_env(store_url.replace(f"schema={pg_schema}", f"schema={other}"))

        printed = workhorse("migrate", "--print", "--from-version", "2", cwd=tmp_path, env=env)
        assert printed.code == 0, printed.stderr
        assert "-- 0001_initial" not in printed.stdout
        assert "-- 0002_api_keys" not in printed.stdout
        assert "-- 0003_workflows" in printed.stdout
        await admin.execute(printed.stdout.encode())

        assert await catalog(admin, other) == await catalog(admin, pg.schema)
        again = workhorse("migrate", cwd=tmp_path, env=env)
        assert again.code == 0, again.stderr
        assert again.stdout.strip() == "schema is up to date"
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')


def test_from_version_needs_print(store_url: str, tmp_path: Path) -> None:
    result = workhorse("migrate", "--from-version", "2", cwd=tmp_path, env=cli_env(store_url))

    assert result.code != 0
    assert "--from-version only goes with --print" in result.error_line()
