"""API keys in the PostgreSQL backend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg

from workhorse.backends.base import ApiKeyRecord
from workhorse.backends.postgres.pool import Pool
from workhorse.backends.postgres.statements import Statements


def api_key_record(row: Mapping[str, Any]) -> ApiKeyRecord:
    """A ``workhorse_api_keys`` row."""
    return ApiKeyRecord(
        id=row["id"],
        key_hash=row["key_hash"],
        name=row["name"],
        tenant=row["tenant"],
        admin=row["admin"],
        read_only=row["read_only"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert(
    pool: Pool,
    sql: Statements,
    *,
    id: str,
    key_hash: str,
    name: str | None,
    tenant: str | None,
    admin: bool,
    read_only: bool,
    now: datetime | None,
) -> ApiKeyRecord:
    """Store a key; ``ValueError`` if its id or hash is taken."""
    params = {
        "id": id,
        "key_hash": key_hash,
        "name": name,
        "tenant": tenant,
        "admin": admin,
        "read_only": read_only,
        "now": now,
    }
    try:
        rows = await pool.fetch(sql["api_key_insert"], params)
    except psycopg.errors.UniqueViolation as exc:
        raise ValueError(f"API key {id!r} cannot be stored: {exc}") from None
    return api_key_record(rows[0])


async def get(pool: Pool, sql: Statements, *, key_hash: str) -> ApiKeyRecord | None:
    """The key with this hash, revoked or not."""
    rows = await pool.fetch(sql["api_key_get"], {"key_hash": key_hash}, idempotent=True)
    return api_key_record(rows[0]) if rows else None


async def list_keys(pool: Pool, sql: Statements, *, include_revoked: bool) -> list[ApiKeyRecord]:
    """Keys, oldest first."""
    rows = await pool.fetch(
        sql["api_key_list"], {"include_revoked": include_revoked}, idempotent=True
    )
    return [api_key_record(row) for row in rows]


async def revoke(pool: Pool, sql: Statements, *, key_id: str, now: datetime | None) -> bool:
    """Mark a live key revoked; False if there is none with this id."""
    rows = await pool.fetch(sql["api_key_revoke"], {"key_id": key_id, "now": now})
    return bool(rows)
