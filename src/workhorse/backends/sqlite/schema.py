"""The SQLite schema: applying the numbered migrations, or printing them for teams that
run migrations themselves."""

from __future__ import annotations

import sqlite3

from workhorse.backends._sql import Migration, load_migrations
from workhorse.backends.sqlite.statements import QUERIES

MIGRATIONS: list[Migration] = load_migrations(__package__ or "workhorse.backends.sqlite")


def migration_label(migration: Migration) -> str:
    """How a migration is named to people: ``0001_initial``."""
    return f"{migration.version:04d}_{migration.name}"


def migration_sql(*, after: int = 0) -> str:
    """Every migration numbered above ``after`` followed by the row that records it, as
    one script to run in a single transaction."""
    record = QUERIES["migration_record"]
    parts = []
    for migration in (m for m in MIGRATIONS if m.version > after):
        recorded = record.replace(":version", str(migration.version)).replace(
            ":name", f"'{migration.name}'"
        )
        parts.append(f"-- {migration_label(migration)}\n{migration.sql.strip()}\n\n{recorded};\n")
    return "\n".join(parts)


def apply_pending(conn: sqlite3.Connection, *, until: int | None = None) -> list[str]:
    """Apply the migrations not yet recorded (those numbered ``until`` at most, when
    given: a store as an older release left it), inside the caller's write transaction
    (so concurrent migrators take turns); the labels of those applied."""
    applied: set[int] = set()
    if conn.execute(QUERIES["migration_table_exists"]).fetchone():
        applied = {row[0] for row in conn.execute(QUERIES["migration_versions"])}
    labels = []
    for migration in MIGRATIONS:
        if migration.version in applied or (until is not None and migration.version > until):
            continue
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            QUERIES["migration_record"], {"version": migration.version, "name": migration.name}
        )
        labels.append(migration_label(migration))
    return labels


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, one by one: ``executescript`` would commit the
    caller's transaction first."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if _has_code(statement):
                statements.append(statement)
            pending = ""
    if _has_code(pending):
        raise ValueError(f"unterminated SQL statement in migration: {pending.strip()[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())
