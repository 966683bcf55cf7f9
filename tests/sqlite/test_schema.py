"""Migrations: applied once, safe to race, and equal to the script ``migration_sql()``
prints; ``connect()`` prepares the file but leaves the schema to ``migrate()``."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from workhorse.backends.base import JobFilter, NewJob
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.schema import MIGRATIONS, migration_label, split_statements
from workhorse.errors import BackendUnavailableError

ALL_LABELS = [migration_label(migration) for migration in MIGRATIONS]


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    conn.close()
    return rows


def _versions(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, name FROM workhorse_migrations ORDER BY version")
        versions = rows.fetchall()
    conn.close()
    return versions


async def test_connect_creates_the_folder_but_not_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "jobs.db"
    store = SQLiteBackend(f"sqlite:///{path}")
    await store.connect()
    await store.connect()  # idempotent
    try:
        assert path.parent.is_dir()
        assert [row for row in _schema(path) if row[1].startswith("workhorse_")] == []
        with pytest.raises(BackendUnavailableError, match="migrate"):
            await store.job_count(filter=JobFilter())
    finally:
        await store.close()
        await store.close()  # idempotent


async def test_calls_before_connect_fail_clearly(db_url: str) -> None:
    store = SQLiteBackend(db_url)
    with pytest.raises(BackendUnavailableError, match="connect"):
        await store.job_count(filter=JobFilter())


async def test_calls_after_close_fail_clearly(store: SQLiteBackend) -> None:
    await store.close()
    with pytest.raises(BackendUnavailableError, match="connect"):
        await store.job_insert_many([NewJob(task="t")])
    with pytest.raises(BackendUnavailableError, match="connect"):
        await store.job_get(job_id=1)
    await store.connect()  # and it reconnects
    assert await store.job_count(filter=JobFilter()) == 0


async def test_migrate_applies_each_migration_once(db_url: str, db_path: Path) -> None:
    store = SQLiteBackend(db_url)
    await store.connect()
    try:
        assert await store.migrate() == ALL_LABELS
        assert await store.migrate() == []
    finally:
        await store.close()
    assert ALL_LABELS[0] == "0001_initial"
    assert _versions(db_path) == [(m.version, m.name) for m in MIGRATIONS]


async def test_racing_migrators_apply_once(db_url: str, db_path: Path) -> None:
    stores = [SQLiteBackend(db_url) for _ in range(4)]
    await asyncio.gather(*(store.connect() for store in stores))
    try:
        applied = await asyncio.gather(*(store.migrate() for store in stores))
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    assert sorted(applied, key=len) == [[], [], [], ALL_LABELS]
    assert len(_versions(db_path)) == len(MIGRATIONS)


async def test_migrating_equals_the_printed_script(tmp_path: Path) -> None:
    migrated, scripted = tmp_path / "migrated.db", tmp_path / "scripted.db"
    store = SQLiteBackend(f"sqlite:///{migrated}")
    await store.connect()
    await store.migrate()
    script = store.migration_sql()
    await store.close()

    conn = sqlite3.connect(scripted, isolation_level=None)
    conn.executescript(script)
    conn.close()

    assert _schema(scripted) == _schema(migrated)
    assert _versions(scripted) == _versions(migrated)
    # A store set up from the script needs no migration.
    again = SQLiteBackend(f"sqlite:///{scripted}")
    await again.connect()
    try:
        assert await again.migrate() == []
    finally:
        await again.close()


def test_the_script_names_every_table() -> None:
    script = SQLiteBackend("sqlite:///unused.db").migration_sql()
    for table in (
        "workhorse_jobs",
        "workhorse_workers",
        "workhorse_leader",
        "workhorse_migrations",
    ):
        assert f"CREATE TABLE {table}" in script or f"CREATE TABLE IF NOT EXISTS {table}" in script


async def test_every_connection_gets_its_pragmas(db_path: Path) -> None:
    db = Database(SQLiteSettings(path=str(db_path), synchronous="NORMAL", busy_timeout=1.5))
    await db.open()
    try:
        pragmas = await db.read(
            lambda conn: {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        )
    finally:
        await db.close()
    # synchronous: 1 is NORMAL, 2 is FULL.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 1500,
        "foreign_keys": 1,
    }


async def test_full_is_the_default_and_its_connections_commit_at_normal(db_path: Path) -> None:
    """FULL stores fsync their durable commits themselves, after the commit (see
    test_durability); the connection's own level is NORMAL either way."""
    settings = SQLiteSettings(path=str(db_path))
    assert (settings.synchronous, settings.fsync) == ("FULL", True)
    assert not SQLiteSettings(path=str(db_path), synchronous="NORMAL").fsync
    db = Database(settings)
    await db.open()
    try:
        assert await db.read(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 1
    finally:
        await db.close()


async def test_an_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    store = SQLiteBackend(f"sqlite:///{folder}")
    with pytest.raises(BackendUnavailableError, match=r"a-folder\.db"):
        await store.connect()


def test_split_statements_respects_comments_and_strings() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT 'y;z', -- another; here
                    w INTEGER);
    /* block; comment */ CREATE INDEX a_x ON a (x);
    -- trailing comment
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[0].endswith("w INTEGER);")
    assert statements[1].endswith("CREATE INDEX a_x ON a (x);")
    with pytest.raises(ValueError, match="unterminated"):
        split_statements("CREATE TABLE b (x)")
