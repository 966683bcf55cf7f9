"""API keys in the SQLite backend, run on the connection's thread."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from workhorse.backends.base import ApiKeyRecord
from workhorse.backends.sqlite.statements import QUERIES


def api_key_record(row: tuple[Any, ...]) -> ApiKeyRecord:
    """An ApiKeyRecord from a row of the api_key_* queries."""
    return ApiKeyRecord(
        id=row[0],
        key_hash=row[1],
        name=row[2],
        tenant=row[3],
        admin=bool(row[4]),
        read_only=bool(row[5]),
        created_at=datetime.fromtimestamp(row[6], UTC),
        revoked_at=None if row[7] is None else datetime.fromtimestamp(row[7], UTC),
    )


def insert(
    conn: sqlite3.Connection,
    *,
    id: str,
    key_hash: str,
    name: str | None,
    tenant: str | None,
    admin: bool,
    read_only: bool,
    now: float,
) -> ApiKeyRecord:
    """Store a key; ``ValueError`` if its id or hash is taken."""
    params = {
        "id": id,
        "key_hash": key_hash,
        "name": name,
        "tenant": tenant,
        "admin": int(admin),
        "read_only": int(read_only),
        "now": now,
    }
    try:
        row = conn.execute(QUERIES["api_key_insert"], params).fetchone()
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"API key {id!r} cannot be stored: {exc}") from None
    return api_key_record(row)


def get(conn: sqlite3.Connection, *, key_hash: str) -> ApiKeyRecord | None:
    """The key with this hash, revoked or not."""
    row = conn.execute(QUERIES["api_key_get"], {"key_hash": key_hash}).fetchone()
    return None if row is None else api_key_record(row)


def list_keys(conn: sqlite3.Connection, *, include_revoked: bool) -> list[ApiKeyRecord]:
    """Keys, oldest first."""
    rows = conn.execute(QUERIES["api_key_list"], {"include_revoked": int(include_revoked)})
    return [api_key_record(row) for row in rows.fetchall()]


def revoke(conn: sqlite3.Connection, *, key_id: str, now: float) -> bool:
    """Mark a live key revoked; False if there is none with this id."""
    return conn.execute(QUERIES["api_key_revoke"], {"key_id": key_id, "now": now}).rowcount > 0
