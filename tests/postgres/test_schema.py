"""The schema: where it lives, how it is migrated (concurrently, or by a team running the
printed SQL), and the URL options that choose it."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from workhorse.backends import open_backend
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.config import parse_config
from workhorse.errors import ConfigurationError

_CATALOG = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = %(schema)s
UNION ALL
SELECT 'index', replace(indexdef, quote_ident(%(schema)s) || '.', '')
FROM pg_indexes WHERE schemaname = %(schema)s
UNION ALL
SELECT 'constraint', conname || ' ' || pg_get_constraintdef(c.oid)
FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
WHERE n.nspname = %(schema)s
ORDER BY 1, 2
"""


async def catalog(admin: psycopg.AsyncConnection[TupleRow], schema: str) -> list[str]:
    """Every column, index and constraint of ``schema``, comparable across schemas."""
    cur = await admin.execute(_CATALOG, {"schema": schema})
    return [f"{kind}: {text}" for kind, text in await cur.fetchall()]


async def _migrations(admin: psycopg.AsyncConnection[TupleRow], schema: str) -> list[str]:
    cur = await admin.execute(
        f"SELECT version || ' ' || name FROM \"{schema}\".workhorse_migrations ORDER BY 1"
    )
    return [str(row[0]) for row in await cur.fetchall()]


async def test_everything_lives_in_the_schema(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow]
) -> None:
    lines = await catalog(admin, pg.schema)
    tables = {line.split(": ")[1].split(".")[0] for line in lines if line.startswith("column")}
    assert {"workhorse_jobs", "workhorse_workers", "workhorse_leader"} <= tables
    assert "workhorse_migrations" in tables
    indexes = " ".join(line for line in lines if line.startswith("index"))
    for partial in (
        "workhorse_jobs_claim_queue ON workhorse_jobs"
        " USING btree (queue, priority DESC, run_at, id)"
        " WHERE (state = 'queued'::text)",
        "workhorse_jobs_lease ON workhorse_jobs USING btree (lease_expires_at)"
        " WHERE (state = 'running'::text)",
        "UNIQUE INDEX workhorse_jobs_unique_key",
    ):
        assert partial in indexes


async def test_printed_sql_builds_the_same_schema(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], pg_schema: str
) -> None:
    other = f"{pg_schema}_printed"
    printed = PostgresBackend(f"postgresql://x@127.0.0.1/test?schema={other}").migration_sql()
    try:
        await admin.execute(printed.encode())
        assert await catalog(admin, other) == await catalog(admin, pg.schema)
        assert await _migrations(admin, other) == await _migrations(admin, pg.schema)
        url = pg.url.replace(f"schema={pg_schema}", f"schema={other}")
        again = PostgresBackend(url)
        await again.connect()
        try:
            assert await again.migrate() == [], "the printed SQL records what it applied"
        finally:
            await again.close()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')


async def test_concurrent_migrators_apply_each_migration_once(
    store_url: str, admin: psycopg.AsyncConnection[TupleRow], pg_schema: str
) -> None:
    stores = [PostgresBackend(store_url) for _ in range(4)]
    await asyncio.gather(*(store.connect() for store in stores))
    try:
        results = await asyncio.gather(*(store.migrate() for store in stores))
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    applied = [names for names in results if names]
    assert len(applied) == 1, results
    assert applied[0] == ["0001_initial", *applied[0][1:]]
    assert len(await _migrations(admin, pg_schema)) == len(applied[0])


def test_url_options() -> None:
    config = parse_config(
        "postgresql+psycopg://u:secret@db.example:6543/app?schema=jobs&sslmode=disable", {}
    )
    assert config.schema == "jobs"
    assert "schema" not in config.conninfo
    assert "sslmode=disable" in config.conninfo
    assert "application_name=workhorse" in config.conninfo
    assert config.target == "db.example:6543/app"
    assert "secret" not in config.target


def test_libpq_options_pass_through() -> None:
    url = "postgresql://h/db?options=-c%20statement_timeout%3D5000&schema=s"
    params = conninfo_to_dict(parse_config(url, {}).conninfo)
    assert params["options"] == "-c statement_timeout=5000 -c TimeZone=UTC -c jit=off"


def test_defaults_and_overrides() -> None:
    assert parse_config("postgres://h/db", {}).schema == "workhorse"
    config = parse_config(
        "postgresql://h/db?application_name=mine", {"schema": "other", "max_size": 3}
    )
    assert (config.schema, config.max_size) == ("other", 3)
    assert "application_name=mine" in config.conninfo


@pytest.mark.parametrize("schema", ["1abc", "with space", 'quote"s', "x" * 60, "semi;colon"])
def test_bad_schema_names(schema: str) -> None:
    with pytest.raises(ConfigurationError, match="schema name"):
        PostgresBackend("postgresql://h/db", schema=schema)


def test_unknown_option() -> None:
    with pytest.raises(ConfigurationError, match="pool_size"):
        open_backend("postgresql://h/db", pool_size=3)
